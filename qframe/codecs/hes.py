"""Wire formats between the module and the HES (codecs only: no sockets, no threads).

`TCP_SERVER.protocol` picks one: "ack" (FramedProtocol), "raw" (RawProtocol, the default) or
the name of a module in /usr (e.g. "usr.hes_protocol") whose `create(config)` returns a
`Protocol` (the plug-in contract below).

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
    """The peer sent something this protocol cannot frame: the connection should be reset."""


# -- what feed() returns: one small object per thing the peer said ------------------------
class Acked(object):
    """The peer has stored every record up to `seq` (cumulative)."""
    kind = "acked"

    def __init__(self, seq):
        self.seq = seq


class Downlink(object):
    """Bytes for the application (QFrame's recv_callback, bus topic hes.data)."""
    kind = "downlink"

    def __init__(self, data):
        self.data = data


class Command(object):
    """A command request; `body` is its undecoded JSON (qframe/protocols/commands.py decodes
    and checks it, so hostile bodies get an error reply, not an exception)."""
    kind = "command"

    def __init__(self, body):
        self.body = body


class Pong(object):
    """The peer heard a heartbeat."""
    kind = "pong"


class Protocol(object):
    """The HES-protocol plug-in contract: what the uplink session needs from a wire format.

    Encoders return the bytes to send (b"" or None: nothing to send); `feed` decodes what the
    peer sent. A plug-in subclasses this (or FramedProtocol / RawProtocol) and overrides what
    its format has; the defaults send nothing and accept nothing.

      name          short name, reported in REGISTER's "proto" and in logs
      acked         True: the peer confirms records with Acked events (kept on flash until
                    then); False: a record counts as delivered once the transport took it
      reset()       a new connection starts: forget partial input
      registration(info)   first bytes on every connection (info: dev, epoch, meter, ...)
      heartbeat(info)      sent every heartbeat_s
      data(seq, payload)   one queued record; a protocol with `macs = True` also takes
                           data(seq, payload, mac): the record's MAC goes after the payload
      response(reply)      the answer to a Command: a dict from the command registry, or
                           bytes (JSON already, signed: qframe/codecs/cmdauth.seal_json)
      event(name, data)    an unsolicited report (e.g. the app's health)
      feed(chunk)          bytes received -> list of Acked / Downlink / Command / Pong;
                           raises ProtocolError when the stream cannot be framed
    """

    name = "base"
    acked = False
    macs = False        # True: data() takes a record's MAC (cmdauth.record_mac) too

    def __init__(self, config=None):
        self.config = config or {}

    def reset(self):
        pass

    def registration(self, info):
        return b""

    def heartbeat(self, info):
        return b""

    def data(self, seq, payload):
        raise NotImplementedError("%s cannot send records" % self.name)

    def response(self, reply):
        return b""

    def event(self, name, data):
        return b""

    def feed(self, chunk):
        raise NotImplementedError("%s cannot decode input" % self.name)


def frame(kind, body=b""):
    """One framed message."""
    size = len(body)
    if size > 0xFFFF:
        raise ValueError("frame body too long: %d" % size)
    out = bytearray((kind, size >> 8, size & 0xFF))
    out.extend(body)
    return out


def _event(name, data):
    """An event's JSON; data as bytes is the whole event, encoded (and signed) already."""
    if isinstance(data, (bytes, bytearray)):
        return data
    return _json({"event": name, "data": data})


def _json(obj):
    """obj as JSON bytes; bytes or bytearray are JSON encoded already (a signed reply)."""
    if isinstance(obj, (bytes, bytearray)):
        return obj
    return ujson.dumps(obj).encode()


def seq_bytes(seq):
    return bytes(((seq >> 24) & 0xFF, (seq >> 16) & 0xFF, (seq >> 8) & 0xFF, seq & 0xFF))


def seq_from(body):
    return (body[0] << 24) | (body[1] << 16) | (body[2] << 8) | body[3]


class FramedProtocol(Protocol):
    """The acknowledged protocol (see the module docstring)."""

    acked = True
    name = "ack"
    macs = True

    def __init__(self, config=None, max_frame=8192):
        Protocol.__init__(self, config)
        self.max_frame = self.config.get("max_frame", max_frame)
        self._buffer = bytearray()

    def reset(self):
        self._buffer = bytearray()

    # module -> HES
    def registration(self, info):
        return frame(REGISTER, _json(info))

    def heartbeat(self, info):
        return frame(HEARTBEAT, _json(info))

    def data(self, seq, payload, mac=b""):
        size = 4 + len(payload) + len(mac)
        if size > 0xFFFF:
            raise ValueError("frame body too long: %d" % size)
        out = bytearray(HEADER_SIZE + size)         # one allocation: no regrowth per part
        out[0], out[1], out[2] = DATA, size >> 8, size & 0xFF
        out[3], out[4], out[5], out[6] = (seq >> 24) & 0xFF, (seq >> 16) & 0xFF, \
            (seq >> 8) & 0xFF, seq & 0xFF
        end = 7 + len(payload)
        out[7:end] = payload
        out[end:] = mac
        return out

    def response(self, reply):
        return frame(RESPONSE, _json(reply))

    def event(self, name, data):
        return frame(EVENT, _event(name, data))

    # HES -> module
    def feed(self, chunk):
        self._buffer.extend(chunk)
        events = []
        buffer = self._buffer
        start = 0
        end = len(buffer)
        while end - start >= HEADER_SIZE:
            size = (buffer[start + 1] << 8) | buffer[start + 2]
            if size > self.max_frame:
                self._buffer = bytearray()
                raise ProtocolError("frame of %d bytes is over max_frame %d" % (
                    size, self.max_frame))
            if end - start < HEADER_SIZE + size:
                break
            kind = buffer[start]
            body = bytes(buffer[start + HEADER_SIZE:start + HEADER_SIZE + size])
            start += HEADER_SIZE + size
            events.append(self._decode(kind, body))
        if start:
            self._buffer = buffer[start:]
        return events

    def _decode(self, kind, body):
        if kind == ACK and len(body) == 4:
            return Acked(seq_from(body))
        if kind == DOWN_DATA:
            return Downlink(body)
        if kind == PONG:
            return Pong()
        if kind == COMMAND:
            return Command(body)
        self._buffer = bytearray()
        raise ProtocolError("unknown frame type 0x%02x (%d bytes)" % (kind, len(body)))


class RawProtocol(Protocol):
    """Transparent bytes both ways; optional fixed registration/heartbeat texts from config
    (`raw_register`, `raw_heartbeat`; "{dev}" and "{meter}" are replaced by the device id and
    the meter's serial)."""

    acked = False
    name = "raw"

    def __init__(self, config=None):
        Protocol.__init__(self, config)
        self.register_text = self.config.get("raw_register") or ""
        self.heartbeat_text = self.config.get("raw_heartbeat") or ""

    def _text(self, template, info):
        if not template:
            return b""
        text = template.replace("{dev}", str(info.get("dev", "")))
        return text.replace("{meter}", str(info.get("meter", ""))).encode()

    def registration(self, info):
        return self._text(self.register_text, info)

    def heartbeat(self, info):
        return self._text(self.heartbeat_text, info)

    def data(self, seq, payload):
        return payload

    def feed(self, chunk):
        return [Downlink(bytes(chunk))]


BUILT_IN = ("", "ack", "raw")


def protocol_problem(name):
    """None if name can be a HES protocol ("ack", "raw", or an app module `usr.x[.y]` with a
    create(config)), else what is wrong. Only such names are ever imported."""
    if name in BUILT_IN:
        return None
    parts = name.split(".")
    if len(parts) < 2 or parts[0] != "usr" or not all(_identifier(p) for p in parts):
        return "expected \"ack\", \"raw\" or an app module usr.name, got %r" % (name,)
    try:
        __import__(name)
        module = usys.modules[name]
    except Exception as exc:       # missing, or it fails to import: the app could not load it
        return "cannot import %s (%s: %s)" % (name, type(exc).__name__, exc)
    if not hasattr(module, "create"):
        return "module %s has no create(config)" % name
    return None


def _identifier(text):
    if not text or not (text[0].isalpha() or text[0] == "_"):
        return False
    for char in text:
        if not (char.isalpha() or char.isdigit() or char == "_") or ord(char) > 127:
            return False
    return True


def load(name, config=None):
    """The Protocol for TCP_SERVER.protocol: "ack", "raw" or a module name with create(config)
    (ValueError if protocol_problem(name) finds one)."""
    if name in ("", "ack"):
        return FramedProtocol(config)
    if name == "raw":
        return RawProtocol(config)
    problem = protocol_problem(name)
    if problem:
        raise ValueError("protocol: " + problem)
    __import__(name)
    protocol = usys.modules[name].create(config or {})
    if not isinstance(protocol, Protocol):
        raise TypeError("%s.create() must return a usr.qframe.codecs.hes.Protocol, not %s" % (
            name, type(protocol)))
    return protocol
