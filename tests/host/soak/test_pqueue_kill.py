"""Power cuts on a full flash: the flash queue never reuses (epoch, seq) and counts what it loses.

A child process (pqueue_kill_child.py, on CPython and MicroPython under the shim) puts, sends
and acks on a flash quota of a few hundred bytes; the parent SIGKILLs it at random moments and
restarts it, then drains the queue and checks the child's log: no (epoch, seq) handed out for two
different payloads, and every accepted payload that never left the queue is counted by it
(`ram_lost`, `dropped`). `make test` runs 20 kills per interpreter; `make soak` runs
SOAK_KILLS (default 300 there).
"""
import os
import random
import signal
import subprocess
import time

import pytest

from tools.hostrun import board_root  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # tests/host: helpers, apps
CHILD = os.path.join(HERE, "pqueue_kill_child.py")
KILLS = int(os.environ.get("SOAK_KILLS", "20"))


def _child(interpreter, root, log, seed, mode):
    argv = board_root.interpreter_command(interpreter) + [
        CHILD, root, os.pathsep.join(board_root.shim_paths(interpreter)), log, str(seed), mode]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _lines(log):
    with open(log) as f:
        return f.read().split("\n")


def _wait_opened(proc, log, opened, timeout_s=20):
    """Block until the child logged its open (its O line number `opened`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sum(1 for line in _lines(log) if line.startswith("O ")) >= opened:
            return
        if proc.poll() is not None:
            raise AssertionError("child ended: %s" % proc.stderr.read().decode())
        time.sleep(0.005)
    raise AssertionError("child did not open its queue")


def kill_loop(interpreter, kills, seed, workdir):
    """Run the child `kills` times, SIGKILL each at a random moment, then drain; the figures."""
    rng = random.Random(seed)
    root = board_root.stage(os.path.join(workdir, "board"))
    log = os.path.join(workdir, "events.log")
    open(log, "w").close()
    for run in range(kills):
        proc = _child(interpreter, root, log, seed * 1000 + run, "run")
        _wait_opened(proc, log, run + 1)
        time.sleep(rng.uniform(0.0, 0.25))   # the random moment is the point of the test
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc = _child(interpreter, root, log, seed * 1000 + kills, "drain")
    out, err = proc.communicate(timeout=60)
    assert b"DONE" in out, err.decode()
    return _check(_lines(log))


def _check(lines):
    handed = {}          # (epoch, seq) -> payload
    reused = set()       # (epoch, seq) handed out for two different payloads
    runs = set()         # the restarts after which that happened
    run = 0
    accepted = set()
    sent = set()
    counted = 0
    for line in lines:
        parts = line.split(" ")
        if parts[0] in ("P", "S") and len(parts) == 4 and parts[2] != "None":
            key = (parts[1], parts[2])
            if handed.setdefault(key, parts[3]) != parts[3]:
                reused.add(key)
                runs.add(run)
            (accepted if parts[0] == "P" else sent).add(parts[3])
        elif parts[0] in ("O", "D") and len(parts) == 3:
            counted += int(parts[2])
            run += parts[0] == "O"
    lost = len(accepted - sent)
    return {"reuse": len(reused), "restarts_with_reuse": len(runs), "accepted": len(accepted), "lost": lost, "counted": counted}


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_power_cuts_on_a_full_flash_never_reuse_a_seq(tmp_path, interpreter):
    figures = kill_loop(interpreter, KILLS, 9, str(tmp_path))
    print("%s: %d kills: %r" % (interpreter, KILLS, figures))
    assert figures["accepted"] > KILLS
    assert figures["reuse"] == 0, figures
    assert figures["lost"] <= figures["counted"], figures
