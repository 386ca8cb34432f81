"""What each module the app imports keeps on the MicroPython heap: per import, the bytes still
allocated after it (a collection before and after; what its nested imports kept is theirs), the
total, and how much of the total is qstrs (micropython.qstr_info: the names and short strings
the modules intern). The rest is code objects, function and class objects, module and class
dicts, and whatever a module builds at import (tables, instances).

    python -m tools.benches.heap_modules [--mpy] [--app MODULE] [--config DEV_JSON] [--top N]
                                         [--json]

Runs on the MicroPython the runners use ($QFRAME_MICROPYTHON, e.g. a 32-bit 1.13 built like
the module's firmware, else the venv's 1.29), in one process with the shim loaded; --mpy
stages the device code as .mpy for it (as deploy compiles it). --app (default usr.app_main,
which also builds the meter app) is the module imported. Per-import figures need 1.19+ (1.13
gives a relative __import__ no globals, so it cannot be hooked): 1.13 prints the totals.
"""
import argparse
import json
import os
import subprocess
import sys

from tools.hostrun import board_root

ROOT = os.path.join(board_root.REPO, "build", "heap-modules")
# micropython.qstr_info() prints "qstr pool: n_pool=.., n_qstr=.., n_str_data_bytes=..,
# n_total_bytes=.." (1.13 and 1.29): the last is what the pools and strings hold on the heap.
PRELUDE = r'''
import sys, gc, micropython
import usys
sys.path[:0] = [%(root)r] + %(shims)r
import shimctl
shimctl.install_fs(%(root)r)
import usocket, machine, osTimer, net, checkNet, dataCall, sim, modem, misc, log, utime

'''
HOOK = r"""
import builtins
_real = builtins.__import__
_stack = []

def _qstrs():
    print("Q")
    micropython.qstr_info()

def _absolute(name, args):
    level = args[3] if len(args) > 3 else 0
    if not level:
        return name
    base = args[0]["__name__"]
    if "__path__" not in args[0]:
        level += 1
    for _ in range(level - 1):
        base = base.rsplit(".", 1)[0]
    return base + "." + name if name else base

def _hook(name, *args):
    before = len(sys.modules)
    if len(args) > 3 and args[3]:       # 1.13 resolves a relative name against the caller's
        name = _absolute(name, args)    # globals, which here are this script's: resolve it
        args = args[:3] + (0,)
    if name in sys.modules:
        return _real(name, *args)
    gc.collect()
    _qstrs()
    start = gc.mem_alloc()
    _stack.append(0)
    try:
        return _real(name, *args)
    finally:
        children = _stack.pop()
        if len(sys.modules) != before:
            gc.collect()
            total = gc.mem_alloc() - start
            print("M", name, total - children)
            _qstrs()
            print("E", name)
            if _stack:
                _stack[-1] += total

gc.collect()
_qstrs()
_first = gc.mem_alloc()
if usys.implementation.version >= (1, 19):    # 1.13 passes no globals to a relative
    builtins.__import__ = _hook                 # __import__: only the total there
__import__(%(app)r)
gc.collect()
print("T", gc.mem_alloc() - _first)
_qstrs()
"""


def _run(code):
    argv = board_root.interpreter_command("micropython") + ["-X", "heapsize=4M", "-c", code]
    run = subprocess.run(argv, capture_output=True, text=True, cwd=board_root.REPO)
    if run.returncode != 0:
        raise SystemExit("micropython failed:\n" + run.stdout + run.stderr)
    return run.stdout


def measure(app="usr.app_main", mpy=False, config=None):
    """([(import, bytes it kept itself, 0)] largest first, qstr bytes the imports added, bytes
    all of them kept). Each import that loaded something is measured around the real
    __import__ with a collection on both sides, less what nested imports kept (MicroPython
    1.19+; 1.13 passes no globals to a relative __import__ so only the totals are given)."""
    root = board_root.stage(ROOT, config=config, mpy=mpy)
    params = {"root": root, "shims": board_root.shim_paths("micropython"), "app": app}
    out = _run(PRELUDE % params + HOOK % params)
    rows = {}
    total = [int(line.split()[1]) for line in out.splitlines() if line.startswith("T ")][0]
    qstr = []           # n_total_bytes at each "Q" marker, in order
    opened = []         # the qstr figure when each import began
    for line in out.splitlines():
        if line == "Q":
            qstr.append(None)
        elif "n_total_bytes=" in line and qstr and qstr[-1] is None:
            qstr[-1] = int(line.rsplit("n_total_bytes=", 1)[1].split(",")[0])
            if len(opened) < len(qstr):
                opened.append(qstr[-1])
        elif line.startswith("M "):
            _, name, kept = line.split()
            rows[name] = [rows.get(name, [0, 0])[0] + int(kept), 0]
        elif line.startswith("E "):
            pass
    # qstr figures: the pool size after the whole app's imports, for the total
    rows = sorted(((name, kept, q) for name, (kept, q) in rows.items()), key=lambda r: -r[1])
    qstr_total = (qstr[-1] - qstr[0]) if len(qstr) >= 2 and None not in (qstr[0], qstr[-1]) \
        else 0
    return rows, qstr_total, total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mpy", action="store_true", help="the device code as .mpy")
    parser.add_argument("--app", default="usr.app_main", help="the module whose imports count")
    parser.add_argument("--config", help="a dev.json for the app (default: the repo's)")
    parser.add_argument("--top", type=int, default=0, help="only the N largest")
    parser.add_argument("--json", action="store_true", help="one JSON line instead")
    args = parser.parse_args(argv)
    config = None
    if args.config:
        with open(args.config) as f:
            config = json.load(f)
    rows, qstrs, total = measure(args.app, args.mpy, config)
    if args.json:
        print(json.dumps({"modules": dict((name, kept) for name, kept, _ in rows),
                          "total_bytes": total, "qstr_bytes": qstrs}, sort_keys=True))
        return 0
    print("%-44s %8s" % ("import (%s%s)" % (os.path.basename(board_root.find_micropython()),
                                            ", .mpy" if args.mpy else ""), "kept"))
    for name, kept, _ in rows[:args.top or None]:
        print("%-44s %8d" % (name, kept))
    print("%-44s %8d  (qstrs: %d of it)" % ("total (%d imports)" % len(rows), total, qstrs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
