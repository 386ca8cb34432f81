"""MQTT 3.1.1 packets as bytes <-> objects (no sockets, no clock), and the uplink's MQTT format.

    data = publish("p/dev/up/meter/7/12", b"...", qos=1, pid=3)     # encoders return bytes
    parser = Parser(max_packet=65536)
    for packet in parser.feed(chunk):   # Packet objects; MqttError when the stream is broken
        packet.kind                     # CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP, ...

Both sides of a connection can be spoken (CONNECT/CONNACK, SUBSCRIBE/SUBACK, ...): the host
shim's `umqtt` client (tools/shim/umqtt.py) and the tests share this codec. QoS 0 and 1 only.

`MqttFormat` is the uplink's payload format over MQTT (a `codecs.hes.Protocol`): records go out
unchanged (their id is in the topic), registration is the retained status JSON, heartbeat,
command replies and events JSON. The topics are `uplink_topics(prefix, device)`:

    <prefix>/<dev>/status                 retained {"state": "online", ...}; last will "offline"
    <prefix>/<dev>/up/meter/<epoch>/<seq> a meter payload; a resend has the same topic
    <prefix>/<dev>/up/event/<name>        heartbeat and module events (health, network, ...)
    <prefix>/<dev>/up/resp                command replies {"id", "cmd", "ok", ...}
    <prefix>/<dev>/down/cmd               commands {"id", "cmd", "args"} (subscribed)
    <prefix>/<dev>/down/meter             bytes for the meter (subscribed)
"""
import ujson

from . import utf8
from .hes import Protocol

CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
SUBSCRIBE = 8
SUBACK = 9
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14
NAMES = {CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK",
         SUBSCRIBE: "SUBSCRIBE", SUBACK: "SUBACK", PINGREQ: "PINGREQ", PINGRESP: "PINGRESP",
         DISCONNECT: "DISCONNECT"}
# fixed-header flags MQTT 3.1.1 requires (PUBLISH carries its own)
_FLAGS = {CONNECT: 0, CONNACK: 0, PUBACK: 0, SUBSCRIBE: 2, SUBACK: 0, PINGREQ: 0,
          PINGRESP: 0, DISCONNECT: 0}
CONNACK_ERRORS = {1: "unacceptable protocol version", 2: "identifier rejected",
                  3: "server unavailable", 4: "bad user name or password",
                  5: "not authorized"}
MAX_LENGTH = 268435455


class MqttError(ValueError):
    """Bytes that are not MQTT 3.1.1 (the connection cannot go on), or a bad argument."""


class Packet(object):
    """One decoded packet. PUBLISH: topic (str), payload (bytes), qos, retain, dup, pid;
    PUBACK/SUBACK/SUBSCRIBE: pid; CONNACK: session_present, rc; SUBACK: codes;
    SUBSCRIBE: topics [(filter, qos)]; CONNECT: client_id, keepalive, clean, will."""

    def __init__(self, kind, flags=0):
        self.kind = kind
        self.flags = flags
        self.pid = 0
        self.topic = None
        self.payload = b""
        self.qos = 0
        self.retain = False
        self.dup = False

    def __repr__(self):
        return "Packet(%s, pid=%d, topic=%r)" % (NAMES.get(self.kind, self.kind), self.pid,
                                                 self.topic)


# ---------------------------------------------------------------- encoding
def _length(size):
    if size > MAX_LENGTH:
        raise MqttError("packet of %d bytes is over MQTT's limit" % size)
    out = bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        out.append(byte | 0x80 if size else byte)
        if not size:
            return out


def _text(value):
    if isinstance(value, str):
        value = value.encode()
    if len(value) > 0xFFFF:
        raise MqttError("string of %d bytes is over 65535" % len(value))
    out = bytearray((len(value) >> 8, len(value) & 0xFF))
    out.extend(value)
    return out


def _pid(pid):
    if not 0 < pid <= 0xFFFF:
        raise MqttError("packet id %r is not 1..65535" % (pid,))
    return bytearray((pid >> 8, pid & 0xFF))


def _packet(first, body):
    out = bytearray((first,))
    out.extend(_length(len(body)))
    out.extend(body)
    return bytes(out)


