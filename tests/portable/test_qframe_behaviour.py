"""QFrame's behaviour on qframe: the app's extension mapping and built-in network, the pool
before mainloop, threading, globals, collections, logging and datetime as QFrame apps use them."""
import uos
from checks import raises

from usr.qframe import Application, AppExtensionABC, CurrentApp, G
from usr.qframe import logging
from usr.qframe.builtins.network import NetWork
from usr.qframe.collections import LocalStorage, OrderedDict
from usr.qframe.datetime import UTC, DateTime, TimeDelta, TimeZone
from usr.qframe.threading import (BoundedSemaphore, Condition, Event, PriorityQueue, Queue,
                                  QueueFull, Semaphore, Task, Thread, ThreadPoolExecutor)


class _Ext(AppExtensionABC):
    loaded = False

    def load(self):
        self.loaded = True


class _Resolver(object):
    """No name, no load: registered the way the meter solution's resolver does it."""


class _Watch(NetWork):
    """Stands in for NetWatch: an app-supplied `network` extension."""


def test_extensions_are_an_ordered_mapping_by_name():
    app = Application("a")
    _Ext("uart", app)
    resolver = _Resolver()
    app.extensions["rfc1662resolver"] = resolver
    _Ext("client", app)
    assert "uart" in app.extensions and "hes" not in app.extensions
    assert app.extensions.keys() == ["network", "uart", "rfc1662resolver", "client"]
    assert [name for name, ext in app.extensions.items()] == app.extensions.keys()
    assert app.rfc1662resolver is resolver and app.extensions["uart"] is app.uart
    assert list(app.extensions.values())[1] is app.uart
    app.mainloop()
    assert app.uart.loaded and app.client.loaded
    app.stop()


def test_builtin_network_is_replaced_and_its_callbacks_kept():
    app = Application("a")
    _Ext("first", app)
    seen = []
    app.network.register_net_callback(seen.append)
    watch = _Watch()
    watch.init_app(app)
    assert app.network is watch and app.extensions.keys() == ["first", "network"]
    raises(ValueError, _Watch, None, app)            # only the built-in is replaceable
    app.load()
    watch._on_datacall((1, 0))
    assert seen == [(1, 0)] and not watch.is_up()
    app.stop()


