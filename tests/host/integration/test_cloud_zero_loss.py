"""Zero loss across a randomized run of link faults: every payload the meter side hands over
(`meter.transparent`) reaches the HES exactly once and in order.

Faults come from a seeded RNG: HES-side connection resets, HES restarts and refused
connections, and (through shimctl) network outages, PDP deactivation, SIM out/in, DNS failures,
module-side socket resets and a full flash.
"""
import random
import threading
import time

import pytest

pytest.importorskip("usocket", reason="needs the QuecPython shim (tools/shim)")

import shimctl  # noqa: E402
from cloud_helpers import CloudRig  # noqa: E402

SEED = 7
RUN_S = 8.0
RATE_HZ = 150
MEAN_FAULT_GAP_S = 0.5

SHIM_FAULTS = [name for name in ("set_network", "set_pdp", "set_sim", "set_dns_fail",
                                 "reset_sockets", "set_flash_free") if hasattr(shimctl, name)]


def _fault(rng, rig, kind):
    hes = rig.hes
    hold = rng.uniform(0.1, 0.8)
    if kind == "drop":
        hes.drop_clients()
    elif kind == "restart":
        hes.stop()
        time.sleep(hold)
        hes.start()
    elif kind == "refuse":
        hes.refuse = True
        hes.drop_clients()
        time.sleep(hold)
        hes.refuse = False
    elif kind == "reset_sockets":
        shimctl.reset_sockets()
    elif kind == "set_flash_free":
        shimctl.set_flash_free(0)
        time.sleep(hold)
        shimctl.set_flash_free(None)
    else:                                   # on/off faults of the shim
        good = kind != "set_dns_fail"
        getattr(shimctl, kind)(not good)
        if kind == "set_dns_fail":
            hes.drop_clients()              # so that the next connect needs DNS
        time.sleep(hold)
        getattr(shimctl, kind)(good)


def test_no_payload_lost_or_duplicated_across_random_faults():
    if hasattr(shimctl, "reset"):
        shimctl.reset()
    rig = CloudRig("zeroloss", with_network=bool(SHIM_FAULTS),
                   tcp={"queue_max_bytes": 1 << 20, "heartbeat_s": 0.3})
    rng = random.Random(SEED)
    kinds = ["drop", "restart", "refuse"] + SHIM_FAULTS
    counts = {}
    stop = threading.Event()

    def produce():
        while not stop.is_set():
            rig.publish(1)
            stop.wait(1.0 / RATE_HZ)

    try:
        rig.start()
        producer = threading.Thread(target=produce)
        producer.start()
        ends = time.monotonic() + RUN_S
        while time.monotonic() < ends:
            time.sleep(rng.expovariate(1.0 / MEAN_FAULT_GAP_S))
            kind = rng.choice(kinds)
            counts[kind] = counts.get(kind, 0) + 1
            _fault(rng, rig, kind)
        stop.set()
        producer.join()
        drained = rig.wait_delivered(20)
        status = rig.app.status()["tcp"]
        print("zero-loss run: seed %d, %d payloads, faults %s, HES %s, link %s" % (
            SEED, len(rig.sent), counts, rig.hes.stats,
            {k: status[k] for k in ("connects", "link_errors", "queue_dropped",
                                    "queue_flash_errors", "queue_ram_put")}))
        assert drained, "only %d of %d delivered" % (len(rig.mine()), len(rig.sent))
        rig.check_exact()
        assert status["queue_dropped"] == 0
        assert len(rig.sent) > RUN_S * RATE_HZ / 2
        assert sum(counts.values()) >= 5
    finally:
        stop.set()
        if hasattr(shimctl, "reset"):
            shimctl.reset()
        rig.close()
