"""The uplink session: store-and-forward to the HES as a state machine without I/O.

The session decides what to send and when; a driver (qframe/builtins/link.py's UplinkDriver:
TCP or MQTT) owns the transport, the clock and the threads and does what the session says:

    session = UplinkSession(queue, protocol, config, info=fn, ticks=utime)
    session.open(now_ms)                  # a connection is up: registration goes out first
    for out in session.take():            # Transmit objects, in order
        transport.write(out.data)         # out.kind: register|heartbeat|record|response|event
        session.written(out, now_ms)      # the transport took it (raw mode: record delivered)
    downlink = session.receive(chunk, now_ms)   # bytes from the peer -> payloads for the app
    downlink = session.handle(events, now_ms)   # already decoded events (MQTT: per topic)
    for call in session.take_commands():  # HES commands, as Command(id, request) events:
        reply = registry.execute(call.request)   # the driver runs them (worker pool, no lock)
        session.respond(call.id, reply)   # ... and hands each reply back, in any order
    session.ack(seq, now_ms)              # a transport-level ack (e.g. MQTT PUBACK of record seq)
    session.tick(now_ms)                  # timers: records within the window, heartbeat,
                                          # ack and idle timeouts
    session.state                         # "closed", "open" or "closing" (close_reason says why)
    wait_ms = session.next_wakeup(now_ms) # when tick() has something to do at the latest
    session.close(reason)                 # the connection is gone (unacked records resend)

Records: the queue is anything with `peek(after_seq) -> (seq, payload) or None` (the oldest
record after after_seq; None: from the start) and `ack(seq) -> count` (every record up to seq
leaves it) -- qframe/store/pqueue.py's PersistentQueue is one. `tick` sends the records after
the last one sent on this connection while fewer than `window` are unconfirmed; each goes out
as one Transmit with `seq` set, so a per-message transport (MQTT: one PUBLISH per record) can
map its own acknowledgement back with `ack(seq)`. Confirmed means: an ack from the peer
(`protocol.acked`, cumulative: every record up to seq) or, for a protocol without acks,
`written()`. A new connection starts again at the oldest unconfirmed record (the HES
deduplicates on (dev, epoch, seq)); an ack beyond the last record sent on this connection
confirms only up to that record (counted: `bad_acks`), so a confused peer cannot delete
records it never received.

Commands: the session never runs one. Each COMMAND from the peer becomes a `Command` event with
a session-wide id; the driver runs it wherever it likes (the app's worker pool) and calls
`respond(id, reply)`; the reply is encoded and sent then, so a slow command (a DLMS read of a
silent meter) holds up nothing else. A reply whose connection is gone goes out on the
connection that is open when it arrives; with none open it is dropped and counted
(`replies_dropped`): the HES never got an answer and may ask again.

Proof (`require_proof`, set by the driver when the module holds a command key and the
peer acks records): records go out, and the peer's acks count, only once `prove()` was called
on this connection (the driver calls it when a command signed with the module's key arrived),
so a peer that cannot sign neither reads nor deletes the queue (its acks: `acks_unproven`).

Signed data (`signer`, set by the driver when the module holds a key and the protocol carries
MACs, `protocol.macs`): each record goes out with cmdauth.record_mac over the queue's epoch,
its seq and its payload (`protocol.data(seq, payload, mac)`), each event as bytes already
signed (`signer.seal_event`), and registration and heartbeat say which key signs
(`"data_kid"`).

Timers (config keys of SESSION_FIELDS, seconds, 0 = off): `heartbeat_s` (a heartbeat after this
long), `ack_timeout_s` (records unconfirmed this long without ack progress: close, reconnect
and resend), `idle_timeout_s` (nothing received this long: close). Times are the driver's
`now_ms` values; `ticks` is their arithmetic (ticks_add / ticks_diff: the driver passes utime,
whose counter wraps; the default is plain ints). The session never reads a clock, sleeps,
locks or imports anything of the module's I/O: one thread at a time (a driver with several
threads holds its own lock around every call).
"""
from ..core.config import Field
from ..codecs.hes import ProtocolError, protocol_problem
from ..logging import getLogger

_log = getLogger("uplink")

