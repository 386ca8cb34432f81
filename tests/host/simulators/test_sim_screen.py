"""make sim's status screen (tools/simulators/sim_screen.py): the text of one screen, the rates,
the summary; then the whole `make sim` in a pty: the screen, Ctrl-C, the summary, the JSON line."""
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

from tools.hostrun.board_root import REPO
from tools.simulators import sim_screen

T0 = 1796000000.0


def _snap(**changes):
    snap = {
        "interpreter": "cpython", "elapsed_s": 83.4, "log_path": "build/sim/sim.log",
        "dashboard": "http://127.0.0.1:8080/",
        "link": {"state": "up", "since_s": 12.2, "module_up_s": 95, "reconnects": 3,
                 "hes": "127.0.0.1:40123", "listening": True},
        "uplink": {"rate": 5.0, "sent": 415, "received": 413},
        "downlink": {"rate": 0.5, "sent": 41, "received": 40},
        "queue": {"queued": 2, "dropped": 0, "age_s": 3.2},
        "faults": {"counts": {"drop": 1, "outage": 2}, "current": "dns"},
        "problems": {"duplicates": 1, "gaps": 0, "app_errors": 0, "app_warnings": 4},
        "readings": [(T0, "seq 412, 64 bytes: M0000412..."), (T0 + 0.2, "seq 413, 64 bytes")],
        "events": [(T0, "down", "link lost: reset by the HES"), (T0 + 1, "up", "registered")],
    }
    snap.update(changes)
    return snap


def test_one_screen_says_everything_at_a_glance():
    text = sim_screen.render(_snap(), width=120)
    lines = text.splitlines()
    assert "running 0:01:23" in lines[0] and "Ctrl-C to stop" in lines[0]
    assert "build/sim/sim.log" in lines[1] and "--log" in lines[1]
    assert "http://127.0.0.1:8080/" in lines[1]
    assert re.search(r"link\s+UP for 0:00:12 · module up 0:01:35 · reconnects 3", text)
    assert re.search(r"meter → HES\s+5.0 frames/s · sent 415 · at the HES 413 · not yet 2", text)
    assert re.search(r"HES → meter\s+0.5 frames/s · sent 41 · at the meter 40", text)
    assert "2 queued on the module · 0 dropped · as of 3 s ago" in text
    assert "3 so far (drop 1, outage 2) · now: dns" in text
    assert "duplicates 1 · gaps 0 · app errors 0 · app warnings 4" in text
    assert "M0000412..." in text and "link lost: reset by the HES" in text
    assert "\x1b[" not in text                         # no colour unless asked


def test_the_screen_fits_the_terminal_and_says_what_is_not_there_yet():
    snap = _snap(queue=None, faults=None, readings=[], events=[],
                 link={"state": "down", "since_s": 2, "module_up_s": None, "reconnects": 0,
                       "hes": "h:1", "listening": False})
    text = sim_screen.render(snap, width=40, height=12)
    assert len(text.splitlines()) == 12
    assert max(len(line) for line in text.splitlines()) <= 40
    full = sim_screen.render(snap, width=200)
    assert "DOWN for 0:00:02 · module up ?" in full and "(stopped)" in full
    assert "(no heartbeat yet)" in full and "off (--faults, --power-cuts N inject them)" in full
    assert full.count("none yet") == 2
    coloured = sim_screen.render(snap, width=30, color=True)
    assert sim_screen.RED + "DOWN" in coloured
    assert all(line.endswith(sim_screen.RESET) or "\x1b" not in line
               for line in coloured.splitlines())


def test_rate_counts_over_the_window():
    now = [0.0]
    rate = sim_screen.Rate(window_s=5, clock=lambda: now[0])
    assert rate(0) == 0.0
    for second in range(1, 11):
        now[0] = float(second)
        value = rate(second * 5)
    assert value == 5.0
    now[0] = 20.0
    assert rate(50) < 1.0                               # stalled: the rate falls


