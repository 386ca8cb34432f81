"""Heap cost of the framework on MicroPython: bytes kept after `import usr.qframe` (the core
alone, extensions load lazily), after each part an app adds, the heap the meter-link receive
path needs, and the smallest heap the whole app runs in, each proven inside a fixed -X heapsize.

    python -m tools.benches.heap [--quick]   (drives .venv's micropython; figures + a JSON line)

Figures come from MicroPython unix (64-bit: objects are about twice their size on the module's
32-bit build). The shim modules are imported before the first measurement, so they are not
counted in the steps; `shim_bytes` is what they cost (the app on the module does not pay it).
The receive-path proof decodes and dispatches 500 frames with the codec and the resolver (and
so the core package) loaded, in the smallest heap (bisected, 8 KB steps) where it completes.
`sim_min_heap_kb` bisects (16 KB steps) the smallest heap in which the full system simulation
(`tools.simulators.system --faults`, meter + cloud link, link faults) runs with 0 loss;
`phase_*_bytes` are the app's own snapshots (APP.heap_trace, core/heap.py: heap in use after a
collection, the shim and the simulation's control hook included) during the simulation with
faults: after main.py's imports, after load, steady state (the largest, sampled every second),
after a reconnect (the largest; the uplink queue holds what arrived while down), and steady
state during a burst (meter frames of 200 octets at 50 a second). `sim_min_heap_mpy_kb` is the same
with the device code as .mpy (as `deploy --mpy` installs it). `--quick` leaves out the
simulation runs (they take a minute or two).
"""
import json
import os
import re
import subprocess
import sys

from tools.hostrun import board_root

# The heap the meter-module app is stated to run in on this 64-bit MicroPython, device code as
# .mpy (`deploy --mpy`), QuecPython shim included: the full simulation with faults, 0 loss
# (sim_min_heap_mpy_kb measures the least, 368-400 KB; from source it needs 430-480 KB, the
# figure varies with fragmentation); tests/host/integration/test_memory.py holds the app to it.
APP_HEAP_BUDGET_KB = 512

