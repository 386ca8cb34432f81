"""The standard dialect's streaming decoder (RFC 1662): flags delimit a frame, octets are
stuffed (7D escape), FCS low octet first (made by rfc1662.Decoder("standard"); counters in
rfc1662's docstring). Unescaped control characters flagged in the receive ACCM are dropped.
"""
from .rfc1662 import (ESCAPE, MAX_FRAME, RX_ACCM, STANDARD, _CONTROLS, _ESC_B, _FLAG_B,
                      DecoderBase, unstuff)


class StandardDecoder(DecoderBase):
    """See the module docstring and DecoderBase."""
    dialect = STANDARD

    def __init__(self, max_frame=MAX_FRAME, accm=RX_ACCM):
        self._drop = [_CONTROLS[code] for code in range(32) if (accm >> code) & 1]
        self._raw_limit = 2 * max_frame
        DecoderBase.__init__(self, max_frame, accm)

    def _cannot_complete(self, buf, data):
        return self._base + len(buf) <= self._wake and _FLAG_B not in data

    def reset(self):
        DecoderBase.reset(self)
        self._skip = False

    def _last_frames(self, buf, start, out):
        return self._content(buf, start, len(buf), out, True)

    def _run(self, buf, s, out):
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

