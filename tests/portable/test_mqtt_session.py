"""The sans-I/O MQTT client session (qframe/protocols/mqtt_session.py): handshake, QoS 0/1
with several messages in flight, packet ids, inbound QoS 1, keepalive, broken input, and
packets split or coalesced anyhow. The broker's side is spoken with the codec."""
import utime

from checks import raises
from usr.qframe.codecs import mqtt as codec
from usr.qframe.protocols import mqtt_session as ms


def _open(now_ms=0, **kwargs):
    session = ms.MqttSession("dev1", **kwargs)
    session.connect()
    events = session.receive(codec.connack(0, False), now_ms)
    assert session.state == "open"
    return session, events


def _one_octet_at_a_time(session, data, now_ms=0):
    events = []
    for index in range(len(data)):
        events.extend(session.receive(data[index:index + 1], now_ms))
    return events


def test_handshake_sends_connect_with_will_and_credentials_and_opens_on_connack():
    session = ms.MqttSession("dev1", keepalive_s=30, clean_session=False,
                             will=("p/dev1/status", b"off", 1, True), user="u", password="pw")
    assert session.state == "closed"
    packet = codec.Parser().feed(session.connect())[0]
    assert session.state == "connecting"
    assert (packet.kind, packet.client_id, packet.keepalive, packet.clean) == \
        (codec.CONNECT, "dev1", 30, False)
    assert packet.will == ("p/dev1/status", b"off", 1, True)
    assert packet.user == "u" and packet.password == b"pw"
    raises(ms.MqttStateError, session.publish, "a", b"x")
    events = session.receive(codec.connack(0, True), 0)
    assert len(events) == 1 and isinstance(events[0], ms.ConnAck)
    assert (events[0].return_code, events[0].session_present) == (0, True)
    assert session.state == "open" and session.close_reason is None


def test_a_refused_connack_closes_the_session_with_the_reason():
    session = ms.MqttSession("dev1")
    session.connect()
    events = session.receive(codec.connack(5), 0)
    assert events[0].return_code == 5
    assert session.state == "closed" and "not authorized" in session.close_reason


def test_no_connack_within_response_ms_closes():
    session = ms.MqttSession("dev1", response_ms=500)
    session.connect()
    assert session.next_wakeup(100) == 0        # the CONNECT is stamped at the next tick
    assert session.tick(100) is None
    assert session.next_wakeup(100) == 500
    assert session.tick(599) is None and session.state == "connecting"
    session.tick(600)
    assert session.state == "closed" and "CONNACK" in session.close_reason


def test_publish_qos0_has_no_pid_and_nothing_in_flight():
    session, _ = _open()
    pid, data = session.publish("a/b", b"hi")
    assert pid is None and session.inflight == {}
    packet = codec.Parser().feed(data)[0]
    assert (packet.topic, packet.payload, packet.qos, packet.retain) == ("a/b", b"hi", 0, False)


def test_several_qos1_in_flight_acked_out_of_order():
    session, _ = _open()
    pids = []
    for index in range(3):
        pid, data = session.publish("t/%d" % index, b"m%d" % index, qos=1, retain=index == 2)
        packet = codec.Parser().feed(data)[0]
        assert packet.pid == pid and packet.qos == 1 and packet.retain == (index == 2)
        pids.append(pid)
    assert len(set(pids)) == 3 and sorted(session.inflight) == sorted(pids)
    events = session.receive(codec.puback(pids[2]) + codec.puback(pids[0]), 0)
    assert [(type(e), e.pid) for e in events] == [(ms.PubAck, pids[2]), (ms.PubAck, pids[0])]
    assert list(session.inflight) == [pids[1]]
    assert session.inflight[pids[1]] == ("t/1", b"m1", False)
    events = session.receive(codec.puback(pids[1]), 0)
    assert events[0].pid == pids[1] and session.inflight == {}


def test_an_ack_for_a_pid_not_in_flight_is_counted_and_ignored():
    session, _ = _open()
    assert session.receive(codec.puback(77) + codec.suback(78, [0]), 0) == []
    assert session.stats["unknown_acks"] == 2 and session.state == "open"


