"""ACSE for DLMS (IEC 62056-5-3 / ISO 8650): AARQ/AARE with logical-name referencing, no
security or low-level security (password), RLRQ/RLRE; the xDLMS InitiateRequest/Response
inside their user-information. No I/O.

API: aarq(password=None, conformance=..., max_pdu=...) -> bytes; parse_aarq(data) -> dict;
aare(result, diagnostic, conformance, max_pdu) -> bytes; parse_aare(data) -> dict (result,
diagnostic, source, conformance, max_pdu; raises AssociationRejected when refused);
rlrq()/parse_rlrq, rlre()/parse_rlre. AcseError for malformed APDUs.
"""
AARQ = 0x60
AARE = 0x61
RLRQ = 0x62
RLRE = 0x63

LN_NO_CIPHER = b"\x60\x85\x74\x05\x08\x01\x01"
SN_NO_CIPHER = b"\x60\x85\x74\x05\x08\x01\x02"
MECH_LLS = b"\x60\x85\x74\x05\x08\x02\x01"
# get, set, action, selective access, block transfer with get/set/action, multiple references
CONFORMANCE = 0x001E1D
MAX_PDU = 0xFFFF
DLMS_VERSION = 6

RESULTS = {0: "accepted", 1: "rejected-permanent", 2: "rejected-transient"}
USER_DIAGNOSTICS = {0: "null", 1: "no-reason-given", 2: "application-context-name-not-supported",
                    11: "authentication-mechanism-name-not-recognised",
                    12: "authentication-mechanism-name-required", 13: "authentication-failure",
                    14: "authentication-required"}
PROVIDER_DIAGNOSTICS = {0: "null", 1: "no-reason-given", 2: "no-common-acse-version"}


class AcseError(ValueError):
    """A malformed ACSE APDU."""


class AssociationRejected(Exception):
    """The meter refused the association: .result, .diagnostic (text)."""

    def __init__(self, result, diagnostic):
        super().__init__("association %s: %s" % (RESULTS.get(result, result), diagnostic))
        self.result = result
        self.diagnostic = diagnostic


def _tlv(tag, body):
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    return bytes((tag, 0x81, n)) + body


def _items(data, pos, end):
    """[(tag, body)] of BER TLVs in data[pos:end] (one-octet tags)."""
    out = []
    while pos < end:
        if pos + 2 > end:
            raise AcseError("truncated TLV")
        tag = data[pos]
        n = data[pos + 1]
        pos += 2
        if n & 0x80:
            size = n & 0x7F
            if size not in (1, 2) or pos + size > end:
                raise AcseError("bad TLV length")
            n = 0
            for b in data[pos:pos + size]:
                n = (n << 8) | b
            pos += size
        if pos + n > end:
            raise AcseError("TLV %02x of %d octets overruns" % (tag, n))
        out.append((tag, bytes(data[pos:pos + n])))
        pos += n
    return out


def _envelope(data, tag):
    if len(data) < 2 or data[0] != tag:
        raise AcseError("expected APDU %02x" % tag)
    items = _items(data, 0, len(data))
    if len(items) != 1:
        raise AcseError("octets after the APDU")
    return _items(items[0][1], 0, len(items[0][1]))


def _conformance_octets(conformance):
    return b"\x5f\x1f\x04\x00" + bytes(((conformance >> 16) & 0xFF, (conformance >> 8) & 0xFF,
                                        conformance & 0xFF))


def initiate_request(conformance=CONFORMANCE, max_pdu=MAX_PDU):
    return (b"\x01\x00\x00\x00" + bytes((DLMS_VERSION,)) + _conformance_octets(conformance)
            + bytes((max_pdu >> 8, max_pdu & 0xFF)))


def initiate_response(conformance=CONFORMANCE, max_pdu=MAX_PDU):
    return (b"\x08\x00" + bytes((DLMS_VERSION,)) + _conformance_octets(conformance)
            + bytes((max_pdu >> 8, max_pdu & 0xFF)) + b"\x00\x07")


def _conformance_at(data, pos):
    if data[pos:pos + 4] != b"\x5f\x1f\x04\x00" or len(data) < pos + 9:
        raise AcseError("bad conformance block")
    conf = (data[pos + 4] << 16) | (data[pos + 5] << 8) | data[pos + 6]
    return conf, (data[pos + 7] << 8) | data[pos + 8]


def parse_initiate_request(data):
    if len(data) < 5 or data[0] != 0x01:
        raise AcseError("not an InitiateRequest")
    pos = 1
    if data[pos]:                            # dedicated key
        pos += 1
        if pos >= len(data):
            raise AcseError("truncated InitiateRequest")
        pos += 1 + data[pos]
    else:
        pos += 1
    pos += 1 if pos < len(data) and data[pos] == 0 else 2      # response-allowed
    pos += 1 if pos < len(data) and data[pos] == 0 else 2      # quality of service
    if pos >= len(data):
        raise AcseError("truncated InitiateRequest")
    version = data[pos]
    conf, max_pdu = _conformance_at(data, pos + 1)
    return {"version": version, "conformance": conf, "max_pdu": max_pdu}


