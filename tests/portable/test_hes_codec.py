"""HES wire formats (qframe/codecs/hes.py): framing, split input, events, raw mode, plug-ins."""
import ujson

from checks import raises
from usr.qframe.codecs import hes
from usr.qframe.codecs.hes import FramedProtocol, RawProtocol, ProtocolError, frame


def test_uplink_frames():
    proto = FramedProtocol()
    data = proto.data(0x01020304, b"abc")
    assert bytes(data) == b"\x03\x00\x07\x01\x02\x03\x04abc"
    reg = proto.registration({"dev": "x", "epoch": 5})
    assert reg[0] == hes.REGISTER
    assert ujson.loads(bytes(reg[3:])) == {"dev": "x", "epoch": 5}
    assert proto.heartbeat({"up": 1})[0] == hes.HEARTBEAT
    assert proto.response({"id": 1, "ok": True})[0] == hes.RESPONSE
    raises(ValueError, proto.data, 1, bytes(0x10000))


def _kinds(events):
    return [e.kind for e in events]


def test_downlink_split_and_merged_reads():
    proto = FramedProtocol()
    stream = bytes(frame(hes.ACK, b"\x00\x00\x01\x00")) + bytes(
        frame(hes.DOWN_DATA, b"\x7e\x01")) + bytes(
        frame(hes.COMMAND, b'{"id": 3, "cmd": "ping"}')) + bytes(frame(hes.PONG))
    events = []
    for index in range(len(stream)):          # one byte at a time
        events.extend(proto.feed(stream[index:index + 1]))
    assert _kinds(events) == ["acked", "downlink", "command", "pong"]
    assert events[0].seq == 256
    assert events[1].data == b"\x7e\x01"
    assert events[2].body == b'{"id": 3, "cmd": "ping"}'
    merged = proto.feed(stream)                  # all at once
    assert _kinds(merged) == _kinds(events) and merged[0].seq == 256


def test_command_bodies_are_not_judged_by_the_codec():
    proto = FramedProtocol()       # decoding and checking is the command registry's job
    for body in (b"[1]", b"{nope", b"\xff\xfe", b'{"cmd": {}}'):
        events = proto.feed(bytes(frame(hes.COMMAND, body)))
        assert _kinds(events) == ["command"] and events[0].body == body


def test_framing_errors_raise_protocol_error():
    raises(ProtocolError, FramedProtocol().feed, b"\x55\x00\x00")
    raises(ProtocolError, FramedProtocol(max_frame=10).feed, b"\x82\x00\x20")
    raises(ProtocolError, FramedProtocol().feed, bytes(frame(hes.ACK, b"\x01")))


def test_reset_forgets_partial_input():
    proto = FramedProtocol()
    assert proto.feed(b"\x82\x00\x05ab") == []
    proto.reset()
    assert _kinds(proto.feed(bytes(frame(hes.PONG)))) == ["pong"]


def test_raw_mode_is_transparent_with_optional_texts():
    proto = RawProtocol({"raw_register": "REG {dev} {meter}", "raw_heartbeat": ""})
    assert not proto.acked
    assert proto.data(9, b"\x01\x02") == b"\x01\x02"
    events = proto.feed(b"xyz")
    assert _kinds(events) == ["downlink"] and events[0].data == b"xyz"
    assert proto.registration({"dev": "8612", "meter": "M1"}) == b"REG 8612 M1"
    assert proto.heartbeat({"dev": "8612"}) == b""


def test_base_protocol_sends_nothing_by_default():
    proto = hes.Protocol()
    assert not proto.acked
    assert not proto.registration({}) and not proto.heartbeat({}) and not proto.event("x", 1)
    assert not proto.response({"ok": True})
    raises(NotImplementedError, proto.data, 1, b"x")
    raises(NotImplementedError, proto.feed, b"x")


def test_load_by_name():
    assert isinstance(hes.load("ack"), FramedProtocol)
    assert isinstance(hes.load("raw"), RawProtocol)
    raises(ValueError, hes.load, "usr.no_such_protocol")      # named, not an ImportError
    for name in ("os", "../x", "usr", "usr..x", "usr.x-y", "usys"):
        raises(ValueError, hes.load, name)                   # never imported
        assert hes.protocol_problem(name)
    assert hes.protocol_problem("usr.hes_protocol") is None


def test_deployment_plugin_adds_its_kind_and_keeps_the_info():
    proto = hes.load("usr.hes_protocol", {"max_frame": 4096})
    assert isinstance(proto, FramedProtocol) and proto.acked and proto.max_frame == 4096
    reg = ujson.loads(bytes(proto.registration({"dev": "d", "meter": "MTR1"})[3:]))
    assert reg == {"dev": "d", "meter": "MTR1", "kind": "smart-meter-module"}
