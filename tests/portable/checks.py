"""Assertion helpers for portable tests (no pytest on MicroPython)."""


def raises(exc_type, fn, *args, **kwargs):
    """Call fn and return the exc_type it raised; fail if it raised nothing."""
    try:
        fn(*args, **kwargs)
    except exc_type as exc:
        return exc
    raise AssertionError("expected %s" % exc_type)


def wait_until(predicate, timeout_ms=2000, step_ms=2):
    """Poll predicate until true or timeout; return its last value."""
    import utime
    deadline = utime.ticks_add(utime.ticks_ms(), timeout_ms)
    while True:
        value = predicate()
        if value or utime.ticks_diff(deadline, utime.ticks_ms()) <= 0:
            return value
        utime.sleep_ms(step_ms)
