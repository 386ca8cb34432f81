"""Ed25519 signature verification (RFC 8032) in plain Python: big ints, 3-argument pow, a
pure SHA-512 (QuecPython's uhashlib has none). No I/O.

    ok = verify(public_key_32_bytes, message, signature_64_bytes)

Needs a firmware whose ints are arbitrary precision (MICROPY_LONGINT_IMPL_MPZ). OTA manifests
sign the body's SHA-256 (32 bytes), so the pure SHA-512 hashes one block. make bench times it
(tools/benches/ota.py); tools/ota/package.py signs with the same point arithmetic.
"""
P = (1 << 255) - 19
L = (1 << 252) + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
D2 = (2 * D) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

# -- SHA-512 (FIPS 180-4), plain Python ------------------------------------------------------
_M64 = (1 << 64) - 1
_K = None


def _primes(n):
    found = []
    c = 2
    while len(found) < n:
        if all(c % q for q in found if q * q <= c):
            found.append(c)
        c += 1
    return found


def _root_bits(value, k):
    """The first 64 fractional bits of value ** (1/k) (integer Newton iteration)."""
    scaled = value << (64 * k)
    x = 1 << ((scaled.bit_length() if hasattr(scaled, "bit_length") else 600) // k + 1)
    while True:
        y = ((k - 1) * x + scaled // (x ** (k - 1))) // k
        if y >= x:
            break
        x = y
    return x & _M64


def _constants():
    global _K
    if _K is None:
        primes = _primes(80)
        _K = [_root_bits(q, 3) for q in primes]
    return _K


_H0 = None


def _initial():
    global _H0
    if _H0 is None:
        _H0 = [_root_bits(q, 2) for q in _primes(8)]
    return _H0


def _rotr(x, n):
    return ((x >> n) | (x << (64 - n))) & _M64


def sha512(data):
    k = _constants()
    h = list(_initial())
    data = bytes(data)
    length = len(data) * 8
    padded = data + b"\x80" + b"\x00" * ((111 - len(data)) % 128) + length.to_bytes(16, "big")
    for start in range(0, len(padded), 128):
        w = [int.from_bytes(padded[start + 8 * i:start + 8 * i + 8], "big") for i in range(16)]
        for i in range(16, 80):
            a, b = w[i - 15], w[i - 2]
            s0 = _rotr(a, 1) ^ _rotr(a, 8) ^ (a >> 7)
            s1 = _rotr(b, 19) ^ _rotr(b, 61) ^ (b >> 6)
            w.append((w[i - 16] + s0 + w[i - 7] + s1) & _M64)
        a, b, c, d, e, f, g, hh = h
        for i in range(80):
            t1 = (hh + (_rotr(e, 14) ^ _rotr(e, 18) ^ _rotr(e, 41)) + ((e & f) ^ (~e & g)) +
                  k[i] + w[i]) & _M64
            t2 = ((_rotr(a, 28) ^ _rotr(a, 34) ^ _rotr(a, 39)) + ((a & b) ^ (a & c) ^ (b & c))) \
                & _M64
            hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & _M64, c, b, a, (t1 + t2) & _M64
        h = [(x + y) & _M64 for x, y in zip(h, (a, b, c, d, e, f, g, hh))]
    return b"".join(x.to_bytes(8, "big") for x in h)


# -- the curve: extended twisted Edwards coordinates (X, Y, Z, T), x*y = T/Z -------------------
def _add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * D2 * t2 % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(scalar, point):
    result = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _recover_x(y, sign):
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        if sign:
            raise ValueError("bad point")
        return 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        raise ValueError("not a point on the curve")
    if x & 1 != sign:
        x = P - x
    return x


def _decode_point(data):
    if len(data) != 32:
        raise ValueError("a point is 32 bytes")
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        raise ValueError("y out of range")
    x = _recover_x(y, sign)
    return (x, y, 1, x * y % P)


def _same(p1, p2):
    return (p1[0] * p2[2] - p2[0] * p1[2]) % P == 0 and (p1[1] * p2[2] - p2[1] * p1[2]) % P == 0


_BY = 4 * pow(5, P - 2, P) % P
_BX = _recover_x(_BY, 0)
BASE = (_BX, _BY, 1, _BX * _BY % P)


def verify(public, message, signature, hash512=sha512):
    """True if signature (64 bytes) is public's (32 bytes) Ed25519 signature of message."""
    if len(signature) != 64:
        return False
    try:
        a = _decode_point(public)
        r = _decode_point(signature[:32])
    except ValueError:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    h = int.from_bytes(hash512(bytes(signature[:32]) + bytes(public) + bytes(message)),
                       "little") % L
    return _same(_mul(s, BASE), _add(r, _mul(h, a)))


def encode_point(point):
    """The 32-byte encoding of a point (used by the host's signer)."""
    x, y, z, _t = point
    zinv = pow(z, P - 2, P)
    x, y = x * zinv % P, y * zinv % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def scalar_mult(scalar, point=None):
    """scalar times point (the base point by default)."""
    return _mul(scalar, BASE if point is None else point)
