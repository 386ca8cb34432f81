"""A green test run looks green: what tests provoke on purpose (qframe log lines, shim notes) is
captured by the portable runner and shown only with a failure, on MicroPython and CPython."""
import os
import subprocess
import sys

import pytest

from tools.hostrun import board_root

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RUNNER = os.path.join(REPO, "tools", "testing", "run_portable.py")
TESTS = '''
from usr.qframe.logging import getLogger
from shimlib import notes

def test_passes_noisily():
    getLogger("t").error("injected fault one")
    notes.note("shim WDT: injected")

def test_fails_noisily():
    getLogger("t").warning("injected fault two")
    assert False, "on purpose"
'''


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_runner_shows_captured_output_only_for_failures(tmp_path, interpreter):
    (tmp_path / "test_noise.py").write_text(TESTS)
    portable = os.path.join(REPO, "tests", "portable", "checks.py")
    (tmp_path / "checks.py").write_text(open(portable).read())
    root = board_root.stage(str(tmp_path / "board"))
    done = subprocess.run(board_root.interpreter_command(interpreter) + [
        RUNNER, root, os.pathsep.join(board_root.shim_paths(interpreter)), str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=REPO)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "injected fault one" not in out and "shim WDT: injected" not in out
    assert "FAIL test_noise.test_fails_noisily" in out
    assert "captured output of test_noise.test_fails_noisily:\n  " in out
    assert "WARNING t: injected fault two" in out
    assert done.stdout.splitlines()[-1] == "1 passed, 1 failed"
