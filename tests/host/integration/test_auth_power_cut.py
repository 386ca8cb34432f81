"""Power cuts during the command counter's update (issue 20): a real app process (the Auth
extension on the shim's flash, CPython and MicroPython) admits signed commands, each one's
counter stored before it runs, and is SIGKILLed at random moments, over and over. Each restart
replays the 40 counters before its new ones: no command ever runs twice, and none is
accepted with a counter not above one that ran."""
import os
import random
import signal
import subprocess
import time

import pytest

from tools.hostrun import board_root

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # tests/host
CHILD = os.path.join(HERE, "auth_kill_child.py")
KILLS = 12
START_S = 30         # a start (imports, flash) on a loaded machine: long only when it fails


def _lines(log):
    with open(log) as f:
        return [line.split(" ") for line in f.read().split("\n") if line]


def _wait(proc, log, predicate):
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if predicate(_lines(log)):
            return
        if proc.poll() is not None:
            raise AssertionError("child ended: %s" % proc.stderr.read().decode())
        time.sleep(0.005)
    raise AssertionError("the child did not get going")


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_no_command_runs_twice_across_power_cuts_in_counter_updates(interpreter, tmp_path):
    if interpreter == "micropython" and board_root.find_micropython() is None:
        pytest.skip("no MicroPython")
    rng = random.Random(20)
    root = board_root.stage(str(tmp_path / "board"))
    log = str(tmp_path / "events.log")
    open(log, "w").close()
    first = 1000
    for run in range(KILLS):
        argv = board_root.interpreter_command(interpreter) + [
            CHILD, root, os.pathsep.join(board_root.shim_paths(interpreter)), log, str(first)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait(proc, log, lambda lines: sum(1 for p in lines if p[0] == "L") == run + 1)
        time.sleep(rng.uniform(0.0, 0.2))     # the random moment is the point of the test
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        proc.stdout.close()
        ran = [int(p[1]) for p in _lines(log) if p[0] == "R"]
        first = max(ran + [first - 1]) + 1    # the next start replays the 40 that ran last
    lines = _lines(log)
    ran = [int(p[1]) for p in lines if p[0] == "R"]
    assert len(ran) == len(set(ran)), "a command ran twice"
    highest = 0
    for parts in lines:                     # in log order: each run above every earlier one
        if parts[0] == "R":
            assert int(parts[1]) > highest, parts
            highest = int(parts[1])
        elif parts[0] == "L":
            assert int(parts[1]) >= highest, "the counter went back: %s < %d" % (parts[1],
                                                                                   highest)
    replays = [p for p in lines if p[0] == "X"]
    assert replays and all(p[2] == "replay" for p in replays), replays[:5]
    assert len(ran) > KILLS                 # commands did run between the cuts
