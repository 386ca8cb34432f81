import utime
from checks import captured, raises

from usr.qframe.threading import Event, Lock, Queue, QueueClosed, QueueEmpty, QueueFull, Thread


def test_event_wait_times_out_then_wakes():
    event = Event()
    assert event.wait(0.02) is False
    Thread(event.set, name="setter").start()
    assert event.wait(2) is True
    assert event.is_set()
    event.clear()
    assert not event.is_set()


def test_lock_timeout():
    lock = Lock()
    assert lock.acquire()
    assert lock.acquire(True, 0.02) is False
    lock.release()
    with lock:
        assert lock.locked()
    assert not lock.locked()


def test_queue_fifo_bounds_and_timeout():
    queue = Queue(2)
    queue.put(1)
    queue.put(2)
    raises(QueueFull, queue.put, 3, False)
    raises(QueueFull, queue.put, 3, True, 0.02)
    assert queue.get() == 1
    assert queue.get(timeout=0.1) == 2
    raises(QueueEmpty, queue.get, False)
    started = utime.ticks_ms()
    raises(QueueEmpty, queue.get, True, 0.03)
    assert utime.ticks_diff(utime.ticks_ms(), started) >= 25


def test_queue_hands_items_across_threads_in_order():
    queue = Queue()
    got = []
    done = Event()

    def _consume():
        while True:
            try:
                got.append(queue.get())
            except QueueClosed:
                done.set()
                return

    Thread(_consume, name="consumer").start()
    for index in range(100):
        queue.put(index)
    queue.close()
    assert done.wait(2)
    assert got == list(range(100))


def test_thread_join_and_error_capture():
    def _fail():
        raise ValueError("inside thread")

    with captured() as out:
        thread = Thread(_fail, name="failing").start()
        assert thread.join(2)
    assert isinstance(thread.error, ValueError)
    assert out.has("ERROR threads: thread failing died (ValueError: inside thread)")
    assert not thread.is_alive()
    blocker = Event()
    slow = Thread(blocker.wait, name="slow").start()
    assert slow.join(0.02) is False
    blocker.set()
    assert slow.join(2) is True


class _ShortIdent(object):
    """_thread, except that get_ident runs out of memory `failures` times (on the module it
    allocates: the ident is a big int)."""

    def __init__(self, real):
        self.real = real
        self.failures = 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def get_ident(self):
        if self.failures:
            self.failures -= 1
            raise MemoryError("memory allocation failed, allocating 16 bytes")
        return self.real.get_ident()


def short_ident():
    """Put a _ShortIdent in usr.qframe.threading's place of _thread (undo with its .real)."""
    import usr.qframe.threading as threading
    proxy = _ShortIdent(threading._thread)
    threading._thread = proxy
    return proxy


def restore_ident(proxy):
    import usr.qframe.threading as threading
    threading._thread = proxy.real


def test_a_memory_error_while_taking_a_lock_leaves_it_free():
    lock = Lock()
    event = Event()
    event.set()
    proxy = short_ident()
    try:
        for take in (lambda: lock.acquire(), lambda: lock.acquire(True, 0.05), event.clear):
            proxy.failures = 1
            raises(MemoryError, take)
        assert not lock.locked()
        assert lock.acquire(True, 0.05)         # the next taker is not wedged
        lock.release()
        assert event.is_set() and event.wait(0) # still set, and consistently so
        event.clear()
        assert not event.is_set() and event.wait(0.01) is False
    finally:
        restore_ident(proxy)


def test_a_with_block_left_while_the_heap_is_dry_releases_its_lock():
    """Leaving `with lock:` allocates nothing (an `__exit__(*exc)` packs a tuple: with the heap
    dry that MemoryError left the lock held and wedged its next taker). MicroPython only: it
    can lock its heap."""
    try:
        import micropython
        micropython.heap_lock
    except (ImportError, AttributeError):
        return                          # CPython: no heap to lock
    from usr.qframe.threading import Condition
    for guard in (Lock(), Condition()):
        try:
            with guard:
                micropython.heap_lock()
        finally:
            micropython.heap_unlock()
        assert guard.acquire(False) if isinstance(guard, Lock) else not guard._lock.locked()
