"""`make bench`: every benchmark on CPython and MicroPython, read as one report.

    python -m tools.benches.all [--only NAME,...] [--verbose]
    make bench ARGS="--only meterlink"          # the benches whose name starts with meterlink

Each bench is a script that prints readable lines and ends with one JSON line of its figures.
This runner runs them one after another (each one's output goes to build/bench/<name>.log;
--verbose shows it too), merges their JSON lines under the bench's name
(`{"meterlink.micropython": {...}, ...}`), prints one table of the figures with their targets,
saves the merged JSON to build/bench.json and prints it last, on one line.

The table is driven by FIGURES, one line per figure: (key, label, unit, target).
  key     "<bench>/<figure>" in the merged JSON; "/" descends into nested dicts
          ("meterlink.cpython/legacy/frames_per_s")
  label   what the figure measures, in words
  unit    the unit the bench's JSON gives it in, a key of UNITS; the table shows each quantity
          in one unit (bytes as KiB, a fraction as %, seconds as ms)
  target  None, or "<op> <number>" in the table's unit (">= 10", "< 2", "== 0"; ops >= > <= <
          ==), or "yes" for a flag: the row says PASS or MISS
A bench that gains a figure gets one line in FIGURES; a new bench also a line in _benches().
A MISS is reported, not an error: the exit code is non-zero only when a bench itself failed.
"""
import argparse
import json
import operator
import os
import platform
import subprocess
import sys
import textwrap
import time

from tools.benches import heap_floor
from tools.hostrun import board_root

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM_MP = ":".join(board_root.shim_paths("micropython"))
BUILD = os.path.join(board_root.REPO, "build")
JSON_PATH = os.path.join(BUILD, "bench.json")
LOG_DIR = os.path.join(BUILD, "bench")

CAVEAT = ("Measured on this PC, not on the module: the module's CPU is roughly 15-30x slower, "
          "so read times and rates as relative (ratios, share of wire time); heap figures come "
          "from unix MicroPython builds: the 64-bit 1.29 (containers twice their size on the "
          "module's 32-bit CPU), and a 32-bit 1.13 built like QuecPython's firmware when "
          "QFRAME_MICROPYTHON names one (the figures that hold for the module).")

# the unit a bench reports a figure in -> (the table's unit, factor from one to the other)
UNITS = {
    "x": ("x", 1.0),
    "fraction": ("%", 100.0),
    "ms": ("ms", 1.0),
    "us": ("us", 1.0),
    "s": ("ms", 1000.0),
    "bytes": ("KiB", 1 / 1024.0),
    "KiB": ("KiB", 1.0),
    "bytes/s": ("KiB/s", 1 / 1024.0),
    "KiB/s": ("KiB/s", 1.0),
    "frames/s": ("frames/s", 1.0),
    "payloads/s": ("payloads/s", 1.0),
    "MB/s": ("MB/s", 1.0),
    "count": ("", 1.0),
    "flag": ("", 1.0),
}

