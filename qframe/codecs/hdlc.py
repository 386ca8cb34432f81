"""IEC 62056-46 HDLC (frame format type 3) for DLMS: frames, addresses, SNRM/UA parameters,
segmentation. No I/O.

    7E | A0|A8 + 11-bit length | dest | src | control | [HCS | information] | FCS | 7E

The length counts every octet between the flags. Addresses are 1..4 octets, each with bit 0
set on the last octet only; a server address is 1, 2 or 4 octets (upper HDLC address, then
lower), a client address one octet (SAP << 1 | 1). HCS (after the control field) is present
only when an information field follows. HCS and FCS are the complemented FCS-16, low first.

API: encode(dest, src, control, info=b"", segmented=False) -> bytes; decode(frame) -> Frame
or HdlcError; Receiver(max_frame).feed(data) -> [Frame] (stream, resynchronises, counted);
server_address(upper, lower, size) / client_address(sap) -> address octets; control helpers
i_control/rr_control/kind; encode_params/decode_params (SNRM/UA negotiation); segments().
"""
from .crc import fcs16, GOOD

FLAG = 0x7E
FORMAT = 0xA0
SEGMENTED = 0x08
MAX_FRAME = 2048                 # length field is 11 bits
LLC_REQUEST = b"\xe6\xe6\x00"
LLC_RESPONSE = b"\xe6\xe7\x00"
POLL = 0x10

SNRM = 0x83
DISC = 0x43
UA = 0x63
DM = 0x0F
FRMR = 0x87
UI = 0x03
_U_KINDS = {SNRM: "SNRM", DISC: "DISC", UA: "UA", DM: "DM", FRMR: "FRMR", UI: "UI"}

DEFAULT_PARAMS = {"max_info_tx": 128, "max_info_rx": 128, "window_tx": 1, "window_rx": 1}
_PARAM_IDS = (("max_info_tx", 5), ("max_info_rx", 6), ("window_tx", 7), ("window_rx", 8))


class HdlcError(ValueError):
    """A frame that cannot be accepted; str() says why."""


class Frame(object):
    __slots__ = ("dest", "src", "control", "info", "segmented")

    def __init__(self, dest, src, control, info=b"", segmented=False):
        self.dest = dest            # address octets (bytes), as on the wire
        self.src = src
        self.control = control
        self.info = info
        self.segmented = segmented

    @property
    def kind(self):
        return kind(self.control)

    def __repr__(self):
        return "Frame(%s dest=%s src=%s info=%d%s)" % (
            kind(self.control), _hexs(self.dest), _hexs(self.src), len(self.info),
            " segmented" if self.segmented else "")


def _hexs(data):
    return "".join("%02x" % b for b in data)


# --- addresses -------------------------------------------------------------------------------

def client_address(sap):
    """One octet: (SAP << 1) | 1."""
    if not 0 <= sap <= 0x7F:
        raise HdlcError("client SAP out of range: %d" % sap)
    return bytes(((sap << 1) | 1,))


def server_address(upper, lower=None, size=None):
    """Server address octets: size 1 (upper only), 2 or 4; chosen from the values if None."""
    if size is None:
        if lower is None:
            size = 1
        elif upper < 0x80 and lower < 0x80:
            size = 2
        else:
            size = 4
    if size == 1:
        if lower is not None or not 0 <= upper < 0x80:
            raise HdlcError("one-octet server address holds an upper address < 128 only")
        return bytes(((upper << 1) | 1,))
    if lower is None:
        lower = 0
    if size == 2:
        if not (0 <= upper < 0x80 and 0 <= lower < 0x80):
            raise HdlcError("two-octet server address: upper and lower < 128")
        return bytes((upper << 1, (lower << 1) | 1))
    if size == 4:
        if not (0 <= upper < 0x4000 and 0 <= lower < 0x4000):
            raise HdlcError("four-octet server address: upper and lower < 16384")
        return bytes(((upper >> 7) << 1, (upper & 0x7F) << 1,
                      (lower >> 7) << 1, ((lower & 0x7F) << 1) | 1))
    raise HdlcError("server address is 1, 2 or 4 octets, not %d" % size)


def parse_address(octets):
    """(upper, lower) of address octets (lower None for one octet)."""
    n = len(octets)
    if n == 1:
        return octets[0] >> 1, None
    if n == 2:
        return octets[0] >> 1, octets[1] >> 1
    if n == 4:
        return ((octets[0] >> 1) << 7) | (octets[1] >> 1), ((octets[2] >> 1) << 7) | (octets[3] >> 1)
    raise HdlcError("address of %d octets" % n)


