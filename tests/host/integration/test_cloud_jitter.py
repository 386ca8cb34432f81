"""Many modules losing the same HES come back spread out, not in lockstep (backoff jitter)."""
import pytest

pytest.importorskip("usocket", reason="needs the QuecPython shim (tools/shim)")

import statistics
import time

from cloud_helpers import CloudRig, budget
from tools.simulators.hes import HesSim

CLIENTS = 20


def _reconnect_delays(rigs, since):
    delays = []
    for r in rigs:
        times = [t for t, topic, _ in r.events if topic == "tcp.connected" and t > since]
        delays.append(times[0] - since if times else None)
    return delays


def test_reconnects_after_a_server_reset_are_spread_by_jitter():
    hes = HesSim().start()
    tcp = {"backoff_base_s": 1.0, "backoff_cap_s": 4.0, "stable_s": 0.2, "heartbeat_s": 0}
    rigs = [CloudRig("j%02d" % i, hes=hes, tcp=tcp) for i in range(CLIENTS)]
    try:
        for r in rigs:
            r.start(connected=False)
        assert hes.wait_for(lambda h: h.client_count() == CLIENTS, 10)
        time.sleep(tcp["stable_s"] + 0.1)
        since = time.monotonic()
        hes.drop_clients()
        deadline = time.monotonic() + budget(tcp["backoff_base_s"])
        while None in _reconnect_delays(rigs, since) and time.monotonic() < deadline:
            time.sleep(0.02)
        delays = _reconnect_delays(rigs, since)
        assert None not in delays, "%d of %d reconnected" % (CLIENTS - delays.count(None),
                                                             CLIENTS)
        base = tcp["backoff_base_s"]
        spread = statistics.pstdev(delays)
        print("reconnect delays after reset: min %.3f max %.3f stdev %.3f s" % (
            min(delays), max(delays), spread))
        assert min(delays) >= base / 2 - 0.02 and max(delays) <= base + 0.3
        # uniform over [base/2, base] has stdev base/(2*sqrt(12)) = 0.144 s: far from lockstep
        assert spread > 0.07
        window = sorted(delays)
        assert window[-1] - window[0] > base / 4
        # no two thirds of the devices inside any 50 ms slot
        crowded = max(sum(1 for d in delays if t <= d < t + 0.05) for t in delays)
        assert crowded < CLIENTS * 2 // 3
    finally:
        for r in rigs:
            r.close()
        hes.stop()
