"""IEC 62056-47 WRAPPER: DLMS APDUs over TCP. No I/O.

    version (00 01) | source wPort | destination wPort | length | APDU      (all 16-bit, high first)

A client's wPort is its SAP, the server's its logical device. API: encode(src, dst, apdu);
decode(data) -> Packet or WrapperError; Receiver(max_apdu).feed(data) -> [Packet].
"""
VERSION = 1
HEADER = 8
MAX_APDU = 0xFFFF


class WrapperError(ValueError):
    """A WRAPPER packet that cannot be accepted."""


class Packet(object):
    __slots__ = ("src", "dst", "apdu")

    def __init__(self, src, dst, apdu):
        self.src = src
        self.dst = dst
        self.apdu = apdu

    def __repr__(self):
        return "Packet(src=%d dst=%d apdu=%d)" % (self.src, self.dst, len(self.apdu))


def _u16(value):
    return bytes(((value >> 8) & 0xFF, value & 0xFF))


def encode(src, dst, apdu):
    if len(apdu) > MAX_APDU:
        raise WrapperError("APDU too long: %d" % len(apdu))
    return _u16(VERSION) + _u16(src) + _u16(dst) + _u16(len(apdu)) + bytes(apdu)


def _header(data):
    version = (data[0] << 8) | data[1]
    if version != VERSION:
        raise WrapperError("WRAPPER version %d" % version)
    return (data[2] << 8) | data[3], (data[4] << 8) | data[5], (data[6] << 8) | data[7]


def decode(data):
    """Exactly one packet."""
    if len(data) < HEADER:
        raise WrapperError("truncated header: %d octets" % len(data))
    src, dst, length = _header(data)
    if len(data) != HEADER + length:
        raise WrapperError("length field %d, %d octets follow" % (length, len(data) - HEADER))
    return Packet(src, dst, bytes(data[HEADER:]))


class Receiver(object):
    """Packets from a TCP stream. A bad version or an APDU above max_apdu is a framing error
    (WrapperError): a stream has no way to resynchronise, the connection must be reset."""

    def __init__(self, max_apdu=MAX_APDU):
        self.max_apdu = max_apdu
        self._buf = b""
        self.stats = {"packets": 0}

    def reset(self):
        self._buf = b""

    @property
    def buffered(self):
        return len(self._buf)

    def feed(self, data):
        buf = self._buf + bytes(data) if self._buf else bytes(data)
        out = []
        while len(buf) >= HEADER:
            try:
                src, dst, length = _header(buf)
            except WrapperError:
                self._buf = b""
                raise
            if length > self.max_apdu:
                self._buf = b""
                raise WrapperError("APDU length %d above %d" % (length, self.max_apdu))
            if len(buf) < HEADER + length:
                break
            out.append(Packet(src, dst, buf[HEADER:HEADER + length]))
            self.stats["packets"] += 1
            buf = buf[HEADER + length:]
        self._buf = buf
        return out