SESSION_FIELDS = {
    "protocol": Field(str, "raw", check=protocol_problem),
    "window": Field(int, 8, lo=1, hi=256),
    "ack_timeout_s": Field(float, 30.0, lo=0.1, hi=3600),
    "heartbeat_s": Field(float, 60.0, lo=0, hi=86400),
    "idle_timeout_s": Field(float, 0.0, lo=0, hi=86400),
    "max_frame": Field(int, 8192, lo=64, hi=65535),
    "device_id": Field(str, ""),
    "raw_register": Field(str, ""),
    "raw_heartbeat": Field(str, ""),
    "forward_health": Field(bool, False),
    "forward_dlms": Field(bool, True),
}

CLOSED, OPEN, CLOSING = "closed", "open", "closing"


def _setting(config, key):
    value = config.get(key)
    return SESSION_FIELDS[key].default if value is None else value


class PlainTicks(object):
    """ticks arithmetic on plain ints (tests, a clock that does not wrap)."""

    @staticmethod
    def ticks_add(ticks, delta):
        return ticks + delta

    @staticmethod
    def ticks_diff(end, start):
        return end - start


class Transmit(object):
    """Bytes the session wants sent. `kind`: "register", "heartbeat", "record", "response" or
    "event"; `seq`: the queue record a "record" carries (None otherwise); `name`: an event's
    name (a per-message transport may put it in the topic)."""

    def __init__(self, kind, data, seq=None, name=None):
        self.kind = kind
        self.data = data
        self.seq = seq
        self.name = name


class Command(object):
    """A HES command for the driver to run: `id` (the session's, for respond()) and `request`
    (the command as it arrived: JSON bytes for CommandRegistry.execute)."""

    kind = "run"

    def __init__(self, id, request):
        self.id = id
        self.request = request

    def __repr__(self):
        return "Command(%d)" % self.id


