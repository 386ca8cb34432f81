"""The app's heap watch (core/heap.py): MemoryError is a counted fault, logged once per spell,
backed off, reported upstream once the heap stays exhausted, and it starves the watchdog."""
import gc

import shimctl
import utime

from usr.qframe import Application, AppExtension
from usr.qframe import logging
from usr.qframe.builtins.watchdog import Watchdog


class _Part(AppExtension):
    """An extension the test makes run out of memory."""
    name = "part"

    def __init__(self, app):
        self.stats = {"memory_errors": 0}
        AppExtension.__init__(self, app=app)


def _app(memory, watchdog=None):
    app = Application("mem")
    app.config.merge({"APP": dict({"workers": 2, "stop_timeout": 1.0, "log_level": "INFO"},
                                  **memory)})
    part = _Part(app)
    if watchdog is not None:
        app.config.merge({"WATCHDOG": watchdog})
        Watchdog(app=app)
    return app, part


def _capture():
    lines = []
    token = logging.add_listener(lambda level, line: lines.append(line))
    return lines, token


def test_a_spell_is_logged_once_counted_and_backed_off_doubling_to_a_cap():
    app, part = _app({"memory_backoff_s": 0.5, "memory_exhausted_s": 3600})
    app.load()
    lines, token = _capture()
    try:
        delays = [part.out_of_memory(MemoryError("alloc 1280")) for _ in range(8)]
    finally:
        logging.remove_listener(token)
        app.stop()
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 16.0]
    assert part.stats["memory_errors"] == 8
    assert app.heap.stats["memory_errors"] == 8
    out_of_memory = [line for line in lines if "out of memory" in line]
    assert len(out_of_memory) == 1, lines
    assert "part" in out_of_memory[0] and "alloc 1280" in out_of_memory[0]
    assert app.status()["heap"]["short_of_memory"] == ["part"]


def test_a_relapse_continues_the_spell():
    app, part = _app({"memory_backoff_s": 1.0})     # spells last 32 s: no clock in this test
    app.load()
    lines, token = _capture()
    try:
        assert part.out_of_memory(MemoryError()) == 1.0
        assert part.out_of_memory(MemoryError()) == 2.0
        part.memory_recovered()
        part.memory_recovered()             # said once
        assert app.status()["heap"]["short_of_memory"] == []
        assert part.out_of_memory(MemoryError()) == 4.0     # a relapse: the backoff goes on
        assert app.heap.stats["relapses"] == 1
    finally:
        logging.remove_listener(token)
        app.stop()
    assert len([line for line in lines if "out of memory" in line]) == 1, lines
    assert len([line for line in lines if "memory available again" in line]) == 1, lines


def test_a_spell_over_for_the_longest_backoff_is_new():
    app, part = _app({"memory_backoff_s": 0.01})
    app.load()
    lines, token = _capture()
    try:
        assert part.out_of_memory(MemoryError()) == 0.01
        assert part.out_of_memory(MemoryError()) == 0.02
        part.memory_recovered()
        utime.sleep_ms(340)                 # well for longer than the longest backoff (0.32 s)
        assert part.out_of_memory(MemoryError()) == 0.01    # a new spell, logged again
        assert app.heap.stats["relapses"] == 0
    finally:
        logging.remove_listener(token)
        app.stop()
    assert len([line for line in lines if "out of memory" in line]) == 2, lines


def test_status_reports_free_heap_and_its_low_water_mark():
    app, _part = _app({})
    gc.collect()
    heap = app.status()["heap"]
    if heap["free"] is None:            # CPython has no gc.mem_free(): nothing to report
        assert heap["low_water"] is None
        return
    assert heap["free"] > 0 and heap["alloc"] > 0
    assert heap["low_water"] <= heap["free"]
    size = heap["free"] // 4
    ballast = bytearray(size)
    lower = app.status()["heap"]
    assert lower["free"] <= heap["free"] - size
    assert lower["low_water"] == lower["free"]
    ballast = None
    gc.collect()
    later = app.status()["heap"]
    assert later["free"] > lower["free"]
    assert later["low_water"] == lower["low_water"]     # a mark, not a sample


def test_an_exhausted_heap_is_reported_once_and_starves_the_watchdog_until_it_recovers():
    app, part = _app({"memory_backoff_s": 0.01, "memory_exhausted_s": 0.05},
                     {"period_s": 2, "feed_s": 0.02})
    reports = []
    app.bus.subscribe("heap.exhausted", lambda topic, data: reports.append(data))
    app.load()
    try:
        wd = app.watchdog
        part.out_of_memory(MemoryError())
        assert wd.check() is None           # a fresh spell is not yet exhaustion
        utime.sleep_ms(60)                  # the spell outlives memory_exhausted_s
        part.out_of_memory(MemoryError())
        part.out_of_memory(MemoryError())
        # reported by this call or by the watchdog's check on its timer thread
        assert shimctl.wait_for(lambda: len(reports) == 1)
        assert reports[0]["extension"] == "part"
        assert shimctl.wait_for(lambda: wd.stats["starved"] >= 2)
        assert app.heap.stats["exhausted_reports"] == 1 and len(reports) == 1
        assert wd.cause.startswith("heap exhausted (part")
        starved_at = shimctl.state["wdt_feeds"]
        part.memory_recovered()             # well for the longest backoff (0.32 s): fed again
        assert shimctl.wait_for(lambda: shimctl.state["wdt_feeds"] > starved_at)
        assert wd.cause is None
    finally:
        app.stop()