def test_pids_wrap_and_skip_ones_still_in_flight():
    session, _ = _open()
    first, _ = session.publish("t", b"old", qos=1)
    assert first == 1
    session._last_pid = 65534
    assert session.publish("t", b"x", qos=1)[0] == 65535
    assert session.publish("t", b"y", qos=1)[0] == 2       # 1 is still in flight
    session.receive(codec.puback(1), 0)
    session._last_pid = 65535
    assert session.publish("t", b"z", qos=1)[0] == 1       # free again
    sub_pid, _ = session.subscribe([("a/#", 1)])
    assert sub_pid == 3                                    # shares the pid space


def test_resend_gives_inflight_again_with_dup_after_a_reconnect_oldest_first():
    session, _ = _open(clean_session=False)
    session._last_pid = 65534
    a, _ = session.publish("t/a", b"A", qos=1)
    b, _ = session.publish("t/b", b"B", qos=1, retain=True)
    assert (a, b) == (65535, 1)
    session.lost("reset")
    assert session.state == "closed" and session.close_reason == "reset"
    session.connect()
    raises(ms.MqttStateError, session.resend)
    session.receive(codec.connack(0, True), 0)
    packets = [codec.Parser().feed(data)[0] for data in session.resend()]
    assert [(p.pid, p.topic, p.payload, p.dup, p.retain) for p in packets] == \
        [(65535, "t/a", b"A", True, False), (1, "t/b", b"B", True, True)]
    assert session.stats["resent"] == 2


def test_clean_session_forgets_what_was_in_flight_on_connect():
    session, _ = _open(clean_session=True)
    session.publish("t", b"x", qos=1)
    session.lost()
    session.connect()
    assert session.inflight == {}


def test_inbound_qos1_is_surfaced_with_its_pid_and_acked_by_the_caller():
    session, _ = _open()
    data = codec.publish("down/cmd", b"{}", qos=1, pid=9, retain=True, dup=True)
    events = session.receive(data, 0)
    event = events[0]
    assert isinstance(event, ms.Publish)
    assert (event.topic, event.payload, event.qos, event.retain, event.dup, event.pid) == \
        ("down/cmd", b"{}", 1, True, True, 9)
    assert session.puback(9) == codec.puback(9)
    event = session.receive(codec.publish("x", b"0"), 0)[0]
    assert (event.qos, event.pid, event.retain, event.dup) == (0, None, False, False)


def test_subscribe_and_suback_with_a_refused_filter():
    session, _ = _open()
    pid, data = session.subscribe([("a/#", 1), ("b", 0)])
    packet = codec.Parser().feed(data)[0]
    assert packet.kind == codec.SUBSCRIBE and packet.topics == [("a/#", 1), ("b", 0)]
    event = session.receive(codec.suback(pid, [1, 0x80]), 0)[0]
    assert isinstance(event, ms.SubAck) and (event.pid, event.codes) == (pid, [1, 0x80])


def test_suback_with_the_wrong_number_of_codes_is_a_protocol_error():
    session, _ = _open()
    pid, _ = session.subscribe([("a", 0)])
    exc = raises(ms.MqttProtocolError, session.receive, codec.suback(pid, [0, 0]), 0)
    assert "2 codes for 1" in str(exc) and session.state == "closed"


def test_keepalive_pings_when_due_and_the_pingresp_clears_it():
    session, _ = _open(1000, keepalive_s=10)   # the CONNECT counts as sent at 1000
    assert session.next_wakeup(1000) == 10000
    assert session.next_wakeup(4000) == 7000
    assert session.tick(10999) is None
    assert session.tick(11000) == codec.pingreq()
    assert session.next_wakeup(11000) == 10000
    assert isinstance(session.receive(codec.pingresp(), 11100)[0], ms.PingResp)
    session.publish("t", b"x")               # sending anything moves the ping
    session.tick(15000)
    assert session.tick(24999) is None and session.tick(25000) == codec.pingreq()
    assert session.stats["pings"] == 2 and session.state == "open"


def test_a_missing_pingresp_closes_after_one_and_a_half_keepalives():
    session, _ = _open(keepalive_s=10)
    session.tick(0)
    assert session.tick(10000) == codec.pingreq()
    assert session.tick(20000) == codec.pingreq()     # still silent: ping again at keepalive
    assert session.next_wakeup(20000) == 5000
    assert session.tick(24999) is None and session.state == "open"
    assert session.tick(25000) is None
    assert session.state == "closed" and "PINGRESP" in session.close_reason


