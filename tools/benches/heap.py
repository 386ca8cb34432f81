"""Heap cost of the framework on MicroPython: bytes kept after `import usr.qframe` (the core
alone, extensions load lazily), after each part an app adds, the heap the meter-link receive
path needs, and the smallest heap the whole app runs in, each proven inside a fixed -X heapsize.

    python -m tools.benches.heap [--quick]   (figures + a JSON line)

The import and phase figures come from the MicroPython the runners use ($QFRAME_MICROPYTHON,
else the venv's 1.29 64-bit, where containers are twice their size on the module's 32-bit
build; bytecode and qstrs are not). The shim modules are imported before the first measurement, so they are not
counted in the steps; `shim_bytes` is what they cost (the app on the module does not pay it).
The receive-path proof decodes and dispatches 500 frames with the codec and the resolver (and
so the core package) loaded, in the smallest heap (bisected, 8 KB steps) where it completes.
`floor` is the heap floor table (tools/benches/heap_floor.py: per interpreter at hand, per
configuration, from source, as .mpy and the app's own heap as on the module, the smallest heap
of a fixed ladder in which the faulted system sim runs with 0 loss), printed as the dated table
the docs cite; `phase_*_bytes` are the app's own snapshots (APP.heap_trace, core/heap.py: heap
in use after a collection, the shim and the simulation's control hook included) during the simulation with
faults: after main.py's imports, after load, steady state (the largest, sampled every second),
after a reconnect (the largest; the uplink queue holds what arrived while down), and steady
state during a burst (meter frames of 200 octets at 50 a second). `--quick` leaves out the
simulation runs (the floor table takes ten minutes or more per interpreter).
"""
import json
import os
import re
import subprocess
import sys
import time

from tools.benches import heap_floor
from tools.hostrun import board_root

# The heap the meter-module app is stated to run in on the venv's 64-bit MicroPython, device
# code as .mpy, the QuecPython shim included: the faulted simulation, 0 loss; the heap floor
# table (`make bench`) has the figures; tests/host/integration/test_memory.py holds the app to it.
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
    # DLMS-lite configured: the extension; dlms_job is what its first reading adds
    ("dlms", ["usr.qframe.codecs.cosem", "usr.qframe.protocols.arbiter",
              "usr.qframe.builtins.sockets", "usr.qframe.builtins.dlms"]),
    ("dlms_job", ["usr.qframe.codecs.hdlc", "usr.qframe.codecs.wrapper",
                  "usr.qframe.codecs.axdr", "usr.qframe.codecs.acse", "usr.qframe.codecs.xdlms",
                  "usr.qframe.protocols.dlms", "usr.qframe.protocols.dlms_client",
                  "usr.qframe.builtins.dlms_job"]),
    ("mqtt", ["usr.qframe.codecs.mqtt", "usr.qframe.protocols.mqtt_session",
              "usr.qframe.builtins.mqtt"]),   # umqtt: firmware
    # OTA: the extension (every app has it); ota_job is what the first update or check adds
    ("ota", ["usr.qframe.protocols.ota_state", "usr.qframe.store.ota_files",
             "usr.qframe.builtins.ota_boot", "usr.qframe.builtins.ota_update"]),
    ("ota_job", ["usr.qframe.codecs.hmac256", "usr.qframe.codecs.ota_manifest",
                 "usr.qframe.codecs.http", "usr.qframe.builtins.ota_download",
                 "usr.qframe.builtins.ota_job"]),
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
    summary["interpreter"] = heap_floor.describe(board_root.find_micropython())
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
        floors = heap_floor.table(quiet=False)
        summary["floor"] = dict(("%s/%s/%s" % key, kb) for key, kb in floors.items())
        summary["floor_date"] = time.strftime("%Y-%m-%d", time.gmtime())
        summary["app_heap_budget_kb"] = APP_HEAP_BUDGET_KB
    for key in sorted(summary):
        print("  %s: %s" % (key, summary[key]))
    if "floor" in summary:
        print(heap_floor.render_summary(summary))
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
