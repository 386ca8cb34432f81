"""Costs of authenticated data on the module's interpreter (issue 20): the MAC each record
carries (qframe/codecs/cmdauth.record_mac), a signed event and a signed `status`-size reply
(seal_json), with the heap each leaves behind, and what an Ed25519 signature per meter reading
would cost (three SHA-512 and a base-point multiplication: qframe/codecs/ed25519.py).

    python -m tools.benches.auth                                   (CPython)
    micropython tools/benches/auth.py build/board tools/shim:tools/shim/micropython

Times are the median of the rounds in microseconds on this PC; on MicroPython the module's
range (15-30x slower) is added. Readable lines first, then one JSON line.
"""
import sys

try:
    from tools.benches.meterlink import MODULE_SLOWDOWN, _setup_path, on_module
except ImportError:                                     # micropython tools/benches/auth.py
    from meterlink import MODULE_SLOWDOWN, _setup_path, on_module


def _median_us(fn, rounds):
    import utime
    times = []
    for _ in range(rounds):
        start = utime.ticks_us()
        fn()
        times.append(utime.ticks_diff(utime.ticks_us(), start))
    times.sort()
    return times[rounds // 2]


def _garbage(fn):
    """Heap one call allocates (MicroPython: gc.mem_alloc before and after, no collection in
    between; None elsewhere)."""
    import gc
    if not hasattr(gc, "mem_alloc"):
        return None
    gc.collect()
    before = gc.mem_alloc()
    fn()
    return gc.mem_alloc() - before


def main(argv):
    _setup_path(argv)
    import ujson
    from usr.qframe.codecs import cmdauth, ed25519

    interp = sys.implementation.name
    key, dev, kid = bytes(range(32)), "860000000000001", "k1"
    record = b"M" + b"0" * 39                                  # make sim's 40-byte payload
    big = bytes(range(256))
    status = ujson.dumps({"id": 7, "cmd": "status", "ok": True, "result": {
        "ext%d" % i: {"counter%d" % j: j for j in range(12)} for i in range(24)}})
    event = ujson.dumps({"event": "dlms.readings", "data": {"1.0.1.8.0.255": 12345.6}})

    signer = cmdauth.RecordSigner(key, dev, kid)          # what the module keeps per key

    def mac40():
        signer.mac(1765150000, 42, record)

    results = {
        "interpreter": interp,
        "record_mac_us": _median_us(mac40, 200),
        "record_mac_256_us": _median_us(lambda: signer.mac(1765150000, 42, big), 200),
        "event_seal_us": _median_us(
            lambda: cmdauth.seal_json(key, "evt", dev, kid, 5, event), 100),
        "status_bytes": len(status),
        "status_seal_us": _median_us(
            lambda: cmdauth.seal_json(key, "res", dev, kid, 5, status), 50),
        "record_mac_bytes": cmdauth.DATA_MAC_BYTES,
        "record_mac_heap_bytes": _garbage(mac40),
        "status_seal_heap_bytes": _garbage(
            lambda: cmdauth.seal_json(key, "res", dev, kid, 5, status)),
    }
    # Ed25519 signing: three SHA-512 (pure Python here: uhashlib has none) and one base-point
    # multiplication; the scalar's reduction and the encoding are negligible beside them
    rounds = 3
    mult_us = _median_us(lambda: ed25519.scalar_mult(0x1234567890abcdef << 190), rounds)
    sha_us = _median_us(lambda: ed25519.sha512(bytes(96)), rounds)
    results["ed25519_sign_ms"] = round((mult_us + 3 * sha_us) / 1000.0, 1)
    print("  %s: record MAC (%d bytes) over 40 bytes %d us, over 256 bytes %d us; heap %s bytes"
          % (interp, cmdauth.DATA_MAC_BYTES, results["record_mac_us"],
             results["record_mac_256_us"], results["record_mac_heap_bytes"]))
    print("  %s: signed event %d us; signed status reply (%d bytes) %d us, heap %s bytes"
          % (interp, results["event_seal_us"], len(status), results["status_seal_us"],
             results["status_seal_heap_bytes"]))
    print("  %s: Ed25519 signature per reading (3 SHA-512 + a scalar multiplication) %.1f ms"
          % (interp, results["ed25519_sign_ms"]))
    if interp == "micropython":
        low, high = MODULE_SLOWDOWN
        results["record_mac_module_ms"] = on_module(results["record_mac_us"] / 1000.0, 2)
        results["ed25519_sign_module_s"] = on_module(results["ed25519_sign_ms"] / 1000.0)
        print("  module (%d-%dx slower): record MAC %.2f-%.2f ms; Ed25519 per reading "
              "%.1f-%.1f s" % (low, high, results["record_mac_module_ms"][0],
                               results["record_mac_module_ms"][1],
                               results["ed25519_sign_module_s"][0],
                               results["ed25519_sign_module_s"][1]))
    print(ujson.dumps(results))


if __name__ == "__main__":
    main(sys.argv)