class UplinkSession(object):
    """See the module docstring."""

    def __init__(self, queue, protocol, config=None, info=None, stats=None, ticks=None):
        """config: a dict with SESSION_FIELDS keys (missing ones take their defaults);
        info: fn() -> dict added to registration and heartbeat; stats: a dict to count into
        (a driver's own); ticks: the arithmetic of now_ms (utime; default PlainTicks)."""
        config = config or {}
        self.queue = queue
        self.protocol = protocol
        self.ticks = ticks or PlainTicks
        self.window = _setting(config, "window")
        self.ack_timeout_ms = int(_setting(config, "ack_timeout_s") * 1000)
        self.heartbeat_ms = int(_setting(config, "heartbeat_s") * 1000)
        self.idle_timeout_ms = int(_setting(config, "idle_timeout_s") * 1000)
        self._info = info
        self.stats = {} if stats is None else stats
        for key in ("registrations", "heartbeats", "pongs", "sent_records", "acked_records",
                    "bad_acks", "downlink", "commands", "replies", "replies_dropped",
                    "reply_errors", "ack_timeouts", "idle_timeouts",
                    "protocol_errors", "acks_unproven"):
            self.stats[key] = 0
        self.state = CLOSED
        self.close_reason = None
        self.require_proof = False   # records wait for, and acks need, a proven peer
        self.proven = False          # this connection's peer signed a command (prove())
        self.signer = None           # signs records and events (the app's Auth), or None
        self._out = []
        self._calls = []             # Command events not taken yet
        self._running = set()        # ids of the commands handed out and not answered yet
        self._next_call = 0
        self._inflight = []          # seqs sent on this connection, unconfirmed, oldest first
        self._last_sent = None       # queue cursor: the newest seq sent on this connection
        self._ack_wait_since = None  # now_ms: unconfirmed records, no ack progress since
        self._last_rx = 0
        self._next_heartbeat = 0
        self._registration = None    # what the last REGISTER of this connection carried
        self._handlers = {"acked": self._on_acked, "downlink": self._on_downlink,
                          "command": self._on_command, "pong": self._on_pong}

    @property
    def is_open(self):
        """A connection is up (open or closing)."""
        return self.state != CLOSED

    # ------------------------------------------------------------------ inputs
    def open(self, now_ms):
        """A connection is up: start over from the oldest unconfirmed record."""
        self.protocol.reset()
        self.state = OPEN
        self.close_reason = None
        self.proven = False
        self._out = []
        self._inflight = []
        self._last_sent = None
        self._ack_wait_since = None
        self._last_rx = now_ms
        self._next_heartbeat = self.ticks.ticks_add(now_ms, self.heartbeat_ms)
        self._registration = None
        self.register()

    def register(self):
        """Send the registration (again, if the info it carries changed since the last one)."""
        if self.state != OPEN:
            return
        data = self.protocol.registration(self.info())
        if data and data != self._registration:
            self._registration = data
            self._push("register", data)
            self.stats["registrations"] += 1

    def receive(self, data, now_ms):
        """Bytes from the peer; returns the payloads for the application (downlink).
        Commands wait in take_commands()."""
        self._last_rx = now_ms
        try:
            events = self.protocol.feed(data)
        except ProtocolError as exc:
            self.stats["protocol_errors"] += 1
            self._close_for("protocol error: %s" % exc)
            return []
        return self.handle(events, now_ms)

    def handle(self, events, now_ms):
        """Events the driver decoded itself (Acked / Downlink / Command / Pong, e.g. from an
        MQTT topic); returns the payloads for the application."""
        self._last_rx = now_ms
        downlink = []
        for event in events:
            handler = self._handlers.get(getattr(event, "kind", None))
            if handler is None:
                _log.warning("ignored %r from %s", event, self.protocol.name)
                continue
            handler(event, now_ms, downlink)
        return downlink

    def respond(self, command_id, reply):
        """The reply (a dict, CommandRegistry.execute's, or bytes: JSON encoded and signed
        already, qframe/codecs/cmdauth.seal_json) to the Command with command_id: sent on the
        open connection; with none, dropped and counted. False if it was not sent."""
        if command_id not in self._running:
            _log.warning("reply to unknown command %r ignored", command_id)
            return False
        self._running.discard(command_id)
        if self.state != OPEN:
            self.stats["replies_dropped"] += 1
            _log.warning("reply to command %r dropped: not connected", command_id)
            return False
        try:
            data = self.protocol.response(reply)
        except Exception as exc:            # e.g. a result that is not JSON-serialisable
            self.stats["reply_errors"] += 1
            data = self.protocol.response({      # (a signed reply is bytes: never here)
                "id": reply.get("id"), "cmd": reply.get("cmd"), "ok": False,
                "error": "reply not encodable (%s: %s)" % (type(exc).__name__, exc)})
        self.stats["replies"] += 1
        self._push("response", data)
        return True

    def prove(self):
        """The peer of this connection signed a command with the module's key: with
        require_proof, records go out to it and its acks count from now on."""
        if self.state == OPEN:
            self.proven = True

    def ack(self, seq, now_ms):
        """The peer stored every record up to seq (cumulative); how many left the queue."""
        if self._last_sent is None or seq > self._last_sent:
            self.stats["bad_acks"] += 1
            if self._last_sent is None:
                return 0
            seq = self._last_sent       # never confirm what this connection has not sent
        return self._confirm(seq, now_ms)

    def written(self, transmit, now_ms):
        """The transport took transmit; without peer acks its record counts as delivered."""
        if transmit.seq is not None and not self.protocol.acked:
            self._confirm(transmit.seq, now_ms)

    def event(self, name, data):
        """An unsolicited report for the peer (e.g. the app's health), if connected; signed
        (as bytes, the signer's seal_event) when the session has a signer."""
        if self.state == OPEN:
            if self.signer is not None:
                data = self.signer.seal_event(name, data)
            self._push("event", self.protocol.event(name, data), None, name)

    def tick(self, now_ms):
        """Timers and records: close on ack/idle timeout, else a due heartbeat and the records
        that fit in the window."""
        if self.state != OPEN:
            return
        diff = self.ticks.ticks_diff
        if self._ack_wait_since is not None and self.ack_timeout_ms and \
                diff(now_ms, self._ack_wait_since) > self.ack_timeout_ms:
            self.stats["ack_timeouts"] += 1
            self._close_for("no ack within %s s" % (self.ack_timeout_ms / 1000))
            return
        if self.idle_timeout_ms and diff(now_ms, self._last_rx) > self.idle_timeout_ms:
            self.stats["idle_timeouts"] += 1
            self._close_for("nothing received for %s s" % (self.idle_timeout_ms / 1000))
            return
        if self.heartbeat_ms and diff(now_ms, self._next_heartbeat) >= 0:
            self._push("heartbeat", self.protocol.heartbeat(self.info()))
            self.stats["heartbeats"] += 1
            self._next_heartbeat = self.ticks.ticks_add(now_ms, self.heartbeat_ms)
        while len(self._inflight) < self.window and (self.proven or not self.require_proof):
            record = self.queue.peek(self._last_sent)
            if record is None:
                break
            seq, payload = record
            if not self._inflight:
                self._ack_wait_since = now_ms
            self._inflight.append(seq)
            self._last_sent = seq
            if self.signer is None:
                self._push("record", self.protocol.data(seq, payload), seq)
            else:
                self._push("record", self.protocol.data(seq, payload, self.signer.record_mac(
                    self.queue.epoch, seq, payload)), seq)
            self.stats["sent_records"] += 1

    def close(self, reason=None):
        """The connection is gone; what was not confirmed is sent again on the next one.
        Commands still running stay known: their replies go out if a connection is open."""
        if reason and self.close_reason is None:
            self.close_reason = reason
        self.state = CLOSED
        self._out = []
        self._inflight = []
        self._ack_wait_since = None

    # ------------------------------------------------------------------ outputs
    def take(self):
        """The Transmits to send now, in order (the list is handed over)."""
        out, self._out = self._out, []
        return out

    def take_commands(self):
        """The Command events to run, in arrival order (the list is handed over)."""
        calls, self._calls = self._calls, []
        return calls

    def running(self):
        """How many commands were handed out and not answered yet."""
        return len(self._running)

    def next_wakeup(self, now_ms):
        """Milliseconds until tick() has a timer to serve (None: nothing timed is pending)."""
        if self.state != OPEN:
            return None
        diff = self.ticks.ticks_diff
        waits = []
        if self.heartbeat_ms:
            waits.append(diff(self._next_heartbeat, now_ms))
        if self._ack_wait_since is not None and self.ack_timeout_ms:
            waits.append(diff(self._ack_wait_since, now_ms) + self.ack_timeout_ms + 1)
        if self.idle_timeout_ms:
            waits.append(diff(self._last_rx, now_ms) + self.idle_timeout_ms + 1)
        if not waits:
            return None
        return max(0, min(waits))

    def in_flight(self):
        """Seqs sent on this connection and not confirmed yet, oldest first."""
        return list(self._inflight)

    def info(self):
        """What registration and heartbeat carry: the protocol's name plus the driver's info()
        (queue figures among them)."""
        report = {"proto": self.protocol.name}
        if self._info is not None:
            report.update(self._info())
        if self.signer is not None:
            report["data_kid"] = self.signer.data_kid()    # records and events carry MACs
        return report

    # ------------------------------------------------------------------ internals
    def _push(self, kind, data, seq=None, name=None):
        if data:
            self._out.append(Transmit(kind, data, seq, name))

    def _close_for(self, reason):
        if self.close_reason is None:
            self.close_reason = reason
        if self.state == OPEN:
            self.state = CLOSING

    def _confirm(self, seq, now_ms):
        removed = self.queue.ack(seq)
        self.stats["acked_records"] += removed
        inflight = self._inflight
        index = 0
        while index < len(inflight) and inflight[index] <= seq:
            index += 1
        if index:
            del inflight[:index]
            self._ack_wait_since = now_ms if inflight else None
        return removed

    def _on_acked(self, event, now_ms, downlink):
        if self.require_proof and not self.proven:
            self.stats["acks_unproven"] += 1
            return
        self.ack(event.seq, now_ms)

    def _on_downlink(self, event, now_ms, downlink):
        self.stats["downlink"] += 1
        downlink.append(event.data)

    def _on_pong(self, event, now_ms, downlink):
        self.stats["pongs"] += 1

    def _on_command(self, event, now_ms, downlink):
        self.stats["commands"] += 1
        if self.state != OPEN:
            return
        self._next_call = (self._next_call + 1) & 0x3FFFFFFF
        self._running.add(self._next_call)
        self._calls.append(Command(self._next_call, event.body))
