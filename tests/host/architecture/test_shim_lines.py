"""The strict shim on every firmware line (QFRAME_FIRMWARE=E1, E2, E3), on CPython: its names
against tools/firmware/api.json and the behaviours that differ per line (umqtt's publish,
usocket's options, ussl). `make test` runs the whole portable suite on E1 and E3 only."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TESTS = ["tests/shim/test_shim_table.py", "tests/shim/test_shim_umqtt.py",
         "tests/shim/test_shim_socket.py", "tests/shim/test_shim_ota.py"]


@pytest.mark.parametrize("line", ["E1", "E2", "E3"])
def test_shim_tests_pass_on_the_line(line):
    env = dict(os.environ, QFRAME_FIRMWARE=line)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
                          + TESTS, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
