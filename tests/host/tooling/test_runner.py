"""The host runner boots /usr/main.py from a board root, as the firmware does, and stops cleanly."""
import json
import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from interrupt import interrupt
from tools.hostrun import board_root  # noqa: E402  (the repo root is on sys.path via conftest)

INTERPRETERS = ["cpython", "micropython"]


def _config(tmp_path, **app):
    settings = {"APP": dict({"log_level": "INFO", "log_file": "/usr/log/app.log",
                             "stop_timeout": 2.0}, **app),
                "HEALTH": {"interval_s": 0.05}}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(settings))
    return str(path)


def _wait_for_line(proc, needle, timeout_s=15):
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError("%r not seen in:\n%s" % (needle, "".join(seen)))


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_app_starts_logs_and_stops_after_duration(tmp_path, interpreter):
    root = str(tmp_path / "board")
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "board.py"), "run", "--root", root,
         "--interpreter", interpreter, "--config", _config(tmp_path), "--duration", "0.5"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "meter-module loaded: health, auth, network" in result.stdout
    assert "INFO health: status" in result.stdout
    assert "meter-module stopped" in result.stdout
    assert "some threads still running" not in result.stdout
    with open(os.path.join(root, "usr", "log", "app.log")) as f:
        assert "meter-module loaded" in f.read()


def test_micropython_is_found_in_the_repos_venv_by_a_python_outside_it(tmp_path):
    """The README's `python tools/board.py run --interpreter micropython`, with a python that is
    not the venv's and a PATH without the venv: the runner finds .venv/bin/micropython."""
    outside = getattr(sys, "_base_executable", "")
    if not outside or os.path.dirname(outside) == os.path.dirname(sys.executable):
        pytest.skip("needs a python outside the venv (pytest runs in .venv)")
    venv_bin = os.path.dirname(sys.executable)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and os.path.realpath(p) != os.path.realpath(venv_bin))
    result = subprocess.run(
        [outside, os.path.join(REPO, "tools", "board.py"), "run", "--root",
         str(tmp_path / "board"), "--interpreter", "micropython", "--config", _config(tmp_path),
         "--duration", "0.5"], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PATH=path), cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "meter-module loaded" in result.stdout


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_ctrl_c_stops_the_app_cleanly(tmp_path, interpreter):
    root = str(tmp_path / "board")
    board_root.stage(root, json.load(open(_config(tmp_path))))
    proc = subprocess.Popen(board_root.run_command(root, interpreter), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_line(proc, "meter-module loaded")     # Ctrl-C once the app runs, not mid-load
        interrupt(proc)
        rest = proc.communicate(timeout=20)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert "meter-module stopped" in rest
    assert "Traceback" not in rest


def test_bad_config_is_logged_counted_and_defaults_used(tmp_path):
    root = str(tmp_path / "board")
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"APP": {"workers": "many", "stop_timeout": 2.0},
                                "HEALTH": {"interval_s": 0.05}}))   # TCP_SERVER left out
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "board.py"), "run", "--root", root,
         "--config", str(path), "--duration", "0.3"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "config APP.workers: expected int in 1..16, got 'many': using the default" in \
        result.stdout
    assert "config TCP_SERVER: missing (required: host): using the default" in result.stdout
    assert "app.config_errors=2" in result.stdout


def test_unreadable_dev_json_runs_on_defaults(tmp_path):
    root = str(tmp_path / "board")
    board_root.stage(root, {})
    with open(os.path.join(root, "usr", "dev.json"), "w") as f:
        f.write("{ not json")
    result = subprocess.run(board_root.run_command(root, "cpython", 0.3), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/usr/dev.json: not valid JSON" in result.stdout
    assert "running on defaults" in result.stdout
    assert "meter-module loaded" in result.stdout
