"""xDLMS services with logical-name referencing (IEC 62056-5-3): GET (normal, next, with
list), SET normal, ACTION normal, their responses, exception and confirmed-service-error
responses. Both directions (client requests, server responses). No I/O.

Values travel as A-XDR octets (see axdr). Requests: get(...), get_next(...), get_list(...),
set_(...), action(...); parse_request(data) -> Request. Responses: get_response(...),
get_block(...), get_list_response(...), set_response(...), action_response(...),
exception(...); parse_response(data) -> Response (octets after a complete response are
tolerated and counted in Response.trailing, as real meters send them). XdlmsError for
malformed APDUs;
DataAccessError / ServiceError name a refusal.
"""
from . import axdr

GET_REQUEST = 0xC0
SET_REQUEST = 0xC1
ACTION_REQUEST = 0xC3
GET_RESPONSE = 0xC4
SET_RESPONSE = 0xC5
ACTION_RESPONSE = 0xC7
EXCEPTION_RESPONSE = 0xD8
CONFIRMED_SERVICE_ERROR = 0x0E
NORMAL = 1
NEXT = 2
WITH_LIST = 3
INVOKE = 0xC1               # invoke-id 1, confirmed, high priority

DATA_ACCESS_RESULTS = {0: "success", 1: "hardware-fault", 2: "temporary-failure",
                       3: "read-write-denied", 4: "object-undefined",
                       9: "object-class-inconsistent", 11: "object-unavailable",
                       12: "type-unmatched", 13: "scope-of-access-violated",
                       14: "data-block-unavailable", 15: "long-get-aborted",
                       16: "no-long-get-in-progress", 17: "long-set-aborted",
                       18: "no-long-set-in-progress", 19: "data-block-number-invalid",
                       250: "other-reason"}
ACTION_RESULTS = {0: "success", 1: "hardware-fault", 2: "temporary-failure",
                  3: "read-write-denied", 4: "object-undefined", 9: "object-class-inconsistent",
                  11: "object-unavailable", 12: "type-unmatched", 13: "scope-of-access-violated",
                  14: "data-block-unavailable", 15: "long-action-aborted",
                  16: "no-long-action-in-progress", 250: "other-reason"}
STATE_ERRORS = {1: "service-not-allowed", 2: "service-unknown"}
SERVICE_ERRORS = {1: "operation-not-possible", 2: "service-not-supported", 3: "other-reason",
                  4: "pdu-too-long", 5: "deciphering-error", 6: "invocation-counter-error"}


class XdlmsError(ValueError):
    """A malformed xDLMS APDU."""


class DataAccessError(Exception):
    """The meter refused one attribute: .code, .name."""

    def __init__(self, code, names=DATA_ACCESS_RESULTS):
        self.code = code
        self.name = names.get(code, "result-%d" % code)
        super().__init__(self.name)


class ServiceError(Exception):
    """An exception response or confirmed-service-error: the request was not served."""


def _u16(v):
    return bytes(((v >> 8) & 0xFF, v & 0xFF))


