"""Thread tools of the host shim (CPython and MicroPython): Event, Worker, Ticker.

MicroPython's `_thread` locks have no acquire timeout, so an Event that must wait with a
timeout sleeps in `select.poll` on a datagram socket of its own (an abstract AF_UNIX name,
nothing on disk): `set()` sends one byte to it, `clear()` drains it. The same code runs on
CPython. The socket exists only once somebody waits, and `close()` releases it.
"""
import _thread
import utime

from shimlib import notes
from shimlib.hostio import IS_MICROPYTHON, os, print_exception, select, socket

_counter = [0]


def _unique_bytes():
    """Bytes no other process uses now: uos.urandom where it exists (QuecPython has none),
    else a heap address (randomised per process) and the time."""
    try:
        return os.urandom(6)
    except AttributeError:
        return ("%x-%x" % (id(object()), utime.ticks_us())).encode()


def _new_name():
    import ubinascii
    _counter[0] += 1
    return b"\0qshim-" + ubinascii.hexlify(_unique_bytes()) + str(_counter[0]).encode()


def _unix_address(name):
    if IS_MICROPYTHON:   # MicroPython takes a raw struct sockaddr_un
        import ustruct
        return ustruct.pack("<H", socket.AF_UNIX) + name
    return name


def ticks_ms():
    return utime.ticks_ms()


def ms_left(deadline):
    return utime.ticks_diff(deadline, utime.ticks_ms())


class Event(object):
    """threading.Event-like flag with `wait(timeout_ms)`; `pollable()` joins a select.poll."""

    def __init__(self):
        self._lock = _thread.allocate_lock()
        self._flag = False
        self._sock = None
        self._addr = None

    def _socket(self):
        # called with the lock held
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            addr = _unix_address(_new_name())
            sock.bind(addr)
            sock.setblocking(False)
            self._sock, self._addr = sock, addr
            if self._flag:
                self._kick()
        return self._sock

    def _kick(self):
        try:
            self._sock.sendto(b"!", self._addr)
        except OSError:
            pass    # the queue is full: the socket is readable anyway

    def _drain(self):
        while True:
            try:
                if not self._sock.recv(64):
                    return
            except OSError:
                return

    def is_set(self):
        return self._flag

    def set(self):
        with self._lock:
            if not self._flag:
                self._flag = True
                if self._sock is not None:
                    self._kick()

    def clear(self):
        with self._lock:
            self._flag = False
            if self._sock is not None:
                self._drain()

    def pollable(self):
        """An object to register in a select.poll (readable while the flag is set)."""
        with self._lock:
            return self._socket()

    def wait(self, timeout_ms=None):
        """Wait until set or timeout_ms passes (None: forever); return the flag."""
        with self._lock:
            if self._flag:
                return True
            sock = self._socket()
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        if timeout_ms is None:
            while not self._flag:
                poller.poll(-1)
        else:
            poller.poll(max(0, int(timeout_ms)))
        return self._flag

    def close(self):
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


class Worker(object):
    """A thread running target(worker) until stop(); stop() waits (bounded) for it to end."""

    def __init__(self, target, name="shim"):
        self.name = name
        self._target = target
        self.stopping = Event()
        self._done = Event()
        self._ident = None
        self.running = False

    def start(self):
        self.running = True
        _thread.start_new_thread(self._run, ())
        return self

    def _run(self):
        self._ident = _thread.get_ident()
        try:
            self._target(self)
        except Exception as exc:
            notes.note("shim thread %s crashed: %r" % (self.name, exc), exc)
        finally:
            self.running = False
            self.stopping.close()       # only this thread waits on it
            self._done.set()

    def in_thread(self):
        return _thread.get_ident() == self._ident

    def stop(self, timeout_ms=2000):
        """Ask the thread to end and wait for it (not when called from the thread itself)."""
        self.stopping.set()
        if self.in_thread():
            return True
        ended = not self.running or self._done.wait(timeout_ms)
        if ended:
            self._done.close()
        return ended


class Ticker(object):
    """Call fn() after period_ms, then every period_ms if periodic; a thread, stoppable."""

    def __init__(self, period_ms, periodic, fn, name="ticker"):
        self.period_ms = max(1, int(period_ms))
        self.periodic = periodic
        self.fn = fn
        self.fired = 0
        self._worker = Worker(self._loop, name)

    def start(self):
        self._worker.start()
        return self

    @property
    def running(self):
        return self._worker.running and not self._worker.stopping.is_set()

    def _loop(self, worker):
        deadline = utime.ticks_add(utime.ticks_ms(), self.period_ms)
        while True:
            if worker.stopping.wait(max(0, ms_left(deadline))):
                return
            self.fired += 1
            try:
                self.fn()
            except Exception as exc:
                notes.note("shim timer callback failed: %r" % (exc,), exc)
            if not self.periodic or worker.stopping.is_set():
                return
            deadline = utime.ticks_add(deadline, self.period_ms)
            if ms_left(deadline) < 0:     # fell behind (slow callback): no catch-up burst
                deadline = utime.ticks_add(utime.ticks_ms(), self.period_ms)

    def stop(self, timeout_ms=2000):
        return self._worker.stop(timeout_ms)
