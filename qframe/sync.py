"""QFrame's less used synchronisation primitives, reached through usr.qframe.threading:
a one-shot Waiter, Condition, Semaphore, BoundedSemaphore, LifoQueue and PriorityQueue.
"""
import _thread

from .threading import Lock, Queue, _deadline, _remaining_s


class Waiter(object):
    """A one-shot gate: acquire(timeout) blocks until release() (True) or timeout s (False);
    timeout <= 0 waits forever."""

    def __init__(self):
        self._lock = Lock()
        self._lock.acquire()

    def acquire(self, timeout=-1):
        if timeout is None or timeout <= 0:
            return self._lock.acquire()
        return self._lock.acquire(True, timeout)

    def release(self):
        """Open the gate; False if it was already open."""
        try:
            self._lock.release()
        except RuntimeError:
            return False
        return True


class Condition(object):
    """A condition variable over a Lock (QFrame's): wait/wait_for/notify/notify_all are
    called with the lock held."""

    def __init__(self, lock=None):
        self._lock = lock if lock is not None else Lock()
        self._waiters = []
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def __enter__(self):
        self._lock.acquire()
        return self

    def __exit__(self, exc_type, exc, trace):   # no *args: packing them allocates
        self._lock.release()

    def _check_owned(self):
        if not self._lock.locked() or self._lock.owner != _thread.get_ident():
            raise RuntimeError("the condition's lock is not held by this thread")

    def wait(self, timeout=None):
        """Release the lock, wait for notify() or timeout seconds, re-acquire; True if
        notified."""
        self._check_owned()
        waiter = Waiter()
        self._waiters.append(waiter)
        self._lock.release()
        notified = False
        try:
            notified = waiter.acquire(-1 if timeout is None else max(timeout, 0.001))
            return notified
        finally:
            self._lock.acquire()
            if not notified:
                for index in range(len(self._waiters)):
                    if self._waiters[index] is waiter:
                        del self._waiters[index]
                        break

    def wait_for(self, predicate, timeout=None):
        """Wait until predicate() is true or timeout seconds pass; its last value."""
        deadline = _deadline(timeout)
        result = predicate()
        while not result:
            remaining = _remaining_s(deadline)
            if remaining is not None and remaining <= 0:
                break
            self.wait(remaining)
            result = predicate()
        return result

    def notify(self, n=1):
        self._check_owned()
        if n < 0:
            raise ValueError("n must be >= 0")
        woken = self._waiters[:n]
        self._waiters = self._waiters[n:]
        for waiter in woken:
            waiter.release()

    def notify_all(self):
        self.notify(len(self._waiters))


class Semaphore(object):
    """A counter threads take (acquire) and give back (release)."""

    def __init__(self, value=1):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._value = value
        self._cond = Condition()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, exc_type, exc, trace):   # no *args: packing them allocates
        self.release()

    def acquire(self, block=True, timeout=None):
        with self._cond:
            if not block:
                ok = self._value > 0
            else:
                if timeout is not None and timeout <= 0:
                    raise ValueError("timeout must be a positive number")
                ok = self._cond.wait_for(self._available, timeout)
            if ok:
                self._value -= 1
            return bool(ok)

    def _available(self):
        return self._value > 0

    def release(self, n=1):
        if n < 1:
            raise ValueError("n must be one or more")
        with self._cond:
            self._check_release(n)
            self._value += n
            self._cond.notify(n)

    def _check_release(self, n):
        pass

    def clear(self):
        with self._cond:
            self._value = 0


class BoundedSemaphore(Semaphore):
    """A Semaphore that refuses to be released above its initial value."""

    def __init__(self, value=1):
        Semaphore.__init__(self, value)
        self._initial = value

    def _check_release(self, n):
        if self._value + n > self._initial:
            raise ValueError("semaphore released too many times")


class LifoQueue(Queue):
    """A Queue that hands out the newest item first."""

    def _get(self):
        return self.queue.pop()


class PriorityQueue(Queue):
    """A Queue that hands out the smallest item first (items compare with <); equal items
    leave in the order they came."""

    def _put(self, item):
        queue = self.queue
        index = len(queue)
        while index > 0 and item < queue[index - 1]:
            index -= 1
        queue.insert(index, item)

    @classmethod
    def convert(cls, sequence):
        """A PriorityQueue holding the items of sequence (unbounded)."""
        queue = cls(0)
        for item in sequence:
            queue._put(item)
        return queue
