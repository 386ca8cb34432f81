"""Long fuzz run with atheris (coverage guided): `make fuzz` or

    python tests/fuzz/run.py [--target NAME] [--runs N] [--seconds S] [libFuzzer flags...]

Without --target, the first input octet picks the target, so one run covers them all. Hangs
(-timeout, seconds per input) and memory (-rss_limit_mb) are libFuzzer's checks; a crash
leaves its input as crash-<hash> in the current directory (build/fuzz for `make fuzz`):
replay it with `python tests/fuzz/run.py crash-<hash>`, fix, and keep it (without its first
octet, the target selector) as tests/fuzz/crashes/<target>-<what> so `make test` replays it.
libFuzzer ends with "Done N runs in S second(s)".
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import targets  # noqa: E402

targets.setup_paths()
try:
    import atheris
except ImportError:
    sys.exit("make fuzz needs atheris (requirements-dev.txt installs it on Linux x86-64); "
             "elsewhere `pytest tests/fuzz` runs every target under hypothesis")

from usr.qframe import logging  # noqa: E402

logging.basicConfig(level=logging.CRITICAL)     # handlers log every bad input: keep it quiet

with atheris.instrument_imports():
    import usr.qframe.codecs.rfc1662  # noqa: F401,E402
    import usr.qframe.codecs.meter  # noqa: F401,E402
    import usr.qframe.codecs.hes  # noqa: F401,E402
    import usr.qframe.protocols.resolver  # noqa: F401,E402
    import usr.qframe.core.config  # noqa: F401,E402
    import usr.qframe.codecs.hdlc  # noqa: F401,E402
    import usr.qframe.codecs.wrapper  # noqa: F401,E402
    import usr.qframe.codecs.axdr  # noqa: F401,E402
    import usr.qframe.codecs.acse  # noqa: F401,E402
    import usr.qframe.codecs.xdlms  # noqa: F401,E402
    import usr.qframe.protocols.dlms  # noqa: F401,E402
    import usr.qframe.store.pqueue  # noqa: F401,E402


def main(argv):
    names = sorted(targets.TARGETS)
    chosen = None
    args = [argv[0]]
    i = 1
    while i < len(argv):
        if argv[i] == "--target":
            chosen = targets.TARGETS[argv[i + 1]]
            i += 2
        elif argv[i] == "--runs":
            args.append("-runs=%s" % argv[i + 1])
            i += 2
        elif argv[i] == "--seconds":
            args.append("-max_total_time=%s" % argv[i + 1])
            i += 2
        else:
            args.append(argv[i])
            i += 1
    for flag in ("-timeout=10", "-rss_limit_mb=1024", "-max_len=4096"):
        if not any(a.startswith(flag.split("=")[0] + "=") for a in args):
            args.append(flag)

    def one(data):
        if chosen is not None:
            chosen(data)
        elif data:
            targets.TARGETS[names[data[0] % len(names)]](data[1:])

    atheris.Setup(args, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
