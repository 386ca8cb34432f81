"""QFrame's `usr.qframe.threading` over `_thread`: locks, conditions, semaphores, queues,
stoppable threads, a bounded thread pool and an osTimer wrapper.

MicroPython's `_thread` lock has no acquire timeout, so waits with a timeout poll with a short,
growing sleep (1 ms up to POLL_MAX_MS); waits without one block on a lock.

Where QFrame differs: `Thread.stop()` asks the thread to end (its `stopping` event) and joins
it, killing it only as a last resort where the firmware can (`_thread.stop_thread`);
`ThreadPoolExecutor` has a bounded backlog, never blocks the caller and can be shut down;
`Thread.start()` returns the thread, which has the result's `get(timeout)`.

QFrame's Waiter, Condition, Semaphore, BoundedSemaphore, LifoQueue and PriorityQueue live in
qframe/sync.py and load on first use (`from usr.qframe.threading import Condition` works).
"""
import _thread
import gc
import utime

from .logging import getLogger

_SYNC_NAMES = ("Waiter", "Condition", "Semaphore", "BoundedSemaphore", "LifoQueue",
               "PriorityQueue")


def __getattr__(name):
    if name not in _SYNC_NAMES:
        raise AttributeError("module 'usr.qframe.threading' has no attribute %r" % name)
    # not `from . import sync`: MicroPython asks usr.qframe's __getattr__ and does not fall
    # back to importing the submodule
    return getattr(__import__("usr.qframe.sync", None, None, [name]), name)

POLL_MAX_MS = 10
_log = getLogger("threads")


def _deadline(timeout_s):
    if timeout_s is None:
        return None
    return utime.ticks_add(utime.ticks_ms(), int(timeout_s * 1000))


def _expired(deadline):
    return deadline is not None and utime.ticks_diff(deadline, utime.ticks_ms()) <= 0


def _remaining_s(deadline):
    if deadline is None:
        return None
    return max(0, utime.ticks_diff(deadline, utime.ticks_ms())) / 1000.0


class Lock(object):
    """A mutex usable as a context manager; acquire(timeout) works on every interpreter.
    `owner` is the ident of the thread holding it (None when free)."""

    def __init__(self):
        self._lock = _thread.allocate_lock()
        self.owner = None

    def acquire(self, blocking=True, timeout=None):
        # The owner's ident first: it allocates (a big int on the module), and a MemoryError
        # after the lock is taken would leave it held, wedging every later taker.
        me = _thread.get_ident()
        if not blocking:
            got = self._lock.acquire(0)
        elif timeout is None:
            got = self._lock.acquire()
        else:
            deadline = _deadline(timeout)
            pause = 1
            while not self._lock.acquire(0):
                if _expired(deadline):
                    return False
                utime.sleep_ms(pause)
                pause = min(pause * 2, POLL_MAX_MS)
            got = True
        if got:
            self.owner = me
        return got

    def release(self):
        self.owner = None
        self._lock.release()

    def locked(self):
        return self._lock.locked()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, exc_type, exc, trace):   # no *args: packing them allocates
        self.release()


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
                self._gate.acquire()    # first: a MemoryError there leaves the event set
                self._flag = False

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
    """A bounded FIFO between threads (at most max_size items, 0: no bound).

    put(item, block=True, timeout=None) waits for room, put(item, False) raises Queue.Full at
    once; get(block=True, timeout=None) waits for an item, raising Queue.Empty on timeout.
    close() wakes every waiter with QueueClosed.
    """
    Full = QueueFull
    Empty = QueueEmpty

    def __init__(self, max_size=100):
        self.max_size = max_size
        self.queue = []
        self._mutex = Lock()
        self._not_empty = Event()
        self._not_full = Event()
        self._not_full.set()
        self._closed = False

    def __len__(self):
        return len(self.queue)

    def size(self):
        return len(self.queue)

    qsize = size

    def _put(self, item):
        self.queue.append(item)

    def _get(self):
        return self.queue.pop(0)

    def _wait(self, event, block, timeout, deadline, error):
        """Wait for event after a failed attempt; raise error when no more waiting is due."""
        if not block:
            raise error()
        remaining = _remaining_s(deadline)
        if remaining is not None and remaining <= 0:
            raise error()
        event.wait(remaining)

    def put(self, item, block=True, timeout=None):
        if block and timeout is not None and timeout <= 0:
            raise ValueError("timeout must be a positive number")
        deadline = _deadline(timeout)
        while True:
            with self._mutex:
                if self._closed:
                    raise QueueClosed()
                if not self.max_size or len(self.queue) < self.max_size:
                    self._put(item)
                    self._not_empty.set()
                    return
                self._not_full.clear()
            self._wait(self._not_full, block, timeout, deadline, QueueFull)

    def get(self, block=True, timeout=None):
        if block and timeout is not None and timeout <= 0:
            raise ValueError("timeout must be a positive number")
        deadline = _deadline(timeout)
        while True:
            with self._mutex:
                if self.queue:
                    item = self._get()
                    self._not_full.set()
                    return item
                if self._closed:
                    raise QueueClosed()
                self._not_empty.clear()
            self._wait(self._not_empty, block, timeout, deadline, QueueEmpty)

    def clear(self):
        with self._mutex:
            self.queue = []
            self._not_full.set()

    def close(self):
        with self._mutex:
            self._closed = True
            self._not_empty.set()
            self._not_full.set()


