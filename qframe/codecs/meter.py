"""Meter-link messages (docs METER_LINK.md): 0x2100 transparent data and 0x2200 parameters.

A message is a `(protocol, cmd, payload)` tuple: builders return one, `pack()` frames one,
parsers take a payload and return its fields or raise ValueError naming what is wrong.

0x2200 payloads (PID: 16-bit, low octet first; LEN: one octet):
  GET               PID                 GET response   PID LEN VALUE
  GET error         PID 01 ACK          SET            PID LEN VALUE
  SET response      PID 01 ACK          EVENT response 01 ACK
  EVENT, ACTION     PID LEN VALUE       ACTION response PID 01 ACK
The spec fixes GET, GET response, SET, SET response and EVENT response; the GET error payload
follows QuecPython's meter solution (as SET response), and EVENT / ACTION / ACTION response
follow the SET shapes (assumed, confirm with the meter vendor).
A typed VALUE (SET) is `RID(2, high first) TAG DATA` with A-XDR tags; string tags put a length
octet before their bytes, integers are big-endian, date-time is 12 raw octets.
"""
from . import rfc1662, utf8

PROTO_TRANSPARENT = 0x2100
PROTO_PARAMETERS = 0x2200

CMD_TRANSPARENT = 0xBF
CMD_GET = 0xC0
CMD_SET = 0xC1
CMD_EVENT = 0xC2
CMD_ACTION = 0xC3
CMD_GET_RESPONSE = 0xC4
CMD_SET_RESPONSE = 0xC5
CMD_EVENT_RESPONSE = 0xC6
CMD_ACTION_RESPONSE = 0xC7
CMD_GET_ERROR = 0xC8
REQUESTS = (CMD_GET, CMD_SET, CMD_EVENT, CMD_ACTION)

ACK_SUCCESS = 0x00
ACK_FAILURE = 0x0C

TAG_OCTET_STRING = 0x09
TAG_VISIBLE_STRING = 0x0A
TAG_UNSIGNED8 = 0x11
TAG_UNSIGNED16 = 0x12
TAG_UNSIGNED32 = 0x06
TAG_DATE_TIME = 0x19
DATE_TIME_SIZE = 12

PID_MODULE_STATE = 0x8002
PID_CSQ = 0x8003
PID_METER_SERIAL = 0x8005
PID_DEVICE_NAME = 0x8007

PROTOCOL_NAMES = {PROTO_TRANSPARENT: "transparent", PROTO_PARAMETERS: "parameters"}
CMD_NAMES = {CMD_TRANSPARENT: "transparent", CMD_GET: "GET", CMD_SET: "SET", CMD_EVENT: "EVENT",
             CMD_ACTION: "ACTION", CMD_GET_RESPONSE: "GET response",
             CMD_SET_RESPONSE: "SET response", CMD_EVENT_RESPONSE: "EVENT response",
             CMD_ACTION_RESPONSE: "ACTION response", CMD_GET_ERROR: "GET error response"}
TAG_NAMES = {TAG_OCTET_STRING: "octet-string", TAG_VISIBLE_STRING: "visible-string",
             TAG_UNSIGNED8: "unsigned8", TAG_UNSIGNED16: "unsigned16",
             TAG_UNSIGNED32: "unsigned32", TAG_DATE_TIME: "date-time"}
PID_NAMES = {PID_MODULE_STATE: "module state", PID_CSQ: "CSQ", PID_METER_SERIAL: "meter serial",
             PID_DEVICE_NAME: "device name"}
_INT_SIZES = {TAG_UNSIGNED8: 1, TAG_UNSIGNED16: 2, TAG_UNSIGNED32: 4}


def _pid(pid):
    if not 0 <= pid <= 0xFFFF:
        raise ValueError("PID must be 0..0xFFFF, not %r" % (pid,))
    return bytes((pid & 0xFF, pid >> 8))


def _ack(ack):
    if not 0 <= ack <= 0xFF:
        raise ValueError("ACK must be one octet, not %r" % (ack,))
    return bytes((1, ack))


def _value(value):
    if type(value) is not bytes:
        value = bytes(value)
    if len(value) > 255:
        raise ValueError("VALUE of %d octets does not fit its one-octet LEN" % len(value))
    return bytes((len(value),)) + value


def _pid_value(pid, value):
    return _pid(pid) + _value(value)


# -- builders: each returns a (protocol, cmd, payload) message ----------------------------

def transparent(data):
    return (PROTO_TRANSPARENT, CMD_TRANSPARENT, bytes(data))


def get_request(pid):
    return (PROTO_PARAMETERS, CMD_GET, _pid(pid))


def get_response(pid, value):
    return (PROTO_PARAMETERS, CMD_GET_RESPONSE, _pid_value(pid, value))


