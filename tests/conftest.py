"""pytest set-up: stage the board root and put it, the shim, tests/portable and tests/shim on
sys.path, so device code imports `usr.qframe` exactly as on the module (the portable runner does
the same on MicroPython); tests/host too, so the host tests in its folders import its helpers
(cloud_helpers, ota_helpers, gurux_peer, ...) by name; the repo root too, so tests import the
host tools as `tools.<folder>.<module>`."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.append(REPO)

# Under pytest-xdist (make test-py) each worker has its own board root, so the files device
# code writes under /usr (queues, logs, OTA state) are its own; subprocesses inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["QFRAME_BOARD_ROOT"] = os.path.join(REPO, "build", "board-" +
                                                   os.environ["PYTEST_XDIST_WORKER"])

from tools.hostrun import board_root  # noqa: E402

board_root.stage()
for _path in reversed([board_root.DEFAULT_ROOT] + board_root.shim_paths("cpython")
                      + [os.path.join(HERE, name) for name in ("portable", "shim", "host")]):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import shimctl  # noqa: E402

shimctl.install_fs(board_root.DEFAULT_ROOT)


import pytest  # noqa: E402
from shimlib import notes  # noqa: E402
from usr.qframe import logging as qlog  # noqa: E402

# Between tests (when pytest does not capture) a thread a test left behind must not write to the
# terminal: the qframe console and the shim's notes are on only while a test runs.
qlog.basicConfig(console=False)
notes.quiet(True)


@pytest.fixture(autouse=True)
def _console_only_inside_tests():
    qlog.basicConfig(console=True)
    notes.quiet(False)
    yield
    qlog.basicConfig(console=False)
    notes.quiet(True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """A test that needs MicroPython is skipped, saying why, only where no wheel of it exists
    (Windows, Linux aarch64); on Linux x86_64 and macOS (CI) it fails."""
    outcome = yield
    error = outcome.excinfo[1] if outcome.excinfo else None
    if isinstance(error, board_root.MicropythonMissing) and not board_root.micropython_wheel_exists():
        outcome.force_exception(pytest.skip.Exception(str(error), _use_item_location=True))
