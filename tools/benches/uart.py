"""End-to-end meter-link benchmark: the real app's Uart over a pty, on either interpreter.

    python -m tools.benches.uart [--interpreter cpython|micropython]
                                 [--dialect legacy|standard|both] [--frames N]
                                 [--size OCTETS] [--pings M]

The app (code/main.py plus the HES loopback of tools/hostrun/hes_loopback.py, production UART
defaults but the port) runs in its own process; tools/simulators/meter.py is the meter. Measured:
- round trip: M single 0x2100 frames, each sent once the previous echo came back (meter ->
  UART reader -> decoder -> worker pool -> bus -> loopback -> hes.data -> framed -> meter);
- burst: N frames of OCTETS payload written back to back, until every echo is back (in order,
  none lost). The receive path carries N frames in, the transmit path N frames out.
A 115200 8N1 line carries 11520 octets/s per direction: `line_headroom` is the time such a
line needs for the burst's frames divided by the time the app took (above 1: the app keeps up
with a saturated line, with that much to spare).
Readable lines first, then one JSON line (keys prefixed with interpreter and dialect).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from tools.hostrun import board_root, hes_loopback
from tools.simulators.meter import MeterSim, meter, rfc1662

LINE_OCTETS_PER_S = 115200 / 10.0


def _percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def _drain(proc, lines):
    for line in proc.stdout:
        lines.append(line)


def _echo(payload):
    return hes_loopback.PREFIX + payload


def run(interpreter, dialect, frames, size, pings):
    work = tempfile.mkdtemp(prefix="bench_uart_")
    sim = MeterSim(dialect, link=os.path.join(work, "meter.tty")).start()
    config = {"APP": {"log_level": "WARNING", "stop_timeout": 3.0},
              "HEALTH": {"interval_s": 3600}, "UART": {"port": sim.path, "dialect": dialect},
              "METER": {"store": ""}}
    root = hes_loopback.stage(os.path.join(work, "board"), config)
    proc = subprocess.Popen(board_root.run_command(root, interpreter), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    threading.Thread(target=_drain, args=(proc, lines), daemon=True).start()
    try:
        deadline = time.monotonic() + 30
        while not sim.wait_for(lambda: sim.transparent, 0.2):     # app up and the link open
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the app did not answer:\n" + "".join(lines))
            sim.send_transparent(b"ready?")
        rtts = []
        for index in range(pings):
            count = len(sim.transparent)
            start = time.perf_counter()
            sim.send_transparent(b"ping %d" % index)
            if not sim.wait_for(lambda: len(sim.transparent) > count, 5):
                raise SystemExit("ping %d lost" % index)
            rtts.append((time.perf_counter() - start) * 1000.0)
        base = len(sim.transparent)
        payloads = [(b"%08d" % i + b"\x5a" * size)[:size] for i in range(frames)]
        wire = b"".join(sim.frame(meter.transparent(p)) for p in payloads)
        start = time.perf_counter()
        sim.write(wire)
        sim.wait_for(lambda: len(sim.transparent) >= base + frames, 120)
        elapsed = time.perf_counter() - start
        got = sim.transparent[base:]
        lost = frames - len(got)
        in_order = got == [_echo(p) for p in payloads]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
        sim.stop()
        shutil.rmtree(work, ignore_errors=True)
    echo_wire = sum(len(sim.frame(meter.transparent(_echo(p)))) for p in payloads)
    line_s = max(len(wire), echo_wire) / LINE_OCTETS_PER_S
    return {"rtt_ms_p50": round(_percentile(rtts, 0.5), 3),
            "rtt_ms_p99": round(_percentile(rtts, 0.99), 3),
            "frames_per_s": round(len(got) / elapsed, 1),
            "payload_octets_per_s": round(len(got) * size / elapsed),
            "line_headroom": round(line_s / elapsed, 1),
            "lost": lost, "in_order": in_order, "burst_s": round(elapsed, 3),
            "errors": sum(1 for line in lines if "ERROR" in line or "Traceback" in line)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interpreter", choices=["cpython", "micropython"], default="cpython")
    parser.add_argument("--dialect", choices=rfc1662.DIALECTS + ("both",), default="both")
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--pings", type=int, default=200)
    args = parser.parse_args(argv)
    dialects = rfc1662.DIALECTS if args.dialect == "both" else (args.dialect,)
    figures = {}
    ok = True
    for dialect in dialects:
        result = run(args.interpreter, dialect, args.frames, args.size, args.pings)
        print("%s, %s dialect, app over a pty:" % (args.interpreter, dialect))
        print("  round trip meter -> app -> meter: p50 %.2f ms, p99 %.2f ms (%d pings)"
              % (result["rtt_ms_p50"], result["rtt_ms_p99"], args.pings))
        print("  burst of %d x %d-octet frames: %.0f frames/s, %d payload octets/s each way, "
              "%d lost, in order: %s" % (args.frames, args.size, result["frames_per_s"],
                                         result["payload_octets_per_s"], result["lost"],
                                         result["in_order"]))
        print("  %.1f x what a 115200 baud line carries (above 1: keeps up)"
              % result["line_headroom"])
        print("  error lines in the app's log: %d" % result["errors"])
        ok = ok and result["lost"] == 0 and result["in_order"] and not result["errors"]
        for key in result:
            figures["%s_%s_%s" % (args.interpreter, dialect, key)] = result[key]
    print(json.dumps(figures, sort_keys=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
