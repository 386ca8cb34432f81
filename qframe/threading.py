"""Threads, locks, events, queues and a worker pool over `_thread`, all stoppable.

MicroPython's `_thread` lock has no acquire timeout, so waits with a timeout poll with a short,
growing sleep (1 ms up to POLL_MAX_MS); waits without one block on a lock.
"""
import _thread
import utime

from .logging import getLogger

POLL_MAX_MS = 10
_log = getLogger("threads")


def _deadline(timeout_s):
    if timeout_s is None:
        return None
    return utime.ticks_add(utime.ticks_ms(), int(timeout_s * 1000))


def _expired(deadline):
    return deadline is not None and utime.ticks_diff(deadline, utime.ticks_ms()) <= 0


class Lock(object):
    """A mutex usable as a context manager; acquire(timeout) works on every interpreter."""

    def __init__(self):
        self._lock = _thread.allocate_lock()

    def acquire(self, blocking=True, timeout=None):
        if not blocking:
            return self._lock.acquire(0)
        if timeout is None:
            return self._lock.acquire()
        deadline = _deadline(timeout)
        pause = 1
        while not self._lock.acquire(0):
            if _expired(deadline):
                return False
            utime.sleep_ms(pause)
            pause = min(pause * 2, POLL_MAX_MS)
        return True

    def release(self):
        self._lock.release()

    def locked(self):
        return self._lock.locked()

    def __enter__(self):
        self._lock.acquire()
        return self

    def __exit__(self, *exc):
        self._lock.release()


class Event(object):
    """A flag threads wait on; set() wakes every waiter."""

    def __init__(self):
        self._flag = False
        self._mutex = _thread.allocate_lock()
        self._gate = Lock()
        self._gate.acquire()

    def is_set(self):
        return self._flag

    def set(self):
        with self._mutex:
            if not self._flag:
                self._flag = True
                self._gate.release()

    def clear(self):
        with self._mutex:
            if self._flag:
                self._flag = False
                self._gate.acquire()

    def wait(self, timeout=None):
        """Return True once set, False if timeout (seconds) passes first."""
        if self._flag:
            return True
        if not self._gate.acquire(True, timeout):
            return self._flag
        self._gate.release()
        return True


class QueueClosed(Exception):
    """Raised by Queue.get/put once the queue is closed."""


class QueueFull(Exception):
    pass


class QueueEmpty(Exception):
    pass


class Queue(object):
    """A bounded FIFO between threads. close() wakes every waiter with QueueClosed."""

    def __init__(self, maxsize=0):
        self.maxsize = maxsize
        self._items = []
        self._mutex = Lock()
        self._not_empty = Event()
        self._closed = False

    def __len__(self):
        return len(self._items)

    def qsize(self):
        return len(self._items)

    def put(self, item):
        """Append item; raises QueueFull when at maxsize (a producer must never block the app)."""
        with self._mutex:
            if self._closed:
                raise QueueClosed()
            if self.maxsize and len(self._items) >= self.maxsize:
                raise QueueFull()
            self._items.append(item)
            self._not_empty.set()

    def get(self, timeout=None):
        """Pop the oldest item, waiting up to timeout seconds (None: forever)."""
        deadline = _deadline(timeout)
        while True:
            with self._mutex:
                if self._items:
                    item = self._items.pop(0)
                    if not self._items and not self._closed:
                        self._not_empty.clear()
                    return item
                if self._closed:
                    raise QueueClosed()
            remaining = None
            if deadline is not None:
                remaining = utime.ticks_diff(deadline, utime.ticks_ms()) / 1000.0
                if remaining <= 0:
                    raise QueueEmpty()
            self._not_empty.wait(remaining)

    def close(self):
        with self._mutex:
            self._closed = True
            self._not_empty.set()


class Thread(object):
    """A named thread with join(timeout). The target must return when its owner stops it."""

    def __init__(self, target, args=(), name="thread"):
        self.target = target
        self.args = args
        self.name = name
        self.error = None
        self._done = Event()
        self._started = False

    def start(self):
        self._started = True
        _thread.start_new_thread(self._run, ())
        return self

    def _run(self):
        try:
            self.target(*self.args)
        except Exception as exc:
            self.error = exc
            _log.exception("thread %s died", exc, self.name)
        finally:
            self._done.set()

    def is_alive(self):
        return self._started and not self._done.is_set()

    def join(self, timeout=None):
        """Wait for the thread to end; True if it did."""
        if not self._started:
            return True
        return self._done.wait(timeout)


class WorkerPool(object):
    """A fixed number of threads running submitted calls from a bounded queue.

    submit() never blocks: when the backlog is full it returns False and counts `rejected`.
    A call that raises is logged and counted in `failed`; the worker carries on.
    """

    def __init__(self, size=2, backlog=32, name="worker"):
        self.size = size
        self.name = name
        self.stats = {"submitted": 0, "done": 0, "failed": 0, "rejected": 0}
        self._queue = Queue(backlog)
        self._threads = []

    def start(self):
        for index in range(self.size):
            self._threads.append(Thread(self._work, name="%s-%d" % (self.name, index)).start())
        return self

    def submit(self, fn, *args):
        try:
            self._queue.put((fn, args))
        except (QueueFull, QueueClosed):
            self.stats["rejected"] += 1
            _log.warning("%s pool full: call rejected", self.name)
            return False
        self.stats["submitted"] += 1
        return True

    def pending(self):
        return len(self._queue)

    def alive(self):
        """How many of the pool's threads are running."""
        return len([t for t in self._threads if t.is_alive()])

    def _work(self):
        while True:
            try:
                fn, args = self._queue.get()
            except QueueClosed:
                return
            try:
                fn(*args)
                self.stats["done"] += 1
            except Exception as exc:
                self.stats["failed"] += 1
                _log.exception("%s: a submitted call failed", exc, self.name)

    def stop(self, timeout=2.0):
        """Finish queued calls, then end the workers; True if all ended within timeout."""
        self._queue.close()
        deadline = _deadline(timeout)
        ok = True
        for thread in self._threads:
            remaining = max(0, utime.ticks_diff(deadline, utime.ticks_ms())) / 1000.0
            ok = thread.join(remaining) and ok
        self._threads = []
        return ok


class Timer(object):
    """Call callback() every period_ms (or once) on an osTimer; stop() cancels it."""

    def __init__(self, period_ms, callback, periodic=True):
        import osTimer
        self.period_ms = period_ms
        self.callback = callback
        self.periodic = periodic
        self._timer = osTimer.osTimer()
        self.stats = {"fired": 0, "failed": 0}

    def _fire(self, _arg):
        try:
            self.callback()
            self.stats["fired"] += 1
        except Exception as exc:
            self.stats["failed"] += 1
            _log.exception("timer callback failed", exc)

    def start(self):
        self._timer.start(self.period_ms, 1 if self.periodic else 0, self._fire)
        return self

    def stop(self):
        self._timer.stop()
        self._timer.delete()
