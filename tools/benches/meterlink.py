"""Receive-path benchmark of the meter link: decode + dispatch vs a bit-by-bit FCS baseline.

    python -m tools.benches.meterlink [BOARD_ROOT SHIM_PATHS] [--frames N] [--rounds R]
                                    [--read OCTETS]
    micropython tools/benches/meterlink.py build/board tools/shim:tools/shim/micropython

Streams of 0x2100 frames with 64..256-octet payloads are fed to a Decoder in --read sized
pieces (default 128: what a UART reader polling every ~10 ms gets at 115200 baud) and every
frame is dispatched through a Resolver. Streams: legacy; standard as the meter sends it (ACCM 0,
only 7E/7D escaped, like METER_LINK.md's vector); standard with every control character
escaped (our default transmit ACCM; reported, not part of the mix). The baseline is a naive
per-bit FCS loop over the same octets, timed in the same round right before the decoder, so
both see the same machine state. Per round the ratio is baseline time / decode time; the
figures are medians of the rounds (times: best of the rounds). Also swept: other read sizes,
and fcs16 alone over a whole stream (fcs16_ratio), and hostile streams fed in 8-octet reads
(issue 9.3: "nested", a long frame full of shorter ones; "flagged", every length ending on a
flag) beside a normal legacy stream in 8-octet reads (hostile_<name>_vs_normal: their rate over
the normal rate; target <= 3). Readable lines first, then one JSON line:
  <interp>_ratio    baseline / (decode + dispatch) time for the legacy + standard mix
  wire_time_share   (decode + dispatch) time / the octets' time on a 115200 8N1 line
"""
import sys

READ_SIZE = 128
SWEEP = (32, 64, 128, 256, 1024)
OCTET_US = 10.0 * 1e6 / 115200


MODULE_SLOWDOWN = (15, 30)      # the module's CPU against MicroPython unix on this PC


def on_module(value, digits=1):
    """[low, high]: a figure measured here, scaled to the module's CPU (MODULE_SLOWDOWN)."""
    return [round(value * MODULE_SLOWDOWN[0], digits), round(value * MODULE_SLOWDOWN[1], digits)]