def test_summary_in_words():
    result = {"interpreter": "micropython", "duration_s": 61.0, "meter_sent": 300,
              "hes_received": 299, "lost": 1, "lost_first": ["M0000299"], "duplicates": 2,
              "queue_dropped": 0, "reconnects": 4, "downlink_sent": 30, "downlink_received": 29,
              "downlink_lost": 1, "downlink_duplicates": 2, "faults": {"drop": 2, "dns": 1},
              "app_exit": 0, "ok": False}
    text = sim_screen.summary_text(result, "build/sim/sim.log", {"ERROR": 1, "WARNING": 3})
    assert "stopped after 0:01:01 (micropython)" in text
    assert "300 sent, 299 stored at the HES, 1 lost, 2 duplicates" in text
    assert "HES → meter: 30 sent, 29 received, 1 lost, 2 duplicates" in text
    assert "link: 4 reconnects; faults: 3 (dns 1, drop 2)" in text
    assert "app: errors 1, warnings 3, exit code 0; log: build/sim/sim.log" in text
    assert "lost (first): M0000299" in text
    assert "power cuts" not in text
    assert "result: FAILED (ok: false)" in text
    result.update(power_cuts=2, down_s=1.25, sent_while_down=7, lost_while_down=1,
                  lost_while_up=0)
    assert "power cuts: 2 (down 1.2 s in all); sent while down 7, of which lost 1; lost while " \
        "up 0" in sim_screen.summary_text(result, "x", {})


# ---------------------------------------------------------------------- make sim in a terminal
def _read_until(fd, pattern, timeout, seen):
    """Read the pty into seen (a bytearray) until pattern (bytes regex) matches the text."""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, bytes(seen)):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:                # the child closed the terminal
                return bool(re.search(pattern, bytes(seen)))
            if not chunk:
                return bool(re.search(pattern, bytes(seen)))
            seen.extend(chunk)
    return True


def test_make_sim_in_a_terminal_shows_the_screen_and_ends_with_a_summary_on_ctrl_c(tmp_path):
    master, slave = pty.openpty()
    os.set_blocking(master, True)
    env = dict(os.environ, COLUMNS="120", LINES="40")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.simulators.system", "--root", str(tmp_path / "sim"),
         "--dashboard", "off", "--rate", "20"],
        stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env, start_new_session=True)
    os.close(slave)
    seen = bytearray()
    try:
        assert _read_until(master, rb"Ctrl-C to stop", 60, seen), bytes(seen)[-2000:]
        assert _read_until(master, rb"UP\x1b\[0m for", 30, seen), bytes(seen)[-2000:]
        assert _read_until(master, rb"meter \xe2\x86\x92 HES +[1-9][0-9.]* frames/s", 30,
                           seen), bytes(seen)[-2000:]
        assert sim_screen.ENTER.encode() in seen           # the alternate screen
        log_path = str(tmp_path / "sim" / "sim.log")
        assert log_path.encode() in seen
        os.killpg(proc.pid, signal.SIGINT)                 # what Ctrl-C in the terminal does
        assert _read_until(master, rb"\n\{[^\n]*\}\r?\n", 60, seen), bytes(seen)[-2000:]
        assert proc.wait(30) in (0, 1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(master)
    text = bytes(seen).decode("utf-8", "replace")
    after = text[text.rindex(sim_screen.LEAVE):]            # what stays in the terminal
    assert "qframe simulation stopped after" in after
    assert "meter → HES:" in after and "stored at the HES" in after
    result = json.loads(after.strip().splitlines()[-1])
    assert result["meter_sent"] > 0 and result["interpreter"] == "cpython"
    with open(log_path) as f:
        log = f.read()
    assert "registered" in log or "register" in log           # the log went to the file
    assert "hes data seq" not in after and "register" not in after.split("{")[0]


def test_unattended_sim_keeps_the_log_on_stdout_and_ends_with_the_json_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "tools.simulators.system", "--root", str(tmp_path / "sim"),
         "--duration", "2", "--rate", "10", "--drain-s", "20", "--dashboard", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
        text=True, timeout=120).stdout
    lines = out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["lost"] == 0 and result["meter_sent"] >= 10
    assert "\x1b[" not in out                               # no screen without a terminal
    assert any(" hes " in line for line in lines[:-1])      # the live log, as before
    assert any("HES dashboard: http://127.0.0.1:" in line for line in lines[:-1])
