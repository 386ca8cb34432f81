"""uzlib on CPython: the standard zlib module plus MicroPython's DecompIO stream."""
import zlib as _zlib
from zlib import *  # noqa: F401,F403


class DecompIO(object):
    """Decompress a stream while reading it: wbits < 0 raw deflate, 8..15 zlib, 24..31 gzip."""

    def __init__(self, stream, wbits=0, *_):
        self._stream = stream
        self._inflate = _zlib.decompressobj(wbits or 15)
        self._buffer = b""

    def read(self, size=-1):
        while size < 0 or len(self._buffer) < size:
            chunk = self._stream.read(4096)
            if not chunk:
                self._buffer += self._inflate.flush()
                break
            self._buffer += self._inflate.decompress(chunk)
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

from shimlib import firmware as _firmware  # noqa: E402

_firmware.prune(globals(), "uzlib")
