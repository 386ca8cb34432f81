"""A virtual QuecPython module: real MicroPython (unix port) on a pty that mpremote can open.

    python -m tools.device.virtual_board [--root DIR] [--no-autorun] [--allow-std] [--heapsize 512K]

Prints `PORT=/dev/pts/N` once the board shows its prompt and serves until Ctrl-C. From tests:

    with VirtualBoard(root) as board:
        subprocess.run([..., "--port", board.port])

How: the board (tools/device/virtual_board_firmware.py under MicroPython) has pty B as its
controlling terminal, so the tty turns Ctrl-C into SIGINT while code runs; mpremote opens pty
A's slave; a thread copies bytes between the two masters. The bridge holds A's slave open, so
the port keeps its settings and the board sees no hang-up between tool runs; output nobody reads
is dropped past MAX_UNREAD bytes (a USB port with no host). Closing B's master hangs the board
up (SIGHUP), so the MicroPython process cannot outlive the process that started it.
"""
import argparse
import fcntl
import functools
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import threading
import time
import tty

from tools.hostrun import board

FIRMWARE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "virtual_board_firmware.py")
DEFAULT_ROOT = os.path.join(board.REPO, "build", "vboard")
PROMPT = b">>> "
MAX_UNREAD = 4096
TRANSCRIPT_BYTES = 16384

# Bound before fork: the child only calls it (no imports, no locks) between fork and exec.
_take_controlling_tty = functools.partial(fcntl.ioctl, 0, termios.TIOCSCTTY, 0)


class BoardError(Exception):
    pass