def test_submit_works_before_mainloop_in_both_styles():
    app = Application("a")
    done = Event()
    assert app.submit(done.set) is True
    result = app.submit(target=lambda x: x * 2, args=(21,))
    assert result.get(timeout=2) == 42 and done.wait(2)
    failing = app.submit(Task(target=lambda: 1 // 0))
    raises(ZeroDivisionError, failing.get, 2)
    app.load()
    assert app.submit(target=lambda: "after").get(2) == "after"
    app.stop()
    assert app.submit(done.set) is False                 # rejected, never blocks


def test_pool_backlog_is_bounded_and_priorities_order_work():
    gate = Event()
    order = []
    pool = ThreadPoolExecutor(max_workers=1, enable_priority=True, backlog=3)
    pool.submit(gate.wait, 2)                            # occupies the only worker
    while pool.pending():
        Event().wait(0.005)
    pool.submit(Task(order.append, ("low",), priority=5))
    pool.submit(Task(order.append, ("high",), priority=1))
    last = pool.submit(target=order.append, args=("mid",), priority=3)
    rejected = pool.submit(target=order.append, args=("late",))
    raises(QueueFull, rejected.get, 1)
    gate.set()
    last.get(2)
    assert pool.shutdown(2)
    assert order == ["high", "mid", "low"]


def test_thread_stop_result_and_restart():
    def _loop(thread_box):
        while not thread_box[0].stopping.is_set():
            thread_box[0].stopping.wait(0.01)
        return "stopped"

    box = []
    thread = Thread(target=_loop, args=(box,))
    box.append(thread)
    assert thread.start() is thread and thread.is_running()
    assert thread.ident is None or thread.ident == thread.ident
    assert thread.stop(2) is True and not thread.is_running()
    assert thread.get(1) == "stopped"
    thread.start()
    assert thread.stop(2) and thread.get(1) == "stopped"
    sleeper = Thread(target=Event().wait, args=(0.5,)).start()
    raises(Thread.TimeoutError, sleeper.get, 0.01)


def test_condition_semaphores_and_queues():
    cond = Condition()
    state = []

    def _producer():
        with cond:
            state.append(1)
            cond.notify_all()

    with cond:
        Thread(target=_producer).start()
        assert cond.wait_for(lambda: state, timeout=2)
    raises(RuntimeError, cond.notify)                    # lock not held
    sem = Semaphore(1)
    assert sem.acquire() and not sem.acquire(False)
    sem.release()
    bounded = BoundedSemaphore(1)
    raises(ValueError, bounded.release)
    queue = PriorityQueue.convert([3, 1, 2])
    assert [queue.get(False) for _ in range(3)] == [1, 2, 3]
    fifo = Queue(1)
    fifo.put("a")
    raises(Queue.Full, fifo.put, "b", False)
    fifo.clear()
    assert fifo.size() == 0


def test_globals_in_both_styles_follow_the_newest_app():
    app = Application("a")
    assert CurrentApp.get() is app and CurrentApp() is app
    G.get().set("answer", 42)
    assert G().answer == 42 and app.g is G.get()


def test_logging_takes_qframe_and_percent_messages():
    lines = []
    token = logging.add_listener(lambda level, line: lines.append(line))
    try:
        logging.basicConfig(level=logging.INFO, console=False)   # whatever a test before left
        log = logging.getLogger("compat")
        log.warn("two", "args")
        log.info("%d octets", 5)
        log.info("100%", "done")
        log.debug("hidden")
        logging.BasicConfig.update(level="debug")
        log.debug("shown", 1)
        assert logging.BasicConfig.get("level") == logging.Level.DEBUG
    finally:
        logging.remove_listener(token)
        logging.basicConfig(level=logging.INFO, console=True)
    assert [line.split(": ", 1)[1] for line in lines] == ["two args", "5 octets", "100% done",
                                                         "shown 1"]
    assert lines[0].split(" ")[1] == "WARNING"


def test_ordered_dict_and_local_storage():
    ordered = OrderedDict([("b", 1), ("a", 2)])
    ordered["c"] = 3
    ordered["b"] = 4
    del ordered["a"]
    assert list(ordered) == ["b", "c"] and ordered.items() == [("b", 4), ("c", 3)]
    path = "/usr/compat_store.json"
    store = LocalStorage()
    store.update({"UART": {"port": 2}})
    store.save(path)
    again = LocalStorage().from_json(path)
    section = again["UART"]
    section["port"] = 9                                  # a copy: the store is unchanged
    assert again.get("UART") == {"port": 2}
    uos.remove(path)
    raises(ValueError, LocalStorage().from_json, "/usr/missing.json")
    app = Application("a")
    app.config.update({"UART": {"port": 3}})
    app.config.save(path)
    loaded = Application("b").config.from_json(path)
    assert loaded["UART"] == {"port": 3}
    loaded["UART"]["port"] = 4
    loaded.save()                                        # back to the file it read
    assert Application("c").config.from_json(path)["UART"] == {"port": 4}
    raises(ValueError, app.config.save)                  # never read from a file
    uos.remove(path)


def test_datetime_arithmetic_and_zones():
    leap = DateTime(2024, 2, 28, 23, 30, 0, tz=TimeZone(8))
    later = leap + TimeDelta(hours=1)
    assert str(later) == "2024-02-29 00:30:00 UTC+08:00"
    assert (later - leap).total_seconds() == 3600
    assert str(leap.astimezone(UTC)) == "2024-02-28 15:30:00 UTC+00:00"
    assert leap.astimezone(UTC) == leap and later > leap
    assert DateTime(2024, 1, 1).weekday == 1 and DateTime(2024, 12, 31).yearday == 366
    raises(ValueError, DateTime, 2023, 4, 31)            # QFrame accepted it
    assert (DateTime(2024, 1, 1) == "2024-01-01") is False