# (figure, modules imported for it), in order: each figure is what that step adds.
STEPS = [
    ("core", ["usr.qframe"]),
    ("meter_link", ["usr.qframe.codecs.rfc1662", "usr.qframe.codecs.rfc1662_legacy",
                    "usr.qframe.codecs.meter",
                    "usr.qframe.protocols.resolver", "usr.qframe.builtins.uart"]),
    ("cloud_link", ["usr.qframe.protocols.backoff", "usr.qframe.codecs.hes",
                    "usr.qframe.store.pqueue", "usr.qframe.protocols.commands",
                    "usr.qframe.protocols.uplink", "usr.qframe.builtins.tls",
                    "usr.qframe.builtins.clients"]),
    ("builtin_network", ["usr.qframe.builtins.network"]),   # every Application() adds it
    ("network", ["usr.qframe.builtins.netwatch"]),
    ("watchdog", ["usr.qframe.builtins.watchdog"]),
    ("app_code", ["usr.health", "usr.params", "usr.hes_protocol"]),   # code/: the meter app's own
    ("dlms", ["usr.qframe.codecs.hdlc", "usr.qframe.codecs.wrapper", "usr.qframe.codecs.axdr",
              "usr.qframe.codecs.acse", "usr.qframe.codecs.xdlms", "usr.qframe.codecs.cosem",
              "usr.qframe.protocols.dlms", "usr.qframe.protocols.dlms_client",
              "usr.qframe.protocols.arbiter", "usr.qframe.builtins.sockets",
              "usr.qframe.builtins.dlms"]),
    ("mqtt", ["usr.qframe.codecs.mqtt", "usr.qframe.builtins.mqtt"]),   # umqtt: firmware
    ("ota", ["usr.qframe.codecs.hmac256", "usr.qframe.codecs.ota_manifest",
             "usr.qframe.codecs.http", "usr.qframe.protocols.ota_state",
             "usr.qframe.store.ota_files", "usr.qframe.builtins.ota_boot",
             "usr.qframe.builtins.ota_download", "usr.qframe.builtins.ota_update"]),
]
PROBE = r'''
import sys, gc
if %(mode)r == "modules":
    sys.path[:0] = [%(root)r] + %(shims)r
    gc.collect()
    base = gc.mem_alloc()
    import shimctl
    shimctl.install_fs(%(root)r)
    import usocket, machine, osTimer, net, checkNet, dataCall, sim, modem, misc, log, utime
    gc.collect()
    now = gc.mem_alloc()
    print("heap shim", now - base)
    base = now
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
    argv = board_root.interpreter_command("micropython")
    if heap:
        argv += ["-X", "heapsize=%s" % heap]
    return subprocess.run(argv + ["-c", code], capture_output=True, text=True)


def _bisect(ok, lo_kb, hi_kb, step_kb):
    """The smallest multiple of step_kb in (lo_kb, hi_kb] where ok(kb) holds (ok is assumed
    monotonic), or None when it fails even at hi_kb."""
    if not ok(hi_kb):
        return None
    while hi_kb - lo_kb > step_kb:
        mid = (lo_kb + hi_kb) // 2 // step_kb * step_kb
        if mid <= lo_kb:
            break
        if ok(mid):
            hi_kb = mid
        else:
            lo_kb = mid
    return hi_kb


def _sim_ok(heap_kb, mpy=False, duration_s=8):
    """True when the full system simulation runs with 0 loss in a heap_kb MicroPython heap
    (mpy: the device code precompiled, as `deploy --mpy` installs it)."""
    argv = [sys.executable, "-m", "tools.simulators.system", "--interpreter", "micropython",
            "--duration", str(duration_s), "--faults", "--seed", "1", "--quiet", "--drain-s", "20",
            "--heap", "%dK" % heap_kb, "--root", os.path.join(board_root.REPO, "build", "heap-sim")]
    run = subprocess.run(argv + (["--mpy"] if mpy else []), capture_output=True, text=True,
                         cwd=board_root.REPO)
    lines = run.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        result = None
    ok = run.returncode == 0 and result is not None and result.get("lost") == 0 \
        and result.get("meter_sent", 0) > 0
    print("  sim in %4d KB%s: %s" % (heap_kb, " (.mpy)" if mpy else "",
                                       "0 lost" if ok else "fails"), flush=True)
    return ok


def _sim_phases(rate, size, duration_s=10):
    """{phase: largest heap in use} from the app's heap trace during a simulation with faults."""
    argv = [sys.executable, "-m", "tools.simulators.system", "--interpreter", "micropython",
            "--duration", str(duration_s), "--faults", "--seed", "1", "--log", "--heap-trace",
            "--rate", str(rate), "--size", str(size), "--dashboard", "off",
            "--root", os.path.join(board_root.REPO, "build", "heap-sim")]
    run = subprocess.run(argv, capture_output=True, text=True, cwd=board_root.REPO)
    phases = {}
    for match in re.finditer(r"heap: (\w+): alloc (\d+)", run.stdout):
        phase, alloc = match.group(1), int(match.group(2))
        phases[phase] = max(alloc, phases.get(phase, 0))
    return phases


def main(argv=None):
    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    root = board_root.stage(os.path.join(board_root.REPO, "build", "heap-board"))
    params = {"root": root, "shims": board_root.shim_paths("micropython"), "steps": STEPS}
    result = _micropython(PROBE % dict(params, mode="modules"))
    if result.returncode != 0:
        print(result.stdout + result.stderr)
        return 1
    figures = {}
    for line in result.stdout.splitlines():
        if line.startswith("heap "):
            _, name, size = line.split()
            figures[name] = int(size)
            print("  %-15s %6d bytes kept after import (from source)" % (name, int(size)))
    summary = dict((step + "_bytes", figures[step]) for step, _ in STEPS)
    summary["shim_bytes"] = figures["shim"]
    summary["import_usr_qframe_bytes"] = figures["core"]
    summary["total_bytes"] = sum(figures[step] for step, _ in STEPS)
    receive = PROBE % dict(params, mode="receive")
    min_kb = _bisect(lambda kb: _micropython(receive, "%dK" % kb).returncode == 0, 16, 512, 8)
    if min_kb:
        summary["receive_path_min_heap_kb"] = min_kb
    if not quick:
        for phase, alloc in sorted(_sim_phases(5, 64).items()):
            summary["phase_%s_bytes" % phase] = alloc
        burst = _sim_phases(50, 200).get("steady")
        if burst:
            summary["phase_burst_bytes"] = burst
        min_kb = _bisect(_sim_ok, 128, 1024, 16)
        if min_kb:
            summary["sim_min_heap_kb"] = min_kb
        min_kb = _bisect(lambda kb: _sim_ok(kb, mpy=True), 128, 1024, 16)
        if min_kb:
            summary["sim_min_heap_mpy_kb"] = min_kb
        summary["app_heap_budget_kb"] = APP_HEAP_BUDGET_KB
    for key in sorted(summary):
        print("  %s: %s" % (key, summary[key]))
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
