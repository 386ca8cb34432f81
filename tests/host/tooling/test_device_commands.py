"""The device commands beyond deploy (make ls|fetch|log|reset|shell|check-config, CONFIG=,
the gate on deploy) and port handling, against the real virtual board and real ptys."""
import json
import os
import pty
import signal
import subprocess
import sys
import time

import pytest

from device_helpers import (DEPLOY, REPO, TIMEOUT, board, board_files,  # noqa: F401
                            deploy_to, expected_files, ours, progress, run_tool, running, source)
from tools.device import deploy, virtual_board


def _make(*args):
    return subprocess.run(["make", "-s", "-o", ".venv/.installed"] + list(args), cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT)


def _site_config(tmp_path, change):
    with open(os.path.join(REPO, "dev.json")) as f:
        config = json.load(f)
    change(config)
    path = tmp_path / "site.json"
    path.write_text(json.dumps(config, indent=1))
    return str(path)


# -- the portability gate guards deploy (item 1) ----------------------------------------------

def test_deploy_refuses_code_the_module_cannot_run(tmp_path, source):
    with open(os.path.join(source, "code", "health.py"), "a") as f:
        f.write('\n_where = f"{__name__}"\n')
    line = sum(1 for _ in open(os.path.join(source, "code", "health.py")))
    link = str(tmp_path / "board.tty")
    with virtual_board.VirtualBoard(str(tmp_path / "board"), link=link) as vb:
        refused = run_tool("deploy", "--port", link, "--source", source)
        assert refused.returncode == 2
        assert "code/health.py:%d: f-strings do not compile on 1.13" % line in refused.stderr
        assert "nothing was copied" in refused.stderr and "--skip-gate" in refused.stderr
        assert board_files(vb) == {}
        forced = run_tool("deploy", "--port", link, "--source", source, "--skip-gate")
        assert forced.returncode == 0, forced.stderr
        assert "WARNING: --skip-gate" in forced.stderr and "code/health.py:%d" % line in forced.stderr
        assert ours(board_files(vb)) == expected_files(source)


# -- site configs (item 4) and make check-config (item 9) -------------------------------------

def test_deploy_with_a_site_config(tmp_path, board, source):
    site = _site_config(tmp_path, lambda c: c["TCP_SERVER"].update(host="10.1.2.3", port=4059))
    dry = deploy_to(board, source, "--config", site, "--dry-run")
    assert "would copy /usr/dev.json" in dry.stdout and board_files(board) == {}
    result = deploy_to(board, source, "--config", site)
    assert "with /usr/dev.json from %s" % site in result.stdout
    with open(site, "rb") as f:
        assert board_files(board)["/usr/dev.json"] == f.read()
    # back to the repo's: only dev.json differs
    assert progress(deploy_to(board, source).stdout)["copied"] == ["/usr/dev.json"]


def test_deploy_refuses_a_config_the_app_would_reject(tmp_path, board, source):
    site = _site_config(tmp_path, lambda c: c["UART"].update(baudrate="fast"))
    refused = run_tool("deploy", "--port", board.port, "--source", source, "--config", site)
    assert refused.returncode == 2
    assert "UART.baudrate: expected int in 300..4000000, got 'fast'" in refused.stderr
    assert "nothing was copied" in refused.stderr and board_files(board) == {}
    broken = tmp_path / "broken.json"
    broken.write_text('{"APP": ')
    refused = run_tool("deploy", "--port", board.port, "--source", source, "--config",
                       str(broken))
    assert refused.returncode == 2 and "not valid JSON" in refused.stderr
    missing = run_tool("deploy", "--port", board.port, "--config", str(tmp_path / "none.json"))
    assert missing.returncode == 2 and "none.json: no such file" in missing.stderr


# -- everyday commands (item 5) ---------------------------------------------------------------

def test_ls_fetch_and_log(tmp_path, board, source):
    deploy_to(board, source)
    usr = os.path.join(board.root, "usr")
    os.makedirs(os.path.join(usr, "log"))
    log_text = "".join("%05d INFO app: line %d %s\n" % (i, i, "x" * (i % 50)) for i in range(600))
    with open(os.path.join(usr, "log", "app.log"), "w") as f:
        f.write(log_text)
    listed = run_tool("ls", "--port", board.port)
    assert listed.returncode == 0, listed.stderr
    assert "%10d /usr/log/app.log" % len(log_text) in listed.stdout
    assert "/usr/qframe/core/" in listed.stdout and "/usr/main.py" in listed.stdout

    local = tmp_path / "app.log"
    fetched = run_tool("fetch", "--port", board.port, "/usr/log/app.log", str(local))
    assert fetched.returncode == 0, fetched.stderr
    assert local.read_text() == log_text and len(log_text) > 13000
    missing = run_tool("fetch", "--port", board.port, "/usr/nope.txt", str(tmp_path / "x"))
    assert missing.returncode == 2 and "/usr/nope.txt: no such file" in missing.stderr

    shown = run_tool("log", "--port", board.port)        # APP.log_file of the deployed dev.json
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == log_text


