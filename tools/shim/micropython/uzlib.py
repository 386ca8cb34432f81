"""uzlib for MicroPython builds that only have `deflate` (1.21+): DecompIO over DeflateIO."""
import deflate


def DecompIO(stream, wbits=0, *_):
    """wbits < 0 raw deflate, 8..15 zlib, 24..31 gzip (uzlib's meaning)."""
    if wbits < 0:
        return deflate.DeflateIO(stream, deflate.RAW, -wbits)
    if wbits > 15:
        return deflate.DeflateIO(stream, deflate.GZIP, wbits - 16)
    return deflate.DeflateIO(stream, deflate.ZLIB, wbits)