def _setup_path(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    args = [a for i, a in enumerate(args) if i < 2 and not a.isdigit()]
    if len(args) >= 2:
        root, shims = args[0], args[1]
    else:
        repo = _dirname(_dirname(_dirname(__file__)))
        flavour = "micropython" if sys.implementation.name == "micropython" else "cpython"
        root = repo + "/build/board"
        shims = repo + "/tools/shim:" + repo + "/tools/shim/" + flavour
        if flavour == "cpython":
            sys.path.insert(0, repo)
            from tools.hostrun import board_root
            board_root.stage()
    for path in list(reversed(shims.split(":"))) + [root]:
        sys.path.insert(0, path)


def _dirname(path):
    if path in ("", "."):
        return ".."
    if "/" not in path:
        return "."
    return path.rsplit("/", 1)[0] or "/"


def _option(argv, name, default):
    for index in range(len(argv) - 1):
        if argv[index] == name:
            return int(argv[index + 1])
    return default


def naive_fcs(data):
    """The baseline: RFC 1662's FCS computed one bit at a time."""
    fcs = 0xFFFF
    for octet in data:
        fcs ^= octet
        for _ in range(8):
            if fcs & 1:
                fcs = (fcs >> 1) ^ 0x8408
            else:
                fcs >>= 1
    return fcs ^ 0xFFFF


def _payloads(count):
    """Deterministic pseudo-random payloads of 64..256 octets (an LCG: no random module)."""
    seed = 12345
    out = []
    for _ in range(count):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        size = 64 + seed % 193
        data = bytearray(size)
        for i in range(size):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            data[i] = (seed >> 16) & 0xFF
        out.append(bytes(data))
    return out


def _hostile(unhexlify):
    """The issue's adversarial legacy streams, about 40 KB each."""
    nested = unhexlify("7eff03002107f8") + unhexlify("7eff030021029a") * 292
    flagged = unhexlify("7eff03002107f3") * 300
    return (("nested", nested * 20), ("flagged", flagged * 20))


def _feed_rate(rfc1662, dialect, stream, read):
    """Octets per second decoding stream in read-sized pieces (best of 3)."""
    import utime
    view = memoryview(stream)
    chunks = [bytes(view[i:i + read]) for i in range(0, len(stream), read)]
    best = None
    for _ in range(3):
        decoder = rfc1662.Decoder(dialect)
        start = utime.ticks_us()
        for chunk in chunks:
            decoder.feed(chunk)
        elapsed = utime.ticks_diff(utime.ticks_us(), start)
        best = elapsed if best is None or elapsed < best else best
    return int(len(stream) * 1e6 / max(best, 1))


def _median(values):
    values = sorted(values)
    return values[len(values) // 2]


class _Bench(object):
    def __init__(self, rfc1662, resolver, frames):
        self.rfc1662 = rfc1662
        self.resolver = resolver
        self.frames = frames

    def decode(self, dialect, chunks):
        """Microseconds to decode and dispatch every frame of chunks."""
        import utime
        decoder = self.rfc1662.Decoder(dialect)
        dispatch = self.resolver.dispatch
        count = 0
        start = utime.ticks_us()
        for chunk in chunks:
            for frame in decoder.feed(chunk):
                dispatch(frame)
                count += 1
        elapsed = utime.ticks_diff(utime.ticks_us(), start)
        if count != self.frames or decoder.stats["frames"] != self.frames:
            raise SystemExit("decoded %d of %d frames: %r" % (count, self.frames, decoder.stats))
        return elapsed

    def baseline(self, stream):
        import utime
        start = utime.ticks_us()
        naive_fcs(stream)
        return utime.ticks_diff(utime.ticks_us(), start)

    def table_fcs(self, stream):
        import utime
        start = utime.ticks_us()
        self.rfc1662.fcs16(stream)
        return utime.ticks_diff(utime.ticks_us(), start)

    def rounds(self, dialect, stream, read, rounds):
        """[(baseline_us, decode_us)] per round."""
        import gc
        view = memoryview(stream)
        chunks = [bytes(view[i:i + read]) for i in range(0, len(stream), read)]
        out = []
        for _ in range(rounds):
            gc.collect()
            base = self.baseline(stream)
            gc.collect()
            out.append((base, self.decode(dialect, chunks)))
        return out


def main(argv):
    _setup_path(argv)
    import ujson
    from usr.qframe.codecs import meter, rfc1662
    from usr.qframe.protocols.resolver import Resolver

    frames = _option(argv, "--frames", 200)
    rounds = _option(argv, "--rounds", 9)
    read = _option(argv, "--read", READ_SIZE)
    interp = sys.implementation.name
    resolver = Resolver()
    received = [0]

    @resolver.register(meter.PROTO_TRANSPARENT)
    def to_hes(frame):
        received[0] += len(frame.payload)

    payloads = _payloads(frames)
    streams = [
        ("legacy", rfc1662.LEGACY, 0),
        ("standard", rfc1662.STANDARD, 0),
        ("standard_escaped", rfc1662.STANDARD, rfc1662.TX_ACCM),
    ]
    bench = _Bench(rfc1662, resolver, frames)
    version = ".".join(str(v) for v in sys.implementation.version[:3])
    results = {"interp": interp, "version": version, "frames": frames, "rounds": rounds,
               "read_size": read, "payload_octets": sum(len(p) for p in payloads)}
    print("meter-link receive path on %s %s: %d frames, payloads 64..256 octets, %d-octet "
          "reads, %d rounds" % (interp, version, frames, read, rounds))
    data = {}

    def make_stream(dialect, accm):
        # built when needed and dropped after: a big live heap slows MicroPython's allocator
        return b"".join(rfc1662.encode(0x2100, 0xBF, p, dialect, accm) for p in payloads)

    for name, dialect, accm in streams:
        stream = make_stream(dialect, accm)
        per_round = bench.rounds(dialect, stream, read, rounds)
        decode_us = min(d for _, d in per_round)
        base_us = min(b for b, _ in per_round)
        octets = len(stream)
        figures = {
            "octets": octets,
            "decode_us": decode_us,
            "baseline_us": base_us,
            "frames_per_s": int(frames * 1e6 / decode_us),
            "bytes_per_s": int(octets * 1e6 / decode_us),
            "baseline_bytes_per_s": int(octets * 1e6 / base_us),
            "ratio": round(_median([b / d for b, d in per_round]), 2),
            "wire_time_share": round(decode_us / (octets * OCTET_US), 5),
        }
        results[name] = figures
        data[name] = per_round
        stream = None
        print("  %-16s %6d octets | decode+dispatch %6d us %6d frames/s %8d B/s | bitwise FCS "
              "%6d us %7d B/s | ratio %5.2fx | wire %.3f%%"
              % (name, octets, decode_us, figures["frames_per_s"], figures["bytes_per_s"],
                 base_us, figures["baseline_bytes_per_s"], figures["ratio"],
                 figures["wire_time_share"] * 100))
    mix = [(b1 + b2, d1 + d2) for (b1, d1), (b2, d2)
           in zip(data["legacy"], data["standard"])]
    mix_octets = results["legacy"]["octets"] + results["standard"]["octets"]
    mix_decode = results["legacy"]["decode_us"] + results["standard"]["decode_us"]
    results[interp + "_ratio"] = round(_median([b / d for b, d in mix]), 2)
    results["wire_time_share"] = round(mix_decode / (mix_octets * OCTET_US), 5)
    results["frames_per_s"] = int(2 * frames * 1e6 / mix_decode)
    results["bytes_per_s"] = int(mix_octets * 1e6 / mix_decode)
    sweep = {}
    for size in SWEEP:
        ratios = []
        for dialect in (rfc1662.LEGACY, rfc1662.STANDARD):
            stream = make_stream(dialect, 0)
            ratios.append(bench.rounds(dialect, stream, size, max(3, rounds // 3)))
            stream = None
        sweep[str(size)] = round(_median([(b1 + b2) / (d1 + d2) for (b1, d1), (b2, d2)
                                          in zip(ratios[0], ratios[1])]), 2)
    results["ratio_by_read_size"] = sweep
    stream = make_stream(rfc1662.LEGACY, 0)
    fcs_rounds = []
    for _ in range(rounds):
        base = bench.baseline(stream)
        fcs_rounds.append(base / bench.table_fcs(stream))
    stream = None
    results["fcs16_ratio"] = round(_median(fcs_rounds), 2)
    print("  mix legacy+standard: %s_ratio %.2fx (target >= 10x on micropython), "
          "wire_time_share %.3f%% (target < 2%%), %d frames/s, %d B/s"
          % (interp, results[interp + "_ratio"], results["wire_time_share"] * 100,
             results["frames_per_s"], results["bytes_per_s"]))
    print("  mix ratio by read size: %s" % ", ".join("%d: %.2fx" % (s, sweep[str(s)])
                                                     for s in SWEEP))
    print("  rfc1662.fcs16 alone over the legacy stream: fcs16_ratio %.2fx"
          % results["fcs16_ratio"])
    import ubinascii
    normal = _feed_rate(rfc1662, rfc1662.LEGACY, make_stream(rfc1662.LEGACY, 0), 8)
    hostile = {"normal_8_bytes_per_s": normal}
    for name, stream in _hostile(ubinascii.unhexlify):
        for dialect in (rfc1662.LEGACY, rfc1662.STANDARD):
            rate = _feed_rate(rfc1662, dialect, stream, 8)
            hostile["%s_%s_bytes_per_s" % (name, dialect)] = rate
            hostile["%s_%s_vs_normal" % (name, dialect)] = round(normal / rate, 2)
    results["hostile"] = hostile
    print("  hostile streams, 8-octet reads: normal legacy %d B/s; %s" % (normal, ", ".join(
        "%s %s %d B/s (%.2fx slower)" % (name, dialect, hostile["%s_%s_bytes_per_s" % (
            name, dialect)], hostile["%s_%s_vs_normal" % (name, dialect)])
        for name in ("nested", "flagged") for dialect in (rfc1662.LEGACY, rfc1662.STANDARD))))
    print(ujson.dumps(results))


if __name__ == "__main__":
    main(sys.argv)
