"""The heap floor: the smallest heap of a fixed ladder in which the whole app runs the faulted
system simulation with 0 loss, per configuration, from source and as .mpy, on each MicroPython
at hand. `make bench` prints it as one dated table; the docs cite that table.

    python -m tools.benches.heap_floor [--interpreter PATH ...] [--config NAME ...] [--quick]

Interpreters: the venv's MicroPython (1.29, 64-bit) always, and $QFRAME_MICROPYTHON when it
names another build (e.g. a 32-bit 1.13 built like QuecPython's firmware: the figure that
matters for the module). Each run is `tools.simulators.system --interpreter micropython --heap
SIZE --duration 12 --faults --seed 5` (the QuecPython shim's stand-ins included: they are not
on the module); .mpy runs add `--mpy` (compiled for that interpreter as deploy compiles for
the module). A size passes when the sim exits 0 with meter frames sent and none lost. The floor
is bisected over the ladder (assumed monotonic), so a table costs about four runs per cell.
A third column gives the app's own heap as on the module (`--app-heap`): the firmware's modules
are C in flash there, the shim's Python stand-ins for them are held apart (about 75 KB on a
32-bit 1.13; tools/hostrun/board_root.py APP_HEAPSIZE_ENV).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import textwrap

from tools.hostrun import board_root

LADDER_KB = (512, 448, 384, 320, 288, 256, 224, 192, 160, 128, 96)
CONFIGS = (
    ("default", []),                                   # meter link, TCP uplink, network, OTA
    ("all", ["--uplink", "mqtt", "--dlms"]),           # + DLMS-lite and the MQTT uplink
)
SIM_ARGS = ["--duration", "12", "--faults", "--seed", "5", "--quiet", "--drain-s", "20"]
# (column, sim options, heap option): the whole process's heap, from source and as .mpy, and the
# app's own heap as on the module (.mpy; the shim's stand-ins, C in the firmware, held apart)
MODES = (("source", [], "--heap"), ("mpy", ["--mpy"], "--heap"), ("app_mpy", ["--mpy"], "--app-heap"))
HEADINGS = {"source": "source", "mpy": ".mpy", "app_mpy": "app .mpy"}


def describe(exe):
    """'1.13 32-bit' for a MicroPython executable."""
    probe = "import usys as s\nprint('%d.%d' % s.implementation.version[:2], s.maxsize > 2**31)"
    try:
        out = subprocess.run([exe, "-c", probe], capture_output=True, text=True,
                             timeout=30).stdout.split()
        return "%s %s-bit" % (out[0], "64" if out[1] == "True" else "32")
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return os.path.basename(exe)


def sim_ok(exe, heap_kb, args, mode="source", root=None):
    """True when the faulted sim runs with 0 loss in a heap_kb heap on exe (mode: MODES)."""
    _, options, heap_option = [m for m in MODES if m[0] == mode][0]
    root = root or os.path.join(board_root.REPO, "build", "heap-floor")
    argv = [sys.executable, "-m", "tools.simulators.system", "--interpreter", "micropython",
            heap_option, "%dK" % heap_kb, "--root", root] + SIM_ARGS + args + options
    env = dict(os.environ, **{board_root.MICROPYTHON_ENV: exe})
    for name in (board_root.HEAPSIZE_ENV, board_root.APP_HEAPSIZE_ENV):
        env.pop(name, None)
    run = subprocess.run(argv, capture_output=True, text=True, cwd=board_root.REPO, env=env)
    try:
        result = json.loads(run.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        result = {}
    return run.returncode == 0 and result.get("lost") == 0 and result.get("meter_sent", 0) > 0


def floor(ok, ladder=LADDER_KB):
    """The smallest ladder size that passes (sizes above it assumed to pass too), or None when
    even the largest fails; bisected."""
    sizes = sorted(ladder)
    lo, hi = -1, len(sizes) - 1         # sizes[hi] passes once checked; sizes[lo] fails
    if not ok(sizes[hi]):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(sizes[mid]):
            hi = mid
        else:
            lo = mid
    return sizes[hi]


def interpreters():
    """[(label, path)]: the venv's MicroPython, then $QFRAME_MICROPYTHON if it is another."""
    found = []
    saved = os.environ.pop(board_root.MICROPYTHON_ENV, None)
    try:
        venv = board_root.find_micropython()
    finally:
        if saved is not None:
            os.environ[board_root.MICROPYTHON_ENV] = saved
    for exe in (venv, saved and board_root.shutil.which(saved)):
        if exe and exe not in [path for _, path in found]:
            found.append((describe(exe), exe))
    return found


