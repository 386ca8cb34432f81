"""`make sim ARGS="--garbage RATE"`: the meter sends bursts of random octets between its frames;
the app loses none of the meter's payloads and counts the garbage (both interpreters; the
MicroPython one is $QFRAME_MICROPYTHON when set, e.g. a 1.13 build like the module's)."""
import json
import os
import subprocess
import sys

import pytest

from tools.simulators.meter import MeterSim

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.mark.parametrize("dialect", ["legacy", "standard"])
@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_a_noisy_meter_line_loses_nothing_and_the_app_counts_the_garbage(tmp_path, interpreter,
                                                                          dialect):
    result = subprocess.run(
        [sys.executable, "-m", "tools.simulators.system", "--duration", "5", "--garbage", "0.6",
         "--seed", "3", "--quiet", "--rate", "20", "--downlink", "0", "--drain-s", "30",
         "--dialect", dialect, "--interpreter", interpreter, "--root", str(tmp_path / "board")],
        capture_output=True, text=True, timeout=180, cwd=REPO)
    assert result.stdout.strip(), result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, summary
    assert summary["lost"] == 0 and summary["meter_sent"] > 40, summary
    assert summary["garbage_bursts"] > 10, summary
    link = summary["meter_link"]
    # every payload was a good frame; the random octets are counted, none of a frame's
    assert link["frames"] >= summary["meter_sent"], summary
    assert 0 < link["garbage_bytes"] <= summary["garbage_sent"], summary


def test_the_garbage_rate_is_a_share_of_frames():
    with pytest.raises(ValueError):
        MeterSim(garbage_rate=1.5)
    sim = MeterSim(garbage_rate=1.0, seed=2)
    drawn = [sim._garbage_burst(20) for _ in range(50)]
    bursts = [burst for burst, _cut in drawn]
    assert all(bursts) and all(0 < cut < 20 for _burst, cut in drawn)
    assert sim.stats["garbage_bursts"] == 50
    assert sim.stats["garbage_bytes"] == sum(len(b) for b in bursts)
    assert b"\x7e" in b"".join(bursts)        # flags come too: a burst can look like a frame
    quiet = MeterSim()
    assert quiet._garbage_burst(20) == (b"", 0) and quiet.stats["garbage_bursts"] == 0
