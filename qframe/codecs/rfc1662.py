"""Meter-link framing (docs METER_LINK.md): FCS-16, an encoder and a streaming decoder.

    7E | FF 03 | protocol (low first) | length (high first) | CMD DATA | FCS | 7E

Two dialects:
- STANDARD (RFC 1662): octet stuffing (7D escape, XOR 20) of 7E, 7D and the ACCM's control
  characters; FCS low octet first. The transmit ACCM defaults to 0xFFFFFFFF (every control
  character escaped, RFC 1662's default). The receive ACCM defaults to 0: escapes are always
  undone, and only control characters flagged in the receive ACCM are discarded when they
  arrive unescaped (RFC 1662 4.2); peers that escape nothing but 7E/7D decode as well.
- LEGACY: no stuffing, the length field delimits the frame; FCS high octet first.

API: fcs16(data, fcs=0xFFFF) running value; fcs_good(data) residue check; frame_fcs(...);
encode(protocol, cmd, payload, dialect, accm) -> bytes; stuff/unstuff; Frame(protocol, cmd,
payload); Decoder(dialect, max_frame, accm) with feed(data) -> [Frame], flush() -> [Frame],
reset(), stats, last_error, buffered; decode_frame(data, dialect) -> Frame or ValueError.

Files: this one holds what both dialects share (constants, Frame, frame_fcs - the one FCS path
of every frame -, stuffing, encode, the decoder's skeleton DecoderBase); rfc1662_legacy.py and
rfc1662_standard.py the two decoders, which import from here. Decoder(dialect) imports only the
dialect it makes (on first use, as qframe's lazy names do).

`max_frame` bounds a frame from address to FCS (payload + 9 octets). The FCS reads the
payload two octets at a time through a 256-entry table pair (about 12x a bit-by-bit loop on
MicroPython); payloads are copied once into their Frame, nothing else grows with the stream.

Decoder counters (`Decoder.stats`):
  frames         good frames decoded
  garbage_bytes  octets outside any frame (also the body of a dropped frame whose extent is
                 unknown, scanned while resynchronising)
  bad_fcs        frame delimited as its length says, FCS wrong
  bad_length     length field disagrees with the frame: zero, runs past the data (the frame
                 ends early or a later good frame starts inside it), or no closing flag where
                 the length puts it and the FCS there is wrong
  oversize       length (or the octets between two flags) above max_frame
  truncated      a frame shorter than its header and FCS, or cut off by flush()
  missing_flag   good frame whose closing flag was lost (accepted; the next frame may follow
                 without an opening flag)
  aborted        standard: abort sequence 7D 7E
  accm_dropped   standard: unescaped octets discarded by the receive ACCM
  overload       legacy: a frame start left unchecked (dropped as a bad frame) because hostile
                 input used up the FCS budget. Checking octets no check of the same kind
                 (following a good frame / resynchronising) has covered is free; checking
                 them again (overlapping starts) costs from a budget of WORK_PER_OCTET
                 octets per octet received, banked up to WORK_BANK frames. A start whose
                 FCS failed is not checked again.
"""
from .crc import fcs16, INIT, GOOD, BLOCK as _BLOCK, T1 as _T1, T2 as _T2, read_words as _words

FLAG = 0x7E
ESCAPE = 0x7D
ADDRESS = 0xFF
CONTROL = 0x03
STANDARD = "standard"
LEGACY = "legacy"
DIALECTS = (STANDARD, LEGACY)
INIT_FCS = INIT
GOOD_FCS = GOOD
TX_ACCM = 0xFFFFFFFF
RX_ACCM = 0
OVERHEAD = 9                # octets around the payload between the flags: FF 03 P P L L CMD F F
MAX_FRAME = 2048
WORK_PER_OCTET = 3
WORK_BANK = 3
ERROR_KINDS = ("bad_fcs", "bad_length", "oversize", "truncated", "aborted", "missing_flag",
               "overload")
STAT_KINDS = ("frames", "garbage_bytes") + ERROR_KINDS + ("accm_dropped",)

