"""The uplink session: store-and-forward to the HES as a state machine without I/O.

The session decides what to send and when; a driver (TcpClient, later an MQTT client) owns the
transport and the clock and does what the session says:

    session = UplinkSession(queue, protocol, config, commands=app.commands, info=fn)
    session.open(now_ms)                  # a connection is up: registration goes out first
    for out in session.take():            # Transmit objects, in order
        transport.write(out.data)         # out.kind: register|heartbeat|record|response|event
        session.written(out, now_ms)      # the transport took it (raw mode: record delivered)
    downlink = session.receive(chunk, now_ms)   # bytes from the peer -> payloads for the app
    downlink = session.handle(events, now_ms)   # already decoded events (MQTT: per topic)
    session.ack(seq, now_ms)              # a transport-level ack (e.g. MQTT PUBACK of record seq)
    session.tick(now_ms)                  # timers: records within the window, heartbeat,
                                          # ack and idle timeouts
    if session.close_reason: ...          # the session wants the connection dropped (reconnect)
    wait_ms = session.next_wakeup(now_ms) # when tick() has something to do at the latest
    session.close(reason)                 # the connection is gone (unacked records resend)

Records: the queue (qframe/store/pqueue.py) holds every accepted payload until it is confirmed.
`tick` sends the records after the last one sent on this connection while fewer than `window`
are unconfirmed; each goes out as one Transmit with `seq` set, so a per-message transport
(MQTT: one PUBLISH per record) can map its own acknowledgement back with `ack(seq)`. Confirmed
means: an ack from the peer (`protocol.acked`, cumulative: every record up to seq) or, for a
protocol without acks, `written()`. A new connection starts again at the oldest unconfirmed
record (the HES deduplicates on (dev, epoch, seq)); an ack beyond the last record sent on this
connection confirms only up to that record (counted: `bad_acks`), so a confused peer cannot
delete records it never received.

Timers (config keys of SESSION_FIELDS, seconds, 0 = off): `heartbeat_s` (a heartbeat after this
long), `ack_timeout_s` (records unconfirmed this long without ack progress: close, reconnect
and resend), `idle_timeout_s` (nothing received this long: close). Times are ticks_ms values
passed in; the session never reads a clock, sleeps, or locks: one thread at a time (a driver
with two threads holds its own lock around every call).
"""
import utime

from ..core.config import Field, HEAP_BYTES, USR_FLASH_BYTES
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