def parse_initiate_response(data):
    if len(data) < 3 or data[0] != 0x08:
        raise AcseError("not an InitiateResponse")
    pos = 1
    pos += 1 if data[pos] == 0 else 2
    if pos >= len(data):
        raise AcseError("truncated InitiateResponse")
    version = data[pos]
    conf, max_pdu = _conformance_at(data, pos + 1)
    return {"version": version, "conformance": conf, "max_pdu": max_pdu}


def aarq(password=None, conformance=CONFORMANCE, max_pdu=MAX_PDU):
    """AARQ for LN referencing; with a password, low-level security."""
    body = _tlv(0xA1, _tlv(0x06, LN_NO_CIPHER))
    if password is not None:
        if isinstance(password, str):
            password = password.encode()
        body += b"\x8a\x02\x07\x80" + _tlv(0x8B, MECH_LLS) + _tlv(0xAC, _tlv(0x80, password))
    body += _tlv(0xBE, _tlv(0x04, initiate_request(conformance, max_pdu)))
    return _tlv(AARQ, body)


def _user_info(body):
    items = _items(body, 0, len(body))
    if not items or items[0][0] != 0x04:
        raise AcseError("user-information is not an octet string")
    return items[0][1]


def parse_aarq(data):
    """dict: context (LN/SN bytes), mechanism (None or bytes), password, version,
    conformance, max_pdu."""
    out = {"context": None, "mechanism": None, "password": None}
    for tag, body in _envelope(data, AARQ):
        if tag == 0xA1:
            out["context"] = _items(body, 0, len(body))[0][1]
        elif tag == 0x8B:
            out["mechanism"] = body
        elif tag == 0xAC:
            out["password"] = _items(body, 0, len(body))[0][1]
        elif tag == 0xBE:
            out.update(parse_initiate_request(_user_info(body)))
    if out["context"] is None or "max_pdu" not in out:
        raise AcseError("AARQ without context or user-information")
    return out


def aare(result=0, diagnostic=0, conformance=CONFORMANCE, max_pdu=MAX_PDU, provider=False):
    body = (_tlv(0xA1, _tlv(0x06, LN_NO_CIPHER)) + _tlv(0xA2, _tlv(0x02, bytes((result,))))
            + _tlv(0xA3, _tlv(0xA2 if provider else 0xA1, _tlv(0x02, bytes((diagnostic,))))))
    if result == 0:
        body += _tlv(0xBE, _tlv(0x04, initiate_response(conformance, max_pdu)))
    return _tlv(AARE, body)


def parse_aare(data, check=True):
    """dict: result, source ('user'/'provider'), diagnostic (number), conformance, max_pdu.
    With check, a refusal raises AssociationRejected."""
    out = {"result": None, "source": "user", "diagnostic": 0}
    for tag, body in _envelope(data, AARE):
        if tag == 0xA2:
            inner = _items(body, 0, len(body))
            if not inner or not inner[0][1]:
                raise AcseError("empty association result")
            out["result"] = inner[0][1][-1]
        elif tag == 0xA3:
            inner = _items(body, 0, len(body))
            if inner:
                out["source"] = "provider" if inner[0][0] == 0xA2 else "user"
                value = _items(inner[0][1], 0, len(inner[0][1]))
                if value and value[0][1]:
                    out["diagnostic"] = value[0][1][-1]
        elif tag == 0xBE:
            info = _user_info(body)
            if info[:1] == b"\x08":
                out.update(parse_initiate_response(info))
            elif info[:1] == b"\x0e":
                out["service_error"] = info
    if out["result"] is None:
        raise AcseError("AARE without a result")
    if check and out["result"] != 0:
        names = PROVIDER_DIAGNOSTICS if out["source"] == "provider" else USER_DIAGNOSTICS
        raise AssociationRejected(out["result"], names.get(out["diagnostic"],
                                                           "diagnostic %d" % out["diagnostic"]))
    if out["result"] == 0 and "max_pdu" not in out:
        raise AcseError("accepted AARE without an InitiateResponse")
    return out


def rlrq():
    return b"\x62\x03\x80\x01\x00"


def rlre():
    return b"\x63\x03\x80\x01\x00"


def parse_release(data, tag):
    """The release reason (0 normal) of an RLRQ (0x62) or RLRE (0x63); None if absent."""
    items = _envelope(data, tag)
    for item_tag, body in items:
        if item_tag == 0x80 and body:
            return body[0]
    return None