_FLAG_B = b"\x7e"
_ESC_B = b"\x7d"
_ESC_ESC = b"\x7d\x5d"
_START = b"\x7e\xff\x03"
_CONTROLS = tuple(bytes((code,)) for code in range(32))
_CONTROL_ESCAPES = tuple(bytes((ESCAPE, code ^ 0x20)) for code in range(32))
_FCS_FF03 = fcs16(bytes((ADDRESS, CONTROL)))


def frame_fcs(protocol, length, cmd, payload):
    """FCS (complemented, ready to send) of a frame's address..DATA; payload is bytes."""
    t1 = _T1
    t2 = _T2
    x = _FCS_FF03 ^ protocol
    fcs = t2[x & 0xFF] ^ t1[x >> 8]
    x = fcs ^ (length >> 8) ^ ((length & 0xFF) << 8)
    fcs = t2[x & 0xFF] ^ t1[x >> 8]
    fcs = (fcs >> 8) ^ t1[(fcs ^ cmd) & 0xFF]
    n = len(payload)
    if n > _BLOCK:
        return fcs16(payload, fcs) ^ 0xFFFF
    for x in _words("H", payload):
        x ^= fcs
        fcs = t2[x & 0xFF] ^ t1[x >> 8]
    if n & 1:
        fcs = (fcs >> 8) ^ t1[(fcs ^ payload[n - 1]) & 0xFF]
    return fcs ^ 0xFFFF


def fcs_good(data):
    """True when data (address..FCS, FCS low octet first) leaves RFC 1662's good residue."""
    return fcs16(data) == GOOD_FCS


def check_dialect(dialect):
    if dialect != STANDARD and dialect != LEGACY:
        raise ValueError("dialect must be 'standard' or 'legacy', not %r" % (dialect,))
    return dialect


class Frame(object):
    """A decoded frame: protocol (int), cmd (int), payload (bytes)."""
    __slots__ = ("protocol", "cmd", "payload")

    def __init__(self, protocol, cmd, payload):
        self.protocol = protocol
        self.cmd = cmd
        self.payload = payload

    def message(self):
        """The (protocol, cmd, payload) tuple, the shape encode() and handler replies use."""
        return (self.protocol, self.cmd, self.payload)

    def __eq__(self, other):
        return (isinstance(other, Frame) and self.protocol == other.protocol
                and self.cmd == other.cmd and self.payload == other.payload)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "Frame(0x%04x, 0x%02x, %r)" % (self.protocol, self.cmd, self.payload)


def stuff(body, accm=TX_ACCM):
    """RFC 1662 octet stuffing of body (bytes) for the given transmit ACCM."""
    if type(body) is not bytes:
        body = bytes(body)
    if _ESC_B in body:
        body = body.replace(_ESC_B, _ESC_ESC)
    if _FLAG_B in body:
        body = body.replace(_FLAG_B, b"\x7d\x5e")
    if accm:
        for code in range(32):
            if (accm >> code) & 1 and _CONTROLS[code] in body:
                body = body.replace(_CONTROLS[code], _CONTROL_ESCAPES[code])
    return body


def unstuff(raw):
    """Undo octet stuffing of raw (bytes without flags, not ending in 7D)."""
    if type(raw) is not bytes:
        raw = bytes(raw)
    out = bytearray()
    view = memoryview(raw)
    start = 0
    while True:
        at = raw.find(_ESC_B, start)
        if at < 0:
            break
        out.extend(view[start:at])
        out.append(raw[at + 1] ^ 0x20)
        start = at + 2
    out.extend(view[start:])
    return bytes(out)


