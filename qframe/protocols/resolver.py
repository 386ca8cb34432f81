"""Handler registry for meter-link frames: one Resolver per app, no shared state.

    resolver = Resolver()

    @resolver.register(meter.PROTO_TRANSPARENT)
    def to_hes(frame): ...                       # returns None: nothing goes back

    @resolver.register(meter.PROTO_PARAMETERS, cmd=meter.CMD_GET, pid=meter.PID_CSQ)
    def csq(frame):
        return meter.get_response(meter.PID_CSQ, bytes((21,)))

    reply = resolver.dispatch(frame)             # None or (protocol, cmd, payload)

dispatch() picks the most specific handler: protocol+cmd+pid, then protocol+cmd, then
protocol (the PID is the payload's first two octets, low first). A handler returns None or a
reply message `(protocol, cmd, payload)` that the caller frames and writes back.
A 0x2200 request (GET, SET, EVENT, ACTION) with no handler, or whose handler raises or returns
something else than a message, is answered with its failure response (GET error response,
SET/ACTION response with ACK 0C, EVENT response with ACK 0C). Everything else unhandled is
logged and counted. No threads here: the caller decides which thread dispatches.

stats: dispatched, handled (handler returned normally), replies, unhandled (no handler),
failure_responses, handler_errors (raised), bad_replies (returned neither None nor a message).
"""
from ..logging import getLogger
from ..codecs import meter

log = getLogger("resolver")

STAT_KINDS = ("dispatched", "handled", "replies", "unhandled", "failure_responses",
              "handler_errors", "bad_replies")


class Resolver(object):
    def __init__(self):
        self._protocols = {}   # protocol -> handler
        self._commands = {}    # protocol -> {cmd: handler}
        self._params = {}      # protocol -> {(cmd << 16) | pid: handler}
        self.stats = {}
        for kind in STAT_KINDS:
            self.stats[kind] = 0

    def register(self, protocol, cmd=None, pid=None):
        """Decorator registering a handler(frame); a second handler for the same key raises
        ValueError."""
        if pid is not None and cmd is None:
            raise ValueError("a PID handler needs its cmd too")

        def decorator(handler):
            self.add(handler, protocol, cmd, pid)
            return handler
        return decorator

    def add(self, handler, protocol, cmd=None, pid=None):
        """Register handler without decorator syntax (same rules as register)."""
        if pid is not None and cmd is None:
            raise ValueError("a PID handler needs its cmd too")
        if not (0 <= protocol <= 0xFFFF and (cmd is None or 0 <= cmd <= 0xFF)
                and (pid is None or 0 <= pid <= 0xFFFF)):
            raise ValueError("cannot register %s: out of range" % _key_text(protocol, cmd, pid))
        if cmd is None:
            table, key = self._protocols, protocol
        elif pid is None:
            table, key = self._commands.setdefault(protocol, {}), cmd
        else:
            table, key = self._params.setdefault(protocol, {}), (cmd << 16) | pid
        if key in table:
            raise ValueError("a handler is already registered for %s"
                             % _key_text(protocol, cmd, pid))
        table[key] = handler

    def handler_for(self, protocol, cmd, payload=b""):
        """The handler dispatch() would call, or None."""
        params = self._params.get(protocol)
        if params is not None and len(payload) >= 2:
            handler = params.get((cmd << 16) | payload[0] | (payload[1] << 8))
            if handler is not None:
                return handler
        commands = self._commands.get(protocol)
        if commands is not None:
            handler = commands.get(cmd)
            if handler is not None:
                return handler
        return self._protocols.get(protocol)

    def dispatch(self, frame):
        """Call the handler for frame (protocol, cmd, payload attributes); return None or the
        reply message (protocol, cmd, payload)."""
        stats = self.stats
        stats["dispatched"] += 1
        protocol = frame.protocol
        handler = None
        if protocol in self._params or protocol in self._commands:
            handler = self.handler_for(protocol, frame.cmd, frame.payload)
        else:
            handler = self._protocols.get(protocol)
        if handler is None:
            return self._unhandled(frame)
        try:
            reply = handler(frame)
        except Exception as exc:
            stats["handler_errors"] += 1
            log.exception("handler for %s failed", exc, _frame_text(frame))
            return self._failure(frame)
        stats["handled"] += 1
        if reply is None:
            return None
        if not _is_message(reply):
            stats["bad_replies"] += 1
            log.error("handler for %s returned %r, not None or (protocol, cmd, payload)",
                      _frame_text(frame), reply)
            return self._failure(frame)
        stats["replies"] += 1
        return reply

    def _unhandled(self, frame):
        self.stats["unhandled"] += 1
        log.warning("no handler for %s", _frame_text(frame))
        return self._failure(frame)

    def _failure(self, frame):
        if frame.protocol != meter.PROTO_PARAMETERS:
            return None
        reply = meter.failure_response(frame.cmd, frame.payload)
        if reply is not None:
            self.stats["failure_responses"] += 1
        return reply


def _is_message(reply):
    return (type(reply) is tuple and len(reply) == 3 and isinstance(reply[0], int)
            and isinstance(reply[1], int) and isinstance(reply[2], (bytes, bytearray)))


def _key_text(protocol, cmd, pid):
    text = "protocol 0x%04x" % protocol
    if cmd is not None:
        text += " cmd 0x%02x" % cmd
    if pid is not None:
        text += " pid 0x%04x" % pid
    return text


def _frame_text(frame):
    pid = meter.pid_of(frame.payload) if frame.protocol == meter.PROTO_PARAMETERS else None
    if frame.cmd == meter.CMD_EVENT_RESPONSE:
        pid = None
    return "%s (%d octets)" % (_key_text(frame.protocol, frame.cmd, pid), len(frame.payload))
