"""End to end over MQTT, the real app (code/main.py, APP.uplink "mqtt") in a subprocess on
CPython and on MicroPython: simulated meter on a pty -> UART -> flash queue -> qframe's MQTT
(over the shim's real sockets) -> amqtt broker -> paho HES, and back (commands, downlink); a
broker restart and a module-side outage (the last will) on the way, and a power cut with records on flash;
nothing accepted is lost."""
import os
import shutil
import time

import pytest

from checks import wait_until
from tools.simulators import system as system_sim

INTERPRETERS = ["cpython", "micropython"]
BOOT_S = 20
BUDGET_S = 15


def _send(system, first, count):
    return system.meter.send_numbered(b"Q", first, count, 40)


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_meter_to_hes_and_back_over_mqtt_through_faults(interpreter, tmp_path):
    system = system_sim.System(interpreter, str(tmp_path / "board"), control=True,
                               uplink="mqtt",
                               extra_config={"METER": {"serial": "MTR-MQTT-0001"}})
    hes = system.hes
    device = hes.device
    sent = []
    try:
        system.start(BOOT_S)
        assert hes.wait_for(lambda h: h.registrations and
                            h.registrations[-1].get("meter") == "MTR-MQTT-0001", BUDGET_S)
        sent += _send(system, 0, 30)
        assert hes.wait_for(lambda h: len(h.received) == len(sent), BUDGET_S)

        reply = hes.command("ping")                              # command round trip
        assert reply == {"id": reply["id"], "cmd": "ping", "ok": True, "result": "pong"}
        for index in range(3):                                   # downlink to the meter
            assert hes.send_data(b"down%d" % index)
        assert system.meter.wait_for(lambda: len(system.meter.transparent) == 3, BUDGET_S)
        assert system.meter.transparent == [b"down0", b"down1", b"down2"]

        hes.stop()                                               # broker restart
        sent += _send(system, 30, 10)
        hes.start()
        assert hes.wait_for(lambda h: len(h.received) == len(sent), BUDGET_S)

        assert system.shim.command("network down") == "ok"       # the module vanishes
        assert hes.wait_for(lambda h: h.hes.statuses[device]["state"] == "offline", BUDGET_S)
        sent += _send(system, 40, 10)
        assert system.shim.command("network up") == "ok"
        assert hes.wait_for(lambda h: len(h.received) == len(sent), BUDGET_S)
        assert hes.wait_for(lambda h: h.hes.statuses[device]["state"] == "online", BUDGET_S)

        assert hes.hes.ordered(device) == sent     # each once, all of them (by seq)
        status = _status_when(hes, lambda st: st["acked_records"] == len(sent))
        assert status["acked_records"] == len(sent)        # the last PUBACKs arrive after
        assert status["queue_dropped"] == 0 and status["link_errors"] >= 2
    finally:
        code = system.stop()
    assert code == 0, "the app did not exit cleanly"


def _status_when(hes, predicate):
    """The module's MQTT status once predicate(status) holds (or the last one after BUDGET_S)."""
    deadline = time.monotonic() + BUDGET_S
    while True:
        status = hes.command("status")["result"]["mqtt"]
        if predicate(status) or time.monotonic() > deadline:
            return status


def _queue_bytes(root):
    folder = os.path.join(root, "usr", "queue", "uplink")
    if not os.path.isdir(folder):
        return 0
    return sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder)
               if name.endswith(".seg"))


def _pending(root):
    """The records on the module's flash queue (read after the power cut)."""
    from usr.qframe.store.pqueue import PersistentQueue
    queue = PersistentQueue(os.path.join(root, "usr", "queue", "uplink"), 262144)
    records = []
    seq = None
    while True:
        record = queue.peek(seq)
        if record is None:
            break
        seq = record[0]
        records.append(bytes(record[1]))
    queue.close()
    return records


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_power_cut_with_records_on_flash_loses_nothing(interpreter, tmp_path):
    root = str(tmp_path / "board")
    system = system_sim.System(interpreter, root, control=True, uplink="mqtt")
    hes = system.hes
    try:
        system.start(BOOT_S)
        sent = _send(system, 0, 10)
        assert hes.wait_for(lambda h: len(h.received) == 10, BUDGET_S)
        hes.stop()                                               # records pile up on flash
        sent += _send(system, 10, 20)
        # all 30 records in the segment (A7 | len 2 | seq 4 | CRC 2 | 40-byte payload)
        assert wait_until(lambda: _queue_bytes(root) >= 30 * 49, BUDGET_S * 1000, 20), \
            "the module never queued the payloads"
        system.app.proc.kill()                                   # power cut
        system.app.proc.wait(5)
        pending = _pending(root)
        # all that the broker never had is on flash; of the first 10 (delivered), those whose
        # PUBACK had not reached the module yet may be too: sent again, deduped by the HES
        assert set(sent[10:]) <= set(pending) <= set(sent)
        system.app = system_sim.AppProcess(root, system.config, interpreter, system.log,
                                           keep_flash=True,
                                           control_port=system.control_port).start()
        hes.start()
        assert hes.wait_for(lambda h: set(pending) <= set(h.received), BUDGET_S + BOOT_S), \
            "records on flash at the power cut never arrived"
        got = hes.hes.ordered(hes.device)
        assert got[:10] == sent[:10]
        assert len(got) == len(set(got))                         # each once (deduped)
        assert got == [p for p in sent if p in set(got)]         # in the module's order
    finally:
        system.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_tls_to_the_broker_verified_by_pin_or_ca(interpreter, tmp_path):
    """Both interpreters pin the broker's certificate (the module's ussl verifies no CA)."""
    from cloud_helpers import certificate
    from tools.simulators.mqtt_hes import MqttHesSim
    cert, key, pin = certificate(tmp_path, "broker", "/CN=broker.test", ip="127.0.0.1")
    verify = {"tls_fingerprint": pin}
    root = str(tmp_path / "board")
    system = system_sim.System(interpreter, root, uplink="mqtt",
                               extra_config={"MQTT": dict(verify, tls=True)})
    shutil.copy(cert, os.path.join(root, "usr", "broker.pem"))
    port = system.hes.port
    system.hes.close()
    system.hes = MqttHesSim(system.hes.device, tls=(cert, key), port=port).start()
    try:
        system.start(BOOT_S)
        sent = _send(system, 0, 20)
        assert system.hes.wait_for(lambda h: len(h.received) == 20, BUDGET_S)
        assert system.hes.hes.ordered(system.hes.device) == sent
        assert system.hes.send_data(b"tls-down")
        assert system.meter.wait_for(lambda: system.meter.transparent == [b"tls-down"], BUDGET_S)
    finally:
        system.stop()
