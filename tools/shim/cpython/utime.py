"""utime on CPython: MicroPython's time API (ticks arithmetic wraps like the module's)."""
import time as _time

_PERIOD = 1 << 30
_MASK = _PERIOD - 1
_start = _time.monotonic_ns()


def _elapsed_ns():
    return _time.monotonic_ns() - _start


def ticks_ms():
    return (_elapsed_ns() // 1000000) & _MASK


def ticks_us():
    return (_elapsed_ns() // 1000) & _MASK


def ticks_add(ticks, delta):
    return (ticks + delta) & _MASK


def ticks_diff(end, start):
    return ((end - start + _PERIOD // 2) & _MASK) - _PERIOD // 2


def sleep(seconds):
    _time.sleep(seconds)


def sleep_ms(ms):
    _time.sleep(ms / 1000.0)


def sleep_us(us):
    _time.sleep(us / 1000000.0)


def time():
    return int(_time.time())


def localtime(secs=None):
    t = _time.localtime(secs)
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_wday, t.tm_yday)


def mktime(t):
    return int(_time.mktime(tuple(t[:8]) + (-1,)))

from shimlib import firmware as _firmware  # noqa: E402

_firmware.prune(globals(), "utime")
