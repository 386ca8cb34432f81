"""MQTT 3.1.1 packets (qframe/codecs/mqtt.py): hex vectors checked against the spec's layouts,
remaining-length boundaries, a stream split anywhere, and broken input refused with a reason."""
import ubinascii

from checks import raises
from usr.qframe.codecs import mqtt


def _hex(data):
    return ubinascii.hexlify(data).decode()


def _one(data, max_packet=65536):
    packets = mqtt.Parser(max_packet).feed(data)
    assert len(packets) == 1
    return packets[0]


def test_connect_with_will_user_and_password_matches_the_spec_layout():
    data = mqtt.connect("dev1", 60, False, ("a/s", b"off", 1, True), "u", "p")
    # 10 len=32 | "MQTT" level 4 | flags user+pass+will retain+will qos1+will | keepalive 60
    assert _hex(data) == ("1020" "00044d515454" "04" "ec" "003c" "000464657631"
                          "0003612f73" "00036f6666" "000175" "000170")
    packet = _one(data)
    assert packet.kind == mqtt.CONNECT and packet.client_id == "dev1"
    assert packet.keepalive == 60 and packet.clean is False
    assert packet.will == ("a/s", b"off", 1, True)
    assert packet.user == "u" and packet.password == b"p"


def test_clean_connect_without_extras():
    assert _hex(mqtt.connect("c", 0)) == "100d00044d51545404020000000163"


def test_publish_qos1_retained_and_qos0():
    data = mqtt.publish("a/b", b"hi", qos=1, retain=True, pid=10)
    assert _hex(data) == "33090003612f62000a6869"
    packet = _one(data)
    assert (packet.kind, packet.topic, packet.payload, packet.qos, packet.retain, packet.pid,
            packet.dup) == (mqtt.PUBLISH, "a/b", b"hi", 1, True, 10, False)
    assert _hex(mqtt.publish("t", b"x", dup=False)) == "300400017478"
    assert _one(mqtt.publish("t", b"", qos=1, pid=1, dup=True)).dup is True


def test_acks_subscribe_ping_disconnect():
    assert _hex(mqtt.puback(0x1234)) == "40021234"
    assert _hex(mqtt.subscribe(2, [("a/#", 1)])) == "820800020003612f2301"
    assert _hex(mqtt.suback(2, [1])) == "9003000201"
    assert _hex(mqtt.connack(0, True)) == "20020100"
    assert mqtt.pingreq() == b"\xc0\x00" and mqtt.disconnect() == b"\xe0\x00"
    packets = mqtt.Parser().feed(mqtt.connack(5) + mqtt.suback(7, [0x80]) + mqtt.puback(9) +
                                 mqtt.pingresp())
    assert [p.kind for p in packets] == [mqtt.CONNACK, mqtt.SUBACK, mqtt.PUBACK, mqtt.PINGRESP]
    assert packets[0].rc == 5 and packets[0].session_present is False
    assert packets[1].pid == 7 and packets[1].codes == [0x80] and packets[2].pid == 9
    sub = _one(mqtt.subscribe(3, [("x/+", 0), ("y/#", 1)]))
    assert sub.pid == 3 and sub.topics == [("x/+", 0), ("y/#", 1)]


def test_remaining_length_boundaries():
    # 2 bytes topic length + 1 byte topic: payload sizes put the body on each boundary
    for body, header in ((127, "307f"), (128, "308001"), (16383, "30ff7f"),
                         (16384, "30808001")):
        data = mqtt.publish("t", b"z" * (body - 3))
        assert _hex(data[:len(header) // 2]) == header
        assert len(_one(data, 1 << 20).payload) == body - 3


def test_a_stream_split_anywhere_gives_the_same_packets():
    stream = (mqtt.publish("a/b", b"one", 1, False, 1) + mqtt.puback(1) +
              mqtt.publish("c", b"x" * 300) + mqtt.pingresp())
    parser = mqtt.Parser()
    got = []
    for index in range(len(stream)):
        got.extend(parser.feed(stream[index:index + 1]))
    assert [p.kind for p in got] == [mqtt.PUBLISH, mqtt.PUBACK, mqtt.PUBLISH, mqtt.PINGRESP]
    assert got[0].payload == b"one" and len(got[2].payload) == 300


def test_broken_input_is_refused_with_a_reason_and_the_buffer_dropped():
    cases = (
        (b"\x30\xff\xff\xff\xff\x01", "longer than 4"),
        (b"\x30\x80\x80\x04", "over max_packet"),
        (b"\x00\x00", "unsupported packet type"),
        (b"\x41\x02\x00\x01", "flags"),                  # PUBACK with flags
        (b"\x34\x05\x00\x01t\x00\x01", "QoS 2"),
        (b"\x30\x03\x00\x05t", "truncated"),
        (b"\x30\x04\x00\x02\xff\xfe", "UTF-8"),
        (b"\x40\x03\x00\x01\x00", "too many"),
    )
    for data, reason in cases:
        parser = mqtt.Parser(1024)
        exc = raises(mqtt.MqttError, parser.feed, data)
        assert reason in str(exc), (data, str(exc))
        assert parser.feed(mqtt.pingresp())[0].kind == mqtt.PINGRESP   # starts afresh


def test_encoders_refuse_what_mqtt_cannot_carry():
    assert "topic" in str(raises(mqtt.MqttError, mqtt.publish, "a/+", b""))
    raises(mqtt.MqttError, mqtt.publish, "", b"")
    raises(mqtt.MqttError, mqtt.publish, "a", b"", 2, False, 1)
    raises(mqtt.MqttError, mqtt.publish, "a", b"", 1, False, 0)      # QoS 1 needs a pid
    raises(mqtt.MqttError, mqtt.puback, 70000)


def test_topic_filters():
    match = mqtt.topic_matches
    assert match("q/+/down/#", "q/dev/down/cmd") and match("q/+/down/#", "q/dev/down")
    assert match("#", "a/b") and match("a/+", "a/b") and match("a/b", "a/b")
    assert not match("a/+", "a/b/c") and not match("a/b", "a") and not match("a/+/c", "a/b/d")


def test_uplink_topics_and_format():
    topics = mqtt.uplink_topics("q", "dev7")
    assert topics["status"] == "q/dev7/status" and topics["down"] == "q/dev7/down/#"
    assert topics["cmd"] == "q/dev7/down/cmd" and topics["downlink"] == "q/dev7/down/meter"
    assert mqtt.topic_matches(topics["down"], topics["cmd"])
    fmt = mqtt.MqttFormat()
    assert fmt.acked is True and fmt.data(3, b"raw") == b"raw"
    import ujson
    status = ujson.loads(fmt.registration({"dev": "dev7", "epoch": 5}))
    assert status == {"state": "online", "dev": "dev7", "epoch": 5}
    assert ujson.loads(mqtt.OFFLINE) == {"state": "offline"}
    assert ujson.loads(fmt.event("network.down", "pdp")) == {"event": "network.down",
                                                             "data": "pdp"}


def test_needed_counts_the_octets_a_packet_still_lacks():
    parser = mqtt.Parser()
    data = mqtt.publish("t", b"x" * 200)            # 2-octet remaining length
    assert parser.needed() == 2
    assert parser.feed(data[:1]) == [] and parser.needed() == 1
    assert parser.feed(data[1:2]) == [] and parser.needed() == 1    # length continues
    assert parser.feed(data[2:3]) == [] and parser.needed() == len(data) - 3
    assert parser.feed(data[3:-1]) == [] and parser.needed() == 1
    assert len(parser.feed(data[-1:] + mqtt.pingresp()[:1])) == 1 and parser.needed() == 1
