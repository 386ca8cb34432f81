"""One way for the host simulators and rigs to await a state: a Condition notified on change."""
import time


def wait_on(condition, predicate, timeout, recheck_s=0.05):
    """Wait until predicate() is true, re-checked whenever condition is notified and at least
    every recheck_s; returns its last value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    with condition:
        while True:
            value = predicate()
            remaining = deadline - time.monotonic()
            if value or remaining <= 0:
                return value
            condition.wait(min(remaining, recheck_s))