class DecoderBase(object):
    """The streaming decoder of a dialect (made by Decoder(dialect) below): feed(data) returns the list of
    good Frames completed by data.

    Bad input is dropped and counted in `stats` (see the module docstring); `last_error` holds
    a description of the latest one. Buffered octets stay below max_frame (legacy) or twice it
    (standard, stuffed). flush() ends a burst (call it after an idle gap on the line).

    Work is linear in the input for every input: octets held back are searched once for frame
    starts, and the decoder runs again only when something can complete (`work` counts the
    octets searched or run through the FCS, so tests can bound it).

    A dialect implements _run(buf, start, out) -> where it stopped, _cannot_complete(buf,
    data) (True: nothing new can complete, do not run), _last_frames(buf, start, out) (what
    flush() recovers), and extends _release() / reset() with its own state.
    """
    dialect = None
    _bank = 0       # legacy: the cap of its re-check budget (each octet fed earns some)

    def __init__(self, max_frame=MAX_FRAME, accm=RX_ACCM):
        if max_frame < OVERHEAD + 1:
            raise ValueError("max_frame must be at least %d" % (OVERHEAD + 1))
        self.max_frame = max_frame
        self.stats = {}
        for kind in STAT_KINDS:
            self.stats[kind] = 0
        self._error = None
        self.work = 0
        # Held back: _buf[_at:] (a bytearray; None when nothing is held), _buf[0] being octet
        # _base of the stream. The decoder runs again once octet _wake has arrived.
        self.reset()

    @property
    def buffered(self):
        """Octets held back waiting for the rest of a frame."""
        return 0 if self._buf is None else len(self._buf) - self._at

    def feed(self, data):
        """Decode data (bytes-like); return a list of Frames (possibly empty)."""
        if type(data) is not bytes:
            data = bytes(data)
        if self._bank:
            credit = self._credit + WORK_PER_OCTET * len(data)
            self._credit = credit if credit < self._bank else self._bank
        buf = self._buf
        if buf is None:
            if not data:
                return []
            buf = data
            start = 0
        else:
            buf.extend(data)
            if self._cannot_complete(buf, data):
                return []
            start = self._at
        out = []
        rest = self._run(buf, start, out)
        n = len(buf)
        if rest >= n:
            self._release()
        elif buf is data:
            self._buf = bytearray(data)
            self._at = rest
        elif rest > 256 and rest > n >> 1:              # compact: amortised linear
            self._buf = buf[rest:]
            self._base += rest
            self._at = 0
            self._compacted()
        else:
            self._at = rest
        return out

    def _compacted(self):
        """The held octets now start at _base (state kept by absolute offset may shrink)."""

    def _release(self):
        """Nothing held: offsets restart at 0 (_at and _wake are set before use)."""
        self._buf = None
        self._base = 0

    def flush(self):
        """End of a burst: decode or drop what is buffered; return the Frames recovered.

        A frame complete but for its closing flag is kept (counted missing_flag); anything
        else buffered counts as truncated. The decoder then hunts for the next opening flag.
        """
        buf = b"" if self._buf is None else bytes(self._buf[self._at:])
        sync = self._sync
        self.reset()
        out = []
        start = 0
        while start < len(buf) and buf[start] == FLAG:
            start += 1
        if sync and start < len(buf):
            frames = self._last_frames(buf, start, out)
            if frames:
                self.stats["frames"] += frames
                self._bad("missing_flag", "no closing flag after a good frame")
        return out

    def reset(self):
        """Forget buffered octets without counting them (e.g. after reopening the UART)."""
        self._at = self._wake = 0
        self._release()
        self._sync = False

    def _bad(self, kind, detail, args=None):
        """Count kind; last_error describes it (formatted when read: hostile input is cheap)."""
        self.stats[kind] += 1
        self._error = (kind, detail, args)

    @property
    def last_error(self):
        """A description of the latest bad input, or None."""
        if self._error is None:
            return None
        kind, detail, args = self._error
        return "%s: %s" % (kind, detail if args is None else detail % args)

    def _frames_in(self, buf, a, b, out, final, legacy):
        """Frames in the unstuffed octets buf[a:b] (address first). A good frame followed by
        more octets lost its closing flag: it is kept and the rest decoded as the next frame."""
        frames = 0
        while a < b:
            m = b - a
            if m < 2 or buf[a] != ADDRESS or buf[a + 1] != CONTROL:
                self.stats["garbage_bytes"] += m
                break
            if m < 6:
                self._bad("truncated", "%d octets, shorter than a header", m)
                break
            length = (buf[a + 4] << 8) | buf[a + 5]
            end = a + length + 8
            if length == 0:
                self._bad("bad_length", "length 0 (no CMD)")
                break
            if length + 8 > self.max_frame:
                self._bad("oversize", "length %d above max_frame", length)
                break
            if end > b:
                if final:
                    self._bad("truncated", "%d of %d octets", (m, length + 8))
                else:
                    self._bad("bad_length", "length %d runs past the %d octets between flags",
                              (length, m))
                break
            protocol = buf[a + 2] | (buf[a + 3] << 8)
            payload = buf[a + 7:end - 2]
            fcs = frame_fcs(protocol, length, buf[a + 6], payload)
            if legacy:
                carried = (buf[end - 2] << 8) | buf[end - 1]
            else:
                carried = buf[end - 2] | (buf[end - 1] << 8)
            if fcs != carried:
                if end == b:
                    self._bad("bad_fcs", "FCS on the wire 0x%04x, computed 0x%04x",
                              (carried, fcs))
                else:
                    self._bad("bad_length", "length %d: bad FCS where it ends", length)
                break
            out.append(Frame(protocol, buf[a + 6], payload))
            frames += 1
            if end < b:
                self._bad("missing_flag", "no closing flag after a good frame")
            a = end
        return frames


