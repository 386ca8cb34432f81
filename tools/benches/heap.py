"""Heap cost of the framework on MicroPython: bytes kept after `import usr.qframe` (the core
alone, extensions load lazily), after each part an app adds, and the heap the meter-link
receive path needs, proven by running it inside a fixed -X heapsize.

    python -m tools.benches.heap     (drives .venv's micropython; prints figures + a JSON line)

Figures come from MicroPython unix (64-bit: objects are about twice their size on the module's
32-bit build). The shim modules are imported before the first measurement, so they are not
counted. The receive-path proof decodes and dispatches 500 frames with nothing but the codec
and the resolver loaded, in the smallest heap of 32/48/64/96/128 KB where it completes.
"""
import json
import os
import subprocess
import sys

from tools.hostrun import board

# (figure, modules imported for it), in order: each figure is what that step adds.
STEPS = [
    ("core", ["usr.qframe"]),
    ("meter_link", ["usr.qframe.codecs.rfc1662", "usr.qframe.codecs.meter",
                    "usr.qframe.protocols.resolver", "usr.qframe.builtins.uart"]),
    ("cloud_link", ["usr.qframe.protocols.backoff", "usr.qframe.codecs.hes",
                    "usr.qframe.store.pqueue", "usr.qframe.protocols.commands",
                    "usr.qframe.protocols.uplink", "usr.qframe.builtins.tls",
                    "usr.qframe.builtins.clients"]),
    ("builtin_network", ["usr.qframe.builtins.netready"]),   # every Application() adds it
    ("network", ["usr.qframe.builtins.network"]),
    ("dlms", ["usr.qframe.codecs.hdlc", "usr.qframe.codecs.wrapper", "usr.qframe.codecs.axdr",
              "usr.qframe.codecs.acse", "usr.qframe.codecs.xdlms", "usr.qframe.codecs.cosem",
              "usr.qframe.protocols.dlms", "usr.qframe.protocols.arbiter",
              "usr.qframe.builtins.dlms"]),
    ("mqtt", ["usr.qframe.codecs.mqtt", "usr.qframe.builtins.mqtt"]),   # umqtt: firmware
    ("ota", ["usr.qframe.codecs.hmac256", "usr.qframe.codecs.ota_manifest",
             "usr.qframe.codecs.http", "usr.qframe.protocols.ota_state",
             "usr.qframe.store.ota_files", "usr.qframe.builtins.ota_boot",
             "usr.qframe.builtins.ota"]),
]
PROBE = r'''
import sys, gc
if %(mode)r == "modules":
    sys.path[:0] = [%(root)r] + %(shims)r
    import shimctl
    shimctl.install_fs(%(root)r)
    import usocket, machine, osTimer
    gc.collect()
    base = gc.mem_alloc()
    for step, names in %(steps)r:
        for name in names:
            __import__(name)
        gc.collect()
        now = gc.mem_alloc()
        print("heap", step, now - base)
        base = now
else:
    sys.path[:0] = [%(root)r]   # the codec needs no shim: only built-in u-modules
    from usr.qframe.codecs import rfc1662
    from usr.qframe.protocols import resolver
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


def main():
    root = board.stage(os.path.join(board.REPO, "build", "heap-board"))
    params = {"root": root, "shims": board.shim_paths("micropython"), "steps": STEPS}
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
    summary = dict((step + "_bytes", figures[step]) for step, _ in STEPS)
    summary["import_usr_qframe_bytes"] = figures["core"]
    for heap_kb in (32, 48, 64, 96, 128):
        if _micropython(PROBE % dict(params, mode="receive"), "%dK" % heap_kb).returncode == 0:
            summary["receive_path_min_heap_kb"] = heap_kb
            break
    summary["total_bytes"] = sum(figures.values())
    for key in sorted(summary):
        print("  %s: %s" % (key, summary[key]))
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
