"""An MQTT 3.1.1 client session, sans I/O: bytes in, events and bytes out, time as an input.
No sockets, no clock reads, no locks: the caller owns the socket and the thread.

    s = MqttSession("dev1", keepalive_s=60, clean_session=False, will=(topic, msg, 1, True))
    sock.write(s.connect())                       # state "connecting"
    for event in s.receive(sock.read(), now_ms):  # ConnAck, Publish, PubAck, SubAck, PingResp
        ...                                       # a Publish with qos 1: sock.write(s.puback(pid))
    pid, data = s.publish(topic, payload, qos=1)  # pid None for qos 0; PubAck(pid) confirms it
    pid, data = s.subscribe([("a/#", 1)])         # SubAck(pid, codes)
    data = s.tick(now_ms)                         # PINGREQ when due, else None
    wait_ms = s.next_wakeup(now_ms)               # ms until tick() has work (None: nothing timed)
    s.resend()                                    # after a CONNACK: what is in flight, DUP set
    s.ping()                                      # a PINGREQ now (tick() makes them when due)
    s.disconnect(); s.lost(reason)                # state "closing", then "closed"

State (`state`): "closed" -> connect() -> "connecting" -> a CONNACK accepted -> "open" ->
disconnect() -> "closing"; "closed" again when the CONNACK refuses, when the peer closed
(receive(b"")), on lost(), on a protocol violation (MqttProtocolError is raised) or when the
broker stays silent: no CONNACK within response_ms, or no PINGRESP within keepalive*1.5 of the
PINGREQ. `close_reason` says why (None while nothing went wrong).

Time: now_ms are ticks_ms values. Packets made by connect/publish/subscribe/puback count as
sent at the next receive() or tick(), so next_wakeup() is 0 while such a stamp is pending: a
caller that ticks when next_wakeup says keeps the keepalive exact.

Packet ids 1..65535 wrap and are never reused while in flight (a QoS 1 PUBLISH or a SUBSCRIBE
not yet acknowledged). `inflight` maps pid -> (topic, payload, retain) for QoS 1 publishes;
with clean_session False they survive a reconnect and resend() gives them again with DUP;
with clean_session True connect() forgets them (the broker forgets its side too).

A PUBACK or SUBACK for a pid not in flight is counted (`stats["unknown_acks"]`) and ignored:
a broker may acknowledge a resent message twice across a reconnect. Counters in `stats`.
"""
import utime

from ..codecs import mqtt as codec
from ..codecs.mqtt import MqttError

CLOSED = "closed"
CONNECTING = "connecting"
OPEN = "open"
CLOSING = "closing"
# packets only a server sends, by the state that accepts them
_FROM_SERVER = (codec.CONNACK, codec.PUBLISH, codec.PUBACK, codec.SUBACK, codec.PINGRESP)


class MqttProtocolError(MqttError):
    """The broker sent something MQTT 3.1.1 does not allow here: the connection is over."""


class MqttStateError(MqttError):
    """A call the session's state does not allow (e.g. publish before the CONNACK)."""


class ConnAck(object):
    def __init__(self, return_code, session_present):
        self.return_code = return_code
        self.session_present = session_present

    def __repr__(self):
        return "ConnAck(%d, %r)" % (self.return_code, self.session_present)


class Publish(object):
    """An incoming message (topic str, payload bytes); qos 1: answer with session.puback(pid)."""

    def __init__(self, topic, payload, qos, retain, dup, pid):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.pid = pid

    def __repr__(self):
        return "Publish(%r, %d bytes, qos=%d, retain=%r, dup=%r, pid=%r)" % (
            self.topic, len(self.payload), self.qos, self.retain, self.dup, self.pid)


class PubAck(object):
    def __init__(self, pid):
        self.pid = pid

    def __repr__(self):
        return "PubAck(%d)" % self.pid


class SubAck(object):
    """codes: one per filter, the granted QoS or 0x80 (refused)."""

    def __init__(self, pid, codes):
        self.pid = pid
        self.codes = codes

    def __repr__(self):
        return "SubAck(%d, %r)" % (self.pid, self.codes)


class PingResp(object):
    def __repr__(self):
        return "PingResp()"


