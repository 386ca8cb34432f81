"""A board that cannot wedge: device commands killed at random moments (Ctrl-C, SIGTERM,
SIGKILL; seeded) while the app prints on the console, and the board still answers the next
command within its timeout. Regression: a `log` killed mid raw-paste left the board waiting
for the rest of the paste (every later command: "did not answer as a MicroPython REPL"), and
an app printing every second kept mpremote's per-byte timeout from ever expiring."""
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from device_helpers import DEPLOY, REPO
from tools.device import virtual_board

SEED = int(os.environ.get("QFRAME_WEDGE_SEED", "23"))
KILLS = int(os.environ.get("QFRAME_WEDGE_KILLS", "8"))
PORT_TIMEOUT = 5
CHATTY_MAIN = '''import _thread, utime
def _chatter():
    n = 0
    while True:
        n += 1
        print("%d INFO app: console line %d of an app that logs a lot" % (utime.ticks_ms(), n))
        utime.sleep_ms(30)
_thread.start_new_thread(_chatter, ())
'''
WRITER = ("import sys; from tools.device.repl_session import Device\n"
          "with Device(sys.argv[1]) as d:\n"
          "    d.write_file('/usr/blob.bin', bytes(range(256)) * 160)\n")


@pytest.fixture
def chatty_board(tmp_path):
    usr = tmp_path / "board" / "usr"
    (usr / "log").mkdir(parents=True)
    (usr / "main.py").write_text(CHATTY_MAIN)
    (usr / "dev.json").write_text(json.dumps({"APP": {"log_file": "/usr/log/app.log"}}))
    (usr / "log" / "app.log").write_text("".join("line %d\n" % i for i in range(800)))
    vb = virtual_board.VirtualBoard(str(tmp_path / "board"))
    vb.start(require_prompt=False)
    try:
        yield vb
    finally:
        vb.stop()


def _commands(port):
    tool = DEPLOY + ["--port", port, "--timeout", str(PORT_TIMEOUT)]
    return {
        "ls": DEPLOY + ["ls", "--port", port],
        "log": DEPLOY + ["log", "--port", port, "--follow"],
        "fetch": DEPLOY + ["fetch", "--port", port, "/usr/log/app.log", "-"],
        "reset": DEPLOY + ["reset", "--port", port],
        "write": [sys.executable, "-c", WRITER, port],
    }, tool


def _answers(port):
    """ping: the board answers within the port timeout (the subprocess bound is a guard)."""
    done = subprocess.run(DEPLOY + ["ping", "--port", port, "--timeout", str(PORT_TIMEOUT)],
                          capture_output=True, text=True, cwd=REPO, timeout=PORT_TIMEOUT + 20)
    return done.returncode == 0, done.stdout + done.stderr


def test_killed_device_commands_never_wedge_the_board(chatty_board):
    port = chatty_board.port
    commands, _ = _commands(port)
    rng = random.Random(SEED)
    env = dict(os.environ, QFRAME_PORT_TIMEOUT=str(PORT_TIMEOUT))
    for attempt in range(KILLS):
        name = rng.choice(sorted(commands))
        how = rng.choice([signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
        after_s = rng.uniform(0.05, 1.0)
        proc = subprocess.Popen(commands[name], cwd=REPO, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(after_s)                 # the random moment of the interruption
        if proc.poll() is None:
            os.killpg(proc.pid, how)
        proc.wait(PORT_TIMEOUT + 20)
        ok, said = _answers(port)
        assert ok, "after %s killed by %s at %.2f s (attempt %d, seed %d): %s" % (
            name, signal.Signals(how).name, after_s, attempt, SEED, said)


def test_commands_read_their_own_answers_while_the_app_prints(chatty_board):
    """The app's console lines land anywhere in a command's reply, between its lines and after
    its end marker: answers are still exact and no app line reads as a device error
    (regression: a ping reported "device error:" holding an app line; `ls` failed to parse)."""
    from tools.device import repl_session
    log = "/usr/log/app.log"
    text = "".join("line %d\n" % i for i in range(800))
    with repl_session.Device(chatty_board.port, PORT_TIMEOUT) as dev:
        for _ in range(25):
            assert dev.exec("_qd_say('a', 1)\n_qd_say('b')") == "a 1\nb\n"
            assert ("f", len(text), log) in dev.tree("/usr/log")
            assert dev.hashes([log, "/usr/none"]) == {
                log: hashlib.sha256(text.encode()).hexdigest(), "/usr/none": None}
            assert dev.read_bytes(log, 7000) == (text.encode()[7000:], len(text))
        with pytest.raises(repl_session.DeviceError, match="ZeroDivisionError"):
            dev.exec("1 // 0")


def test_a_command_obeys_the_port_timeout_while_the_app_prints(chatty_board):
    """A device that keeps printing but never answers the raw REPL: the command ends within
    the timeout with one line (mpremote alone waited as long as bytes kept coming)."""
    from tools.device import repl_session
    with repl_session.Device(chatty_board.port, 2) as dev:
        dev.transport.serial.write(b"_qd_never = 1\r\n")  # noise; then the REPL is busy:
        dev.transport.exec_raw_no_follow("import utime\nwhile True:\n utime.sleep_ms(5)")
        dev.line.start(2)
        started = time.monotonic()
        with pytest.raises(repl_session.TransportError):
            dev.transport.follow(2)
        assert time.monotonic() - started < 2 * 4   # without the bound: never
    ok, said = _answers(chatty_board.port)          # and the board recovers from it
    assert ok, said