def test_keepalive_zero_never_pings():
    session, _ = _open(keepalive_s=0)
    assert session.tick(10 ** 8) is None and session.next_wakeup(10 ** 8) is None


def test_ticks_wrap_is_handled():
    start = utime.ticks_add(0, -1000)        # just before ticks_ms wraps
    session, _ = _open(start, keepalive_s=10)
    assert session.tick(utime.ticks_add(start, 9999)) is None
    assert session.tick(utime.ticks_add(start, 10000)) == codec.pingreq()


def test_oversized_packet_is_refused_before_it_is_buffered():
    session, _ = _open(max_packet=100)
    head = codec.publish("t", b"x" * 200)[:5]
    exc = raises(ms.MqttProtocolError, session.receive, head, 0)
    assert "max_packet" in str(exc)
    assert session.state == "closed" and "max_packet" in session.close_reason
    assert session.stats["protocol_errors"] == 1


def test_malformed_packets_are_protocol_errors():
    cases = [b"\x00\x00",                         # reserved type 0
             b"\x41\x02\x00\x01",                 # PUBACK with flags
             b"\x20\x02\x00\x00",                 # a second CONNACK
             b"\x82\x06\x00\x01\x00\x01a\x00",    # SUBSCRIBE from the broker
             b"\x30\x05\x00\x09abc",              # topic longer than the packet
             codec.publish("t", b"", qos=1, pid=1)[:5] + b"\x00\x00",    # pid 0
             b"\x30\xff\xff\xff\xff\x7f"]         # remaining length of 5 octets
    for data in cases:
        session, _ = _open()
        assert raises(ms.MqttProtocolError, session.receive, data, 0) is not None, data
        assert session.state == "closed" and session.close_reason.startswith("protocol error")


def test_anything_but_connack_while_connecting_is_a_protocol_error():
    session = ms.MqttSession("dev1")
    session.connect()
    raises(ms.MqttProtocolError, session.receive, codec.puback(1), 0)
    assert session.state == "closed"


def test_split_and_coalesced_reads_give_the_same_events():
    stream = (codec.connack(0, False) + codec.publish("a/b", b"x" * 300, qos=1, pid=5) +
              codec.puback(1) + codec.pingresp() + codec.publish("c", b"", retain=True))

    def run(feed):
        session = ms.MqttSession("dev1")
        session.connect()
        session._last_pid = 0
        events = []
        # the PUBACK(1) needs a pid in flight: publish once the CONNACK opened the session
        events.extend(feed(session, stream[:4]))
        session.publish("t", b"p", qos=1)
        events.extend(feed(session, stream[4:]))
        return [repr(e) for e in events]

    whole = run(lambda s, data: s.receive(data, 0))
    assert len(whole) == 5
    assert run(_one_octet_at_a_time) == whole


def test_eof_closes_and_disconnect_then_lost_is_a_clean_end():
    session, _ = _open()
    assert session.receive(b"", 0) == []
    assert session.state == "closed" and "closed by the broker" in session.close_reason
    session, _ = _open()
    assert session.disconnect() == codec.disconnect() and session.state == "closing"
    session.lost()
    assert session.state == "closed" and session.close_reason is None


def test_an_explicit_ping_waits_for_its_pingresp_too():
    session, _ = _open(keepalive_s=10)
    raises(ms.MqttStateError, ms.MqttSession("x").ping)
    assert session.ping() == codec.pingreq()
    assert session.next_wakeup(2000) == 0          # to be stamped
    session.tick(2000)
    assert session.next_wakeup(2000) == 10000
    session.tick(16999)
    assert session.state == "open"
    session.tick(17000)
    assert session.state == "closed" and "PINGRESP" in session.close_reason


def test_receiving_and_needed_tell_a_reader_how_much_the_packet_under_way_lacks():
    session, _ = _open()
    data = codec.publish("t", b"x" * 10)
    assert not session.receiving() and session.needed() == 2
    session.receive(data[:3], 0)
    assert session.receiving() and session.needed() == len(data) - 3
    assert len(session.receive(data[3:], 0)) == 1
    assert not session.receiving()