def _take_address(data, pos, end):
    start = pos
    while pos < end:
        if data[pos] & 1:
            n = pos + 1 - start
            if n == 3 or n > 4:
                raise HdlcError("address of %d octets" % n)
            return bytes(data[start:pos + 1]), pos + 1
        pos += 1
        if pos - start > 4:
            raise HdlcError("address longer than 4 octets")
    raise HdlcError("truncated address")


# --- control field ---------------------------------------------------------------------------

def i_control(ns, nr, poll=True):
    return ((nr & 7) << 5) | (POLL if poll else 0) | ((ns & 7) << 1)


def rr_control(nr, poll=True):
    return ((nr & 7) << 5) | (POLL if poll else 0) | 0x01


def rnr_control(nr, poll=True):
    return ((nr & 7) << 5) | (POLL if poll else 0) | 0x05


def kind(control):
    """'I', 'RR', 'RNR', 'SNRM', 'DISC', 'UA', 'DM', 'FRMR', 'UI' or '?'."""
    if not control & 1:
        return "I"
    if control & 3 == 1:
        low = control & 0x0F
        return "RR" if low == 1 else "RNR" if low == 5 else "?"
    return _U_KINDS.get(control & ~POLL & 0xFF, "?")


def ns_of(control):
    return (control >> 1) & 7


def nr_of(control):
    return (control >> 5) & 7


# --- frames ----------------------------------------------------------------------------------

def _check_octets(fcs_value):
    value = fcs_value ^ 0xFFFF
    return bytes((value & 0xFF, value >> 8))


def encode(dest, src, control, info=b"", segmented=False):
    """One frame with its flags; dest/src are address octets."""
    length = 2 + len(dest) + len(src) + 1 + 2 + ((len(info) + 2) if info else 0)
    if length > 0x7FF:
        raise HdlcError("frame too long: %d" % length)
    head = bytes((FORMAT | (SEGMENTED if segmented else 0) | (length >> 8), length & 0xFF)) \
        + dest + src + bytes((control,))
    if info:
        head = head + _check_octets(fcs16(head))
        body = head + info
    else:
        body = head
    return b"\x7e" + body + _check_octets(fcs16(body)) + b"\x7e"


def decode(frame):
    """Frame from one frame's octets (flags optional); HdlcError names what is wrong."""
    data = bytes(frame)
    if data[:1] == b"\x7e":
        data = data[1:]
    if data[-1:] == b"\x7e":
        data = data[:-1]
    return _decode_body(data)


def _decode_body(data):
    n = len(data)
    if n < 7:
        raise HdlcError("truncated frame: %d octets" % n)
    if data[0] & 0xF0 != FORMAT:
        raise HdlcError("not frame format type 3: %02x" % data[0])
    length = ((data[0] & 7) << 8) | data[1]
    if length != n:
        raise HdlcError("length field %d, frame has %d octets" % (length, n))
    if fcs16(data) != GOOD:
        raise HdlcError("bad FCS")
    dest, pos = _take_address(data, 2, n - 3)
    src, pos = _take_address(data, pos, n - 3)
    control = data[pos]
    pos += 1
    info = b""
    if pos < n - 2:
        if n - 2 - pos < 3:
            raise HdlcError("truncated header check")
        if fcs16(data[:pos + 2]) != GOOD:
            raise HdlcError("bad HCS")
        info = bytes(data[pos + 2:n - 2])
    return Frame(dest, src, control, info, bool(data[0] & SEGMENTED))


