"""Reconnect delays: exponential growth up to a cap, with jitter so that many devices that lost
the same server do not come back in lockstep.

    backoff = Backoff(base_s=1, cap_s=300, rng=Random(seed))  # seed: the device's entropy
    delay = backoff.next()    # attempt n waits uniformly in [e/2, e] with e = min(cap, base * 2**n)
    backoff.reset()           # after a connection proved stable

Pure: the entropy comes in as the seed (qframe/builtins/link.py's `entropy_seed` reads the
module's); no clock is read (the driver times the wait).
"""


class Random(object):
    """xorshift32 from a seed (per device: its entropy; a fixed one for repeatable tests)."""

    def __init__(self, seed):
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

    def __init__(self, base_s, cap_s, rng):
        """rng: a Random (or anything with random() -> [0, 1))."""
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempt = 0
        self._rng = rng

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
