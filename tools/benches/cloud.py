"""Cloud-link benchmark: the transparent round trip through the module and sustained uplink.

    python -m tools.benches.cloud [--interpreters cpython,micropython] [--samples 300]
                                [--burst 2000] [--size 64]

Per interpreter, the real app (code/main.py, a subprocess via tools/simulators/system.py's System)
runs against the simulated HES and an echoing simulated meter on a pty:

* round trip: the HES sends a payload (DATA frame) -> module -> 0x2100 frame to the meter ->
  the meter echoes it -> module -> flash queue -> DATA frame -> HES (which acks). One payload
  at a time; p50 and p99 over --samples. The same HES with an ideal module (a CPython thread
  that echoes every DATA frame at once) gives the baseline; "added" is the difference: what
  the module (and the pty to the meter) costs.
* throughput: the meter sends --burst payloads back to back; payloads/s and bytes/s until the
  HES holds the last one (every payload passes through the flash queue and is acknowledged).

Prints readable figures and ends with ONE JSON line.
"""
import argparse
import json
import os
import socket
import struct
import sys
import threading
import time

from tools.simulators.hes import HesSim
from tools.simulators.hes_wire import frame, REGISTER, DATA, DOWN_DATA
from tools.simulators.system import System, Log, DEFAULT_ROOT


def percentile(values, fraction):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


def _round_trips(hes, samples, size, warmup=20, timeout=5.0):
    """Latencies (s) of payloads sent by the HES and received back, one at a time."""
    latencies = []
    for index in range(samples + warmup):
        payload = (b"R%07d" % index).ljust(size, b".")
        count = len(hes.received)
        started = time.monotonic()
        if not hes.send_data(payload):
            raise RuntimeError("no module connected to the HES")
        if not hes.wait_for(lambda h: len(h.received) > count, timeout):
            raise RuntimeError("round trip %d timed out" % index)
        if hes.received[count] != payload:
            raise RuntimeError("round trip %d returned %r" % (index, hes.received[count][:16]))
        if index >= warmup:
            latencies.append(hes.received_at[count] - started)
    return latencies


class IdealModule(object):
    """A module that costs nothing: registers, then echoes every downlink payload as DATA."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = json.dumps({"dev": "ideal", "epoch": 1}).encode()
        self.sock.sendall(frame(REGISTER, body))
        self.seq = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while len(buffer) >= 3:
                kind, size = struct.unpack(">BH", buffer[:3])
                if len(buffer) < 3 + size:
                    break
                body, buffer = buffer[3:3 + size], buffer[3 + size:]
                if kind == DOWN_DATA:
                    self.seq += 1
                    self.sock.sendall(frame(DATA, struct.pack(">I", self.seq) + body))

    def close(self):
        self.sock.close()


def baseline(samples, size):
    hes = HesSim().start()
    try:
        module = IdealModule(hes.port)
        hes.wait_for(lambda h: h.client_count() and h.registrations, 5)
        latencies = _round_trips(hes, samples, size)
        module.close()
        return latencies
    finally:
        hes.stop()


def _throughput(system, burst, size, timeout):
    meter = system.meter
    hes = system.hes
    before = len(hes.received)
    payloads = [(b"T%07d" % index).ljust(size, b".") for index in range(burst)]
    started = time.monotonic()
    for payload in payloads:
        meter.send_transparent(payload)
    done = hes.wait_for(lambda h: len(h.received) >= before + burst, timeout)
    elapsed = time.monotonic() - started
    got = hes.received[before:]
    if not done or got != payloads:
        raise RuntimeError("throughput run: %d of %d payloads arrived in order" % (
            sum(1 for a, b in zip(got, payloads) if a == b), burst))
    return burst / elapsed, burst * size / elapsed, elapsed


def bench_interpreter(interpreter, samples, burst, size, verbose):
    log = Log(quiet=not verbose)
    system = System(interpreter, os.path.join(DEFAULT_ROOT + "-bench"), log, echo=True,
                    log_level="INFO",
                    extra_config={"TCP_SERVER": {"heartbeat_s": 60, "idle_timeout_s": 0,
                                                 "queue_max_bytes": 1024 * 1024}})   # the bound
    if system.meter is None:
        raise SystemExit("the cloud bench needs tools/simulators/meter.py (the meter side)")
    try:
        system.start()
        latencies = _round_trips(system.hes, samples, size)
        rate, byte_rate, elapsed = _throughput(system, burst, size, timeout=120)
    finally:
        code = system.stop()
    return {"p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99)
            * 1000, "throughput_msgs_s": rate, "throughput_kib_s": byte_rate / 1024.0,
            "burst_s": elapsed, "app_exit": code}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interpreters", default="cpython,micropython")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--verbose", action="store_true", help="show the live log")
    args = parser.parse_args(argv)

    base = baseline(args.samples, args.size)
    base_p50, base_p99 = percentile(base, 0.5) * 1000, percentile(base, 0.99) * 1000
    print("baseline (HES sim + ideal module on loopback): p50 %.3f ms  p99 %.3f ms" % (
        base_p50, base_p99))
    result = {"size": args.size, "samples": args.samples, "burst": args.burst,
              "baseline_p50_ms": round(base_p50, 3), "baseline_p99_ms": round(base_p99, 3)}
    for interpreter in [name for name in args.interpreters.split(",") if name]:
        figures = bench_interpreter(interpreter, args.samples, args.burst, args.size,
                                    args.verbose)
        added_p50 = figures["p50_ms"] - base_p50
        added_p99 = figures["p99_ms"] - base_p99
        print("%-11s round trip p50 %.2f ms p99 %.2f ms (added p50 %.2f ms p99 %.2f ms); "
              "uplink %.0f payloads/s %.1f KiB/s (%d x %d B in %.2f s)" % (
                  interpreter, figures["p50_ms"], figures["p99_ms"], added_p50, added_p99,
                  figures["throughput_msgs_s"], figures["throughput_kib_s"], args.burst,
                  args.size, figures["burst_s"]))
        for key, value in (("p50_ms", figures["p50_ms"]), ("p99_ms", figures["p99_ms"]),
                           ("added_p50_ms", added_p50), ("added_p99_ms", added_p99),
                           ("throughput_msgs_s", figures["throughput_msgs_s"]),
                           ("throughput_kib_s", figures["throughput_kib_s"])):
            result["%s_%s" % (interpreter, key)] = round(value, 3)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
