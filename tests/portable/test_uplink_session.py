"""The uplink session (qframe/protocols/uplink.py) without a socket: the test is the transport
and the clock. Window, cumulative ack, resend after reconnect, heartbeat, idle and ack timeouts,
raw mode, hostile commands, commands as events answered in any order, explicit state and a
per-record transport ack (as an MQTT driver would use)."""
import ujson

from checks import fresh_folder
from usr.qframe.codecs import hes
from usr.qframe.codecs.hes import FramedProtocol, RawProtocol, frame, seq_bytes
from usr.qframe.protocols.commands import CommandRegistry
from usr.qframe.protocols.uplink import UplinkSession
from usr.qframe.store.pqueue import PersistentQueue

_ROOT = "/usr/test_uplink"


def _queue(name):
    return PersistentQueue(fresh_folder(_ROOT, name), 1 << 16, 1024, 1024, 10)


def _session(name, count=0, protocol=None, **config):
    queue = _queue(name)
    for index in range(count):
        queue.put(b"p%03d" % index)
    settings = {"window": 4, "ack_timeout_s": 2.0, "heartbeat_s": 0, "idle_timeout_s": 0}
    settings.update(config)
    session = UplinkSession(queue, protocol or FramedProtocol(), settings,
                            lambda: {"dev": "d1", "queued": len(queue)})
    session.registry = CommandRegistry()       # what a driver runs the commands with
    return session


def _run_commands(session):
    """What a driver does with the commands: run each (here at once), hand the reply back."""
    calls = session.take_commands()
    for call in calls:
        session.respond(call.id, session.registry.execute(call.request))
    return calls


def _records(outgoing):
    return [o.seq for o in outgoing if o.kind == "record"]


def _ack(seq):
    return bytes(frame(hes.ACK, seq_bytes(seq)))


def _written(session, outgoing, now):
    for out in outgoing:
        session.written(out, now)


def test_open_sends_registration_then_records_within_the_window():
    s = _session("window", 10)
    s.open(1000)
    out = s.take()
    assert out[0].kind == "register"
    info = ujson.loads(bytes(out[0].data[3:]))
    assert info["dev"] == "d1" and info["proto"] == "ack" and info["queued"] == 10
    assert len(out) == 1                       # records wait for tick()
    s.tick(1000)
    sent = s.take()
    assert _records(sent) == [1, 2, 3, 4]      # window 4
    assert bytes(sent[0].data) == bytes(frame(hes.DATA, seq_bytes(1) + b"p000"))
    s.tick(1001)
    assert s.take() == []                      # window full: nothing more until acks
    assert s.in_flight() == [1, 2, 3, 4]


def test_cumulative_ack_frees_the_window_and_the_queue():
    s = _session("cumack", 10)
    s.open(0)
    s.take()
    s.tick(0)
    s.take()
    assert s.receive(_ack(3), 10) == []        # records 1..3 stored at the HES
    assert len(s.queue) == 7 and s.in_flight() == [4]
    assert s.stats["acked_records"] == 3
    s.tick(10)
    assert _records(s.take()) == [5, 6, 7]
    s.receive(_ack(7), 20)
    assert len(s.queue) == 3 and s.in_flight() == []


def test_ack_beyond_what_was_sent_cannot_delete_unsent_records():
    s = _session("badack", 10)
    s.open(0)
    s.tick(0)
    s.take()
    s.receive(_ack(1000), 5)
    assert len(s.queue) == 6                   # only the 4 sent records are confirmed
    assert s.stats["bad_acks"] == 1
    fresh = _session("badack2", 3)
    fresh.open(0)
    fresh.receive(_ack(2), 1)                  # nothing sent yet on this connection
    assert len(fresh.queue) == 3 and fresh.stats["bad_acks"] == 1


def test_unacked_records_are_resent_after_reconnect():
    s = _session("resend", 6)
    s.open(0)
    s.tick(0)
    assert _records(s.take()) == [1, 2, 3, 4]
    s.receive(_ack(2), 1)
    s.close("reset by peer")
    assert s.in_flight() == []
    s.open(100)
    out = s.take()
    assert [o.kind for o in out] == ["register"]
    s.tick(100)
    assert _records(s.take()) == [3, 4, 5, 6]  # the oldest unconfirmed first, none lost
    assert s.close_reason is None


