"""osTimer, machine.Timer and machine.WDT of the shim: thread-backed, stoppable."""
import _thread

import utime
import shimctl
import osTimer
import machine
from checks import EVENT_MS, captured


def _counter():
    hits = []

    def hit(arg):
        hits.append((arg, _thread.get_ident()))
    return hits, hit


def _settled(hits, quiet_ms=60):
    """The number of hits once none came for quiet_ms (proves a stop: nothing more fires)."""
    while True:
        before = len(hits)
        utime.sleep_ms(quiet_ms)
        if len(hits) == before:
            return before


def test_ostimer_periodic_fires_and_stops():
    shimctl.reset()
    hits, hit = _counter()
    timer = osTimer()
    assert timer.start(10, 1, hit) == 0
    assert shimctl.wait_for(lambda: len(hits) >= 3, EVENT_MS)
    assert timer.stop() == 0
    count = _settled(hits)
    utime.sleep_ms(50)
    assert len(hits) == count
    assert hits[0][0] is None and hits[0][1] != _thread.get_ident()


def test_ostimer_one_shot_fires_once():
    shimctl.reset()
    hits, hit = _counter()
    timer = osTimer()
    start = utime.ticks_ms()
    timer.start(30, 0, hit)
    assert shimctl.wait_for(lambda: hits, EVENT_MS)
    assert utime.ticks_diff(utime.ticks_ms(), start) >= 25
    utime.sleep_ms(80)
    assert len(hits) == 1
    assert timer.delete_timer() == 0


def test_ostimer_can_stop_itself_and_restart():
    shimctl.reset()
    timer = osTimer()
    hits = []

    def once_more(arg):
        hits.append(1)
        if len(hits) == 2:
            timer.stop()

    timer.start(5, 1, once_more)
    assert shimctl.wait_for(lambda: len(hits) == 2, EVENT_MS)
    assert _settled(hits) == 2
    timer.start(5, 0, once_more)
    assert shimctl.wait_for(lambda: len(hits) == 3, EVENT_MS)
    timer.stop()


def test_reset_stops_running_timers():
    shimctl.reset()
    hits, hit = _counter()
    osTimer().start(5, 1, hit)
    machine.Timer(machine.Timer.Timer1).start(period=5, mode=machine.Timer.PERIODIC, callback=hit)
    assert shimctl.wait_for(lambda: len(hits) >= 4, EVENT_MS)
    shimctl.reset()
    count = _settled(hits)
    utime.sleep_ms(30)
    assert len(hits) == count


def test_machine_timer_passes_itself():
    shimctl.reset()
    hits, hit = _counter()
    timer = machine.Timer(machine.Timer.Timer0)
    assert timer.start(period=10, mode=machine.Timer.ONE_SHOT, callback=hit) == 0
    assert shimctl.wait_for(lambda: hits, EVENT_MS)
    assert hits[0][0] is timer
    assert timer.stop() == 0


def test_watchdog_fed_in_time_does_not_expire():
    shimctl.reset()
    wdt = machine.WDT(0.2)
    assert shimctl.state["wdt_running"]
    for _ in range(5):
        utime.sleep_ms(50)
        assert wdt.feed() == 0
    assert shimctl.state["wdt_feeds"] == 5 and shimctl.state["wdt_expired"] == 0
    assert wdt.stop() == 0
    assert not shimctl.state["wdt_running"]


def test_watchdog_not_fed_would_reset():
    shimctl.reset()
    with captured() as out:
        wdt = machine.WDT(0.05)
        start = utime.ticks_ms()
        assert shimctl.wait_for(lambda: shimctl.state["wdt_expired"] >= 1, EVENT_MS)
        assert utime.ticks_diff(utime.ticks_ms(), start) >= 45
        wdt.stop()
    assert out.has("shim WDT: not fed for 50 ms - the module would reset now")
    expired = shimctl.state["wdt_expired"]
    utime.sleep_ms(120)
    assert shimctl.state["wdt_expired"] == expired
    shimctl.reset()