def test_log_follow_prints_what_the_app_appends(board, source):
    deploy_to(board, source)
    path = os.path.join(board.root, "usr", "log", "app.log")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write("first line\n")
    with running(DEPLOY + ["log", "--port", board.port, "--follow"]) as (proc, reader):
        reader.wait_for("^first line")
        reader.wait_for("following /usr/log/app.log")
        with open(path, "a") as f:
            f.write("appended later\n")
        reader.wait_for("^appended later")
        with open(path, "w") as f:            # rotated: starts over
            f.write("after rotation\n")
        reader.wait_for("was rotated")
        reader.wait_for("^after rotation")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(TIMEOUT) == 0


def test_log_says_when_there_is_no_log_yet(board, source):
    deploy_to(board, source, "--skip-gate")     # dev.json: APP.log_file /usr/log/app.log
    with running(DEPLOY + ["log", "--port", board.port, "--follow"]) as (proc, reader):
        reader.wait_for("^log: /usr/log/app.log does not exist on %s yet" % board.port)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(TIMEOUT) == 0


def test_deploy_to_a_simulated_board_keeps_its_wiring(tmp_path, board, source):
    """make board SIM=1 wires the app to the simulators; `make deploy PORT=build/board.tty`
    (the repo's dev.json: UART 2, hes.example.net) keeps that wiring, and says so."""
    meter = str(tmp_path / "meter.tty")
    wiring = {"UART": {"port": meter}, "TCP_SERVER": {"host": "127.0.0.1", "port": 4321}}
    with open(os.path.join(board.root, "usr", ".qframe-sim.json"), "w") as f:
        json.dump(wiring, f)
    result = deploy_to(board, source, "--skip-gate")
    assert "is a virtual board wired to the simulators: /usr/dev.json keeps " \
        "TCP_SERVER.host=127.0.0.1, TCP_SERVER.port=4321, UART.port=%s" % meter in result.stdout
    deployed = json.loads(board_files(board)["/usr/dev.json"])
    assert deployed["UART"]["port"] == meter
    assert (deployed["TCP_SERVER"]["host"], deployed["TCP_SERVER"]["port"]) == ("127.0.0.1", 4321)
    with open(os.path.join(source, "dev.json")) as f:
        repo = json.load(f)
    assert deployed["TCP_SERVER"]["heartbeat_s"] == repo["TCP_SERVER"]["heartbeat_s"]
    os.remove(os.path.join(board.root, "usr", ".qframe-sim.json"))   # a module: as it is
    assert "wired" not in deploy_to(board, source, "--skip-gate").stdout
    assert json.loads(board_files(board)["/usr/dev.json"]) == repo


def test_reset_reboots_the_board_and_runs_main_py(tmp_path, source):
    with open(os.path.join(source, "code", "main.py"), "w") as f:
        f.write("print('BOOT main.py ran')\n")
    with virtual_board.VirtualBoard(str(tmp_path / "board"), autorun=False) as vb:
        deploy_to(vb, source)
        assert "BOOT main.py ran" not in vb.transcript()
        done = run_tool("reset", "--port", vb.port)
        assert done.returncode == 0, done.stderr
        assert "restart sent to %s" % vb.port in done.stdout
        deadline = time.monotonic() + 10
        while "BOOT main.py ran" not in vb.transcript():
            assert time.monotonic() < deadline, vb.transcript()[-500:]
            time.sleep(0.05)
        assert "soft reboot" in vb.transcript()
        assert run_tool("ping", "--port", vb.port).returncode == 0   # and it answers again


# -- port handling (item 6) -------------------------------------------------------------------

@pytest.fixture
def silent_port():
    """A real pty nobody answers on (a module's AT or diagnostics port, a hung device)."""
    master, slave = pty.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def test_a_silent_port_fails_within_the_timeout_with_one_line(silent_port):
    for command in ("ls", "deploy", "log", "ping"):
        started = time.monotonic()
        done = run_tool(command, "--port", silent_port, "--timeout", "1")
        took = time.monotonic() - started
        assert done.returncode == 2, command
        lines = done.stderr.strip().splitlines()
        assert lines == ["%s: %s did not answer as a MicroPython REPL within 1 s (QuecPython "
                         "modules have several USB serial ports: use the REPL one; --timeout or "
                         "QFRAME_PORT_TIMEOUT waits longer)" % (command, silent_port)], lines
        assert "b''" not in done.stdout + done.stderr
        # 1 s of waiting plus start-up (deploy gates and checks its files first), which a loaded
        # machine stretches: the bound tells a timed-out wait from a hang, not a speed
        assert took < 30, (command, took)
    started = time.monotonic()
    made = _make("ls", "PORT=%s" % silent_port, "PORT_TIMEOUT=1")
    assert made.returncode != 0 and "did not answer" in made.stderr
    assert time.monotonic() - started < 8


def test_the_board_port_has_a_stable_name(tmp_path):
    link = str(tmp_path / "board.tty")
    vb = virtual_board.VirtualBoard(str(tmp_path / "board"), link=link).start()
    try:
        assert os.readlink(link) == vb.port
        assert run_tool("ping", "--port", link).returncode == 0
    finally:
        vb.stop()
    assert not os.path.lexists(link)
    with running([sys.executable, "-m", "tools.device.virtual_board", "--root",
                  str(tmp_path / "b2"), "--link", link]) as (proc, reader):
        assert reader.wait_for("^PORT=").strip() == "PORT=%s" % link
        assert os.path.islink(link)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(TIMEOUT) == 0
        assert not os.path.lexists(link)
