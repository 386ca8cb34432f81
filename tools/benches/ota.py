"""OTA costs: HMAC-SHA256 of a manifest, SHA-256 file verification, and the pure-Python Ed25519
verify (qframe/codecs/ed25519.py) scaled to the module's CPU.

    python -m tools.benches.ota                                    (CPython)
    micropython tools/benches/ota.py build/board tools/shim:tools/shim/micropython

The module's CPU is taken as 15-30x slower than MicroPython unix on this PC (the range the
project uses); the Ed25519 figure is the median of the rounds, the others the best. Readable
lines first, then one JSON line.
"""
import sys

try:
    from tools.benches.meterlink import MODULE_SLOWDOWN, _setup_path, on_module
except ImportError:                                     # micropython tools/benches/ota.py
    from meterlink import MODULE_SLOWDOWN, _setup_path, on_module
# RFC 8032 section 7.1, test 1 (empty message): verify() is timed on a wrong message, which
# costs the same arithmetic
RFC_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC_SIGNATURE = ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
                 "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


def _timed(fn, rounds):
    import utime
    times = []
    for _ in range(rounds):
        start = utime.ticks_us()
        fn()
        times.append(utime.ticks_diff(utime.ticks_us(), start))
    times.sort()
    return times


def main(argv):
    _setup_path(argv)
    import ujson
    import uhashlib
    from usr.qframe.codecs.hmac256 import hmac_sha256
    from usr.qframe.codecs.ota_manifest import seal, verify
    import ubinascii
    from usr.qframe.codecs import ed25519

    interp = sys.implementation.name
    key = b"k" * 32
    entry = '{"path": "/usr/qframe/module%d.py", "size": 31234, "sha256": "' + "ab" * 32 + '"}'
    body = ('{"app": "meter-module", "version": "1.1.0", "min_framework": "0.2.0", '
            '"files": [%s], "delete": []}' % ", ".join([entry % i for i in range(40)])).encode()
    blob = seal(body, "fleet", key)
    keys = {"fleet": key}
    data = bytes(range(256)) * 256                           # 64 KB

    hmac_us = _timed(lambda: hmac_sha256(key, body), 20)[0]
    verify_us = _timed(lambda: verify(blob, keys, "meter-module", "1.0.0", "0.2.0"), 10)[0]
    sha_us = _timed(lambda: uhashlib.sha256(data).digest(), 10)[0]
    hmac64_us = _timed(lambda: hmac_sha256(key, data), 10)[0]
    public = ubinascii.unhexlify(RFC_PUBLIC)
    signature = ubinascii.unhexlify(RFC_SIGNATURE)
    assert ed25519.verify(public, b"", signature)
    digest = uhashlib.sha256(body).digest()        # a signature covers the body's SHA-256
    rounds = 5
    ed_times = _timed(lambda: ed25519.verify(public, digest, signature), rounds)
    ed_ms = ed_times[rounds // 2] / 1000.0
    results = {
        "interpreter": interp,
        "manifest_bytes": len(body),
        "hmac_manifest_us": hmac_us,
        "manifest_verify_us": verify_us,
        "sha256_mb_per_s": round(len(data) / sha_us, 2),
        "hmac_64k_mb_per_s": round(len(data) / hmac64_us, 2),
        "ed25519_verify_ms": round(ed_ms, 1),
    }
    print("  %s: manifest of %d bytes: HMAC-SHA256 %d us, full check (MAC, JSON, fields) %d us"
          % (interp, len(body), hmac_us, verify_us))
    print("  %s: SHA-256 file check %.1f MB/s, HMAC over 64 KB %.1f MB/s"
          % (interp, results["sha256_mb_per_s"], results["hmac_64k_mb_per_s"]))
    print("  %s: pure-Python Ed25519 verify %.1f ms (median of %d)" % (interp, ed_ms, rounds))
    if interp == "micropython":
        low, high = MODULE_SLOWDOWN
        results["ed25519_module_s"] = on_module(ed_ms / 1000.0, 2)
        results["manifest_verify_module_ms"] = on_module(verify_us / 1000.0)
        print("  module (%d-%dx slower): Ed25519 verify %.1f-%.1f s; HMAC manifest check "
              "%.1f-%.1f ms" % (low, high, results["ed25519_module_s"][0],
                                results["ed25519_module_s"][1],
                                results["manifest_verify_module_ms"][0],
                                results["manifest_verify_module_ms"][1]))
    print(ujson.dumps(results))


if __name__ == "__main__":
    main(sys.argv)
