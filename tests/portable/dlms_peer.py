"""A scripted DLMS meter for portable tests: HDLC server 1 for client 16, built from the
codecs (no I/O). Replies come from a dict keyed by request APDU."""
from usr.qframe.codecs import acse, hdlc, xdlms


class ScriptedMeter(object):
    """HDLC server 1 for client 16: UA, AARE, then replies[request APDU] (a list for several
    blocks: GET-next requests take the next one; a GET not scripted is answered
object-undefined). max_info cuts replies in segments."""

    def __init__(self, replies, max_info=128, ua_info=True):
        self.replies = replies
        self.max_info = max_info
        self.ua_info = ua_info
        self.rx = hdlc.Receiver()
        self.ns = self.nr = 0
        self.pending = []
        self.parts = []
        self.seen = []
        self.blocks = []
        self.unknown = []                   # requests answered object-undefined

    def _f(self, control, info=b"", seg=False):
        return hdlc.encode(b"\x21", b"\x03", control, info, seg)

    def feed(self, data):
        out = b""
        for f in self.rx.feed(data):
            self.seen.append(f.kind)
            if f.kind == "SNRM":
                info = hdlc.encode_params(self.max_info, self.max_info) if self.ua_info else b""
                out += self._f(hdlc.UA | hdlc.POLL, info)
            elif f.kind == "DISC":
                out += self._f(hdlc.UA | hdlc.POLL)
            elif f.kind == "RR":
                out += self._next()
            elif f.kind == "I":
                self.nr = (self.nr + 1) & 7
                self.parts.append(f.info)
                if f.segmented:
                    out += self._f(hdlc.rr_control(self.nr))
                    continue
                apdu = b"".join(self.parts)[3:]
                self.parts = []
                reply = self._answer(apdu)
                self.pending = hdlc.segments(hdlc.LLC_RESPONSE + reply, self.max_info)
                out += self._next()
        return out

    def _answer(self, apdu):
        if apdu[0] == acse.AARQ:
            return acse.aare(0, 0, acse.CONFORMANCE, 512)
        if apdu[0] == acse.RLRQ:
            return acse.rlre()
        if apdu[:2] == b"\xc0\x02":
            return self.blocks.pop(0)
        reply = self.replies.get(apdu)
        if reply is None:                   # not scripted: the object is not there
            self.unknown.append(apdu)
            return xdlms.get_response(error=4) if apdu[0] == xdlms.GET_REQUEST else xdlms.exception()
        if isinstance(reply, list):
            self.blocks = reply[1:]
            return reply[0]
        return reply

    def _next(self):
        part = self.pending.pop(0)
        frame = self._f(hdlc.i_control(self.ns, self.nr), part, bool(self.pending))
        self.ns = (self.ns + 1) & 7
        return frame
