"""The uplink session as the MQTT driver uses it (no broker: the test is the transport): one
publish per record, PUBACK -> ack(seq), resend with the same seq after a broken connection,
commands and downlink decoded from topics (handle), event names for the topic."""
import ujson

from checks import fresh_folder
from usr.qframe.codecs.hes import Command, Downlink
from usr.qframe.codecs.mqtt import MqttFormat
from usr.qframe.protocols.commands import CommandRegistry
from usr.qframe.protocols.uplink import UplinkSession
from usr.qframe.store.pqueue import PersistentQueue


def _session(name, count):
    queue = PersistentQueue(fresh_folder("/usr/test_mqtt_uplink", name), 1 << 16, 1024, 1024, 10)
    for index in range(count):
        queue.put(b"r%02d" % index)
    settings = {"window": 3, "ack_timeout_s": 2.0, "heartbeat_s": 0, "idle_timeout_s": 0}
    return UplinkSession(queue, MqttFormat(), settings, lambda: {"dev": "d"})


def test_registration_is_the_online_status():
    s = _session("status", 0)
    s.open(0)
    out = s.take()
    assert [o.kind for o in out] == ["register"]
    status = ujson.loads(out[0].data)
    assert status["state"] == "online" and status["dev"] == "d" and status["proto"] == "mqtt"


def test_a_record_leaves_the_queue_only_on_its_puback():
    s = _session("puback", 5)
    s.open(0)
    s.take()
    s.tick(1)
    records = [o for o in s.take() if o.kind == "record"]
    assert [o.seq for o in records] == [1, 2, 3] and records[0].data == b"r00"
    for out in records:
        s.written(out, 2)                # written is not delivered: MQTT waits for PUBACK
    assert len(s.queue) == 5
    s.ack(records[0].seq, 3)             # PUBACK of the first
    assert len(s.queue) == 4 and s.in_flight() == [2, 3]


def test_records_not_pubacked_go_again_with_the_same_seq_on_the_next_connection():
    s = _session("resend", 4)
    s.open(0)
    s.take()
    s.tick(1)
    first = [o.seq for o in s.take() if o.kind == "record"]
    s.ack(first[0], 2)
    s.close("connection lost")
    s.open(10)
    s.tick(11)
    again = [(o.seq, o.data) for o in s.take() if o.kind == "record"]
    assert again == [(2, b"r01"), (3, b"r02"), (4, b"r03")]


def test_commands_and_downlink_from_topics():
    s = _session("handle", 0)
    s.open(0)
    s.take()
    downlink = s.handle([Command(b'{"id": "r1", "cmd": "ping"}'), Downlink(b"\x01\x02"),
                         Command(b"not json")], 5)
    assert downlink == [b"\x01\x02"]
    registry = CommandRegistry()
    for call in s.take_commands():
        s.respond(call.id, registry.execute(call.request))
    replies = [ujson.loads(o.data) for o in s.take()]
    assert replies[0] == {"id": "r1", "cmd": "ping", "ok": True, "result": "pong"}
    assert replies[1]["ok"] is False and replies[1]["id"] is None and replies[1]["error"]
    assert s.stats["commands"] == 2 and s.stats["downlink"] == 1


def test_an_event_carries_its_name_for_the_topic():
    s = _session("event", 0)
    s.open(0)
    s.take()
    s.event("network.down", "pdp")
    out = s.take()
    assert out[0].kind == "event" and out[0].name == "network.down"
    assert ujson.loads(out[0].data) == {"event": "network.down", "data": "pdp"}