class Receiver(object):
    """Frames from a byte stream. Octets outside a frame and bad frames are dropped and
    counted; the buffer never exceeds max_frame + 2 octets."""

    def __init__(self, max_frame=MAX_FRAME):
        self.max_frame = max_frame
        self._buf = b""
        self.last_error = None
        self.stats = {"frames": 0, "garbage_bytes": 0, "bad_frames": 0, "oversize": 0}

    def reset(self):
        self._buf = b""

    @property
    def buffered(self):
        return len(self._buf)

    def feed(self, data):
        buf = self._buf + bytes(data) if self._buf else bytes(data)
        out = []
        stats = self.stats
        while buf:
            start = buf.find(b"\x7e")
            if start < 0:
                stats["garbage_bytes"] += len(buf)
                buf = b""
                break
            if start:
                stats["garbage_bytes"] += start
                buf = buf[start:]
            # skip repeated flags (a shared closing/opening flag)
            while len(buf) > 1 and buf[1] == FLAG:
                buf = buf[1:]
            if len(buf) < 3:
                break
            if buf[1] & 0xF0 != FORMAT:
                stats["garbage_bytes"] += 1
                buf = buf[1:]
                continue
            length = ((buf[1] & 7) << 8) | buf[2]
            if length > self.max_frame or length < 7:
                stats["oversize" if length > self.max_frame else "bad_frames"] += 1
                self.last_error = "frame length %d" % length
                buf = buf[1:]
                continue
            if len(buf) < length + 2:
                later = _later_frame(buf)       # a bogus header must not hide a good frame
                if later is None:
                    break
                stats["garbage_bytes"] += later
                self.last_error = "a frame start whose length runs past a good frame"
                buf = buf[later:]
                continue
            if buf[length + 1] != FLAG:
                stats["bad_frames"] += 1
                self.last_error = "no closing flag where the length ends"
                buf = buf[1:]
                continue
            try:
                frame = _decode_body(buf[1:length + 1])
            except HdlcError as exc:
                stats["bad_frames"] += 1
                self.last_error = str(exc)
                buf = buf[1:]               # no stuffing: a good frame may start inside
                continue
            stats["frames"] += 1
            out.append(frame)
            buf = buf[length + 1:]          # the closing flag may open the next frame
            if buf == b"\x7e":
                buf = b""
        self._buf = buf
        return out


def _later_frame(buf):
    """Index of the first flag after buf[0] that opens a complete, valid frame, or None."""
    end = len(buf)
    at = buf.find(b"\x7e", 1)
    while at > 0 and at < end - 8:
        if buf[at + 1] & 0xF0 == FORMAT:
            length = ((buf[at + 1] & 7) << 8) | buf[at + 2]
            close = at + length + 1
            if length >= 7 and close < end and buf[close] == FLAG and _valid(buf[at + 1:close]):
                return at
        at = buf.find(b"\x7e", at + 1)
    return None


def _valid(body):
    try:
        _decode_body(body)
    except HdlcError:
        return False
    return True


# --- SNRM/UA parameters ----------------------------------------------------------------------

def _uint_octets(value):
    if value < 0x100:
        return bytes((value,))
    if value < 0x10000:
        return bytes((value >> 8, value & 0xFF))
    return bytes(((value >> 24) & 0xFF, (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF))


def encode_params(max_info_tx=128, max_info_rx=128, window_tx=1, window_rx=1, window_octets=4):
    """The SNRM/UA information field (format 81, group 80) from the sender's point of view."""
    values = {"max_info_tx": max_info_tx, "max_info_rx": max_info_rx,
              "window_tx": window_tx, "window_rx": window_rx}
    body = b""
    for name, ident in _PARAM_IDS:
        value = values[name]
        if name.startswith("window") and window_octets == 4:
            octets = bytes((0, 0, 0, value & 0xFF))
        else:
            octets = _uint_octets(value)
        body += bytes((ident, len(octets))) + octets
    return bytes((0x81, 0x80, len(body))) + body


def decode_params(info):
    """dict of the sender's max_info_tx/rx, window_tx/rx (defaults when absent)."""
    params = dict(DEFAULT_PARAMS)
    if not info:
        return params
    if len(info) < 3 or info[0] != 0x81 or info[1] != 0x80:
        raise HdlcError("SNRM/UA parameters: not format 81 group 80")
    end = 3 + info[2]
    if end > len(info):
        raise HdlcError("SNRM/UA parameters: truncated")
    names = {}
    for name, ident in _PARAM_IDS:
        names[ident] = name
    pos = 3
    while pos < end:
        if pos + 2 > end:
            raise HdlcError("SNRM/UA parameters: truncated")
        ident, size = info[pos], info[pos + 1]
        if size not in (1, 2, 4) or pos + 2 + size > end:
            raise HdlcError("SNRM/UA parameter %d: bad length %d" % (ident, size))
        value = 0
        for b in info[pos + 2:pos + 2 + size]:
            value = (value << 8) | b
        if ident in names:
            params[names[ident]] = value
        pos += 2 + size
    return params


def swap(params):
    """The peer's parameters seen from this side (its TX is our RX)."""
    return {"max_info_tx": params["max_info_rx"], "max_info_rx": params["max_info_tx"],
            "window_tx": params["window_rx"], "window_rx": params["window_tx"]}


def segments(data, max_info):
    """data cut into information fields of at most max_info octets (at least one)."""
    if max_info < 1:
        raise HdlcError("max information field size < 1")
    if not data:
        return [b""]
    return [data[i:i + max_info] for i in range(0, len(data), max_info)]
