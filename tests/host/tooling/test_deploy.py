"""`make deploy` and friends against the virtual board: real MicroPython on a pty, real
mpremote (tools/device/deploy.py drives mpremote's serial transport; `ls` and the os checks run the
mpremote command), on a snapshot of the repo's device files. test_device_commands.py covers the
other device commands (ls, fetch, log, reset, ports, configs), test_virtual_board.py the board's
console (whole output, mount, SIM=1)."""
import ast
import os
import re
import signal
import subprocess
import time

import pytest
import serial

from tools.device import deploy, repl_session, virtual_board

from device_helpers import (DEPLOY, MPREMOTE, OS_ALIAS, REPO, TIMEOUT, board,  # noqa: F401
                            board_files, deploy_to, expected_files, mpremote, ours, progress,
                            read_until, run_tool, running, source)


# -- deploy -----------------------------------------------------------------------------------

def test_deploy_copies_every_device_file(board, source):
    result = deploy_to(board, source)
    expected = expected_files(source)
    assert "/usr/main.py" in expected and "/usr/qframe/core/app.py" in expected
    assert "/usr/dev.json" in expected
    steps = progress(result.stdout)
    assert sorted(steps["copied"]) == sorted(expected) and not steps["skipped"]
    assert ours(board_files(board)) == expected
    assert re.search(r"deploy: %d copied, 0 unchanged, 0 removed" % len(expected), result.stdout)


def test_redeploy_copies_only_what_differs_on_the_device(board, source):
    deploy_to(board, source)
    again = deploy_to(board, source)
    assert progress(again.stdout) == {"copied": [], "skipped": [], "removed": []}
    assert "deploy: 0 copied, %d unchanged, 0 removed" % len(expected_files(source)) in again.stdout
    assert len(again.stdout.splitlines()) == 2      # a header and a one-line summary

    before = board_files(board)
    with open(os.path.join(source, "code", "health.py"), "a") as f:
        f.write("# changed\n")
    dry = deploy_to(board, source, "--dry-run")
    assert re.search(r"^  would copy /usr/health.py", dry.stdout, re.M), dry.stdout
    assert board_files(board) == before
    result = deploy_to(board, source, "--verbose")
    steps = progress(result.stdout)
    assert steps["copied"] == ["/usr/health.py"]
    assert len(steps["skipped"]) == len(expected_files(source)) - 1
    assert ours(board_files(board)) == expected_files(source)

    # A file changed on the device behind the manifest's back is found by its device hash.
    with open(os.path.join(board.root, "usr", "qframe", "core", "bus.py"), "ab") as f:
        f.write(b"# edited on the module\n")
    assert progress(deploy_to(board, source).stdout)["copied"] == ["/usr/qframe/core/bus.py"]
    assert ours(board_files(board)) == expected_files(source)


def test_deploy_removes_files_it_no_longer_ships(board, source):
    extra = os.path.join(source, "qframe", "codecs", "extra.py")
    with open(extra, "w") as f:
        f.write("X = 1\n")
    deploy_to(board, source)
    assert "/usr/qframe/codecs/extra.py" in board_files(board)
    os.remove(extra)
    steps = progress(deploy_to(board, source).stdout)
    assert steps["removed"] == ["/usr/qframe/codecs/extra.py"]
    assert "/usr/qframe/codecs/extra.py" not in board_files(board)


