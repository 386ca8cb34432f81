"""The flash queue's corruption fuzzer, seed by seed, with its figures per kind of damage:

    python tests/fuzz/pqueue_files.py [--seeds N] [--first S]     (make fuzz runs it)

Each of N seeds runs once per kind (tests/portable/pqueue_corrupt.py KINDS and "multi"); a
table of cases, records written, records lost, lost and uncounted, counted twice, epoch resets.
Exit 1 if a case broke an invariant or lost records uncounted (single kinds: exactly counted).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import targets  # noqa: E402

targets.setup_paths()

import pqueue_corrupt  # noqa: E402
from checks import fresh_folder  # noqa: E402
from usr.qframe import logging  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--first", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    folder = fresh_folder("/usr/fuzz", "pqueue_files")
    seeds = range(args.first, args.first + args.seeds)
    failed = 0
    print("%-14s %6s %8s %6s %10s %11s %12s %7s" % ("kind", "cases", "records", "lost",
                                                  "uncounted", "overcounted", "head+seg unc",
                                                  "epochs"))
    for kind in pqueue_corrupt.KINDS + ("multi",):
        try:
            t = pqueue_corrupt.run_cases(folder, seeds, (kind,))
        except AssertionError as exc:
            print("%-14s invariant broken: %s" % (kind, exc))
            failed += 1
            continue
        failed += t["uncounted"] > 0 or t["overcounted"] > 0
        print("%-14s %6d %8d %6d %10d %11d %12d %7d" % (
            kind, t["cases"], t["records"], t["missing"], t["uncounted"], t["overcounted"],
            t["uncounted_with_head_damage"], t["epoch_reset"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