class Result(object):
    """The outcome of a Thread or Task: get(timeout) returns the value or raises the error."""

    class TimeoutError(Exception):
        pass

    def __init__(self):
        self._rv = None
        self._exc = None
        self._finished = Event()

    def set(self, exc=None, rv=None):
        self._exc = exc
        self._rv = rv
        self._finished.set()

    def done(self):
        return self._finished.is_set()

    def get(self, timeout=None):
        if not self._finished.wait(timeout):
            raise self.TimeoutError("no result within %s s" % timeout)
        if self._exc is not None:
            raise self._exc
        return self._rv


_Result = Result    # QFrame's name


class Thread(object):
    """A thread that can be joined, stopped and restarted.

    Thread(target, args=(), kwargs=None, name=None, stop_event=None). start() returns the
    thread (QFrame returns its result: `get(timeout)` is here too). stop() sets `stopping`
    (stop_event, if given: pass the Event your loop watches) and joins the thread.
    A str in kwargs' place is taken as the name (qframe's older `Thread(fn, args, name)`).
    """
    TimeoutError = Result.TimeoutError

    def __init__(self, target=None, args=(), kwargs=None, name=None, stop_event=None):
        if isinstance(kwargs, str):
            name, kwargs = kwargs, None
        self.target = target
        self.args = args
        self.kwargs = kwargs or {}
        self.name = name or "thread"
        self.error = None
        self.stopping = stop_event if stop_event is not None else Event()
        self._own_stop_event = stop_event is None
        self._result = None
        self._ident = None

    def __repr__(self):
        return "<Thread %s %s>" % (self.name, self._ident)

    @property
    def ident(self):
        return self._ident

    @classmethod
    def get_current_thread_ident(cls):
        return _thread.get_ident()

    def start(self):
        """Start (or restart, once ended) the thread; returns self."""
        if self.is_running():
            return self
        self.error = None
        self._result = Result()
        if self._own_stop_event:
            self.stopping.clear()
        _thread.start_new_thread(self._run, (self._result,))
        return self

    def _run(self, result):
        self._ident = _thread.get_ident()
        self.run(result)

    def run(self, result):
        try:
            rv = self.target(*self.args, **self.kwargs)
        except Exception as exc:
            self.error = exc
            result.set(exc=exc)
            try:
                _log.exception("thread %s died", exc, self.name)
            except MemoryError:     # the heap is dry: the error stays in self.error
                pass
        else:
            result.set(rv=rv)

    def is_running(self):
        return self._result is not None and not self._result.done()

    is_alive = is_running

    def join(self, timeout=None):
        """Wait for the thread to end; True if it did (or never started)."""
        if self._result is None:
            return True
        return self._result._finished.wait(timeout)

    def get(self, timeout=None):
        """The target's return value (raises its exception, or TimeoutError)."""
        if self._result is None:
            raise RuntimeError("thread %s was not started" % self.name)
        return self._result.get(timeout)

    def stop(self, timeout=2.0):
        """Ask the thread to end and wait up to timeout s; True once it has ended.

        A target that never looks at `stopping` is killed where the firmware allows it
        (QuecPython's `_thread.stop_thread`), else left running (False)."""
        if not self.is_running():
            return True
        self.stopping.set()
        if self.join(timeout):
            return True
        kill = getattr(_thread, "stop_thread", None)
        if kill is None or self._ident is None:
            _log.warning("thread %s did not stop within %s s", self.name, timeout)
            return False
        kill(self._ident)
        self._result.set(exc=RuntimeError("thread %s was killed" % self.name))
        _log.warning("thread %s killed after %s s", self.name, timeout)
        return True


class Task(object):
    """A call for a ThreadPoolExecutor; lower priority values run first."""

    def __init__(self, target=None, args=(), kwargs=None, priority=0, name=""):
        self.target = target
        self.args = args
        self.kwargs = kwargs or {}
        self.priority = priority
        self.name = name
        self.result = Result()

    def __str__(self):
        return "<Task %r,%d>" % (self.name, self.priority)

    def __call__(self):
        try:
            rv = self.target(*self.args, **self.kwargs)
        except Exception as exc:
            self.result.set(exc=exc)
            raise
        self.result.set(rv=rv)

    def __lt__(self, other):
        return self.priority < other.priority


