"""HES wire formats (qframe/hesproto.py): framing, split input, acks, commands, raw mode."""
import ujson

from checks import raises
from usr.qframe.codecs import hes as hesproto
from usr.qframe.codecs.hes import FramedProtocol, RawProtocol, ProtocolError, frame


def test_uplink_frames():
    proto = FramedProtocol()
    data = proto.data(0x01020304, b"abc")
    assert bytes(data) == b"\x03\x00\x07\x01\x02\x03\x04abc"
    reg = proto.registration({"dev": "x", "epoch": 5})
    assert reg[0] == hesproto.REGISTER
    assert ujson.loads(bytes(reg[3:])) == {"dev": "x", "epoch": 5}
    assert proto.heartbeat({"up": 1})[0] == hesproto.HEARTBEAT
    assert proto.response({"id": 1, "ok": True})[0] == hesproto.RESPONSE


def test_downlink_split_and_merged_reads():
    proto = FramedProtocol()
    stream = bytes(frame(hesproto.ACK, b"\x00\x00\x01\x00")) + bytes(
        frame(hesproto.DOWN_DATA, b"\x7e\x01")) + bytes(
        frame(hesproto.COMMAND, b'{"id": 3, "cmd": "ping"}')) + bytes(frame(hesproto.PONG))
    events = []
    for index in range(len(stream)):          # one byte at a time
        events.extend(proto.feed(stream[index:index + 1]))
    assert events[0] == ("ack", 256)
    assert events[1] == ("data", b"\x7e\x01")
    assert events[2][0] == "command" and events[2][1]["cmd"] == "ping"
    assert events[3] == ("pong", None)
    assert proto.feed(stream) == events          # all at once


def test_bad_input_raises_protocol_error():
    raises(ProtocolError, FramedProtocol().feed, b"\x55\x00\x00")
    raises(ProtocolError, FramedProtocol(max_frame=10).feed, b"\x82\x00\x20")
    raises(ProtocolError, FramedProtocol().feed, bytes(frame(hesproto.COMMAND, b"[1]")))
    raises(ProtocolError, FramedProtocol().feed, bytes(frame(hesproto.COMMAND, b"{nope")))


def test_reset_forgets_partial_input():
    proto = FramedProtocol()
    assert proto.feed(b"\x82\x00\x05ab") == []
    proto.reset()
    assert proto.feed(bytes(frame(hesproto.PONG))) == [("pong", None)]


def test_raw_mode_is_transparent_with_optional_texts():
    proto = RawProtocol({"raw_register": "REG {dev}", "raw_heartbeat": ""})
    assert not proto.acked
    assert proto.data(9, b"\x01\x02") == b"\x01\x02"
    assert proto.feed(b"xyz") == [("data", b"xyz")]
    assert proto.registration({"dev": "8612"}) == b"REG 8612"
    assert proto.heartbeat({"dev": "8612"}) == b""


def test_load_by_name():
    assert isinstance(hesproto.load("ack"), FramedProtocol)
    assert isinstance(hesproto.load("raw"), RawProtocol)
    raises(ImportError, hesproto.load, "usr.no_such_protocol")
