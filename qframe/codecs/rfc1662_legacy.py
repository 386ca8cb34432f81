"""The legacy dialect's streaming decoder: no stuffing, the length field delimits a frame,
FCS high octet first (made by rfc1662.Decoder("legacy"); counters in rfc1662's docstring).

Hostile input stays linear: later 7E FF 03 starts inside a frame are found once and checked
once (a good frame ending inside a longer one means that length was wrong), re-checks are
paid from a budget of WORK_PER_OCTET octets per octet received, banked up to WORK_BANK frames.
MicroPython 1.13's bytearray has no find: the held bytearray is searched with `in` on slices
and through bytes copies (_find_flag, _scan_starts), never with bytearray.find.
"""
from .rfc1662 import (ADDRESS, CONTROL, FLAG, LEGACY, MAX_FRAME, RX_ACCM, WORK_BANK, _FLAG_B,
                      _START, DecoderBase, Frame, frame_fcs)


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


class LegacyDecoder(DecoderBase):
    """See the module docstring and DecoderBase."""
    dialect = LEGACY

    def __init__(self, max_frame=MAX_FRAME, accm=RX_ACCM):
        self._bank = WORK_BANK * max_frame
        self._credit = self._bank
        self._cands = []
        self._failed = set()
        # Waiting inside a frame (_inside) whose closing flag is octet _end: later 7E FF 03
        # starts, searched up to _scan, are candidates (end, -start) sorted in _cands; one that
        # completes with a flag and a good FCS before the frame around it ends wins (that
        # length was wrong).
        DecoderBase.__init__(self, max_frame, accm)

    def _cannot_complete(self, buf, data):
        last = self._base + len(buf)
        if self._inside:                # inside a frame
            if last <= self._end:       # not complete yet
                if self._cands or _START in buf[self._scan - self._base:]:
                    return self._waiting(buf)
                self.work += last - self._scan      # no start inside it (the common case)
                self._scan = last - 2
                return True
            return False
        return last <= self._wake

    def _compacted(self):
        if self._failed:
            base = self._base
            self._failed = set(h for h in self._failed if h >= base)

    def _release(self):
        DecoderBase._release(self)
        self._inside = False
        self._scan = 0
        self._checked = 0       # octets before this one went through a resync FCS check
        self._chained = 0       # ... through a check of a frame following a good one
        if self._cands:
            self._cands = []
        if self._failed:
            self._failed = set()    # starts whose FCS failed (absolute)

    def reset(self):
        self._cands = []
        self._failed = set()
        self._end = 0
        DecoderBase.reset(self)
        self._trusted = True

    def _last_frames(self, buf, start, out):
        return self._frames_in(buf, start, len(buf), out, True, True)

    def _run(self, buf, s, out):
        stats = self.stats
        n = len(buf)
        sync = self._sync
        trusted = self._trusted         # False while resynchronising after an error
        limit = self.max_frame - 8
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
            fcs = frame_fcs(protocol, length, buf[s + 6], payload)
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