def check_topic(topic):
    """A topic name a PUBLISH may carry (no wildcards, not empty, no NUL); raises MqttError."""
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        raise MqttError("%r is not a topic name" % (topic,))
    return topic


def connect(client_id, keepalive=0, clean=True, will=None, user=None, password=None):
    """CONNECT; will: (topic, message, qos, retain) or None."""
    flags = 0x02 if clean else 0
    tail = _text(client_id)
    if will is not None:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        tail.extend(_text(check_topic(topic)))
        tail.extend(_text(message))
    if user is not None:
        flags |= 0x80
        tail.extend(_text(user))
    if password is not None:
        flags |= 0x40
        tail.extend(_text(password))
    body = bytearray(_text("MQTT"))
    body.extend(bytes((4, flags, (keepalive >> 8) & 0xFF, keepalive & 0xFF)))
    body.extend(tail)
    return _packet(CONNECT << 4, body)


def connack(rc=0, session_present=False):
    return _packet(CONNACK << 4, bytes((1 if session_present else 0, rc)))


def publish(topic, payload, qos=0, retain=False, pid=0, dup=False):
    if qos not in (0, 1):
        raise MqttError("QoS %r is not supported (0 or 1)" % (qos,))
    body = _text(check_topic(topic))
    if qos:
        body.extend(_pid(pid))
    body.extend(payload)
    first = (PUBLISH << 4) | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    return _packet(first, body)


def puback(pid):
    return _packet(PUBACK << 4, _pid(pid))


def subscribe(pid, topics):
    """SUBSCRIBE for [(filter, qos)]."""
    body = _pid(pid)
    for topic, qos in topics:
        body.extend(_text(topic))
        body.append(qos)
    return _packet((SUBSCRIBE << 4) | 2, body)


def suback(pid, codes):
    body = _pid(pid)
    body.extend(bytes(codes))
    return _packet(SUBACK << 4, body)


def pingreq():
    return b"\xc0\x00"


def pingresp():
    return b"\xd0\x00"


def disconnect():
    return b"\xe0\x00"


# ---------------------------------------------------------------- decoding
class _Reader(object):
    def __init__(self, body, name):
        self.body = body
        self.at = 0
        self.name = name

    def take(self, count):
        if self.at + count > len(self.body):
            raise MqttError("%s is truncated" % self.name)
        out = self.body[self.at:self.at + count]
        self.at += count
        return out

    def u16(self):
        two = self.take(2)
        return (two[0] << 8) | two[1]

    def text(self):
        raw = self.take(self.u16())
        try:
            return utf8.decode(raw)
        except ValueError:
            raise MqttError("%s holds a string that is not UTF-8" % self.name)

    def rest(self):
        out = self.body[self.at:]
        self.at = len(self.body)
        return bytes(out)


class Parser(object):
    """Splits a byte stream into Packets; raises MqttError on bytes that are not MQTT (the
    buffer is dropped: the connection must be closed)."""

    def __init__(self, max_packet=65536):
        self.max_packet = max_packet
        self._buffer = bytearray()

    def reset(self):
        self._buffer = bytearray()

    def feed(self, chunk):
        self._buffer.extend(chunk)
        packets = []
        while True:
            packet = self._next()
            if packet is None:
                return packets
            packets.append(packet)

    def buffered(self):
        """Octets held of a packet not yet whole."""
        return len(self._buffer)

    def needed(self):
        """Octets the packet being received needs at least before it is whole (2 when none
        has begun): a reader that must not read past a packet asks for this many."""
        header = _header(self._buffer)
        if header is None:
            return max(1, 2 - len(self._buffer))
        index, size = header
        return max(1, index + size - len(self._buffer))

    def _next(self):
        buffer = self._buffer
        try:
            header = _header(buffer)
        except MqttError:
            self.reset()
            raise
        if header is None:
            return None
        index, size = header
        if size > self.max_packet:
            self.reset()
            raise MqttError("packet of %d bytes is over max_packet %d" % (size, self.max_packet))
        if len(buffer) < index + size:
            return None
        first = buffer[0]
        body = bytes(buffer[index:index + size])
        self._buffer = buffer[index + size:]
        try:
            return decode(first, body)
        except MqttError:
            self.reset()
            raise