def _u32(v):
    return bytes(((v >> 24) & 0xFF, (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF))


def _descriptor(cls, obis, attr):
    if len(obis) != 6:
        raise XdlmsError("OBIS code of %d octets" % len(obis))
    return _u16(cls) + bytes(obis) + bytes((attr & 0xFF,))


def _access(access):
    """access: None, or (selector, parameters as A-XDR octets)."""
    if access is None:
        return b"\x00"
    return b"\x01" + bytes((access[0],)) + access[1]


# --- client requests -------------------------------------------------------------------------

def get(cls, obis, attr, access=None, invoke=INVOKE):
    return bytes((GET_REQUEST, NORMAL, invoke)) + _descriptor(cls, obis, attr) + _access(access)


def get_next(block, invoke=INVOKE):
    return bytes((GET_REQUEST, NEXT, invoke)) + _u32(block)


def get_list(items, invoke=INVOKE):
    """items: [(cls, obis, attr)] or [(cls, obis, attr, access)]."""
    parts = [bytes((GET_REQUEST, WITH_LIST, invoke)), axdr.encode_length(len(items))]
    for item in items:
        parts.append(_descriptor(item[0], item[1], item[2]))
        parts.append(_access(item[3] if len(item) > 3 else None))
    return b"".join(parts)


def set_(cls, obis, attr, value, invoke=INVOKE):
    """value: A-XDR octets."""
    return bytes((SET_REQUEST, NORMAL, invoke)) + _descriptor(cls, obis, attr) + b"\x00" + value


def action(cls, obis, method, params=None, invoke=INVOKE):
    """params: A-XDR octets or None."""
    head = bytes((ACTION_REQUEST, NORMAL, invoke)) + _descriptor(cls, obis, method)
    return head + (b"\x00" if params is None else b"\x01" + params)


# --- parsing ---------------------------------------------------------------------------------

class Request(object):
    """A parsed request: service ('get', 'get-next', 'get-list', 'set', 'action'), invoke,
    items [(cls, obis, attr_or_method, access)] with access None or (selector, value),
    block (get-next), value (set/action parameters, decoded)."""

    def __init__(self, service, invoke):
        self.service = service
        self.invoke = invoke
        self.items = []
        self.block = None
        self.value = None


def _need(data, pos, n):
    if pos + n > len(data):
        raise XdlmsError("APDU ends early (%d octets, needs %d)" % (len(data), pos + n))


def _take_descriptor(data, pos):
    _need(data, pos, 9)
    cls = (data[pos] << 8) | data[pos + 1]
    obis = bytes(data[pos + 2:pos + 8])
    attr = data[pos + 8]
    if attr > 127:
        attr -= 256
    return cls, obis, attr, pos + 9


def _take_access(data, pos):
    _need(data, pos, 1)
    if data[pos] == 0:
        return None, pos + 1
    _need(data, pos, 2)
    selector = data[pos + 1]
    try:
        value, pos = axdr.decode_at(data, pos + 2)
    except axdr.AxdrError as exc:
        raise XdlmsError("selective access: %s" % exc)
    return (selector, value), pos


def parse_request(data):
    _need(data, 0, 3)
    tag, kind, invoke = data[0], data[1], data[2]
    pos = 3
    if tag == GET_REQUEST and kind == NORMAL:
        req = Request("get", invoke)
        cls, obis, attr, pos = _take_descriptor(data, pos)
        access, pos = _take_access(data, pos)
        req.items.append((cls, obis, attr, access))
    elif tag == GET_REQUEST and kind == NEXT:
        req = Request("get-next", invoke)
        _need(data, pos, 4)
        req.block = (data[3] << 24) | (data[4] << 16) | (data[5] << 8) | data[6]
        pos += 4
    elif tag == GET_REQUEST and kind == WITH_LIST:
        req = Request("get-list", invoke)
        count, pos = _count(data, pos, 10)
        for _ in range(count):
            cls, obis, attr, pos = _take_descriptor(data, pos)
            access, pos = _take_access(data, pos)
            req.items.append((cls, obis, attr, access))
    elif tag == SET_REQUEST and kind == NORMAL:
        req = Request("set", invoke)
        cls, obis, attr, pos = _take_descriptor(data, pos)
        access, pos = _take_access(data, pos)
        req.items.append((cls, obis, attr, access))
        req.value, pos = _data(data, pos)
    elif tag == ACTION_REQUEST and kind == NORMAL:
        req = Request("action", invoke)
        cls, obis, method, pos = _take_descriptor(data, pos)
        req.items.append((cls, obis, method, None))
        _need(data, pos, 1)
        if data[pos]:
            req.value, pos = _data(data, pos + 1)
        else:
            pos += 1
    else:
        raise XdlmsError("unsupported request %02x %02x" % (tag, kind))
    if pos != len(data):
        raise XdlmsError("%d octets after the request" % (len(data) - pos))
    return req


def _count(data, pos, least):
    """(count, next position) of a list whose items take at least `least` octets each."""
    try:
        count, pos = axdr.length(data, pos)
    except axdr.AxdrError as exc:
        raise XdlmsError(str(exc))
    if count * least > len(data) - pos:
        raise XdlmsError("list of %d items in %d octets" % (count, len(data) - pos))
    return count, pos


def _data(data, pos):
    try:
        return axdr.decode_at(data, pos)
    except axdr.AxdrError as exc:
        raise XdlmsError("data: %s" % exc)


def _data_end(data, pos):
    """Position after the Data at pos (validates it)."""
    return _data(data, pos)[1]


class Response(object):
    """A parsed response: service ('get', 'get-block', 'get-list', 'set', 'action'), invoke;
    get: data (A-XDR octets) or error (DataAccessError); get-block: last, block, raw (the
    block's octets) or error; get-list: items [(data octets or None, error or None)];
    set: error or None; action: error or None, data (return parameters or None)."""

    def __init__(self, service, invoke):
        self.service = service
        self.invoke = invoke
        self.data = None
        self.error = None
        self.last = True
        self.block = None
        self.raw = None
        self.items = None
        self.trailing = 0           # octets after a complete response (tolerated, counted)


def _dar(code, names=DATA_ACCESS_RESULTS):
    return None if code == 0 else DataAccessError(code, names)


def parse_response(data):
    """Response, or ServiceError for an exception / confirmed-service-error response."""
    _need(data, 0, 1)
    tag = data[0]
    if tag == EXCEPTION_RESPONSE:
        _need(data, 0, 3)
        raise ServiceError("exception response: %s, %s" % (
            STATE_ERRORS.get(data[1], "state-error %d" % data[1]),
            SERVICE_ERRORS.get(data[2], "service-error %d" % data[2])))
    if tag == CONFIRMED_SERVICE_ERROR:
        raise ServiceError("confirmed service error: %s" % "".join("%02x" % b for b in data[1:]))
    _need(data, 0, 4)
    kind, invoke = data[1], data[2]
    pos = 3
    if tag == GET_RESPONSE and kind == NORMAL:
        resp = Response("get", invoke)
        if data[pos] == 0:
            end = _data_end(data, pos + 1)
            resp.data = data[pos + 1:end]
            pos = end
        else:
            _need(data, pos, 2)
            resp.error = DataAccessError(data[pos + 1])
            pos += 2
    elif tag == GET_RESPONSE and kind == NEXT:
        resp = Response("get-block", invoke)
        _need(data, pos, 6)
        resp.last = data[pos] != 0
        resp.block = (data[pos + 1] << 24) | (data[pos + 2] << 16) | (data[pos + 3] << 8) | data[pos + 4]
        pos += 5
        if data[pos] == 0:
            try:
                n, pos = axdr.length(data, pos + 1)
            except axdr.AxdrError as exc:
                raise XdlmsError("raw-data: %s" % exc)
            _need(data, pos, n)
            resp.raw = data[pos:pos + n]
            pos += n
        else:
            _need(data, pos, 2)
            resp.error = DataAccessError(data[pos + 1])
            pos += 2
    elif tag == GET_RESPONSE and kind == WITH_LIST:
        resp = Response("get-list", invoke)
        count, pos = _count(data, pos, 2)
        resp.items = []
        for _ in range(count):
            _need(data, pos, 2)
            if data[pos] == 0:
                end = _data_end(data, pos + 1)
                resp.items.append((data[pos + 1:end], None))
                pos = end
            else:
                resp.items.append((None, DataAccessError(data[pos + 1])))
                pos += 2
    elif tag == SET_RESPONSE and kind == NORMAL:
        resp = Response("set", invoke)
        resp.error = _dar(data[pos])
        pos += 1
    elif tag == ACTION_RESPONSE and kind == NORMAL:
        resp = Response("action", invoke)
        resp.error = _dar(data[pos], ACTION_RESULTS)
        pos += 1
        if pos < len(data):
            if data[pos]:
                _need(data, pos, 2)
                if data[pos + 1] == 0:
                    end = _data_end(data, pos + 2)
                    resp.data = data[pos + 2:end]
                    pos = end
                else:
                    _need(data, pos, 3)
                    resp.error = DataAccessError(data[pos + 2])
                    pos += 3
            else:
                pos += 1
    else:
        raise XdlmsError("unsupported response %02x %02x" % (tag, kind))
    resp.trailing = len(data) - pos         # real meters append octets: take the response
    return resp


# --- server responses ------------------------------------------------------------------------

def get_response(value=None, error=0, invoke=INVOKE):
    """value: A-XDR octets; error: a data-access-result code (non-zero) instead."""
    if error:
        return bytes((GET_RESPONSE, NORMAL, invoke, 1, error))
    return bytes((GET_RESPONSE, NORMAL, invoke, 0)) + value


def get_block(block, raw, last, invoke=INVOKE, error=0):
    head = bytes((GET_RESPONSE, NEXT, invoke, 1 if last else 0)) + _u32(block)
    if error:
        return head + bytes((1, error))
    return head + b"\x00" + axdr.encode_length(len(raw)) + raw


def get_list_response(results, invoke=INVOKE):
    """results: [(value octets, 0) or (None, error code)]."""
    parts = [bytes((GET_RESPONSE, WITH_LIST, invoke)), axdr.encode_length(len(results))]
    for value, error in results:
        parts.append(bytes((1, error)) if error else b"\x00" + value)
    return b"".join(parts)


def set_response(error=0, invoke=INVOKE):
    return bytes((SET_RESPONSE, NORMAL, invoke, error))


def action_response(error=0, value=None, invoke=INVOKE):
    head = bytes((ACTION_RESPONSE, NORMAL, invoke, error))
    return head + (b"\x00" if value is None else b"\x01\x00" + value)


def exception(state_error=1, service_error=2):
    return bytes((EXCEPTION_RESPONSE, state_error, service_error))