def test_deploy_to_a_missing_port_fails_with_a_clear_message():
    result = run_tool("deploy", "--port", "/dev/ttyQFRAME-missing")
    assert result.returncode == 2
    assert "cannot open /dev/ttyQFRAME-missing: no such port" in result.stderr
    assert "in use" not in result.stderr and "Traceback" not in result.stderr
    for target in ("deploy", "ls", "shell", "log", "reset", "run", "wipe"):
        made = subprocess.run(["make", "-s", "-o", ".venv/.installed", target,
                               "PORT=/dev/ttyQFRAME-missing"], cwd=REPO, capture_output=True,
                              text=True, timeout=TIMEOUT)
        assert made.returncode != 0, target
        assert "cannot open /dev/ttyQFRAME-missing: no such port" in made.stderr, made.stderr
        assert "in use" not in made.stderr + made.stdout, target
    no_port = subprocess.run(["make", "-s", "-o", ".venv/.installed", "deploy", "PORT="],
                             cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
    assert no_port.returncode != 0 and "PORT is required" in no_port.stderr


def test_mpy_deploy_gives_modules_the_board_imports(board, source):
    try:
        deploy.find_mpy_cross(6)
    except deploy.DeployError as exc:
        pytest.fail("the virtual board needs an mpy-cross for .mpy v6 "
                    "(pip install mpy-cross-v6-3): %s" % exc)
    deploy_to(board, source, "--mpy")
    files = ours(board_files(board))
    sources = expected_files(source)
    for path in sources:
        if path.endswith(".py") and path != "/usr/main.py":
            assert path not in files and path[:-3] + ".mpy" in files, path
            assert files[path[:-3] + ".mpy"][:1] == b"M"
    assert files["/usr/main.py"] == sources["/usr/main.py"]
    done = mpremote(board, "exec", "import usr.qframe.core.app as a; print(a.__file__); "
                    "print(a.Application('x').name)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [os.path.join(board.root, "usr", "qframe", "core", "app.mpy"), "x"]

    # Back to source: the .mpy files go, or they would be dead weight next to the .py.
    steps = progress(deploy_to(board, source).stdout)
    assert "/usr/qframe/core/app.mpy" in steps["removed"]
    assert ours(board_files(board)) == sources


def test_wipe_removes_only_what_deploy_put_there(board, source):
    deploy_to(board, source)
    usr = os.path.join(board.root, "usr")
    os.makedirs(os.path.join(usr, "log"))
    for name, text in (("user.txt", "keep me"), ("log/app.log", "app data")):
        with open(os.path.join(usr, name), "w") as f:
            f.write(text)
    result = run_tool("wipe", "--port", board.port, "--source", source)
    assert result.returncode == 0, result.stderr
    assert set(board_files(board)) == {"/usr/user.txt", "/usr/log/app.log"}
    assert not os.path.exists(os.path.join(usr, "qframe"))
    assert "removed  /usr/qframe/core/app.py" in result.stdout


# -- the board behaves like QuecPython for what deploy needs -----------------------------------

def test_deploy_snippets_import_only_u_modules():
    tree = ast.parse(repl_session.HELPERS)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported == set(repl_session.DEVICE_IMPORTS)
    assert all(name.startswith("u") for name in imported)


def test_board_has_no_os_module_until_aliased(board, source):
    deploy_to(board, source)
    plain = mpremote(board, "fs", "ls", ":/usr")
    assert plain.returncode != 0 and "no module named 'os'" in plain.stderr + plain.stdout
    for name in ("os", "time", "json", "select"):
        done = mpremote(board, "exec", "import %s" % name)
        assert "no module named '%s'" % name in done.stdout + done.stderr
    assert mpremote(board, "exec", "import uos, utime, ujson").returncode == 0
    listed = mpremote(board, "exec", OS_ALIAS, "fs", "tree", ":/usr")  # what `make ls` runs
    assert listed.returncode == 0, listed.stderr
    assert "main.py" in listed.stdout and "app.py" in listed.stdout


def test_raw_soft_reset_never_starts_the_app_but_a_reboot_does(tmp_path, source):
    with open(os.path.join(source, "code", "main.py"), "w") as f:
        f.write("print('BOOT main.py ran')\n")
    root = str(tmp_path / "board")
    with virtual_board.VirtualBoard(root) as vb:
        deploy_to(vb, source)
        reset = subprocess.run([MPREMOTE, "connect", vb.port, "exec", "print('after reset')"],
                               capture_output=True, text=True, timeout=TIMEOUT)
        assert reset.returncode == 0 and "after reset" in reset.stdout
        assert "BOOT main.py ran" not in vb.transcript()
        with serial.Serial(vb.port, timeout=0.2) as port:
            port.write(b"\r\x03\r\x02")                # friendly REPL
            read_until(port, b">>> ")
            port.write(b"\x04")                        # Ctrl-D: soft reset, main.py runs
            read_until(port, b"BOOT main.py ran")
    with virtual_board.VirtualBoard(root) as vb:              # power-on runs /usr/main.py
        assert "BOOT main.py ran" in vb.transcript()


def test_deploy_interrupts_a_main_py_that_never_returns(tmp_path, source):
    usr = tmp_path / "board" / "usr"
    usr.mkdir(parents=True)
    (usr / "main.py").write_text("import utime\nprint('looping')\nwhile True:\n"
                                 "    utime.sleep_ms(20)\n")
    vb = virtual_board.VirtualBoard(str(tmp_path / "board"))
    try:
        vb.start(timeout=0.5, require_prompt=False)
        assert not vb.ready
        deploy_to(vb, source)                          # its Ctrl-C stops the loop
        assert ours(board_files(vb)) == expected_files(source)
        assert "looping" in vb.transcript() and "KeyboardInterrupt" in vb.transcript()
    finally:
        vb.stop()


def test_friendly_repl_runs_code_and_ctrl_c_interrupts_it(board):
    with serial.Serial(board.port, timeout=0.2) as port:
        port.write(b"\r\x03\r\x02")
        read_until(port, b"information.\r\n>>> ")
        port.write(b"1 + 2\r")
        read_until(port, b"\r\n3\r\n>>> ")
        port.write(b"while True:\r    pass\r\r\x03")   # Ctrl-C may beat the loop's start
        read_until(port, b"KeyboardInterrupt: \r\n>>> ")
        port.write(b"while True:\r    pass\r\r")
        read_until(port, b"...     pass\r\n... \r\n")
        port.write(b"\x03")                              # the loop is running (or about to)
        read_until(port, b"KeyboardInterrupt: \r\n>>> ")
        port.write(b"'still' + ' here'\r")
        read_until(port, b"'still here'\r\n>>> ")


def test_board_stops_in_bounded_time_without_leftovers(tmp_path):
    vb = virtual_board.VirtualBoard(str(tmp_path / "board")).start()
    port, pid = vb.port, vb.process.pid
    started = time.monotonic()
    vb.stop()
    assert time.monotonic() - started < 3.0
    assert vb.process.poll() is not None
    assert not os.path.exists(port)
    with pytest.raises(OSError):
        os.kill(pid, 0)


# -- the app on the board ---------------------------------------------------------------------

def _run_app(vb, until, timeout=TIMEOUT):
    """`make run`: start /usr/main.py, wait for a log line matching `until`, then Ctrl-C.
    Returns (all output, exit code). The end-to-end run with the meter and HES simulators
    attached is test_deployed_app_moves_data_between_the_meter_and_the_hes below."""
    with running(DEPLOY + ["run", "--port", vb.port]) as (proc, reader):
        reader.wait_for(until, timeout)
        proc.send_signal(signal.SIGINT)
        reader.wait_for(r"run: interrupted", timeout)
        code = proc.wait(timeout)
        reader.wait_for(r"stopped", timeout)     # the process ended: at most its last lines
        return "".join(reader.lines), code


@pytest.mark.skipif(not os.path.exists(os.path.join(REPO, "tools", "shim", "osTimer.py")),
                    reason="the app's health extension needs the osTimer shim (tools/shim)")
def test_run_starts_the_app_which_logs_loaded_and_stops(board, source):
    deploy_to(board, source)
    output, code = _run_app(board, r"run: /usr/main.py returned; following the app")
    assert "INFO app: meter-module loaded" in output
    assert code == 0, output
    assert "run: starting /usr/main.py" in output
    assert re.search(r"INFO app: meter-module stopped", output), output


def test_deployed_app_moves_data_between_the_meter_and_the_hes(board, source):
    """Issue 5's end-to-end check: deploy, `make run`, and payloads cross the module both ways
    between the simulated meter (a pty the board's UART opens) and the simulated HES."""
    import json

    from tools.simulators import sim_config
    from tools.simulators.hes import HesSim
    from tools.simulators.meter import MeterSim

    hes = HesSim()
    hes.start()
    meter = MeterSim()
    meter.start()
    try:
        with open(os.path.join(source, "dev.json"), "w") as f:
            json.dump(sim_config.app_config(hes.port, meter.path), f)
        deploy_to(board, source)
        with running(DEPLOY + ["run", "--port", board.port]) as (proc, reader):
            reader.wait_for(r"INFO uart: UART .* open", TIMEOUT)
            meter.send_transparent(b"meter reading 1")
            assert hes.wait_for(lambda h: b"meter reading 1" in h.received, TIMEOUT), \
                "".join(reader.lines)
            assert hes.send_data(b"hes command 1") >= 1
            assert meter.wait_for(lambda: b"hes command 1" in meter.transparent, TIMEOUT), \
                "".join(reader.lines)
            proc.send_signal(signal.SIGINT)
            reader.wait_for(r"INFO app: meter-module stopped", TIMEOUT)
            assert proc.wait(TIMEOUT) == 0
    finally:
        meter.stop()
        hes.stop()
