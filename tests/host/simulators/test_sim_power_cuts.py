"""`make sim ARGS="--power-cuts N"`: the app is SIGKILLed and rebooted on the same flash while
the meter keeps sending; nothing the app had a chance to accept is lost (both interpreters)."""
import json
import os
import subprocess
import sys
import threading

import pytest

from tools.simulators.faults import PowerCuts  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_power_cuts_lose_nothing_sent_while_the_app_was_up(tmp_path, interpreter):
    result = subprocess.run(
        [sys.executable, "-m", "tools.simulators.system", "--duration", "8", "--power-cuts", "2", "--seed", "5", "--quiet",
         "--rate", "10", "--drain-s", "30", "--interpreter", interpreter,
         "--root", str(tmp_path / "board")],
        capture_output=True, text=True, timeout=180, cwd=REPO)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, summary
    assert summary["power_cuts"] == 2
    assert summary["lost_while_up"] == 0
    assert summary["lost"] == summary["lost_while_down"]
    sent_up = summary["meter_sent"] - summary["sent_while_down"]
    assert summary["hes_received"] >= sent_up > 10, summary
    # duplicates are fine: an ack cut off by a power cut makes the module resend (at-least-once)


def test_losses_are_split_by_the_down_windows():
    cuts = PowerCuts(None, 2, 10.0, 1, threading.Event(), None)
    cuts.windows = [[10.0, 11.0], [20.0, None]]       # the second boot never came up
    sent = [b"a", b"b", b"c", b"d", b"e"]
    sent_at = [9.0, 9.8, 10.5, 12.0, 25.0]
    lost = [b"a", b"b", b"c", b"e"]
    # a: before the in-flight margin (up); b: in it; c: down; e: after a cut with no boot
    assert cuts.split(sent, sent_at, lost, 0.5) == (1, 3, 3)