def get_error(pid, ack=ACK_FAILURE):
    return (PROTO_PARAMETERS, CMD_GET_ERROR, _pid(pid) + _ack(ack))


def set_request(pid, value):
    return (PROTO_PARAMETERS, CMD_SET, _pid_value(pid, value))


def set_typed(pid, rid, tag, value):
    return set_request(pid, typed_value(rid, tag, value))


def set_response(pid, ack=ACK_SUCCESS):
    return (PROTO_PARAMETERS, CMD_SET_RESPONSE, _pid(pid) + _ack(ack))


def event(pid, value):
    return (PROTO_PARAMETERS, CMD_EVENT, _pid_value(pid, value))


def event_response(ack=ACK_SUCCESS):
    return (PROTO_PARAMETERS, CMD_EVENT_RESPONSE, _ack(ack))


def action(pid, value):
    return (PROTO_PARAMETERS, CMD_ACTION, _pid_value(pid, value))


def action_response(pid, ack=ACK_SUCCESS):
    return (PROTO_PARAMETERS, CMD_ACTION_RESPONSE, _pid(pid) + _ack(ack))


def failure_response(cmd, payload):
    """The failure answer to a 0x2200 request (GET, SET, EVENT, ACTION), or None when cmd is
    not a request or the payload has no PID to answer with."""
    if cmd == CMD_EVENT:
        return event_response(ACK_FAILURE)
    if cmd not in REQUESTS or len(payload) < 2:
        return None
    pid = payload[0] | (payload[1] << 8)
    if cmd == CMD_GET:
        return get_error(pid)
    if cmd == CMD_SET:
        return set_response(pid, ACK_FAILURE)
    return action_response(pid, ACK_FAILURE)


def typed_value(rid, tag, value):
    """VALUE of a typed SET: RID (high first), A-XDR tag, data."""
    if not 0 <= rid <= 0xFFFF:
        raise ValueError("RID must be 0..0xFFFF, not %r" % (rid,))
    head = bytes((rid >> 8, rid & 0xFF, tag))
    if tag == TAG_OCTET_STRING or tag == TAG_VISIBLE_STRING:
        if isinstance(value, str):
            value = value.encode()
        return head + _value(value)
    if tag in _INT_SIZES:
        if not 0 <= value < (1 << (8 * _INT_SIZES[tag])):
            raise ValueError("%s value out of range: %r" % (TAG_NAMES[tag], value))
        size = _INT_SIZES[tag]
        return head + bytes([(value >> (8 * (size - 1 - i))) & 0xFF for i in range(size)])
    if tag == TAG_DATE_TIME:
        if len(value) != DATE_TIME_SIZE:
            raise ValueError("date-time must be %d octets, not %d" % (DATE_TIME_SIZE, len(value)))
        return head + bytes(value)
    raise ValueError("unknown A-XDR tag 0x%02x" % tag)


# -- parsers: payload -> fields; ValueError says what is wrong ----------------------------

def _need(payload, size, what, shape):
    if len(payload) != size:
        raise ValueError("%s: payload must be %d octets (%s), got %d"
                         % (what, size, shape, len(payload)))


def _read_pid(payload):
    return payload[0] | (payload[1] << 8)


def _parse_pid_value(payload, what):
    if len(payload) < 3:
        raise ValueError("%s: payload must be PID LEN VALUE, got %d octets" % (what, len(payload)))
    size = payload[2]
    if len(payload) != 3 + size:
        raise ValueError("%s: LEN says %d octets of VALUE, %d follow"
                         % (what, size, len(payload) - 3))
    return _read_pid(payload), bytes(payload[3:])


def _parse_pid_ack(payload, what):
    _need(payload, 4, what, "PID 01 ACK")
    if payload[2] != 1:
        raise ValueError("%s: LEN must be 1, got %d" % (what, payload[2]))
    return _read_pid(payload), payload[3]


def parse_get_request(payload):
    """-> pid"""
    _need(payload, 2, "GET request", "PID")
    return _read_pid(payload)


def parse_get_response(payload):
    """-> (pid, value)"""
    return _parse_pid_value(payload, "GET response")


def parse_get_error(payload):
    """-> (pid, ack)"""
    return _parse_pid_ack(payload, "GET error response")


def parse_set_request(payload):
    """-> (pid, value); parse_typed_value(value) splits a typed VALUE."""
    return _parse_pid_value(payload, "SET request")


def parse_set_response(payload):
    """-> (pid, ack)"""
    return _parse_pid_ack(payload, "SET response")


def parse_event(payload):
    """-> (pid, value)"""
    return _parse_pid_value(payload, "EVENT")


def parse_event_response(payload):
    """-> ack"""
    _need(payload, 2, "EVENT response", "01 ACK")
    if payload[0] != 1:
        raise ValueError("EVENT response: LEN must be 1, got %d" % payload[0])
    return payload[1]


