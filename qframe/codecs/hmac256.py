"""HMAC-SHA256 (RFC 2104) over uhashlib.sha256, which QuecPython has; no `hmac` module needed.

    mac = hmac_sha256(key, data)            # 32 bytes
    h = Hmac(key); h.update(a); h.update(b); h.digest()
    equal(a, b)                             # compare MACs without an early exit
"""
import uhashlib

BLOCK = 64


def pads(key):
    """(inner, outer): the key's two 64-byte pads (Hmac makes them at each start; a caller
    signing many messages with one key keeps them)."""
    if len(key) > BLOCK:
        h = uhashlib.sha256(key)
        key = h.digest()
    key = bytes(key) + bytes(BLOCK - len(key))
    inner = bytes(b ^ 0x36 for b in key)
    outer = bytes(b ^ 0x5C for b in key)
    return inner, outer


class Hmac(object):
    """Incremental HMAC-SHA256; digest() may be called once (uhashlib's rule)."""

    def __init__(self, key):
        inner, self._outer = pads(key)
        self._inner = uhashlib.sha256(inner)

    def update(self, data):
        self._inner.update(data)

    def digest(self):
        outer = uhashlib.sha256(self._outer)
        outer.update(self._inner.digest())
        return outer.digest()


def hmac_sha256(key, data):
    """The 32-byte HMAC-SHA256 of data under key."""
    h = Hmac(key)
    h.update(data)
    return h.digest()


def equal(a, b):
    """True if the byte strings are equal; the time does not depend on where they differ."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0
