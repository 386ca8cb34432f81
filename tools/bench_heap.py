"""Heap cost of the framework on MicroPython: bytes each qframe module keeps after import, and
the heap the meter-link receive path needs, proven by running it inside a fixed -X heapsize.

    python tools/bench_heap.py          (drives .venv's micropython; prints figures + a JSON line)

Figures come from MicroPython unix (64-bit: objects are about twice their size on the module's
32-bit build). The shim modules are imported before the first measurement, so they are not
counted. The receive-path proof decodes and dispatches 500 frames with nothing but the codec
and the resolver loaded, in the smallest heap of 32/48/64/96/128 KB where it completes.
"""
import json
import os
import subprocess
import sys

import board

MODULES = ["logging", "config", "bus", "ext", "threads", "app", "rfc1662", "meter", "resolver",
           "uart", "backoff", "hesproto", "pqueue", "tls", "tcp", "network"]
PROBE = r'''
import sys, gc
if %(mode)r == "modules":
    sys.path[:0] = [%(root)r] + %(shims)r
    import shimctl
    shimctl.install_fs(%(root)r)
    import usocket, machine, osTimer
    gc.collect()
    base = gc.mem_alloc()
    for name in %(modules)r:
        __import__("usr.qframe." + name)
        gc.collect()
        now = gc.mem_alloc()
        print("heap", name, now - base)
        base = now
else:
    sys.path[:0] = [%(root)r]   # the codec needs no shim: only built-in u-modules
    from usr.qframe import rfc1662, resolver
    frame = rfc1662.encode(0x2100, 0xBF, b"x" * 200)
    decoder = rfc1662.Decoder("legacy")
    registry = resolver.Resolver()
    got = [0]

    def count(item):
        got[0] += 1

    registry.register(0x2100)(count)
    for _ in range(500):
        for item in decoder.feed(frame):
            registry.dispatch(item)
    assert got[0] == 500
    print("receive path ok")
'''


def _micropython(code, heap=None):
    argv = board.interpreter_command("micropython")
    if heap:
        argv += ["-X", "heapsize=%s" % heap]
    return subprocess.run(argv + ["-c", code], capture_output=True, text=True)


def _stage_without_init():
    """A board root whose usr/qframe has every module but an empty __init__.py, so each module
    is measured alone."""
    root = os.path.join(board.REPO, "build", "heap-board")
    package = os.path.join(root, "usr", "qframe")
    os.makedirs(package, exist_ok=True)
    source = os.path.join(board.REPO, "qframe")
    for name in os.listdir(source):
        if name.endswith(".py") and name != "__init__.py":
            target = os.path.join(package, name)
            if not os.path.lexists(target):
                os.symlink(os.path.join(source, name), target)
    open(os.path.join(package, "__init__.py"), "w").close()
    return root


def main():
    params = {"root": _stage_without_init(), "shims": board.shim_paths("micropython"),
              "modules": MODULES}
    result = _micropython(PROBE % dict(params, mode="modules"))
    if result.returncode != 0:
        print(result.stdout + result.stderr)
        return 1
    figures = {}
    for line in result.stdout.splitlines():
        if line.startswith("heap "):
            _, name, size = line.split()
            figures[name] = int(size)
            print("  %-10s %6d bytes kept after import (from source)" % (name, int(size)))
    groups = {"core": MODULES[:6], "meter_link": MODULES[6:10], "cloud_link": MODULES[10:]}
    summary = dict((group + "_bytes", sum(figures[m] for m in names))
                   for group, names in groups.items())
    for heap_kb in (32, 48, 64, 96, 128):
        if _micropython(PROBE % dict(params, mode="receive"), "%dK" % heap_kb).returncode == 0:
            summary["receive_path_min_heap_kb"] = heap_kb
            break
    summary["total_bytes"] = sum(figures.values())
    for key in sorted(summary):
        print("  %s: %s" % (key, summary[key]))
    print(json.dumps(dict(summary, modules=figures), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
