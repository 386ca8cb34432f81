"""Module parameters 8002/8003/8005/8007 answered to the meter (code/params.py)."""
import uos

from checks import wait_until
from test_uart_link import _Link, _app, _frames_sent

from usr.qframe.codecs import meter
from usr.qframe.codecs.rfc1662 import Frame
from usr.params import ModuleParams, text_value

STORE = "/usr/test_meter_ids.json"


def _remove_store():
    try:
        uos.remove(STORE)
    except OSError:
        pass


def _params_app(**meter_cfg):
    app = _app()
    settings = {"store": ""}
    settings.update(meter_cfg)
    app.config["METER"] = settings
    params = ModuleParams(app=app)
    link = _Link(app)
    app.load()
    assert wait_until(lambda: link.is_open)
    return app, params, link


def _ask(app, message):
    protocol, cmd, payload = message
    return app.uart.resolver.dispatch(Frame(protocol, cmd, payload))


def test_module_state_follows_the_bus():
    app, params, _link = _params_app()
    assert _ask(app, meter.get_request(0x8002)) == meter.get_response(0x8002, b"\x00")
    app.bus.publish("network.up", "registered")
    assert _ask(app, meter.get_request(0x8002)) == meter.get_response(0x8002, b"\x02")
    app.bus.publish("tcp.connected", "hes:4059")
    assert _ask(app, meter.get_request(0x8002)) == meter.get_response(0x8002, b"\x03")
    app.bus.publish("network.down", "no signal")
    assert _ask(app, meter.get_request(0x8002)) == meter.get_response(0x8002, b"\x01")
    app.stop()
    assert app.status()["params"]["state"] == 1


def test_the_mqtt_uplink_sets_the_module_state_too():
    app, params, _link = _params_app()
    app.bus.publish("network.up", "registered")
    app.bus.publish("mqtt.connected", "broker:1883")
    assert _ask(app, meter.get_request(0x8002)) == meter.get_response(0x8002, b"\x03")
    app.bus.publish("mqtt.disconnected", "broker restart")
    assert _ask(app, meter.get_request(0x8002)) == meter.get_response(0x8002, b"\x02")
    app.stop()


def test_csq_comes_from_the_network_and_a_failed_query_is_a_get_error():
    import shimctl
    app, params, _link = _params_app()
    shimctl.set_csq(23)
    assert _ask(app, meter.get_request(0x8003)) == meter.get_response(0x8003, bytes((23,)))
    shimctl.set_csq(-1)
    assert _ask(app, meter.get_request(0x8003)) == meter.get_error(0x8003)
    assert params.stats["csq_errors"] == 1
    shimctl.reset()
    app.stop()


def test_serial_and_name_from_config_then_from_the_meter():
    app, params, _link = _params_app(serial="CFG-1", device_name="")
    assert _ask(app, meter.get_request(0x8005)) == meter.get_response(0x8005, b"CFG-1")
    assert _ask(app, meter.get_request(0x8007)) == meter.get_error(0x8007)
    typed = meter.typed_value(0, meter.TAG_VISIBLE_STRING, "MTR-42")
    assert _ask(app, meter.set_request(0x8005, typed)) == meter.set_response(0x8005, 0)
    assert _ask(app, meter.set_request(0x8007, b"kitchen")) == meter.set_response(0x8007, 0)
    assert _ask(app, meter.get_request(0x8005)) == meter.get_response(0x8005, b"MTR-42")
    assert _ask(app, meter.get_request(0x8007)) == meter.get_response(0x8007, b"kitchen")
    app.stop()


def test_bad_sets_and_read_only_parameters_are_refused():
    app, params, _link = _params_app(serial="S")
    refused = meter.set_response(0x8005, meter.ACK_FAILURE)
    assert _ask(app, meter.set_request(0x8005, b"\x01\x02\x03")) == refused
    assert _ask(app, meter.set_request(0x8005, b"")) == refused
    assert _ask(app, meter.set_request(0x8005, b"x" * 65)) == refused
    assert _ask(app, meter.set_typed(0x8005, 0, meter.TAG_UNSIGNED8, 5)) == refused
    assert _ask(app, meter.set_request(0x8003, b"\x05")) == meter.set_response(0x8003, 0x0C)
    assert _ask(app, meter.set_request(0x8002, b"\x05")) == meter.set_response(0x8002, 0x0C)
    assert params.stats["set_refused"] == 4
    assert _ask(app, meter.get_request(0x8005)) == meter.get_response(0x8005, b"S")
    app.stop()


def test_values_set_by_the_meter_survive_a_restart():
    _remove_store()
    app, _params, _link = _params_app(store=STORE, serial="CFG")
    typed = meter.typed_value(1, meter.TAG_OCTET_STRING, b"SN-7")
    assert _ask(app, meter.set_request(0x8005, typed)) == meter.set_response(0x8005, 0)
    app.stop()
    app, params, _link = _params_app(store=STORE, serial="CFG")
    assert _ask(app, meter.get_request(0x8005)) == meter.get_response(0x8005, b"SN-7")
    app.stop()
    _remove_store()
    assert params.stats["store_errors"] == 0


def test_answers_travel_over_the_link():
    app, _params, link = _params_app(serial="WIRE")
    link.port.feed(meter.pack(meter.get_request(0x8005)))
    assert wait_until(lambda: _frames_sent(link))
    assert _frames_sent(link)[0].message() == meter.get_response(0x8005, b"WIRE")
    app.stop()


def test_text_value_forms():
    assert text_value(meter.typed_value(0, meter.TAG_VISIBLE_STRING, "abc")) == "abc"
    assert text_value(meter.typed_value(0, meter.TAG_OCTET_STRING, b"abc")) == "abc"
    assert text_value(meter.typed_value(0, meter.TAG_OCTET_STRING, b"a\x00")) is None
    assert text_value(b"plain") == "plain"
    assert text_value(b"\xff") is None
