"""`make bench`: every benchmark on CPython and MicroPython, then one JSON line of all figures.

Each bench prints readable figures and ends with one JSON line; this runner shows the figures
as they come and merges the JSON lines under the bench's name and interpreter.
"""
import json
import os
import subprocess
import sys

from tools.hostrun import board

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM_MP = ":".join(board.shim_paths("micropython"))


def _benches():
    """(name, argv) for every run: the codec in-process on each interpreter, the UART and cloud
    benches as host drivers that start the app on each interpreter themselves."""
    py = [sys.executable, "-m"]
    micropython = board.interpreter_command("micropython")
    return [
        ("meterlink.cpython", py + ["tools.benches.meterlink"]),
        ("meterlink.micropython", micropython + [os.path.join(HERE, "meterlink.py"),
                                                 board.DEFAULT_ROOT, SHIM_MP]),
        ("uart.cpython", py + ["tools.benches.uart", "--interpreter", "cpython"]),
        ("uart.micropython", py + ["tools.benches.uart", "--interpreter", "micropython"]),
        ("cloud", py + ["tools.benches.cloud", "--interpreters", "cpython,micropython"]),
        ("heap.micropython", py + ["tools.benches.heap"]),
        ("ota.cpython", py + ["tools.benches.ota"]),
        ("ota.micropython", micropython + [os.path.join(HERE, "ota.py"), board.DEFAULT_ROOT,
                                           SHIM_MP]),
    ]


def run_bench(argv):
    """Run one bench; its JSON figures, or None having said why not."""
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=board.REPO)
    sys.stdout.write(result.stdout)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        print("bench failed (exit code %d): %s" % (result.returncode, " ".join(argv)))
        return None
    return json.loads(lines[-1])


def main():
    board.stage()
    figures = {}
    failed = 0
    for name, argv in _benches():
        print("== %s" % name, flush=True)
        result = run_bench(argv)
        if result is None:
            failed += 1
        else:
            figures[name] = result
    print(json.dumps(figures, sort_keys=True))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