FIGURES = [
    # meter link receive path (codec + resolver in-process; tools/benches/meterlink.py)
    ("meterlink.micropython/micropython_ratio",
     "meter link decode+dispatch vs bitwise FCS, MicroPython", "x", ">= 10"),
    ("meterlink.micropython/wire_time_share",
     "meter link decode time / 115200-baud wire time, MicroPython", "fraction", "< 2"),
    ("meterlink.micropython/frames_per_s", "meter link frames decoded, MicroPython", "frames/s",
     None),
    ("meterlink.micropython/bytes_per_s", "meter link octets decoded, MicroPython", "bytes/s",
     None),
    ("meterlink.micropython/fcs16_ratio", "fcs16 alone vs bitwise FCS, MicroPython", "x", None),
    ("meterlink.cpython/cpython_ratio", "meter link decode+dispatch vs bitwise FCS, CPython",
     "x", None),
    ("meterlink.cpython/wire_time_share",
     "meter link decode time / 115200-baud wire time, CPython", "fraction", "< 2"),
    ("meterlink.cpython/frames_per_s", "meter link frames decoded, CPython", "frames/s", None),
    # the app's Uart over a pty, meter sim on the other end (tools/benches/uart.py)
    ("uart.micropython/micropython_legacy_rtt_ms_p50",
     "uart round trip p50, MicroPython, legacy", "ms", None),
    ("uart.micropython/micropython_legacy_rtt_ms_p99",
     "uart round trip p99, MicroPython, legacy", "ms", None),
    ("uart.micropython/micropython_legacy_frames_per_s",
     "uart burst, MicroPython, legacy", "frames/s", None),
    ("uart.micropython/micropython_legacy_line_headroom",
     "uart burst / 115200-baud line, MicroPython, legacy", "x", "> 1"),
    ("uart.micropython/micropython_legacy_lost", "uart burst lost, MicroPython, legacy", "count",
     "== 0"),
    ("uart.micropython/micropython_legacy_in_order", "uart burst in order, MicroPython, legacy",
     "flag", "yes"),
    ("uart.micropython/micropython_standard_rtt_ms_p50",
     "uart round trip p50, MicroPython, standard", "ms", None),
    ("uart.micropython/micropython_standard_line_headroom",
     "uart burst / 115200-baud line, MicroPython, standard", "x", "> 1"),
    ("uart.micropython/micropython_standard_lost", "uart burst lost, MicroPython, standard",
     "count", "== 0"),
    ("uart.cpython/cpython_legacy_rtt_ms_p50", "uart round trip p50, CPython, legacy", "ms",
     None),
    ("uart.cpython/cpython_legacy_line_headroom", "uart burst / 115200-baud line, CPython, legacy",
     "x", "> 1"),
    ("uart.cpython/cpython_legacy_lost", "uart burst lost, CPython, legacy", "count", "== 0"),
    ("uart.cpython/cpython_legacy_in_order", "uart burst in order, CPython, legacy", "flag",
     "yes"),
    ("uart.cpython/cpython_standard_line_headroom",
     "uart burst / 115200-baud line, CPython, standard", "x", "> 1"),
    ("uart.cpython/cpython_standard_lost", "uart burst lost, CPython, standard", "count", "== 0"),
    # HES -> module -> meter -> module -> HES, and uplink through the flash queue (cloud.py)
    ("cloud/baseline_p50_ms", "cloud round trip p50, ideal module (baseline)", "ms", None),
    ("cloud/micropython_added_p50_ms", "cloud round trip added by the module p50, MicroPython",
     "ms", None),
    ("cloud/micropython_added_p99_ms", "cloud round trip added by the module p99, MicroPython",
     "ms", None),
    ("cloud/micropython_throughput_msgs_s", "cloud uplink, MicroPython", "payloads/s", None),
    ("cloud/micropython_throughput_kib_s", "cloud uplink octets, MicroPython", "KiB/s", None),
    ("cloud/cpython_added_p50_ms", "cloud round trip added by the module p50, CPython", "ms",
     None),
    ("cloud/cpython_added_p99_ms", "cloud round trip added by the module p99, CPython", "ms",
     None),
    ("cloud/cpython_throughput_msgs_s", "cloud uplink, CPython", "payloads/s", None),
    # heap on MicroPython unix, 64-bit (tools/benches/heap.py; docs/ARCHITECTURE.md "Memory")
    # the heap floor and what each part keeps: one dated table after this one (heap_floor.py)
    ("heap.micropython/receive_path_min_heap_kb",
     "smallest heap the receive path runs in (core package incl.)", "KiB", None),
    # DLMS codecs and association (tools/benches/dlms.py)
    ("dlms/get_ratio", "DLMS GET exchange, gurux-dlms time / ours, CPython", "x", ">= 3"),
    ("dlms/profile100_ratio", "DLMS 100-row profile parse, gurux-dlms time / ours, CPython", "x",
     ">= 3"),
    ("dlms/cpython_get_us", "DLMS GET exchange encode+decode, CPython", "us", None),
    ("dlms/micropython_get_us", "DLMS GET exchange encode+decode, MicroPython", "us", None),
    ("dlms/micropython_profile100_us", "DLMS 100-row profile parse, MicroPython", "us", None),
    ("dlms/profile500_min_heap_kb", "smallest heap a 500-row profile read runs in (.mpy)",
     "KiB", None),
    ("dlms/profile500_live_peak_bytes", "heap a 500-row profile read holds live", "bytes",
     None),
    # MQTT uplink through a real broker (tools/benches/mqtt.py)
    ("mqtt/cpython_p50_ms", "MQTT meter echo round trip p50, CPython", "ms", None),
    ("mqtt/micropython_p50_ms", "MQTT meter echo round trip p50, MicroPython", "ms", None),
    ("mqtt/cpython_command_p50_ms", "MQTT command round trip p50, CPython", "ms", None),
    ("mqtt/cpython_throughput_msgs_s", "MQTT uplink, CPython", "payloads/s", None),
    ("mqtt/micropython_throughput_msgs_s", "MQTT uplink, MicroPython", "payloads/s", None),
    # OTA authentication (tools/benches/ota.py)
    ("ota.micropython/manifest_verify_us", "OTA manifest check (HMAC, JSON, fields), MicroPython",
     "us", None),
    ("ota.micropython/sha256_mb_per_s", "OTA file SHA-256 check, MicroPython", "MB/s", None),
    ("ota.micropython/ed25519_verify_ms", "OTA Ed25519 verify (pure Python), MicroPython", "ms",
     None),
    # authenticated data (tools/benches/auth.py)
    ("auth.micropython/record_mac_us", "record MAC (HMAC-SHA256-128) per record, MicroPython",
     "us", "< 200"),
    ("auth.micropython/record_mac_heap_bytes", "heap one record MAC allocates, MicroPython",
     "bytes", None),
    ("auth.micropython/status_seal_us", "signing a status-size reply, MicroPython", "us", None),
    ("auth.micropython/status_seal_heap_bytes", "heap signing a status-size reply allocates",
     "bytes", None),
    ("auth.micropython/ed25519_sign_ms", "Ed25519 signature per reading, MicroPython", "ms",
     None),
]

OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
       "==": operator.eq}


def _benches():
    """(name, argv) for every run: the codec in-process on each interpreter, the UART and cloud
    benches as host drivers that start the app on each interpreter themselves, the MQTT bench,
    the DLMS bench (ours against gurux-dlms on CPython, ours on MicroPython, the 500-row
    profile heap)."""
    py = [sys.executable, "-m"]
    micropython = board_root.interpreter_command("micropython")
    return [
        ("meterlink.cpython", py + ["tools.benches.meterlink"]),
        ("meterlink.micropython", micropython + [os.path.join(HERE, "meterlink.py"),
                                                 board_root.DEFAULT_ROOT, SHIM_MP]),
        ("uart.cpython", py + ["tools.benches.uart", "--interpreter", "cpython"]),
        ("uart.micropython", py + ["tools.benches.uart", "--interpreter", "micropython"]),
        ("cloud", py + ["tools.benches.cloud", "--interpreters", "cpython,micropython"]),
        ("mqtt", py + ["tools.benches.mqtt", "--interpreters", "cpython,micropython"]),
        ("heap.micropython", py + ["tools.benches.heap"]),
        ("dlms", py + ["tools.benches.dlms"]),
        ("ota.cpython", py + ["tools.benches.ota"]),
        ("ota.micropython", micropython + [os.path.join(HERE, "ota.py"), board_root.DEFAULT_ROOT,
                                           SHIM_MP]),
        ("auth.cpython", py + ["tools.benches.auth"]),
        ("auth.micropython", micropython + [os.path.join(HERE, "auth.py"),
                                            board_root.DEFAULT_ROOT, SHIM_MP]),
    ]


def lookup(figures, key):
    """The figure at key ("bench/a/b"), or None."""
    value = figures
    for part in key.split("/"):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def judge(value, target):
    """'PASS', 'MISS' or '' (no target) for a value in the table's unit."""
    if target is None:
        return ""
    if value is None:
        return "MISS"
    if target == "yes":
        return "PASS" if value is True else "MISS"
    op, number = target.split()
    return "PASS" if OPS[op](value, float(number)) else "MISS"


def _format(value):
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or abs(value) >= 100:
        return "{:,.0f}".format(value)
    if abs(value) >= 10:
        return "%.1f" % value
    return "%.2f" % value