def _header(buffer):
    """(header length, remaining length) of the packet buffer begins with, None while the
    header is incomplete; MqttError for a remaining length over 4 octets."""
    size = 0
    shift = 0
    index = 1
    while True:
        if index >= len(buffer):
            return None
        byte = buffer[index]
        size |= (byte & 0x7F) << shift
        index += 1
        if not byte & 0x80:
            return index, size
        shift += 7
        if index > 4:
            raise MqttError("remaining length longer than 4 bytes")


def decode(first, body):
    """The Packet for a fixed header byte and its body; raises MqttError."""
    kind = first >> 4
    flags = first & 0x0F
    name = NAMES.get(kind)
    if name is None:
        raise MqttError("unsupported packet type %d" % kind)
    if kind != PUBLISH and flags != _FLAGS[kind]:
        raise MqttError("%s with flags 0x%x" % (name, flags))
    packet = Packet(kind, flags)
    reader = _Reader(body, name)
    if kind == PUBLISH:
        packet.qos = (flags >> 1) & 3
        if packet.qos > 1:
            raise MqttError("PUBLISH with QoS %d (only 0 and 1 here)" % packet.qos)
        packet.retain = bool(flags & 1)
        packet.dup = bool(flags & 8)
        packet.topic = reader.text()
        if packet.qos:
            packet.pid = reader.u16()
        packet.payload = reader.rest()
    elif kind in (PUBACK, SUBACK, SUBSCRIBE):
        packet.pid = reader.u16()
        if kind == SUBACK:
            packet.codes = list(reader.rest())
        elif kind == SUBSCRIBE:
            packet.topics = []
            while reader.at < len(body):
                packet.topics.append((reader.text(), reader.take(1)[0]))
    elif kind == CONNACK:
        two = reader.take(2)
        packet.session_present = bool(two[0] & 1)
        packet.rc = two[1]
    elif kind == CONNECT:
        _decode_connect(packet, reader)
    if kind != PUBLISH and kind != SUBSCRIBE and reader.at != len(body):
        raise MqttError("%s with %d bytes too many" % (name, len(body) - reader.at))
    return packet


def _decode_connect(packet, reader):
    if reader.text() != "MQTT" or reader.take(1)[0] != 4:
        raise MqttError("CONNECT is not MQTT 3.1.1")
    flags = reader.take(1)[0]
    packet.keepalive = reader.u16()
    packet.clean = bool(flags & 0x02)
    packet.client_id = reader.text()
    packet.will = None
    if flags & 0x04:
        topic = reader.text()
        packet.will = (topic, bytes(reader.take(reader.u16())), (flags >> 3) & 3,
                       bool(flags & 0x20))
    packet.user = reader.text() if flags & 0x80 else None
    packet.password = bytes(reader.take(reader.u16())) if flags & 0x40 else None


def topic_matches(pattern, topic):
    """True if topic (a name) matches pattern (a filter with + and #)."""
    want = pattern.split("/")
    have = topic.split("/")
    for index in range(len(want)):
        part = want[index]
        if part == "#":
            return True
        if index >= len(have):
            return False
        if part != "+" and part != have[index]:
            return False
    return len(want) == len(have)


# ---------------------------------------------------------------- the uplink's format
def uplink_topics(prefix, device):
    """The uplink's topic names for a device (see the module docstring)."""
    base = "%s/%s/" % (prefix, device)
    return {"status": base + "status", "meter": base + "up/meter/", "event": base + "up/event/",
            "resp": base + "up/resp", "down": base + "down/#", "cmd": base + "down/cmd",
            "downlink": base + "down/meter"}


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


class MqttFormat(Protocol):
    """What the uplink session sends over MQTT: records as they are, status and replies JSON.
    Acked: a record counts as delivered on its PUBACK (the driver calls session.ack)."""

    name = "mqtt"
    acked = True
    macs = True

    def registration(self, info):
        status = {"state": "online"}
        status.update(info)
        return _json(status)

    def heartbeat(self, info):
        return _json(info)

    def data(self, seq, payload, mac=b""):
        return payload + mac if mac else payload

    def response(self, reply):
        return _json(reply)

    def event(self, name, data):
        return _event(name, data)


OFFLINE = b'{"state": "offline"}'