class ThreadPoolExecutor(object):
    """max_workers threads running submitted calls from a bounded backlog.

    submit(fn, *args) -> True, or False when the backlog is full (counted `rejected`; never
    blocks). QFrame's forms submit(target=fn, args=(...), kwargs={...}, priority=0) and
    submit(Task(...)) return the task's result (`get(timeout)`; a rejected task's get()
    raises QueueFull). Threads start on the first submit. A call that raises is logged and
    counted `failed`; the worker carries on (a MemoryError is counted `memory_errors` and, with
    `heap` set to the app's HeapWatch, logged once per spell and backed off). shutdown()/stop(timeout) finish the backlog.
    """

    def __init__(self, max_workers=4, enable_priority=False, backlog=64, name="worker"):
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self.max_workers = max_workers
        self.name = name
        self.stats = {"submitted": 0, "done": 0, "failed": 0, "rejected": 0, "memory_errors": 0}
        self.heap = None          # the app's HeapWatch (core/heap.py): MemoryError backoff
        self._short_of_memory = False
        if enable_priority:
            from .sync import PriorityQueue
            self._queue = PriorityQueue(backlog)
        else:
            self._queue = Queue(backlog)
        self._threads = []
        self._lock = Lock()

    def resize(self, max_workers, backlog):
        """Apply new bounds (more threads start at once if the pool already runs)."""
        with self._lock:
            self.max_workers = max_workers
            self._queue.max_size = backlog
            if self._threads:
                self._start_threads()

    def _start_threads(self):
        while len(self._threads) < self.max_workers:
            name = "%s-%d" % (self.name, len(self._threads))
            self._threads.append(Thread(self._work, name=name).start())

    def submit(self, *args, **kwargs):
        qframe_style = not args or isinstance(args[0], Task)
        if args and isinstance(args[0], Task):
            task = args[0]
        elif qframe_style:
            task = Task(**kwargs)
        else:
            task = Task(args[0], args[1:])
        if not self._threads:
            with self._lock:
                self._start_threads()
        try:
            self._queue.put(task, False)
        except (QueueFull, QueueClosed) as exc:
            self.stats["rejected"] += 1
            _log.warning("%s pool full: call rejected", self.name)
            if qframe_style:
                task.result.set(exc=QueueFull("%s pool full" % self.name)
                                if isinstance(exc, QueueFull) else exc)
                return task.result
            return False
        self.stats["submitted"] += 1
        return task.result if qframe_style else True

    def pending(self):
        return len(self._queue)

    def dead(self):
        """How many of the pool's started threads have ended (while it should be running)."""
        return len([t for t in self._threads if not t.is_alive()])

    @property
    def stopped(self):
        return self._queue._closed

    def _work(self):
        while True:
            try:
                task = self._queue.get()
            except QueueClosed:
                return
            try:
                task()
                self.stats["done"] += 1
                if self._short_of_memory:
                    self._short_of_memory = False
                    if self.heap is not None:
                        self.heap.recovered(self.name)
            except MemoryError as exc:
                self.stats["failed"] += 1
                self.stats["memory_errors"] += 1
                self._short_of_memory = True
                if self.heap is not None:   # logged once per spell, collected, backed off
                    utime.sleep_ms(int(self.heap.out_of_memory(self.name, exc) * 1000))
                else:
                    gc.collect()
            except Exception as exc:
                self.stats["failed"] += 1
                _log.exception("%s: a submitted call failed", exc, self.name)

    def stop(self, timeout=2.0):
        """Finish queued calls, then end the workers; True if all ended within timeout."""
        self._queue.close()
        deadline = _deadline(timeout)
        ok = True
        for thread in self._threads:
            ok = thread.join(_remaining_s(deadline)) and ok
        self._threads = []
        return ok

    def shutdown(self, timeout=2.0):
        return self.stop(timeout)


class Timer(object):
    """Call callback() every period_ms (or once) on an osTimer; stop() cancels it. A callback
    that raises is logged and counted `failed` (a MemoryError also `memory_errors`, logged once
    per spell, garbage collected)."""

    def __init__(self, period_ms, callback, periodic=True):
        self.period_ms = period_ms
        self.callback = callback
        self.periodic = periodic
        self._timer = None
        self.stats = {"fired": 0, "failed": 0, "memory_errors": 0}
        self._short_of_memory = False

    def _fire(self, _arg):
        try:
            self.callback()
            self.stats["fired"] += 1
            self._short_of_memory = False
        except MemoryError as exc:      # counted every time, logged once per spell
            self.stats["failed"] += 1
            self.stats["memory_errors"] += 1
            gc.collect()
            if not self._short_of_memory:
                self._short_of_memory = True
                try:
                    _log.exception("timer callback out of memory", exc)
                except MemoryError:
                    pass
        except Exception as exc:
            self.stats["failed"] += 1
            _log.exception("timer callback failed", exc)

    def start(self):
        if self._timer is None:
            import osTimer
            self._timer = osTimer()          # the firmware's module is the type
        self._timer.start(self.period_ms, 1 if self.periodic else 0, self._fire)
        return self

    def stop(self):
        """Stop and delete the firmware timer (a later start() makes a new one)."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.stop()
            timer.delete_timer()
