"""The portable suite on MicroPython, once per firmware line, the lines at the same time.

    python -m tools.testing.portable_lines MICROPYTHON HEAP LINE [LINE...]

Each line gets its own board root (build/board-mp-LINE) and process; its output is printed as a
block when all are done, in the order given, each ending `N passed, N failed`. Exit 0 only if
every line passed. (`make test-mp` runs it; the tests wait on their own events, so two lines at
once take the time of one.)
"""
import os
import subprocess
import sys

from tools.hostrun import board_root

SHIM_MP = "tools/shim:tools/shim/micropython"
TESTS = "tests/portable:tests/shim"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    exe, heap, lines = argv[0], argv[1], argv[2:]
    runs = []
    for line in lines:
        root = os.path.join(board_root.REPO, "build", "board-mp-" + line)
        board_root.stage(root)
        log = open(os.path.join(board_root.REPO, "build", "test-mp-%s.log" % line), "w+")
        proc = subprocess.Popen(
            [exe, "-X", "heapsize=" + heap, "tools/testing/run_portable.py", root, SHIM_MP, TESTS],
            cwd=board_root.REPO, stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, QFRAME_FIRMWARE=line))
        runs.append((line, proc, log))
    failed = []
    for line, proc, log in runs:
        code = proc.wait()
        log.seek(0)
        print("MicroPython, firmware line %s:" % line)
        sys.stdout.write(log.read())
        log.close()
        if code != 0:
            failed.append(line)
    if failed:
        print("MicroPython run FAILED on firmware line(s) %s" % ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
