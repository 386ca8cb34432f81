"""CRC-16/X.25 (the FCS-16 of RFC 1662 and of IEC 62056-46 HDLC), table driven, no I/O.

fcs16(data, fcs=INIT) is the running value without the final complement; a frame that
carries its complemented FCS checks to GOOD. The meter link's framing, the flash queue's
records and HDLC all use this one table.
"""
import ustruct

try:
    from uarray import array as _array
except ImportError:
    try:
        from array import array as _array
    except ImportError:
        _array = None

INIT = 0xFFFF
GOOD = 0xF0B8
BLOCK = 512                 # octets read as words at a time (bounds the temporary copy)


def _tables():
    """Byte table of the reflected polynomial 0x8408, and the table that folds a 2nd octet."""
    one = []
    for index in range(256):
        value = index
        for _ in range(8):
            value = (value >> 1) ^ 0x8408 if value & 1 else value >> 1
        one.append(value)
    two = [(value >> 8) ^ one[value & 0xFF] for value in one]
    return tuple(one), tuple(two)


T1, T2 = _tables()


def _cast_words(code, data):
    return memoryview(data)[:len(data) & ~1].cast(code)


def _unpack_words(code, data):
    return ustruct.unpack_from("<%dH" % (len(data) >> 1), data, 0)


def _word_reader():
    """The fastest call reading bytes as little-endian 16-bit words: fn("H", data).

    MicroPython's array() copies the raw octets of a bytes object (dropping an odd tail);
    CPython's memoryview.cast reads them in place; any other interpreter uses ustruct.
    """
    if _array is not None:
        try:
            words = _array("H", b"\x01\x00\x02")
            if len(words) == 1 and words[0] == 1:
                return _array
        except (TypeError, ValueError):
            pass
    probe = memoryview(b"\x01\x00")
    if hasattr(probe, "cast") and probe.cast("H")[0] == 1:
        return _cast_words
    return _unpack_words


read_words = _word_reader()


def fcs16(data, fcs=INIT):
    """Running FCS-16 of data (bytes-like), continuing from fcs; no final complement.

    Two octets per step: x = fcs ^ word; fcs = T2[x & 255] ^ T1[x >> 8].
    """
    t1 = T1
    t2 = T2
    words = read_words
    if type(data) is not bytes:
        data = bytes(data)
    n = len(data)
    for off in range(0, n - 1, BLOCK):
        for word in words("H", data if n <= BLOCK else data[off:off + BLOCK]):
            x = fcs ^ word
            fcs = t2[x & 0xFF] ^ t1[x >> 8]
    if n & 1:
        fcs = (fcs >> 8) ^ t1[(fcs ^ data[n - 1]) & 0xFF]
    return fcs
