"""A virtual QuecPython module: real MicroPython (unix port) on a pty that mpremote can open.

    python -m tools.device.virtual_board [--root DIR] [--link build/board.tty] [--sim [--app DIR]]
                                         [--no-autorun] [--allow-std] [--heapsize 512K]

Prints `PORT=build/board.tty` (a stable link to the pty, made at start, removed at stop) once
the board is up and serves until Ctrl-C. `--sim` wires it to the simulated meter and HES
(tools/device/sim_peers.py) and deploys the app with a site config that points at them
(`--app DIR`: an app folder, its dev.json wired to them); later deploys keep that wiring
(ROOT/usr/.qframe-sim.json). One board per ROOT (ROOT/board.pid): a second refuses in one
line; what a killed board left (pid file, port link) is taken over. From tests:

    with VirtualBoard(root) as board:
        subprocess.run([..., "--port", board.port])

How: the board (tools/device/virtual_board_firmware.py under MicroPython) has pty B as its
controlling terminal, so the tty turns Ctrl-C into SIGINT while code runs; mpremote opens pty
A's slave; a thread copies bytes between the two masters. The bridge holds A's slave open, so
the port keeps its settings and the board sees no hang-up between tool runs. Nothing the board
prints is dropped while a host reads: past MAX_UNREAD bytes held for the host the bridge stops
reading the board, whose writes then block (back-pressure, as a flow-controlled UART). Only when
the host side has accepted nothing for NO_READER_S (no tool has the port open: a USB port with
no host) is output discarded, until a reader shows up. Closing B's master hangs the board up
(SIGHUP), so the MicroPython process cannot outlive the process that started it.
"""
import argparse
import fcntl
import json
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

from tools.hostrun import board_root

FIRMWARE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "virtual_board_firmware.py")
DEFAULT_ROOT = os.path.join(board_root.REPO, "build", "vboard")
DEFAULT_LINK = os.path.join(board_root.REPO, "build", "board.tty")
PROMPT = b">>> "
MAX_UNREAD = 65536
NO_READER_S = 3.0
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

    def __init__(self, root=DEFAULT_ROOT, autorun=True, allow_std=False, heapsize=None,
                 link=None):
        self.root = os.path.abspath(root)
        self.link = link
        self.discarded = 0
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
        argv = board_root.interpreter_command("micropython")
        if self.heapsize:
            argv += ["-X", "heapsize=%s" % self.heapsize]
        argv += [FIRMWARE, self.root, os.pathsep.join(board_root.shim_paths("micropython"))]
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
            if self.link:
                _replace_link(self.port, self.link)
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
        if self.link and os.path.islink(self.link) and os.readlink(self.link) == self.port:
            os.remove(self.link)
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
        """Copy host (A) <-> board (B) until stopped or the board is gone. Board output waits
        for the host (the board is not read past MAX_UNREAD); see the module docstring."""
        host, dev = self._a_master, self._b_master
        to_board, to_host = bytearray(), bytearray()
        board_open = True
        stalled_since = None    # host side full since (monotonic), None while it drains
        no_reader = False
        while not self._stopping.is_set():
            take_board = board_open and (no_reader or len(to_host) < MAX_UNREAD)
            readers = [host] + ([dev] if take_board else [])
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
                if dev in writable:
                    del to_board[:os.write(dev, to_board)]
                if host in writable:
                    del to_host[:os.write(host, to_host)]
                    stalled_since, no_reader = None, False
                elif to_host:
                    now = time.monotonic()
                    if stalled_since is None:
                        stalled_since = now
                    elif now - stalled_since > NO_READER_S:
                        no_reader = True
                if no_reader and len(to_host) > MAX_UNREAD:
                    self.discarded += len(to_host) - MAX_UNREAD
                    del to_host[:-MAX_UNREAD]
            except (BlockingIOError, InterruptedError):
                continue
            except (OSError, ValueError):
                return  # fds closed under us by stop()