def table(exes=None, configs=None, quiet=False, modes=None):
    """{(label, config, mode): floor KB or None (not even the largest)}."""
    exes = exes or interpreters()
    configs = [c for c in CONFIGS if not configs or c[0] in configs]
    figures = {}
    for label, exe in exes:
        for name, args in configs:
            for mode in [m[0] for m in MODES if not modes or m[0] in modes]:

                def ok(kb):
                    passed = sim_ok(exe, kb, args, mode)
                    if not quiet:
                        print("  %s %s %s %d KB: %s" % (label, name, mode, kb,
                                                        "0 lost" if passed else "fails"),
                              flush=True)
                    return passed
                figures[(label, name, mode)] = floor(ok)
    return figures


def render(figures, date=None):
    """The dated table `make bench` prints and the docs cite."""
    date = date or datetime.date.today().isoformat()
    lines = ["heap floor, %s: the smallest heap (KB) of the ladder %s in which the app runs "
             "the system sim (`--interpreter micropython --heap SIZE --duration 12 --faults "
             "--seed 5`) with 0 lost. source, .mpy: the whole process's heap, the QuecPython "
             "shim's stand-ins included; app .mpy: `--app-heap SIZE`, the app's own heap as on "
             "the module (the shim's stand-ins held apart). default: meter link, TCP uplink, "
             "network, watchdog, OTA; all: + DLMS-lite and the MQTT uplink."
             % (date, "/".join(str(k) for k in LADDER_KB)),
             "%-14s %-8s %8s %8s %9s" % ("interpreter", "config", "source", ".mpy", "app .mpy")]
    order = [name for name, _ in CONFIGS]
    seen = []
    for label, name, _ in figures:
        if (label, name) not in seen:
            seen.append((label, name))
    seen.sort(key=lambda row: (row[0], order.index(row[1]) if row[1] in order else 99))
    lines[:1] = textwrap.wrap(lines[0], 100)
    for label, name in seen:
        cells = [figures.get((label, name, mode), "-") for mode, _, _ in MODES]
        lines.append("%-14s %-8s %8s %8s %9s" % ((label, name) + tuple(
            (">%d" % max(LADDER_KB)) if c is None else str(c) for c in cells)))
    return "\n".join(lines)


def render_summary(summary):
    """The dated table from the heap bench's JSON ({"floor": {"label/config/mode": kb},
    "floor_date": ...}); the kept-after-import figures follow it."""
    figures = dict((tuple(key.split("/")), kb) for key, kb in summary["floor"].items())
    text = render(figures, summary.get("floor_date"))
    parts = [(name[:-6], summary[name]) for name in sorted(summary)
             if name.endswith("_bytes") and not name.startswith(("phase_", "total", "import_"))]
    if parts:
        text += "\n" + "\n".join(textwrap.wrap("kept after import, %s, from source (KB): %s" % (
            summary.get("interpreter", "venv MicroPython"),
            ", ".join("%s %.1f" % (name, size / 1024.0) for name, size in parts)), 100))
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interpreter", action="append", help="a MicroPython build (repeat)")
    parser.add_argument("--config", action="append", choices=[c[0] for c in CONFIGS])
    parser.add_argument("--mode", action="append", choices=[m[0] for m in MODES])
    parser.add_argument("--quiet", action="store_true", help="the table and JSON line only")
    args = parser.parse_args(argv)
    exes = [(describe(p), p) for p in args.interpreter] if args.interpreter else None
    figures = table(exes, args.config, args.quiet, args.mode)
    print(render(figures))
    print(json.dumps({"%s/%s/%s" % key: value for key, value in figures.items()},
                     sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
