"""`make bench`: every benchmark on CPython and MicroPython, then one JSON line of all figures.

Each bench script prints readable figures and ends with one JSON line; this runner shows the
figures as they come and merges the JSON lines, prefixing keys with the bench's name.
"""
import json
import os
import subprocess
import sys

import board

TOOLS = os.path.dirname(os.path.abspath(__file__))
BENCHES = ["bench_meterlink.py", "bench_uart.py", "bench_cloud.py"]


def run_bench(script, interpreter):
    """Run one bench script; returns its JSON figures (or None, having said why)."""
    argv = [sys.executable, os.path.join(TOOLS, script), "--interpreter", interpreter]
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(result.stdout)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        print("bench %s (%s) failed with exit code %d" % (script, interpreter, result.returncode))
        return None
    return json.loads(lines[-1])


def main(argv=None):
    board.stage()
    figures = {}
    failed = 0
    for script in BENCHES:
        if not os.path.exists(os.path.join(TOOLS, script)):
            continue
        for interpreter in ("cpython", "micropython"):
            print("== %s on %s" % (script, interpreter))
            result = run_bench(script, interpreter)
            if result is None:
                failed += 1
                continue
            prefix = script[len("bench_"):-len(".py")]
            for key in sorted(result):
                figures["%s.%s" % (prefix, key)] = result[key]
    print(json.dumps(figures, sort_keys=True))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
