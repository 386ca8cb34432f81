"""MQTT uplink benchmark: round trips and sustained uplink through a real broker (mosquitto,
else amqtt, on loopback), beside tools/benches/cloud.py's TCP figures.

    python -m tools.benches.mqtt [--interpreters cpython,micropython] [--samples 200]
                                 [--burst 1000] [--size 64]

Per interpreter, the real app (code/main.py with APP.uplink "mqtt", through
tools/simulators/system.py's System) runs against the broker, the paho HES and an echoing
simulated meter on a pty:

* round trip: the HES publishes a payload on down/meter -> broker -> module -> 0x2100 frame to
  the meter -> echo -> module -> flash queue -> PUBLISH QoS 1 up/meter -> broker -> HES. One at
  a time; p50/p99. The baseline is the same path with an ideal module (a paho client that
  echoes at once): what the broker and paho cost; "added" is what the module costs.
* command: the HES publishes {"cmd": "ping"} on down/cmd and waits for the reply on up/resp.
* throughput: the meter sends --burst payloads back to back; payloads/s until the HES has the
  last one (each one PUBACKed before it leaves the flash queue).

Prints readable figures and ends with ONE JSON line.
"""
import argparse
import json
import os
import sys
import time

import paho.mqtt.client as paho

from tools.benches.cloud import percentile
from tools.simulators.mqtt_hes import Broker, MqttHes, nodelay
from tools.simulators.system import DEFAULT_ROOT, Log, System


def _round_trips(hes, device, samples, size, warmup=20, timeout=5.0):
    latencies = []
    for index in range(samples + warmup):
        payload = (b"R%07d" % index).ljust(size, b".")
        count = len(hes.received)
        started = time.monotonic()
        if not hes.send_data(device, payload):
            raise RuntimeError("the HES could not publish")
        if not hes.wait_for(lambda h: len(h.received) > count, timeout):
            raise RuntimeError("round trip %d timed out" % index)
        if hes.received[count] != payload:
            raise RuntimeError("round trip %d returned %r" % (index, hes.received[count][:16]))
        if index >= warmup:
            latencies.append(hes.received_at[count] - started)
    return latencies


def _commands(hes, device, samples, timeout=5.0):
    latencies = []
    for index in range(samples):
        started = time.monotonic()
        hes.command(device, "ping", None, "bench-%d" % index)
        if hes.reply("bench-%d" % index, timeout) is None:
            raise RuntimeError("command %d got no reply" % index)
        latencies.append(time.monotonic() - started)
    return latencies


def baseline(samples, size):
    """Round trips through the broker with a paho client as an ideal module."""
    broker = Broker().start()
    hes = MqttHes(broker.port).start()
    module = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="ideal")
    module.username_pw_set("ideal")
    seq = [0]

    def echo(client, userdata, message):
        seq[0] += 1
        client.publish("qframe/ideal/up/meter/1/%d" % seq[0], message.payload, qos=1)

    module.on_message = echo
    def subscribe(client, userdata, flags, reason_code, properties=None):
        nodelay(client)
        client.subscribe("qframe/ideal/down/#", 1)

    module.on_connect = subscribe
    try:
        module.connect("127.0.0.1", broker.port)
        module.loop_start()
        time.sleep(0.5)     # the subscription is in place (no event for SUBACK here)
        return _round_trips(hes, "ideal", samples, size), broker.kind
    finally:
        module.disconnect()
        module.loop_stop()
        hes.stop()
        broker.close()


def _throughput(system, burst, size, timeout):
    hes = system.hes
    before = len(hes.received)
    payloads = [(b"T%07d" % index).ljust(size, b".") for index in range(burst)]
    started = time.monotonic()
    for payload in payloads:
        system.meter.send_transparent(payload)
    done = hes.wait_for(lambda h: len(h.received) >= before + burst, timeout)
    elapsed = time.monotonic() - started
    if not done or hes.received[before:] != payloads:
        raise RuntimeError("throughput run: %d of %d payloads arrived" % (
            len(hes.received) - before, burst))
    return burst / elapsed, burst * size / elapsed, elapsed


def bench_interpreter(interpreter, samples, burst, size, verbose):
    system = System(interpreter, DEFAULT_ROOT + "-bench-mqtt", Log(quiet=not verbose),
                    echo=True, uplink="mqtt",
                    extra_config={"MQTT": {"heartbeat_s": 60,
                                           "queue_max_bytes": 1024 * 1024}})   # the bound
    try:
        system.start()
        device = system.hes.device
        latencies = _round_trips(system.hes.hes, device, samples, size)
        commands = _commands(system.hes.hes, device, samples)
        rate, byte_rate, elapsed = _throughput(system, burst, size, timeout=300)
    finally:
        code = system.stop()
    return {"p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "command_p50_ms": percentile(commands, 0.5) * 1000,
            "command_p99_ms": percentile(commands, 0.99) * 1000,
            "throughput_msgs_s": rate, "throughput_kib_s": byte_rate / 1024.0,
            "burst_s": elapsed, "app_exit": code}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interpreters", default="cpython,micropython")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--verbose", action="store_true", help="show the live log")
    args = parser.parse_args(argv)

    base, kind = baseline(args.samples, args.size)
    base_p50, base_p99 = percentile(base, 0.5) * 1000, percentile(base, 0.99) * 1000
    print("baseline (%s + paho HES + paho echo module on loopback): p50 %.3f ms  "
          "p99 %.3f ms" % (kind, base_p50, base_p99))
    result = {"broker": kind, "size": args.size, "samples": args.samples, "burst": args.burst,
              "baseline_p50_ms": round(base_p50, 3), "baseline_p99_ms": round(base_p99, 3)}
    for interpreter in [name for name in args.interpreters.split(",") if name]:
        f = bench_interpreter(interpreter, args.samples, args.burst, args.size, args.verbose)
        print("%-11s round trip p50 %.2f ms p99 %.2f ms (added p50 %.2f ms); command p50 "
              "%.2f ms p99 %.2f ms; uplink %.0f payloads/s %.1f KiB/s (%d x %d B in %.2f s)" % (
                  interpreter, f["p50_ms"], f["p99_ms"], f["p50_ms"] - base_p50,
                  f["command_p50_ms"], f["command_p99_ms"], f["throughput_msgs_s"],
                  f["throughput_kib_s"], args.burst, args.size, f["burst_s"]))
        f["added_p50_ms"] = f["p50_ms"] - base_p50
        for key in ("p50_ms", "p99_ms", "added_p50_ms", "command_p50_ms", "command_p99_ms",
                    "throughput_msgs_s", "throughput_kib_s"):
            result["%s_%s" % (interpreter, key)] = round(f[key], 3)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