def _replace_link(target, link):
    """Point link at target (a symlink; an existing one is replaced)."""
    os.makedirs(os.path.dirname(os.path.abspath(link)), exist_ok=True)
    tmp = "%s.%d.tmp" % (link, os.getpid())
    os.symlink(target, tmp)
    os.replace(tmp, link)


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
    parser.add_argument("--link", default=DEFAULT_LINK,
                        help="stable name for the port, a symlink (default build/board.tty)")
    parser.add_argument("--sim", action="store_true",
                        help="wire the board to the simulated meter and HES and deploy the app "
                        "with a site config for them (make board SIM=1)")
    parser.add_argument("--app", metavar="DIR", help="with --sim: deploy this app folder (its "
                        "main.py, dev.json, modules) instead of the repo's app")
    parser.add_argument("--skip-gate", action="store_true",
                        help="with --sim: deploy even if the portability gate rejects the code")
    args = parser.parse_args(argv)
    if args.app and not args.sim:
        parser.error("--app needs --sim (without it, deploy the app: make deploy APP=...)")
    link = _short(args.link) if args.link else None
    other = _claim(args.root)
    if other:
        print("vboard: a virtual board already runs on %s (pid %d): stop it first (Ctrl-C in "
              "its terminal, or kill %d)" % (args.root, other, other), file=sys.stderr)
        return 1
    vboard = VirtualBoard(args.root, autorun=not args.no_autorun, allow_std=args.allow_std,
                          heapsize=args.heapsize, link=link)
    signal.signal(signal.SIGTERM, _interrupt)
    peers = None
    try:
        vboard.start(require_prompt=False)
        port = link or vboard.port
        print("virtual board on %s%s, /usr is %s/usr%s"
              % (vboard.port, " (linked as %s)" % link if link else "", vboard.root,
                 "" if vboard.ready else "; /usr/main.py is still running (no prompt yet: a "
                 "tool's Ctrl-C interrupts it, as on the module)"))
        _forget_sim_wiring(vboard.root)
        if args.sim:
            peers = _start_peers(port, vboard.root, args.app, args.skip_gate)
        print("PORT=%s" % port)
        if peers:
            print("the app is deployed with %s (meter on %s, HES on 127.0.0.1:%d):\n"
                  "  make run PORT=%s      start it and watch it work\n"
                  "  make log PORT=%s      follow its log file\n"
                  "  make deploy PORT=%s%s   after a change (the wiring to the "
                  "simulators is kept)"
                  % (args.app or _short(peers.site_config), _short(peers.meter_link),
                     peers.hes.port, port, port, port, " APP=%s" % args.app if args.app else ""))
        else:
            print("e.g. make deploy PORT=%s; make run PORT=%s; make shell PORT=%s"
                  % (port, port, port))
        print("Ctrl-C stops the board.", flush=True)
        code = vboard.process.wait()
        print("vboard: the board exited with code %s; its last output:\n%s"
              % (code, vboard.transcript()[-2000:]), file=sys.stderr)
        return 1
    except (BoardError, RuntimeError) as exc:
        print("vboard: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        vboard.stop()
        if peers:
            peers.stop()
        _forget_sim_wiring(vboard.root)
        _release(args.root)


PID_FILE = "board.pid"


def _claim(root):
    """Record this process as ROOT's board (ROOT/board.pid); the pid of another live board
    process holding it, or 0. What a killed board left (its pid file, a dangling port link)
    is taken over: a new board starts clean whatever the last one left in build/."""
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, PID_FILE)
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    if pid and pid != os.getpid() and _is_board_process(pid):
        return pid
    with open(path, "w") as f:
        f.write("%d\n" % os.getpid())
    return 0


def _is_board_process(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"tools.device.virtual_board" in f.read()
    except OSError:         # gone (or no /proc: then a live pid is taken as a board)
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return not os.path.isdir("/proc")


def _release(root):
    path = os.path.join(root, PID_FILE)
    try:
        with open(path) as f:
            mine = f.read().strip() == str(os.getpid())
        if mine:
            os.remove(path)
    except OSError:
        pass


def _short(path):
    """path relative to the current folder when it is below it (build/board.tty)."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _sim_wiring_path(root):
    from tools.device import deploy
    return os.path.join(root, deploy.SIM_WIRING.lstrip("/"))


def _forget_sim_wiring(root):
    try:
        os.remove(_sim_wiring_path(root))
    except OSError:
        pass


def _start_peers(port, root, app=None, skip_gate=False):
    """make board SIM=1: meter and HES simulators, then the app (the repo's with their config,
    ROOT/site.json, or an app folder's with its dev.json wired to them) deployed; the meter's
    pty is linked as ROOT/meter.tty. ROOT/usr/.qframe-sim.json records the wiring, which every
    later deploy to this board keeps."""
    from tools.device import sim_peers, deploy
    peers = sim_peers.SimPeers(os.path.join(root, "site.json"), os.path.join(root, "meter.tty"),
                               say=lambda line: print(line, flush=True)).start()
    wiring = {"UART": {"port": os.path.abspath(peers.meter_link)},
              "TCP_SERVER": {"host": "127.0.0.1", "port": peers.hes.port}}
    with open(_sim_wiring_path(root), "w") as f:
        json.dump(wiring, f, indent=2, sort_keys=True)
    try:
        if deploy.deploy(port, config=None if app else _short(peers.site_config), app=app,
                         skip_gate=skip_gate, mpy=True) != 0:      # as make deploy does
            raise RuntimeError("deploying the app to the board failed")
    except (deploy.DeployError, deploy.DeviceError) as exc:
        peers.stop()
        raise RuntimeError("deploying the app to the board failed: %s" % exc)
    return peers


if __name__ == "__main__":
    sys.exit(main())