def _set_console_mode(fd):
    """Raw, but \\n -> \\r\\n on output like a MicroPython port, input reads return whatever
    is there (VMIN 0), and Ctrl-C (when the board enables ISIG) does not flush input."""
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[1] |= termios.OPOST | termios.ONLCR
    attrs[3] |= termios.NOFLSH
    attrs[6][termios.VMIN] = 0
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class VirtualBoard(object):
    """Start, address (`port`) and stop one virtual board whose /usr is ROOT/usr."""

    def __init__(self, root=DEFAULT_ROOT, autorun=True, allow_std=False, heapsize=None):
        self.root = os.path.abspath(root)
        self.autorun = autorun
        self.allow_std = allow_std
        self.heapsize = heapsize
        self.process = None
        self.port = None
        self._fds = []
        self._a_master = self._a_slave = self._b_master = None
        self._thread = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._transcript = bytearray()
        self._lock = threading.Lock()

    def command(self):
        """argv of the MicroPython process."""
        argv = board.interpreter_command("micropython")
        if self.heapsize:
            argv += ["-X", "heapsize=%s" % self.heapsize]
        argv += [FIRMWARE, self.root, os.pathsep.join(board.shim_paths("micropython"))]
        if not self.autorun:
            argv.append("--no-autorun")
        if self.allow_std:
            argv.append("--allow-std")
        return argv

    def start(self, timeout=10.0, require_prompt=True):
        """Start the board and wait (up to timeout s) for its first prompt. A /usr/main.py that
        does not return holds the prompt back, as on the module: without require_prompt the
        board is then returned anyway (Ctrl-C through the port interrupts main.py)."""
        if self.alive:
            raise BoardError("the board is already running on %s" % self.port)
        for top in ("usr", "bak"):
            os.makedirs(os.path.join(self.root, top), exist_ok=True)
        self._stopping.clear()
        self._ready.clear()
        self._a_master, self._a_slave = pty.openpty()
        self._b_master, b_slave = pty.openpty()
        self._fds = [self._a_master, self._a_slave, self._b_master]
        try:
            tty.setraw(self._a_slave)
            _set_console_mode(b_slave)
            self.port = os.ttyname(self._a_slave)
            self.process = subprocess.Popen(
                self.command(), stdin=b_slave, stdout=b_slave, stderr=b_slave,
                start_new_session=True, preexec_fn=_take_controlling_tty, cwd=self.root)
        except BaseException:
            os.close(b_slave)
            self._close_fds()
            raise
        os.close(b_slave)
        for fd in (self._a_master, self._b_master):
            os.set_blocking(fd, False)
        self._thread = threading.Thread(target=self._bridge, name="vboard-bridge", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            timed_out = time.monotonic() > deadline
            if self.process.poll() is not None or (timed_out and require_prompt):
                tail = self.transcript()[-2000:]
                self.stop()
                raise BoardError("virtual board did not show a prompt within %.1f s "
                                 "(exit code %s); its output:\n%s"
                                 % (timeout, self.process.returncode, tail))
            if timed_out:
                break
        return self

    @property
    def ready(self):
        """True once the board has shown its REPL prompt."""
        return self._ready.is_set()

    def transcript(self):
        """The board's most recent console output (text), for diagnostics."""
        with self._lock:
            return bytes(self._transcript).decode("utf-8", "replace")

    @property
    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout=3.0):
        """Stop the board process (SIGTERM, then SIGKILL) and the bridge; idempotent."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._close_fds()

    def _close_fds(self):
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _record(self, data):
        with self._lock:
            self._transcript.extend(data)
            del self._transcript[:-TRANSCRIPT_BYTES]
            if not self._ready.is_set() and PROMPT in self._transcript:
                self._ready.set()

    def _bridge(self):
        """Copy host (A) <-> board (B) until stopped or the board is gone."""
        host, dev = self._a_master, self._b_master
        to_board, to_host = bytearray(), bytearray()
        board_open = True
        while not self._stopping.is_set():
            readers = [host] + ([dev] if board_open else [])
            writers = ([dev] if to_board and board_open else []) + ([host] if to_host else [])
            try:
                readable, writable, _ = select.select(readers, writers, [], 0.1)
                if host in readable:
                    to_board.extend(os.read(host, 4096))
                if dev in readable:
                    try:
                        data = os.read(dev, 4096)
                    except OSError:  # EIO: the board process has gone
                        data = b""
                    if not data:
                        board_open = False
                        to_board.clear()
                    self._record(data)
                    to_host.extend(data)
                    del to_host[:-MAX_UNREAD]
                if dev in writable:
                    del to_board[:os.write(dev, to_board)]
                if host in writable:
                    del to_host[:os.write(host, to_host)]
            except (BlockingIOError, InterruptedError):
                continue
            except (OSError, ValueError):
                return  # fds closed under us by stop()


def _interrupt(signum, frame):
    raise KeyboardInterrupt()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=DEFAULT_ROOT,
                        help="folder holding the board's usr/ and bak/ (default build/vboard)")
    parser.add_argument("--no-autorun", action="store_true",
                        help="do not run /usr/main.py at power-on")
    parser.add_argument("--allow-std", action="store_true",
                        help="let code import os, time, json... (QuecPython cannot)")
    parser.add_argument("--heapsize", help="MicroPython heap, e.g. 512K (module-sized RAM)")
    args = parser.parse_args(argv)
    vboard = VirtualBoard(args.root, autorun=not args.no_autorun, allow_std=args.allow_std,
                          heapsize=args.heapsize)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        vboard.start(require_prompt=False)
    except BoardError as exc:
        print("vboard: %s" % exc, file=sys.stderr)
        return 1
    if vboard.ready:
        print("virtual board ready, /usr is %s/usr" % vboard.root)
    else:
        print("virtual board up, /usr is %s/usr; /usr/main.py is still running (no prompt "
              "yet: a tool's Ctrl-C interrupts it, as on the module)" % vboard.root)
    print("PORT=%s" % vboard.port)
    print("e.g. make deploy PORT=%s; make shell PORT=%s. Ctrl-C stops the board."
          % (vboard.port, vboard.port), flush=True)
    try:
        code = vboard.process.wait()
        print("vboard: the board exited with code %s; its last output:\n%s"
              % (code, vboard.transcript()[-2000:]), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        vboard.stop()


if __name__ == "__main__":
    sys.exit(main())