class MqttSession(object):
    """One client's MQTT conversation over any byte stream (see the module docstring)."""

    def __init__(self, client_id, keepalive_s=60, clean_session=True, will=None, user=None,
                 password=None, max_packet=65536, response_ms=10000):
        if not 0 <= keepalive_s <= 0xFFFF:
            raise ValueError("keepalive_s %r is not 0..65535" % (keepalive_s,))
        if will is not None and will[2] not in (0, 1):
            raise MqttError("will QoS %r is not supported (0 or 1)" % (will[2],))
        self.client_id = client_id
        self.keepalive_s = keepalive_s
        self.clean_session = clean_session
        self.will = will
        self.user = user
        self.password = password
        self.response_ms = response_ms
        self.state = CLOSED
        self.close_reason = None
        self.inflight = {}          # pid -> (topic, payload, retain): QoS 1, not yet PUBACKed
        self._subscribing = {}      # pid -> number of filters, not yet SUBACKed
        self._last_pid = 0
        self._parser = codec.Parser(max_packet)
        self._unstamped = False     # a packet was made since the last receive/tick
        self._last_sent = None      # ticks_ms
        self._ping_sent = None      # ticks_ms of the PINGREQ not answered yet
        self._connect_sent = None   # ticks_ms of the CONNECT not answered yet
        self._ping_pending = False  # ping() made a PINGREQ not stamped yet
        self.stats = {"connects": 0, "published": 0, "acked": 0, "received": 0,
                      "pings": 0, "resent": 0, "unknown_acks": 0, "protocol_errors": 0}

    # ---------------------------------------------------------------- bytes out
    def connect(self):
        """CONNECT for a new connection (any earlier one is over)."""
        self.state = CONNECTING
        self.close_reason = None
        self._parser.reset()
        self._subscribing = {}
        self._ping_sent = None
        self._ping_pending = False
        self._connect_sent = None
        if self.clean_session:
            self.inflight = {}
        self.stats["connects"] += 1
        self._made()
        self._connect_sent = True       # stamped with the first now_ms seen
        return codec.connect(self.client_id, self.keepalive_s, self.clean_session, self.will,
                             self.user, self.password)

    def publish(self, topic, payload, qos=0, retain=False):
        """(pid, bytes): pid None for QoS 0; a QoS 1 message stays in `inflight` until PUBACK."""
        self._require(OPEN, "publish")
        if qos not in (0, 1):
            raise MqttError("QoS %r is not supported (0 or 1)" % (qos,))
        payload = payload.encode() if isinstance(payload, str) else bytes(payload)
        pid = self._new_pid() if qos else None
        data = codec.publish(topic, payload, qos, retain, pid or 0)
        if qos:
            self.inflight[pid] = (topic, payload, retain)
        self.stats["published"] += 1
        self._made()
        return pid, data

    def subscribe(self, topics_with_qos):
        """(pid, bytes) for [(filter, qos)]; SubAck(pid, codes) answers it."""
        self._require(OPEN, "subscribe")
        topics = list(topics_with_qos)
        if not topics:
            raise MqttError("SUBSCRIBE needs at least one topic filter")
        for topic, qos in topics:
            if not topic or qos not in (0, 1):
                raise MqttError("cannot subscribe to %r with QoS %r" % (topic, qos))
        pid = self._new_pid()
        data = codec.subscribe(pid, topics)
        self._subscribing[pid] = len(topics)
        self._made()
        return pid, data

    def puback(self, pid):
        """PUBACK for an incoming QoS 1 Publish."""
        self._made()
        return codec.puback(pid)

    def ping(self):
        """PINGREQ now (tick() sends one by itself when the keepalive is due)."""
        self._require(OPEN, "ping")
        self.stats["pings"] += 1
        self._made()
        self._ping_pending = True       # the PINGRESP wait starts at the next stamp
        return codec.pingreq()

    def resend(self):
        """The in-flight QoS 1 PUBLISHes again, DUP set, oldest pid order (after a CONNACK)."""
        self._require(OPEN, "resend")
        out = []
        for pid in self._inflight_order():
            topic, payload, retain = self.inflight[pid]
            out.append(codec.publish(topic, payload, 1, retain, pid, dup=True))
        self.stats["resent"] += len(out)
        if out:
            self._made()
        return out

    def disconnect(self):
        """DISCONNECT; the state is "closing" until lost() (the caller closes the socket)."""
        self.state = CLOSING
        return codec.disconnect()

    def lost(self, reason="connection lost"):
        """The transport is gone (closed, reset, timed out): the session is closed. After
        disconnect() this is the expected end: close_reason stays None."""
        if self.state == CLOSING:
            self._close(None)
        elif self.state != CLOSED:
            self._close(reason)

    # ---------------------------------------------------------------- bytes in
    def receive(self, data, now_ms):
        """Events for the bytes that arrived (split or coalesced packets alike). b"": the peer
        closed the connection. Raises MqttProtocolError (state closed) on a violation."""
        self._stamp(now_ms)
        if not data:
            self.lost("connection closed by the broker")
            return []
        if self.state == CLOSED:
            raise MqttStateError("bytes received on a closed session")
        try:
            packets = self._parser.feed(data)
        except MqttError as exc:
            raise self._violation(str(exc))
        events = []
        for packet in packets:
            event = self._event(packet, now_ms)
            if event is not None:
                events.append(event)
        return events

    def needed(self):
        """Octets the packet being received still needs at least (2: none has begun); a
        reader that must not read past a packet boundary reads this many."""
        return self._parser.needed()

    def receiving(self):
        """True while a packet has begun arriving (some of its octets are buffered)."""
        return self._parser.buffered() > 0

    def _event(self, packet, now_ms):
        kind = packet.kind
        if kind not in _FROM_SERVER:
            raise self._violation("the broker sent %s" % codec.NAMES[kind])
        if self.state == CONNECTING:
            if kind != codec.CONNACK:
                raise self._violation("%s before the CONNACK" % codec.NAMES[kind])
            return self._connack(packet)
        if kind == codec.CONNACK:
            raise self._violation("a second CONNACK")
        if kind == codec.PUBLISH:
            if packet.qos and not packet.pid:
                raise self._violation("QoS 1 PUBLISH with packet id 0")
            self.stats["received"] += 1
            return Publish(packet.topic, packet.payload, packet.qos, packet.retain, packet.dup,
                           packet.pid if packet.qos else None)
        if kind == codec.PUBACK:
            if self.inflight.pop(packet.pid, None) is None:
                self.stats["unknown_acks"] += 1
                return None
            self.stats["acked"] += 1
            return PubAck(packet.pid)
        if kind == codec.SUBACK:
            count = self._subscribing.pop(packet.pid, None)
            if count is None:
                self.stats["unknown_acks"] += 1
                return None
            if len(packet.codes) != count:
                raise self._violation("SUBACK %d has %d codes for %d filters"
                                      % (packet.pid, len(packet.codes), count))
            for code in packet.codes:
                if code not in (0, 1, 2, 0x80):
                    raise self._violation("SUBACK return code 0x%x" % code)
            return SubAck(packet.pid, packet.codes)
        self._ping_sent = None      # PINGRESP
        return PingResp()

    def _connack(self, packet):
        self._connect_sent = None
        if packet.rc:
            self._close("connection refused: %s"
                        % codec.CONNACK_ERRORS.get(packet.rc, "return code %d" % packet.rc))
        else:
            self.state = OPEN
        return ConnAck(packet.rc, packet.session_present)

    # ---------------------------------------------------------------- timers
    def tick(self, now_ms):
        """PINGREQ when the keepalive is due, else None. A broker silent too long closes the
        session (state "closed", close_reason set)."""
        self._stamp(now_ms)
        if self.state == CONNECTING:
            if utime.ticks_diff(now_ms, self._connect_sent) >= self.response_ms:
                self._close("no CONNACK within %d ms" % self.response_ms)
            return None
        if self.state != OPEN or not self.keepalive_s:
            return None
        keepalive_ms = self.keepalive_s * 1000
        if self._ping_sent is not None and \
                utime.ticks_diff(now_ms, self._ping_sent) >= keepalive_ms * 3 // 2:
            self._close("no PINGRESP within %d ms" % (keepalive_ms * 3 // 2))
            return None
        if utime.ticks_diff(now_ms, self._last_sent) < keepalive_ms:
            return None
        if self._ping_sent is None:
            self._ping_sent = now_ms
        self._last_sent = now_ms
        self.stats["pings"] += 1
        return codec.pingreq()

    def next_wakeup(self, now_ms):
        """ms until tick() has something to do (0: now), None while nothing is timed."""
        if self._unstamped:
            return 0
        if self.state == CONNECTING:
            return self._left(now_ms, self._connect_sent, self.response_ms)
        if self.state != OPEN or not self.keepalive_s:
            return None
        keepalive_ms = self.keepalive_s * 1000
        wait = self._left(now_ms, self._last_sent, keepalive_ms)
        if self._ping_sent is not None:
            wait = min(wait, self._left(now_ms, self._ping_sent, keepalive_ms * 3 // 2))
        return wait

    # ---------------------------------------------------------------- internals
    @staticmethod
    def _left(now_ms, since, span):
        return max(0, span - utime.ticks_diff(now_ms, since))

    def _made(self):
        self._unstamped = True

    def _stamp(self, now_ms):
        if self._unstamped:
            self._unstamped = False
            self._last_sent = now_ms
            if self._connect_sent is True:
                self._connect_sent = now_ms
            if self._ping_pending:
                self._ping_pending = False
                if self._ping_sent is None:
                    self._ping_sent = now_ms

    def _require(self, state, what):
        if self.state != state:
            raise MqttStateError("%s while the session is %s" % (what, self.state))

    def _new_pid(self):
        busy = len(self.inflight) + len(self._subscribing)
        if busy >= 0xFFFF:
            raise MqttStateError("all 65535 packet ids are in flight")
        pid = self._last_pid
        while True:
            pid = pid % 0xFFFF + 1
            if pid not in self.inflight and pid not in self._subscribing:
                self._last_pid = pid
                return pid

    def _inflight_order(self):
        """In-flight pids oldest first (pids wrap: the ones after the last issued are older)."""
        last = self._last_pid
        return sorted(self.inflight, key=lambda pid: (pid <= last, pid))

    def _violation(self, reason):
        self.stats["protocol_errors"] += 1
        self._close("protocol error: " + reason)
        return MqttProtocolError(reason)

    def _close(self, reason):
        self.state = CLOSED
        if self.close_reason is None:
            self.close_reason = reason
        self._parser.reset()
        self._ping_sent = None
        self._ping_pending = False
        self._connect_sent = None
