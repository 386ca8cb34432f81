"""End to end over MQTT, the real app (code/main.py, APP.uplink "mqtt") in a subprocess on
CPython and on MicroPython: simulated meter on a pty -> UART -> flash queue -> umqtt (the shim's,
over real sockets) -> amqtt broker -> paho HES, and back (commands, downlink); a broker restart
and a module-side outage (the last will) on the way, nothing lost."""
import pytest

from tools.simulators import system as system_sim

INTERPRETERS = ["cpython", "micropython"]
BOOT_S = 20
BUDGET_S = 15


def _payload(index):
    return (b"Q%06d" % index).ljust(40, b".")


def _send(system, first, count):
    for index in range(first, first + count):
        system.meter.send_transparent(_payload(index))
    return [_payload(i) for i in range(first, first + count)]


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

        assert hes.received == sent and hes.stats["duplicates"] >= 0
        status = hes.command("status")["result"]["mqtt"]
        assert status["queue_dropped"] == 0 and status["link_errors"] >= 2
        assert status["acked_records"] == len(sent)
    finally:
        code = system.stop()
    assert code == 0, "the app did not exit cleanly"
