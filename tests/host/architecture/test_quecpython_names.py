"""The MicroPython side of tools/ (the portable test runner, boot, the shim) imports only the
module names QuecPython has: run under tests/host/quecpython_imports.py, where `sys`, `os`,
`select`, `socket`... raise ImportError and `uos` has no `urandom` or `getcwd`."""
import os
import re
import subprocess

from tools.hostrun import board_root

GUARD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "quecpython_imports.py")
SHIMS = ":".join(board_root.shim_paths("micropython"))


def _run(argv, timeout=120):
    command = board_root.interpreter_command("micropython") + [GUARD] + argv
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          cwd=board_root.REPO)


def test_the_shim_tests_pass_through_the_runner_with_quecpython_names_only():
    root = board_root.stage()
    result = _run([os.path.join(board_root.REPO, "tools", "testing", "run_portable.py"), root, SHIMS,
                   ":".join(os.path.join(board_root.REPO, "tests", name) for name in ("portable", "shim")),
                   "test_shim"])
    output = result.stdout + result.stderr
    assert "BLOCKED" not in output, output
    counts = re.search(r"(\d+) passed, (\d+) failed", result.stdout)
    assert counts and int(counts.group(1)) > 20 and counts.group(2) == "0", output
    assert result.returncode == 0


def test_boot_runs_the_app_with_quecpython_names_only(tmp_path):
    root = board_root.stage(str(tmp_path / "board"), {"APP": {"log_file": "", "stop_timeout": 2.0}})
    result = _run([os.path.join(board_root.REPO, "tools", "hostrun", "boot.py"), root, SHIMS, "0.3"])
    output = result.stdout + result.stderr
    assert "BLOCKED" not in output, output
    assert "meter-module loaded" in output and "meter-module stopped" in output, output
    assert result.returncode == 0
