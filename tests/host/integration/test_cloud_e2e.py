"""End to end, the real app (code/main.py) in a subprocess on CPython and on MicroPython:
simulated meter on a pty -> UART -> flash queue -> TCP -> simulated HES, and back; faults
from the HES side and, through the shim's control server, from the network side; TLS with the
server's own certificate as the trust anchor (pinned certificate)."""
import os
import shutil

import pytest

from tools.simulators import system as system_sim
from tools.simulators.hes import HesSim

INTERPRETERS = ["cpython", "micropython"]
BOOT_S = 20


def _send(system, first, count):
    return system.meter.send_numbered(b"E", first, count, 48)


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_meter_to_hes_and_back_through_faults(interpreter, tmp_path):
    system = system_sim.System(interpreter, str(tmp_path / "board"), control=True,
                               extra_config={"METER": {"serial": "MTR-E2E-0001"}})
    sent = []
    try:
        system.start(BOOT_S)
        assert system.shim is not None, "no shim control server in the app"
        hes = system.hes
        assert hes.wait_for(lambda h: h.registrations and
                            h.registrations[-1].get("meter") == "MTR-E2E-0001", 5), \
            "the HES never learned the meter's serial: %r" % (hes.registrations,)
        assert hes.registrations[-1]["kind"] == "smart-meter-module"
        sent += _send(system, 0, 30)
        assert hes.wait_for(lambda h: len(h.received) == len(sent), 10)
        for index in range(3):
            assert hes.send_data(b"down%d" % index) == 1
        assert system.meter.wait_for(lambda: len(system.meter.transparent) == 3, 5)
        assert system.meter.transparent == [b"down0", b"down1", b"down2"]

        # Each fault is seen through to the module's reconnection (a new HES connection),
        # never a fixed wait: under load the module may notice it late.
        before = hes.stats["connections"]
        hes.drop_clients()                                    # TCP reset from the HES
        sent += _send(system, 30, 10)
        assert hes.wait_for(lambda h: len(h.received) == len(sent), 10)
        assert hes.wait_for(lambda h: h.stats["connections"] > before, 10)

        before = hes.stats["connections"]
        assert system.shim.command("network down") == "ok"    # outage on the module side
        sent += _send(system, 40, 10)
        assert hes.wait_for(lambda h: h.client_count() == 0, 10)   # its socket aborted
        assert system.shim.command("network up") == "ok"
        assert hes.wait_for(lambda h: len(h.received) == len(sent), 10)
        assert hes.stats["connections"] > before

        before = hes.stats["connections"]
        hes.stop()                                            # HES away for a while
        sent += _send(system, 50, 10)
        hes.start()
        assert hes.wait_for(lambda h: len(h.received) == len(sent), 15)
        assert hes.stats["connections"] > before

        assert hes.received == sent
        reply = hes.command("status", timeout=5)
        tcp = reply["result"]["tcp"]
        network = reply["result"]["network"]
        assert tcp["queue_dropped"] == 0
        assert network["down_events"] >= 1 and network["up_events"] >= 2
    finally:
        code = system.stop()
    assert code == 0, "the app did not exit cleanly"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_tls_with_the_pinned_server_certificate(interpreter, tmp_path):
    from cloud_helpers import certificate
    cert, key, pin = certificate(tmp_path, "hes")
    root = str(tmp_path / "board")
    system = system_sim.System(interpreter, root, extra_config={"TCP_SERVER": {
        "tls": True, "tls_fingerprint": pin, "tls_hostname": "hes.test"}})
    system.hes.stop()
    system.hes = HesSim(port=system.hes.port, tls_cert=cert, tls_key=key).start()
    try:
        system.start(BOOT_S)
        sent = _send(system, 0, 20)
        assert system.hes.wait_for(lambda h: len(h.received) == 20, 10)
        assert system.hes.received == sent
        assert system.hes.send_data(b"tls-down") == 1
        assert system.meter.wait_for(lambda: system.meter.transparent == [b"tls-down"], 5)
    finally:
        system.stop()
