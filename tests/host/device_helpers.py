"""Shared by the device tests (test_deploy.py, test_device_commands.py, test_virtual_board.py):
a snapshot of the repo's device files, a virtual board, the deploy tool and mpremote as
subprocesses, and line readers with deadlines."""
import contextlib
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

from tools.device import deploy, virtual_board

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = [sys.executable, "-m", "tools.device.deploy"]
MPREMOTE = os.path.join(os.path.dirname(sys.executable), "mpremote")
OS_ALIAS = "import usys, uos; usys.modules['os'] = uos"
TIMEOUT = 30


# ---------------------------------------------------------------------------------

@pytest.fixture
def source(tmp_path):
    """A snapshot of the repo's device files (others edit the tree while tests run)."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(os.path.join(REPO, "qframe"), src / "qframe", ignore=ignore)
    shutil.copytree(os.path.join(REPO, "code"), src / "code", ignore=ignore)
    shutil.copy(os.path.join(REPO, "dev.json"), src / "dev.json")
    return str(src)


@pytest.fixture
def board(tmp_path):
    vb = virtual_board.VirtualBoard(str(tmp_path / "board"))
    with vb:
        yield vb
    assert not vb.alive


def run_tool(*args):
    return subprocess.run(DEPLOY + list(args), capture_output=True, text=True, cwd=REPO,
                          timeout=TIMEOUT)


def deploy_to(vb, source, *extra):
    result = run_tool("deploy", "--port", vb.port, "--source", source, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def mpremote(vb, *args):
    return subprocess.run([MPREMOTE, "connect", vb.port, "resume"] + list(args),
                          capture_output=True, text=True, timeout=TIMEOUT)


def progress(output):
    """{'copied': [...], 'skipped': [...], 'removed': [...]} from deploy's progress lines."""
    found = {"copied": [], "skipped": [], "removed": []}
    for action, path in re.findall(r"^  (copied|skipped|removed) +(\S+)", output, re.M):
        found[action].append(path)
    return found


def board_files(vb):
    """{device path: bytes} of every file under the board's /usr."""
    files = {}
    usr = os.path.join(vb.root, "usr")
    for folder, _, names in os.walk(usr):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                files["/usr/" + os.path.relpath(path, usr).replace(os.sep, "/")] = f.read()
    return files


def expected_files(source):
    return dict(deploy.read_sources(deploy.device_files(source)))


def ours(files):
    return dict((p, d) for p, d in files.items() if p != deploy.MANIFEST)


class LineReader(object):
    """Lines of a stream collected by a thread, awaited with a deadline (no sleeps)."""

    def __init__(self, stream):
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern, timeout=10.0):
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if re.search(pattern, line):
                return line
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError("no line matching %r within %.1f s; got:\n%s"
                             % (pattern, timeout, "".join(self.lines)))


def read_until(port, marker, timeout=5.0):
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        if time.monotonic() > deadline:
            raise AssertionError("no %r within %.1f s; got %r" % (marker, timeout, data))
        data += port.read(max(1, port.in_waiting))
    return data




@contextlib.contextmanager
def running(argv):
    """(process, LineReader of its stdout and stderr) for a tool started from the repo root;
    killed if it is still running when the block ends."""
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        yield proc, LineReader(proc.stdout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
