"""Reconnect delays: exponential growth up to a cap, with jitter so that many devices that lost
the same server do not come back in lockstep.

    backoff = Backoff(base_s=1, cap_s=300)
    delay = backoff.next()    # attempt n waits uniformly in [e/2, e] with e = min(cap, base * 2**n)
    backoff.reset()           # after a connection proved stable
"""
import uos
import utime


class Random(object):
    """xorshift32 seeded from the OS's entropy (per device), or from seed for repeatable tests."""

    def __init__(self, seed=None):
        if seed is None:
            try:
                raw = uos.urandom(4)
                seed = (raw[0] << 24) | (raw[1] << 16) | (raw[2] << 8) | raw[3]
            except (AttributeError, OSError):
                seed = utime.ticks_us() ^ id(self)
        self._state = (seed & 0xFFFFFFFF) or 0x2545F491

    def bits16(self):
        """A random int in 0..0xFFFF (the high half of the state)."""
        x = self._state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._state = x
        return x >> 16

    def random(self):
        """A float in [0, 1)."""
        return self.bits16() / 65536.0


class Backoff(object):
    """Exponential backoff with "equal jitter": attempt n waits in [e/2, e], e = min(cap, base*2^n)."""

    def __init__(self, base_s=1.0, cap_s=300.0, rng=None):
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempt = 0
        self._rng = rng or Random()

    def ceiling(self):
        """The upper bound of the next delay."""
        ceiling = self.base_s
        for _ in range(self.attempt):
            ceiling *= 2
            if ceiling >= self.cap_s:
                return self.cap_s
        return min(ceiling, self.cap_s)

    def next(self):
        """The delay (seconds) before the next attempt; each call grows the following one."""
        ceiling = self.ceiling()
        self.attempt += 1
        return ceiling / 2 + self._rng.random() * ceiling / 2

    def reset(self):
        self.attempt = 0