def rows(figures, benches=None):
    """(label, value text, unit, target, verdict) per FIGURES line whose bench ran (all when
    benches is None)."""
    out = []
    for key, label, unit, target in FIGURES:
        if benches is not None and key.split("/", 1)[0] not in benches:
            continue
        shown_unit, factor = UNITS[unit]
        value = lookup(figures, key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and factor != 1:
            value = value * factor
        out.append((label, _format(value), shown_unit, target or "", judge(value, target)))
    return out


def table(figures, benches=None):
    """The report's table as text."""
    header = ("figure", "value", "unit", "target", "result")
    lines = rows(figures, benches)
    widths = [max(len(row[i]) for row in lines + [header]) for i in range(5)]
    fmt = "%-{0}s  %{1}s  %-{2}s  %-{3}s  %s".format(*widths[:4])
    out = [fmt % header, fmt % tuple("-" * w for w in widths)]
    out += [(fmt % row).rstrip() for row in lines]
    verdicts = [row[4] for row in lines]
    out.append("%d figures, %d with a target: %d PASS, %d MISS" % (
        len(lines), len([v for v in verdicts if v]), verdicts.count("PASS"),
        verdicts.count("MISS")))
    return "\n".join(out)


def run_bench(name, argv, verbose=False):
    """Run one bench, its output into build/bench/<name>.log; its JSON figures, or None having
    said why not."""
    os.makedirs(LOG_DIR, exist_ok=True)
    log_path = os.path.join(LOG_DIR, name + ".log")
    started = time.monotonic()
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=board_root.REPO)
    with open(log_path, "w") as f:
        f.write(result.stdout)
    if verbose:
        sys.stdout.write(result.stdout)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    elapsed = time.monotonic() - started
    if result.returncode != 0 or not lines:
        print("  %-22s FAILED (exit code %d) after %.0f s: %s" % (
            name, result.returncode, elapsed, " ".join(argv)))
        print("    " + "\n    ".join(result.stdout.splitlines()[-15:]))
        return None
    print("  %-22s ok in %.0f s  (output: %s)" % (name, elapsed,
                                                  os.path.relpath(log_path, board_root.REPO)),
          flush=True)
    return json.loads(lines[-1])


def _describe_machine():
    micropython = " ".join(board_root.interpreter_command("micropython"))
    try:
        version = subprocess.run(micropython.split() + ["-c", "import sys; print("
                                 "'.'.join(str(v) for v in sys.implementation.version[:3]))"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        version = "?"
    return "%s %s, CPython %s, MicroPython %s" % (platform.system(), platform.machine(),
                                                  platform.python_version(), version or "?")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="",
                        help="comma-separated bench names or prefixes (default: all)")
    parser.add_argument("--verbose", action="store_true", help="show each bench's output")
    args = parser.parse_args(argv)
    prefixes = [p for p in args.only.split(",") if p]
    benches = [(name, cmd) for name, cmd in _benches()
               if not prefixes or any(name.startswith(p) for p in prefixes)]
    if not benches:
        parser.error("no bench matches --only %s (benches: %s)" % (
            args.only, ", ".join(name for name, _ in _benches())))
    board_root.stage()
    print("make bench on %s, %s" % (_describe_machine(), time.strftime("%Y-%m-%d %H:%M UTC",
                                                                      time.gmtime())))
    figures = {}
    failed = 0
    for name, cmd in benches:
        result = run_bench(name, cmd, args.verbose)
        if result is None:
            failed += 1
        else:
            figures[name] = result
    print()
    print(table(figures, [name for name, _ in benches]))
    heap = figures.get("heap.micropython") or {}
    if "floor" in heap:
        print()
        print(heap_floor.render_summary(heap))
    print()
    print(textwrap.fill(CAVEAT, 100))
    os.makedirs(BUILD, exist_ok=True)
    line = json.dumps(figures, sort_keys=True)
    with open(JSON_PATH, "w") as f:
        f.write(line + "\n")
    if failed:
        print("%d bench(es) failed: see above" % failed)
    print("all figures: %s, and on the next line" % os.path.relpath(JSON_PATH, board_root.REPO))
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
