"""Ed25519 signature verification (RFC 8032) in plain Python: big ints, 3-argument pow, a
pure SHA-512 (QuecPython's uhashlib has none). No I/O.

    ok = verify(public_key_32_bytes, message, signature_64_bytes)

Needs a firmware whose ints are arbitrary precision (MICROPY_LONGINT_IMPL_MPZ). OTA manifests
sign the body's SHA-256 (32 bytes), so the pure SHA-512 hashes one block. make bench times it
(tools/benches/ota.py); tools/ota/package.py signs with the same point arithmetic.

No big-int division anywhere (no `%`, `//`, 3-argument pow): MicroPython 1.13's long division
gives wrong results for some operands (micropython#6777, fixed in 1.14), so QuecPython's
firmware would reject good signatures. Reductions use 2**255 = 19 (mod P) and 2**252 = -C
(mod L); roots are found bit by bit.
"""
P = (1 << 255) - 19
C = 27742317777372353535851937790883648493
L = (1 << 252) + C
_M255 = (1 << 255) - 1
_M252 = (1 << 252) - 1


def _mod_p(x):
    """x mod P for x >= 0, without division."""
    while x >> 255:
        x = (x & _M255) + 19 * (x >> 255)
    return x - P if x >= P else x


def _mod_l(x):
    """x mod L for x >= 0, without division."""
    sign = 1
    while x >> 253:
        x = (x & _M252) - C * (x >> 252)
        if x < 0:
            x = -x
            sign = -sign
    if sign < 0:
        x = -x
    while x < 0:
        x += L
    while x >= L:
        x -= L
    return x


def _pow_p(base, exponent):
    """base ** exponent mod P (square and multiply)."""
    result = 1
    while exponent:
        if exponent & 1:
            result = _mod_p(result * base)
        exponent >>= 1
        base = _mod_p(base * base)
    return result


# -121665/121666, sqrt(-1) and the base point's y = 4/5, all mod P (tests check each)
D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
D2 = _mod_p(2 * D)
SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752

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
    """The first 64 fractional bits of value ** (1/k), value < 512 (bit by bit: no division)."""
    scaled = value << (64 * k)
    x = 0
    bit = 1 << 73
    while bit:
        if (x | bit) ** k <= scaled:
            x |= bit
        bit >>= 1
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
    a = _mod_p((y1 - x1 + P) * (y2 - x2 + P))
    b = _mod_p((y1 + x1) * (y2 + x2))
    c = _mod_p(_mod_p(t1 * D2) * t2)
    d = _mod_p(2 * z1 * z2)
    e, f, g, h = b - a + P, d - c + P, d + c, b + a
    return (_mod_p(e * f), _mod_p(g * h), _mod_p(f * g), _mod_p(e * h))


def _mul(scalar, point):
    result = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _recover_x(y, sign):
    yy = _mod_p(y * y)
    x2 = _mod_p((yy + P - 1) * _pow_p(_mod_p(D * yy) + 1, P - 2))
    if x2 == 0:
        if sign:
            raise ValueError("bad point")
        return 0
    x = _pow_p(x2, (P + 3) >> 3)
    if _mod_p(x * x) != x2:
        x = _mod_p(x * SQRT_M1)
    if _mod_p(x * x) != x2:
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
    return (x, y, 1, _mod_p(x * y))


def _same(p1, p2):
    return (_mod_p(p1[0] * p2[2]) == _mod_p(p2[0] * p1[2]) and
            _mod_p(p1[1] * p2[2]) == _mod_p(p2[1] * p1[2]))


_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960
_BX = _recover_x(_BY, 0)
BASE = (_BX, _BY, 1, _mod_p(_BX * _BY))


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
    h = _mod_l(int.from_bytes(hash512(bytes(signature[:32]) + bytes(public) + bytes(message)),
                              "little"))
    return _same(_mul(s, BASE), _add(r, _mul(h, a)))


def encode_point(point):
    """The 32-byte encoding of a point (used by the host's signer)."""
    x, y, z, _t = point
    zinv = _pow_p(z, P - 2)
    x, y = _mod_p(x * zinv), _mod_p(y * zinv)
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def scalar_mult(scalar, point=None):
    """scalar times point (the base point by default)."""
    return _mul(scalar, BASE if point is None else point)