def test_heartbeat_follows_the_configured_period():
    s = _session("beat", 0, heartbeat_s=1.0)
    s.open(0)
    s.take()
    s.tick(999)
    assert s.take() == []
    assert s.next_wakeup(999) == 1
    s.tick(1000)
    beat = s.take()
    assert [o.kind for o in beat] == ["heartbeat"] and beat[0].data[0] == hes.HEARTBEAT
    s.tick(1500)
    assert s.take() == []
    s.tick(2000)
    assert [o.kind for o in s.take()] == ["heartbeat"]
    s.receive(bytes(frame(hes.PONG)), 2010)
    assert s.stats["heartbeats"] == 2 and s.stats["pongs"] == 1


def test_idle_timeout_closes_a_silent_link_and_traffic_keeps_it_open():
    s = _session("idle", 0, idle_timeout_s=0.5)
    s.open(0)
    s.tick(400)
    s.receive(bytes(frame(hes.PONG)), 400)     # anything heard resets the clock
    s.tick(800)
    assert s.close_reason is None
    s.tick(901)
    assert s.close_reason is not None and "nothing received" in s.close_reason
    assert s.stats["idle_timeouts"] == 1
    s.tick(2000)
    assert s.stats["idle_timeouts"] == 1       # counted once per connection


def test_ack_timeout_counts_from_the_last_ack_progress():
    s = _session("acktime", 8, ack_timeout_s=1.0)
    s.open(0)
    s.tick(0)
    s.take()
    s.tick(900)
    s.receive(_ack(2), 900)                    # progress: the clock restarts
    s.tick(1800)
    assert s.close_reason is None
    assert s.next_wakeup(1800) == 101
    s.tick(1901)
    assert s.close_reason == "no ack within 1.0 s" and s.stats["ack_timeouts"] == 1
    assert len(s.queue) == 6                   # unconfirmed records stay queued
    idle = _session("acktime2", 0, ack_timeout_s=1.0)
    idle.open(0)
    idle.tick(5000)
    assert idle.close_reason is None           # nothing in flight: nothing to time out


def test_timers_survive_the_tick_counter_wrapping():
    import utime
    start = utime.ticks_add(0, -300)           # 300 ms before ticks_ms wraps to 0
    s = _session("wrap", 2, ack_timeout_s=0.5)
    s.ticks = utime                            # the driver's arithmetic (a wrapping counter)
    s.open(start)
    s.tick(start)
    s.take()
    s.tick(100)                                # 400 ms later, after the wrap
    assert s.close_reason is None
    s.tick(201)
    assert s.close_reason is not None


def test_raw_mode_confirms_a_record_once_written():
    s = _session("raw", 5, protocol=RawProtocol({"raw_register": "HELLO {dev}"}))
    s.open(0)
    assert [bytes(o.data) for o in s.take()] == [b"HELLO d1"]
    s.tick(0)
    out = s.take()
    assert [bytes(o.data) for o in out] == [b"p000", b"p001", b"p002", b"p003"]
    _written(s, out[:2], 1)                    # the transport took two, then broke
    assert len(s.queue) == 3
    s.close("send failed")
    s.open(2)
    s.take()
    s.tick(2)
    assert [bytes(o.data) for o in s.take()] == [b"p002", b"p003", b"p004"]
    assert s.receive(b"\x01down", 3) == [b"\x01down"]


def test_per_record_transport_acks_fit_an_mqtt_style_driver():
    # an MQTT driver publishes each record on its own and maps PUBACK back to the record's seq
    s = _session("mqtt", 3)
    s.open(0)
    s.take()
    s.tick(0)
    published = s.take()
    assert [(o.kind, o.seq) for o in published] == [("record", 1), ("record", 2), ("record", 3)]
    assert s.ack(1, 5) == 1 and s.ack(2, 6) == 1
    assert s.in_flight() == [3] and len(s.queue) == 1


def test_commands_are_answered_and_hostile_ones_refused():
    s = _session("cmds", 0)
    s.open(0)
    s.take()
    bodies = [b'{"id": 1, "cmd": "ping"}', b'{"cmd": {}}', b'{"cmd": []}', b'{"id": 2}',
              b"[" * 1000 + b"]" * 1000, b'{"id": ' + b"9" * 400 + b', "cmd": "ping"}',
              b'{"id": 3, "cmd": "\xff\xfe"}', b"\xc3\x28", b'{"id": 4, "cmd": "nope"}']
    stream = b"".join(bytes(frame(hes.COMMAND, body)) for body in bodies)
    s.receive(stream, 1)
    assert s.take() == []                      # nothing runs inside the session
    assert len(_run_commands(s)) == 9
    replies = [ujson.loads(bytes(o.data[3:])) for o in s.take()]
    assert [o["ok"] for o in replies] == [True] + [False] * 8
    assert replies[0] == {"id": 1, "cmd": "ping", "ok": True, "result": "pong"}
    assert all(r.get("error") for r in replies[1:])
    assert replies[8]["error"] == "unknown command" and replies[8]["id"] == 4
    assert s.close_reason is None              # the link stays up
    assert s.registry.stats["rejected"] == 7 and s.registry.stats["unknown"] == 1