QUEUE_FIELDS = {
    "queue_path": Field(str, "/usr/queue/uplink"),
    "queue_max_bytes": Field(int, 65536, lo=64, hi=USR_FLASH_BYTES // 2),
    "queue_segment_bytes": Field(int, 4096, lo=64, hi=HEAP_BYTES // 8),   # read whole at open
    "queue_ram_bytes": Field(int, 8192, lo=0, hi=HEAP_BYTES // 8),
    "queue_retry_s": Field(float, 5.0, lo=0, hi=3600),
}


def open_queue(config, name="uplink"):
    """The PersistentQueue described by the queue_* keys of a config section."""
    from ..store.pqueue import PersistentQueue
    return PersistentQueue(config["queue_path"], config["queue_max_bytes"],
                           config["queue_segment_bytes"], config["queue_ram_bytes"],
                           int(config["queue_retry_s"] * 1000), name=name)


def _setting(config, key):
    value = config.get(key)
    return SESSION_FIELDS[key].default if value is None else value


class Transmit(object):
    """Bytes the session wants sent. `kind`: "register", "heartbeat", "record", "response" or
    "event"; `seq`: the queue record a "record" carries (None otherwise); `name`: an event's
    name (a per-message transport may put it in the topic)."""

    def __init__(self, kind, data, seq=None, name=None):
        self.kind = kind
        self.data = data
        self.seq = seq
        self.name = name


class UplinkSession(object):
    """See the module docstring."""

    def __init__(self, queue, protocol, config=None, commands=None, info=None, stats=None):
        """config: a dict with SESSION_FIELDS keys (missing ones take their defaults);
        commands: a CommandRegistry (None: every command is refused); info: fn() -> dict
        added to registration and heartbeat; stats: a dict to count into (a driver's own)."""
        config = config or {}
        self.queue = queue
        self.protocol = protocol
        self.commands = commands
        self.window = _setting(config, "window")
        self.ack_timeout_ms = int(_setting(config, "ack_timeout_s") * 1000)
        self.heartbeat_ms = int(_setting(config, "heartbeat_s") * 1000)
        self.idle_timeout_ms = int(_setting(config, "idle_timeout_s") * 1000)
        self._info = info
        self.stats = {} if stats is None else stats
        for key in ("registrations", "heartbeats", "pongs", "sent_records", "acked_records",
                    "bad_acks", "downlink", "commands", "ack_timeouts", "idle_timeouts",
                    "protocol_errors"):
            self.stats[key] = 0
        self.is_open = False
        self.close_reason = None
        self._out = []
        self._inflight = []          # seqs sent on this connection, unconfirmed, oldest first
        self._last_sent = None       # queue cursor: the newest seq sent on this connection
        self._ack_wait_since = None  # ticks_ms: unconfirmed records, no ack progress since
        self._last_rx = 0
        self._next_heartbeat = 0
        self._registration = None    # what the last REGISTER of this connection carried
        self._handlers = {"acked": self._on_acked, "downlink": self._on_downlink,
                          "command": self._on_command, "pong": self._on_pong}

    # ------------------------------------------------------------------ inputs
    def open(self, now_ms):
        """A connection is up: start over from the oldest unconfirmed record."""
        self.protocol.reset()
        self.is_open = True
        self.close_reason = None
        self._out = []
        self._inflight = []
        self._last_sent = None
        self._ack_wait_since = None
        self._last_rx = now_ms
        self._next_heartbeat = utime.ticks_add(now_ms, self.heartbeat_ms)
        self._registration = None
        self.register()

    def register(self):
        """Send the registration (again, if the info it carries changed since the last one)."""
        if not self.is_open:
            return
        data = self.protocol.registration(self.info())
        if data and data != self._registration:
            self._registration = data
            self._push("register", data)
            self.stats["registrations"] += 1

    def receive(self, data, now_ms):
        """Bytes from the peer; returns the payloads for the application (downlink)."""
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
        """An unsolicited report for the peer (e.g. the app's health), if connected."""
        if self.is_open and self.close_reason is None:
            self._push("event", self.protocol.event(name, data), None, name)

    def tick(self, now_ms):
        """Timers and records: close on ack/idle timeout, else a due heartbeat and the records
        that fit in the window."""
        if not self.is_open or self.close_reason is not None:
            return
        if self._ack_wait_since is not None and self.ack_timeout_ms and \
                utime.ticks_diff(now_ms, self._ack_wait_since) > self.ack_timeout_ms:
            self.stats["ack_timeouts"] += 1
            self._close_for("no ack within %s s" % (self.ack_timeout_ms / 1000))
            return
        if self.idle_timeout_ms and \
                utime.ticks_diff(now_ms, self._last_rx) > self.idle_timeout_ms:
            self.stats["idle_timeouts"] += 1
            self._close_for("nothing received for %s s" % (self.idle_timeout_ms / 1000))
            return
        if self.heartbeat_ms and utime.ticks_diff(now_ms, self._next_heartbeat) >= 0:
            self._push("heartbeat", self.protocol.heartbeat(self.info()))
            self.stats["heartbeats"] += 1
            self._next_heartbeat = utime.ticks_add(now_ms, self.heartbeat_ms)
        while len(self._inflight) < self.window:
            record = self.queue.peek(self._last_sent)
            if record is None:
                break
            seq, payload = record
            if not self._inflight:
                self._ack_wait_since = now_ms
            self._inflight.append(seq)
            self._last_sent = seq
            self._push("record", self.protocol.data(seq, payload), seq)
            self.stats["sent_records"] += 1

    def close(self, reason=None):
        """The connection is gone; what was not confirmed is sent again on the next one."""
        if reason and self.close_reason is None:
            self.close_reason = reason
        self.is_open = False
        self._out = []
        self._inflight = []
        self._ack_wait_since = None

    # ------------------------------------------------------------------ outputs
    def take(self):
        """The Transmits to send now, in order (the list is handed over)."""
        out, self._out = self._out, []
        return out

    def next_wakeup(self, now_ms):
        """Milliseconds until tick() has a timer to serve (None: nothing timed is pending)."""
        if not self.is_open:
            return None
        waits = []
        if self.heartbeat_ms:
            waits.append(utime.ticks_diff(self._next_heartbeat, now_ms))
        if self._ack_wait_since is not None and self.ack_timeout_ms:
            waits.append(utime.ticks_diff(self._ack_wait_since, now_ms) + self.ack_timeout_ms + 1)
        if self.idle_timeout_ms:
            waits.append(utime.ticks_diff(self._last_rx, now_ms) + self.idle_timeout_ms + 1)
        if not waits:
            return None
        return max(0, min(waits))

    def in_flight(self):
        """Seqs sent on this connection and not confirmed yet, oldest first."""
        return list(self._inflight)

    def info(self):
        """What registration and heartbeat carry: queue figures plus the driver's info()."""
        queue = self.queue
        report = {"epoch": queue.epoch, "queued": len(queue), "dropped": queue.stats["dropped"],
                  "proto": self.protocol.name}
        if self._info is not None:
            report.update(self._info())
        return report

    # ------------------------------------------------------------------ internals
    def _push(self, kind, data, seq=None, name=None):
        if data:
            self._out.append(Transmit(kind, data, seq, name))

    def _close_for(self, reason):
        if self.close_reason is None:
            self.close_reason = reason

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
        self.ack(event.seq, now_ms)

    def _on_downlink(self, event, now_ms, downlink):
        self.stats["downlink"] += 1
        downlink.append(event.data)

    def _on_pong(self, event, now_ms, downlink):
        self.stats["pongs"] += 1

    def _on_command(self, event, now_ms, downlink):
        self.stats["commands"] += 1
        if self.commands is None:
            reply = {"id": None, "cmd": None, "ok": False, "error": "no commands here"}
        else:
            reply = self.commands.execute(event.body)
        try:
            data = self.protocol.response(reply)
        except Exception as exc:            # e.g. a result that is not JSON-serialisable
            error = "reply not encodable (%s: %s)" % (type(exc).__name__, exc)
            if self.commands is not None:
                reply = self.commands.failed(reply, error)
            data = self.protocol.response(reply)
        self._push("response", data)