def parse_action(payload):
    """-> (pid, value)"""
    return _parse_pid_value(payload, "ACTION")


def parse_action_response(payload):
    """-> (pid, ack)"""
    return _parse_pid_ack(payload, "ACTION response")


def parse_typed_value(value):
    """-> (rid, tag, data): int for integer tags, bytes for octet-string and date-time,
    str for visible-string."""
    if len(value) < 4:
        raise ValueError("typed value: needs RID TAG DATA, got %d octets" % len(value))
    rid = (value[0] << 8) | value[1]
    tag = value[2]
    data = bytes(value[3:])
    if tag == TAG_OCTET_STRING or tag == TAG_VISIBLE_STRING:
        if data[0] != len(data) - 1:
            raise ValueError("typed value: %s length octet says %d, %d follow"
                             % (TAG_NAMES[tag], data[0], len(data) - 1))
        text = data[1:]
        if tag == TAG_VISIBLE_STRING:
            try:
                return rid, tag, utf8.decode(text)
            except ValueError:
                raise ValueError("typed value: visible-string is not text")
        return rid, tag, text
    if tag in _INT_SIZES:
        if len(data) != _INT_SIZES[tag]:
            raise ValueError("typed value: %s needs %d octets, got %d"
                             % (TAG_NAMES[tag], _INT_SIZES[tag], len(data)))
        number = 0
        for octet in data:
            number = (number << 8) | octet
        return rid, tag, number
    if tag == TAG_DATE_TIME:
        if len(data) != DATE_TIME_SIZE:
            raise ValueError("typed value: date-time needs %d octets, got %d"
                             % (DATE_TIME_SIZE, len(data)))
        return rid, tag, data
    raise ValueError("typed value: unknown A-XDR tag 0x%02x" % tag)


def pid_of(payload):
    """PID at the start of a 0x2200 payload, or None when it is too short."""
    if len(payload) < 2:
        return None
    return _read_pid(payload)


def describe(protocol, cmd, payload):
    """The decoded fields of a message as a dict (for logs and tools/frame.py).

    Keys: kind, and as applicable pid, value (bytes), ack, rid, tag, data.
    Raises ValueError when a 0x2200 payload is malformed.
    """
    fields = {"kind": CMD_NAMES.get(cmd, "unknown")}
    if protocol != PROTO_PARAMETERS:
        return fields
    if cmd == CMD_GET:
        fields["pid"] = parse_get_request(payload)
    elif cmd in (CMD_GET_RESPONSE, CMD_SET, CMD_EVENT, CMD_ACTION):
        parse = {CMD_GET_RESPONSE: parse_get_response, CMD_SET: parse_set_request,
                 CMD_EVENT: parse_event, CMD_ACTION: parse_action}[cmd]
        fields["pid"], fields["value"] = parse(payload)
        if cmd == CMD_SET:
            try:
                fields["rid"], fields["tag"], fields["data"] = parse_typed_value(fields["value"])
            except ValueError:
                pass
    elif cmd in (CMD_GET_ERROR, CMD_SET_RESPONSE, CMD_ACTION_RESPONSE):
        parse = {CMD_GET_ERROR: parse_get_error, CMD_SET_RESPONSE: parse_set_response,
                 CMD_ACTION_RESPONSE: parse_action_response}[cmd]
        fields["pid"], fields["ack"] = parse(payload)
    elif cmd == CMD_EVENT_RESPONSE:
        fields["ack"] = parse_event_response(payload)
    return fields


# -- framing helpers ----------------------------------------------------------------------

def pack(message, dialect=rfc1662.LEGACY, accm=rfc1662.TX_ACCM):
    """Frame a (protocol, cmd, payload) message for the wire."""
    protocol, cmd, payload = message
    return rfc1662.encode(protocol, cmd, payload, dialect, accm)


def tcp_to_meter_packet(data, dialect=rfc1662.LEGACY, accm=rfc1662.TX_ACCM):
    """HES bytes -> a framed 0x2100/BF frame."""
    return pack(transparent(data), dialect, accm)


def module_to_meter_packet(cmd, pid, value=None, dialect=rfc1662.LEGACY, accm=rfc1662.TX_ACCM):
    """A framed 0x2200 request from the module: GET (no value), SET, EVENT or ACTION."""
    if cmd == CMD_GET:
        if value:
            raise ValueError("GET carries no value")
        return pack(get_request(pid), dialect, accm)
    builders = {CMD_SET: set_request, CMD_EVENT: event, CMD_ACTION: action}
    if cmd not in builders:
        raise ValueError("module_to_meter_packet: cmd 0x%02x is not a request" % cmd)
    return pack(builders[cmd](pid, value or b""), dialect, accm)