def test_a_reply_that_cannot_be_encoded_becomes_an_error_reply():
    s = _session("cmdenc", 0)
    s.registry.register("bad", lambda args: object())
    s.open(0)
    s.take()
    s.receive(bytes(frame(hes.COMMAND, b'{"id": 9, "cmd": "bad"}')), 1)
    _run_commands(s)
    reply = ujson.loads(bytes(s.take()[0].data[3:]))
    assert reply["id"] == 9 and reply["ok"] is False and "not JSON" in reply["error"]
    assert s.registry.stats["failed"] == 1 and s.registry.stats["ok"] == 0



def test_framing_error_asks_for_a_reset_and_counts_it():
    s = _session("framing", 0)
    s.open(0)
    s.receive(b"\x55\x00\x00", 1)
    assert s.close_reason.startswith("protocol error") and s.stats["protocol_errors"] == 1
    s.close()
    s.open(2)
    assert s.close_reason is None              # a new connection starts clean


def test_registration_is_sent_again_only_when_its_content_changes():
    meter = {"serial": ""}
    queue = _queue("rereg")
    proto = RawProtocol({"raw_register": "HELLO {meter}"})
    s = UplinkSession(queue, proto, {}, lambda: {"meter": meter["serial"]})
    s.open(0)
    assert [bytes(o.data) for o in s.take()] == [b"HELLO "]
    s.register()
    assert s.take() == []
    meter["serial"] = "MTR7"
    s.register()
    assert [bytes(o.data) for o in s.take()] == [b"HELLO MTR7"]


def test_commands_come_out_as_events_and_replies_go_back_in_any_order():
    s = _session("anyorder", 3)
    s.open(0)
    s.take()
    s.receive(bytes(frame(hes.COMMAND, b'{"id": "slow", "cmd": "dlms.read"}')) +
              bytes(frame(hes.COMMAND, b'{"id": "fast", "cmd": "ping"}')), 1)
    slow, fast = s.take_commands()
    assert s.take_commands() == [] and s.running() == 2
    s.tick(2)                                  # the slow one runs: records still go out
    assert _records(s.take()) == [1, 2, 3]
    s.receive(_ack(3), 3)
    assert len(s.queue) == 0                   # ... and are acked
    assert s.respond(fast.id, {"id": "fast", "cmd": "ping", "ok": True, "result": "pong"})
    assert s.respond(slow.id, {"id": "slow", "cmd": "dlms.read", "ok": True, "result": 7})
    replies = [ujson.loads(bytes(o.data[3:]))["id"] for o in s.take()]
    assert replies == ["fast", "slow"] and s.running() == 0
    assert not s.respond(slow.id, {"id": "slow"})          # answered once only


def test_a_reply_after_the_connection_dropped_goes_out_on_the_next_or_is_counted():
    s = _session("late", 0)
    s.open(0)
    s.take()
    s.receive(bytes(frame(hes.COMMAND, b'{"id": 1, "cmd": "a"}')) +
              bytes(frame(hes.COMMAND, b'{"id": 2, "cmd": "b"}')), 1)
    first, second = s.take_commands()
    s.close("connection lost")
    assert not s.respond(first.id, {"id": 1, "cmd": "a", "ok": True, "result": 1})
    assert s.stats["replies_dropped"] == 1     # no connection: dropped, counted
    s.open(10)
    s.take()
    assert s.respond(second.id, {"id": 2, "cmd": "b", "ok": True, "result": 2})
    assert [ujson.loads(bytes(o.data[3:]))["id"] for o in s.take()] == [2]


def test_state_is_explicit_closed_open_closing():
    s = _session("state", 0)
    assert s.state == "closed"
    s.open(0)
    assert s.state == "open"
    s.receive(b"\x55\x00\x00", 1)              # framing error: the session wants out
    assert s.state == "closing" and s.close_reason.startswith("protocol error")
    s.event("x", {})
    s.tick(2)
    assert [o.kind for o in s.take()] == ["register"]      # nothing new while closing
    s.close()
    assert s.state == "closed"
