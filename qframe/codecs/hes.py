"""Wire formats between the module and the HES (codecs only: no sockets, no threads).

`TCP_SERVER.protocol` picks one: "ack" (FramedProtocol, the default), "raw" (RawProtocol) or
the name of a module in /usr (e.g. "usr.hes_protocol") whose `create(config)` returns an object
with the same methods.

Framed ("ack") frames are `TYPE (1) | LENGTH (2, big endian) | BODY`:

    module -> HES                                 HES -> module
    01 REGISTER   JSON {"dev", "epoch", ...}      81 ACK      SEQ (4): DATA up to SEQ is stored
    02 HEARTBEAT  JSON {"up", "queued", ...}      82 DATA     payload for the meter (hes.data)
    03 DATA       SEQ (4) | meter payload         83 COMMAND  JSON {"id", "cmd", "args"}
    04 RESPONSE   JSON {"id", "ok", "result"}     84 PONG     empty (a heartbeat was heard)
    05 EVENT      JSON {"event", "data"}

SEQ numbers come from the persistent queue and never repeat within an epoch (sent in REGISTER);
a DATA frame may arrive twice after a reconnect and the HES keeps only the first (dedupe on
(dev, epoch, seq)). Acks are cumulative. This gives exactly-once storage at the HES of every
payload the module accepted, as long as the queue did not overflow (overflow is counted).

Raw mode sends meter payloads as-is and hands every received chunk to the meter; a payload counts
as delivered once the socket accepted it (at-least-once, best effort: bytes in flight when the
link breaks are sent again, and bytes the peer never read are lost without notice).
"""
import ujson
import usys

REGISTER = 0x01
HEARTBEAT = 0x02
DATA = 0x03
RESPONSE = 0x04
EVENT = 0x05
ACK = 0x81
DOWN_DATA = 0x82
COMMAND = 0x83
PONG = 0x84
HEADER_SIZE = 3


class ProtocolError(ValueError):
    """The peer sent something this protocol cannot parse: the connection should be reset."""


def frame(kind, body=b""):
    """One framed message."""
    size = len(body)
    if size > 0xFFFF:
        raise ValueError("frame body too long: %d" % size)
    out = bytearray((kind, size >> 8, size & 0xFF))
    out.extend(body)
    return out


def _json(obj):
    return ujson.dumps(obj).encode()


def seq_bytes(seq):
    return bytes(((seq >> 24) & 0xFF, (seq >> 16) & 0xFF, (seq >> 8) & 0xFF, seq & 0xFF))


def seq_from(body):
    return (body[0] << 24) | (body[1] << 16) | (body[2] << 8) | body[3]


class FramedProtocol(object):
    """The default acknowledged protocol (see the module docstring)."""

    acked = True
    name = "ack"

    def __init__(self, config=None, max_frame=8192):
        self.max_frame = (config or {}).get("max_frame", max_frame)
        self._buffer = bytearray()

    def reset(self):
        """Forget partial input (a new connection starts)."""
        self._buffer = bytearray()

    # module -> HES
    def registration(self, info):
        return frame(REGISTER, _json(info))

    def heartbeat(self, info):
        return frame(HEARTBEAT, _json(info))

    def data(self, seq, payload):
        return frame(DATA, seq_bytes(seq) + bytes(payload))

    def response(self, reply):
        return frame(RESPONSE, _json(reply))

    def event(self, name, data):
        return frame(EVENT, _json({"event": name, "data": data}))

    # HES -> module
    def feed(self, chunk):
        """Parse received bytes; return a list of (kind, value) with kind one of
        "ack" (seq), "data" (bytes), "command" (dict), "pong" (None)."""
        self._buffer.extend(chunk)
        events = []
        buffer = self._buffer
        while len(buffer) >= HEADER_SIZE:
            kind = buffer[0]
            size = (buffer[1] << 8) | buffer[2]
            if size > self.max_frame:
                raise ProtocolError("frame of %d bytes is over max_frame %d" % (size,
                                                                                self.max_frame))
            if len(buffer) < HEADER_SIZE + size:
                break
            body = bytes(buffer[HEADER_SIZE:HEADER_SIZE + size])
            buffer = buffer[HEADER_SIZE + size:]
            events.append(self._decode(kind, body))
        self._buffer = buffer
        return events

    def _decode(self, kind, body):
        if kind == ACK and len(body) == 4:
            return ("ack", seq_from(body))
        if kind == DOWN_DATA:
            return ("data", body)
        if kind == PONG:
            return ("pong", None)
        if kind == COMMAND:
            try:
                command = ujson.loads(body)
            except Exception:   # ValueError, non-UTF-8, deep nesting (RecursionError/MemoryError)
                raise ProtocolError("command is not JSON")
            if not isinstance(command, dict):
                raise ProtocolError("command is not a JSON object")
            return ("command", command)
        raise ProtocolError("unknown frame type 0x%02x (%d bytes)" % (kind, len(body)))


class RawProtocol(object):
    """Transparent bytes both ways; optional fixed registration/heartbeat strings from config
    (`raw_register`, `raw_heartbeat`; "{dev}" is replaced by the device id)."""

    acked = False
    name = "raw"

    def __init__(self, config=None):
        config = config or {}
        self.register_text = config.get("raw_register") or ""
        self.heartbeat_text = config.get("raw_heartbeat") or ""

    def reset(self):
        pass

    def _text(self, template, info):
        if not template:
            return b""
        return template.replace("{dev}", str(info.get("dev", ""))).encode()

    def registration(self, info):
        return self._text(self.register_text, info)

    def heartbeat(self, info):
        return self._text(self.heartbeat_text, info)

    def data(self, seq, payload):
        return payload

    def response(self, reply):
        return b""

    def event(self, name, data):
        return b""

    def feed(self, chunk):
        return [("data", bytes(chunk))]


def load(name, config=None):
    """The protocol object for TCP_SERVER.protocol: "ack", "raw" or a module name."""
    if name in ("", "ack"):
        return FramedProtocol(config)
    if name == "raw":
        return RawProtocol(config)
    __import__(name)
    return usys.modules[name].create(config or {})
