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


def _find_flag(buf, start):
    """buf.find(_FLAG_B, start) for bytes and the held bytearray alike: MicroPython 1.13's
    bytearray has no find (nor any str-like method; `in` it has). A bytearray is searched
    through bytes copies of windows doubling from 16 octets: copies stay in proportion to the
    distance searched."""
    if type(buf) is bytes:
        return bytes.find(buf, _FLAG_B, start)
    end = len(buf)
    size = 16
    while start < end:
        stop = start + size if start + size < end else end
        at = bytes(buf[start:stop]).find(_FLAG_B)
        if at >= 0:
            return start + at
        start = stop
        size <<= 1
    return -1


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


class Decoder(object):
    """Streaming decoder: feed(data) returns the list of good Frames completed by data.

    Bad input is dropped and counted in `stats` (see the module docstring); `last_error` holds
    a description of the latest one. Buffered octets stay below max_frame (legacy) or twice it
    (standard, stuffed). flush() ends a burst (call it after an idle gap on the line).

    Work is linear in the input for every input: octets held back are searched once for frame
    starts, and the decoder runs again only when something can complete (`work` counts the
    octets searched or run through the FCS, so tests can bound it).
    """

    def __init__(self, dialect=LEGACY, max_frame=MAX_FRAME, accm=RX_ACCM):
        self.dialect = check_dialect(dialect)
        if max_frame < OVERHEAD + 1:
            raise ValueError("max_frame must be at least %d" % (OVERHEAD + 1))
        self.max_frame = max_frame
        self.stats = {}
        for kind in STAT_KINDS:
            self.stats[kind] = 0
        self._error = None
        self.work = 0
        self._drop = [_CONTROLS[code] for code in range(32) if (accm >> code) & 1]
        self._raw_limit = 2 * max_frame
        self._bank = WORK_BANK * max_frame
        self._credit = self._bank
        self._run = self._run_legacy if dialect == LEGACY else self._run_standard
        # Held back: _buf[_at:] (a bytearray; None when nothing is held), _buf[0] being octet
        # _base of the stream. The decoder runs again once octet _wake has arrived (standard:
        # or a flag). Legacy, waiting inside a frame (_inside) whose closing flag is octet
        # _end: later 7E FF 03 starts, searched up to _scan, are candidates (end, -start)
        # sorted in _cands; one that completes with a flag and a good FCS before the frame
        # around it ends wins (that length was wrong).
        self.reset()

    @property
    def buffered(self):
        """Octets held back waiting for the rest of a frame."""
        return 0 if self._buf is None else len(self._buf) - self._at

    def feed(self, data):
        """Decode data (bytes-like); return a list of Frames (possibly empty)."""
        if type(data) is not bytes:
            data = bytes(data)
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
            last = self._base + len(buf)
            if self._inside:                # legacy, inside a frame
                if last <= self._end:       # not complete yet
                    if self._cands or _START in buf[self._scan - self._base:]:
                        if self._waiting(buf):
                            return []
                    else:                   # no start inside it (the common case)
                        self.work += last - self._scan
                        self._scan = last - 2
                        return []
            elif last <= self._wake:    # nothing can complete yet
                if self.dialect == LEGACY or _FLAG_B not in data:
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
            if self._failed:
                base = self._base
                self._failed = set(h for h in self._failed if h >= base)
        else:
            self._at = rest
        return out

    def _release(self):
        """Nothing held: offsets restart at 0 (_at, _wake and _end are set before use)."""
        self._buf = None
        self._base = 0
        self._inside = False
        self._scan = 0
        self._checked = 0       # octets before this one went through a resync FCS check
        self._chained = 0       # ... through a check of a frame following a good one
        if self._cands:
            self._cands = []
        if self._failed:
            self._failed = set()    # starts whose FCS failed (absolute)

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
            if self.dialect == LEGACY:
                frames = self._frames_in(buf, start, len(buf), out, True, True)
            else:
                frames = self._content(buf, start, len(buf), out, True)
            if frames:
                self.stats["frames"] += frames
                self._bad("missing_flag", "no closing flag after a good frame")
        return out

    def reset(self):
        """Forget buffered octets without counting them (e.g. after reopening the UART)."""
        self._cands = []
        self._failed = set()
        self._at = self._wake = self._end = 0
        self._release()
        self._sync = False
        self._skip = False
        self._trusted = True

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

    # -- legacy: the length field delimits the frame --------------------------------------

    def _run_legacy(self, buf, s, out):
        stats = self.stats
        n = len(buf)
        sync = self._sync
        trusted = self._trusted         # False while resynchronising after an error
        limit = self.max_frame - 8
        t1 = _T1
        t2 = _T2
        words = _words
        fcs_ff03 = _FCS_FF03
        frames = 0
        work = 0
        credit = self._credit   # FCS octets this decoder may still spend on re-checks
        checked = self._checked - self._base
        chained = self._chained - self._base
        held = type(buf) is not bytes   # a bytearray: searched as bytes, payloads copied
        quiet = 0               # octets before this index belong to a dropped frame
        self._inside = False
        while s < n:
            if not sync:
                at = _find_flag(buf, s)
                stop = n if at < 0 else at
                work += stop - s
                if stop > s and stop > quiet:
                    stats["garbage_bytes"] += stop - (s if s > quiet else quiet)
                if at < 0:
                    s = n
                    break
                s = at + 1
                sync = True
                continue
            octet = buf[s]
            if octet == FLAG:
                s += 1
                continue
            if octet != ADDRESS:
                sync = trusted = False
                continue
            if n - s < 6:
                if n - s > 1 and buf[s + 1] != CONTROL:
                    sync = trusted = False
                    continue
                self._wake = self._base + s + 5
                break
            if buf[s + 1] != CONTROL:
                sync = trusted = False
                continue
            length = (buf[s + 4] << 8) | buf[s + 5]
            if length == 0 or length > limit:
                if length:
                    self._bad("oversize", "length %d above max_frame", length)
                else:
                    self._bad("bad_length", "length 0 (no CMD)")
                sync = trusted = False
                continue
            end = s + length + 8
            if end >= n:
                # Incomplete. If a complete good frame starts inside it, its length is wrong.
                base = self._base
                scan = self._scan - base
                if scan <= s:
                    scan = s + 1
                cands = self._cands
                if (cands and cands[0][0] < base + n) or (
                        _START in buf[scan:] if held else bytes.find(buf, _START, scan) >= 0):
                    self._scan = base + scan
                    self._credit = credit
                    self._checked = base + checked
                    later = self._good_frame_inside(buf, s, n)
                    credit = self._credit
                    checked = self._checked - base
                    if later >= 0:
                        self._bad("bad_length", "length %d runs past the frame (a good frame "
                                                "starts %d octets in)", (length, later - s))
                        s = later
                        continue
                elif n - 2 > scan:      # no new start, none complete (the common case)
                    work += n - scan
                    self._scan = base + n - 2
                else:
                    self._scan = base + scan
                self._end = base + end
                self._inside = True
                break
            if not trusted and buf[end] != FLAG and not (
                    buf[end] == ADDRESS and (end + 1 == n or buf[end + 1] == CONTROL)):
                # Resynchronising: a start is only checked with a flag or the next frame's
                # header where its length ends (no FCS over every 7E FF 03 of a hostile stream).
                self._bad("bad_length", "length %d: no closing flag there", length)
                sync = False
                continue
            if not trusted:
                # Resynchronising: a shorter good frame ending inside this one wins, as for an
                # incomplete frame (earliest end first: a valid frame after garbage is always
                # checked before any longer start that covers it).
                base = self._base
                if self._scan < base + s + 1:
                    self._scan = base + s + 1
                self._credit = credit
                self._checked = base + checked
                later = self._good_frame_inside(buf, s, end + 1)
                credit = self._credit
                checked = self._checked - base
                if later >= 0:
                    self._bad("bad_length", "length %d: a good frame ends inside it", length)
                    s = later
                    continue
            if not trusted and self._base + s in self._failed:
                self._bad("bad_fcs" if buf[end] == FLAG else "bad_length",
                          "length %d: FCS wrong (checked as a start inside a frame)", length)
                sync = False
                continue
            if s < (chained if trusted else checked):   # a re-check: budgeted
                if length > credit:
                    self._bad("overload", "FCS budget spent: frame of length %d unchecked",
                              length)
                    sync = trusted = False
                    continue
                credit -= length
            if trusted:
                if end > chained:
                    chained = end
            elif end > checked:
                checked = end
            protocol = buf[s + 2] | (buf[s + 3] << 8)
            payload = buf[s + 7:end - 2]
            work += length
            # frame_fcs(protocol, length, cmd, payload), inlined: this is the hot path
            x = fcs_ff03 ^ protocol
            fcs = t2[x & 0xFF] ^ t1[x >> 8]
            x = fcs ^ buf[s + 4] ^ (buf[s + 5] << 8)
            fcs = t2[x & 0xFF] ^ t1[x >> 8]
            fcs = (fcs >> 8) ^ t1[(fcs ^ buf[s + 6]) & 0xFF]
            for x in words("H", payload):
                x ^= fcs
                fcs = t2[x & 0xFF] ^ t1[x >> 8]
            if length & 1 == 0:     # odd payload: its last octet was not read as a word
                fcs = (fcs >> 8) ^ t1[(fcs ^ buf[end - 3]) & 0xFF]
            fcs ^= 0xFFFF
            carried = (buf[end - 2] << 8) | buf[end - 1]
            if fcs == carried:
                out.append(Frame(protocol, buf[s + 6], bytes(payload) if held else payload))
                frames += 1
                trusted = True
                if buf[end] == FLAG:
                    s = end + 1
                else:
                    self._bad("missing_flag", "no closing flag after a good frame")
                    s = end
            elif buf[end] == FLAG:
                # Delimited as its length says, yet damaged. Hunt for the next flag from its
                # start anyway (in case the length is what was damaged), counting no garbage.
                self._bad("bad_fcs", "FCS on the wire 0x%04x, computed 0x%04x", (carried, fcs))
                quiet = end
                sync = trusted = False
            else:
                self._bad("bad_length", "length %d: no closing flag there and bad FCS", length)
                sync = trusted = False
        self._sync = sync
        self._trusted = trusted
        self._credit = credit
        self._checked = self._base + checked
        self._chained = self._base + chained
        stats["frames"] += frames
        self.work += work
        return s

    def _scan_starts(self, buf, n):
        """Register the 7E FF 03 starts of buf[:n] not searched yet as candidates."""
        base = self._base
        at = self._scan - base
        limit = self.max_frame - 8
        cands = self._cands
        if type(buf) is bytes:
            region, off = buf, 0
        else:                           # held back: the octets not searched yet, as bytes
            region, off = bytes(buf[at:n]), at
        while True:
            found = bytes.find(region, _START, at - off, n - off)
            if found < 0:
                self.work += n - at
                if n - 2 > at:
                    at = n - 2
                break
            found += off
            self.work += found - at
            if found + 7 > n:           # its length field has not arrived yet
                at = found
                break
            h = found + 1
            length = (buf[h + 4] << 8) | buf[h + 5]
            if 0 < length <= limit:
                key = (base + h + length + 8, -base - h)
                lo = len(cands)
                if lo and cands[lo - 1] > key:
                    lo = 0
                    hi = len(cands)
                    while lo < hi:
                        mid = (lo + hi) >> 1
                        if cands[mid] < key:
                            lo = mid + 1
                        else:
                            hi = mid
                cands.insert(lo, key)
            at = h
        self._scan = base + at

    def _waiting(self, buf):
        """Inside a frame not complete yet: register new starts, drop the ones whose end came
        without a flag (they cannot be good); True while no start can complete."""
        base = self._base
        last = base + len(buf)
        self._scan_starts(buf, len(buf))
        cands = self._cands
        while cands and cands[0][0] < last and buf[cands[0][0] - base] != FLAG:
            cands.pop(0)
        return not (cands and cands[0][0] < last)

    def _good_frame_inside(self, buf, s, n):
        """Header index of a good frame (closing flag included) starting after the frame at s
        and ending before n, or -1. Each start is searched for and checked once."""
        base = self._base
        if self._scan < base + s + 1:
            self._scan = base + s + 1
        self._scan_starts(buf, n)
        cands = self._cands
        last = base + n
        while cands and cands[0][0] < last:
            end, h = cands.pop(0)
            h = -h - base
            if h <= s:
                continue                # a start inside a frame already decoded or dropped
            end -= base
            if buf[end] == FLAG:
                if h < self._checked - base:
                    if end - h > self._credit:
                        self._bad("overload", "FCS budget spent: a start inside a frame "
                                              "unchecked")
                        continue
                    self._credit -= end - h
                self.work += end - h
                fcs = frame_fcs(buf[h + 2] | (buf[h + 3] << 8), end - h - 8, buf[h + 6],
                                buf[h + 7:end - 2])
                if fcs == (buf[end - 2] << 8) | buf[end - 1]:
                    return h            # unmarked: decoding it next is not a re-check
                if base + end > self._checked:
                    self._checked = base + end
                self._failed.add(base + h)
        return -1

    # -- standard: flags delimit the frame, octets are stuffed ----------------------------

    def _run_standard(self, buf, s, out):
        offset = 0
        if type(buf) is not bytes:      # held back: up to the last flag, decoded once
            offset = s
            buf = bytes(buf[s:])
            s = 0
        stats = self.stats
        n = len(buf)
        sync = self._sync
        frames = 0
        while s < n:
            if not sync:
                at = bytes.find(buf, _FLAG_B, s)
                if at < 0:
                    if not self._skip:
                        stats["garbage_bytes"] += n - s
                    s = n
                    break
                if at > s and not self._skip:
                    stats["garbage_bytes"] += at - s
                self._skip = False
                s = at + 1
                sync = True
                continue
            end = bytes.find(buf, _FLAG_B, s)
            if end < 0:
                if n - s > self._raw_limit:
                    self._bad("oversize", "more than %d octets without a flag", self._raw_limit)
                    self._skip = True
                    sync = False
                    s = n
                    break
                self._wake = self._base + offset + s + self._raw_limit
                break
            if end > s:
                frames += self._content(buf, s, end, out, False)
            s = end + 1
        self._sync = sync
        stats["frames"] += frames
        self.work += s
        return s + offset

    def _content(self, buf, start, end, out, final):
        """Decode the octets between two flags; return the number of frames appended."""
        if self._drop:
            raw = buf[start:end]
            before = len(raw)
            for control in self._drop:
                if control in raw:
                    raw = bytes.replace(raw, control, b"")
            if len(raw) < before:
                self.stats["accm_dropped"] += before - len(raw)
            buf, start, end = raw, 0, len(raw)
            if not end:
                return 0
        if bytes.find(buf, _ESC_B, start, end) < 0:
            return self._frames_in(buf, start, end, out, final, False)
        if buf[end - 1] == ESCAPE:
            self._bad("aborted", "abort sequence 7D 7E")
            return 0
        raw = unstuff(buf[start:end])
        return self._frames_in(raw, 0, len(raw), out, final, False)

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
