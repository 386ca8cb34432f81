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
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOOLS = os.path.join(REPO, "tools")
DEFAULT_ROOT = os.path.join(REPO, "build", "board")
REBOOT_EXIT = 3     # tools/hostrun/boot.py's exit code after a module restart


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


def stage(root=DEFAULT_ROOT, config=None):
    """Lay out ROOT/usr with symlinks into the repo; return the root.

    config: None links the repo's dev.json; a dict is written as ROOT/usr/dev.json.
    Files the app writes at run time (logs, queues) stay in ROOT/usr and survive restaging.
    """
    usr = os.path.join(root, "usr")
    os.makedirs(usr, exist_ok=True)
    _link(os.path.join(REPO, "qframe"), os.path.join(usr, "qframe"))
    code = os.path.join(REPO, "code")
    for name in sorted(os.listdir(code)):
        if name != "__pycache__":
            _link(os.path.join(code, name), os.path.join(usr, name))
    dev_json = os.path.join(usr, "dev.json")
    if config is None:
        _link(os.path.join(REPO, "dev.json"), dev_json)
    else:
        if os.path.islink(dev_json):
            os.remove(dev_json)
        with open(dev_json, "w") as f:
            json.dump(config, f, indent=2)
    return root


MICROPYTHON_DIRS = [os.path.dirname(sys.executable), os.path.join(REPO, ".venv", "bin")]


def interpreter_command(interpreter):
    """The argv prefix that starts the given interpreter. MicroPython is looked for next to
    this Python, in the repo's .venv (python3 tools/board.py ... works outside the venv), then
    on PATH."""
    if interpreter == "micropython":
        search = os.pathsep.join(MICROPYTHON_DIRS + [os.environ.get("PATH", "")])
        exe = shutil.which("micropython", path=search)
        if not exe:
            raise SystemExit("micropython not found in %s or on PATH: run `make test` once "
                             "(it installs it into .venv)" % os.pathsep.join(MICROPYTHON_DIRS))
        return [exe]
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
        with open(args.config) as f:
            config = json.load(f)
    stage(args.root, config)
    try:
        while True:
            code = subprocess.call(run_command(args.root, args.interpreter, args.duration))
            if code != REBOOT_EXIT:
                return code
            print("board: the module restarted; booting again", flush=True)
    except KeyboardInterrupt:
        return 130