def encode(protocol, cmd, payload=b"", dialect=LEGACY, accm=TX_ACCM):
    """Frame (protocol, cmd, payload) for the wire; returns bytes. accm: standard dialect only."""
    check_dialect(dialect)
    if type(payload) is not bytes:
        payload = bytes(payload)
    length = len(payload) + 1
    if not 0 <= protocol <= 0xFFFF:
        raise ValueError("protocol must be 0..0xFFFF, not %r" % (protocol,))
    if not 0 <= cmd <= 0xFF:
        raise ValueError("cmd must be 0..0xFF, not %r" % (cmd,))
    if length > 0xFFFF:
        raise ValueError("payload of %d octets does not fit the 16-bit length" % len(payload))
    head = bytes((ADDRESS, CONTROL, protocol & 0xFF, protocol >> 8, length >> 8, length & 0xFF,
                  cmd))
    fcs = frame_fcs(protocol, length, cmd, payload)
    if dialect == LEGACY:
        return b"".join((_FLAG_B, head, payload, bytes((fcs >> 8, fcs & 0xFF)), _FLAG_B))
    body = b"".join((head, payload, bytes((fcs & 0xFF, fcs >> 8))))
    return b"".join((_FLAG_B, stuff(body, accm), _FLAG_B))


def Decoder(dialect=LEGACY, max_frame=MAX_FRAME, accm=RX_ACCM):
    """The streaming decoder of dialect (rfc1662_legacy.LegacyDecoder or
    rfc1662_standard.StandardDecoder; the API is DecoderBase's)."""
    if check_dialect(dialect) == LEGACY:
        from .rfc1662_legacy import LegacyDecoder      # imports this module: loaded by now
        return LegacyDecoder(max_frame, accm)
    from .rfc1662_standard import StandardDecoder
    return StandardDecoder(max_frame, accm)


def decode_frame(data, dialect=LEGACY, accm=RX_ACCM, max_frame=MAX_FRAME):
    """Decode exactly one whole frame (flags included); raise ValueError saying what is wrong."""
    decoder = Decoder(dialect, max_frame, accm)
    frames = decoder.feed(data) + decoder.flush()
    stats = decoder.stats
    for kind in ERROR_KINDS:
        if stats[kind]:
            raise ValueError(decoder.last_error)
    if stats["garbage_bytes"]:
        raise ValueError("garbage: %d octets outside a frame" % stats["garbage_bytes"])
    if len(frames) != 1:
        raise ValueError("expected one frame, found %d" % len(frames))
    return frames[0]
