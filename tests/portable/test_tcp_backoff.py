"""Reconnect backoff: exponential up to the cap, jittered so devices do not reconnect in lockstep."""
from usr.qframe.protocols.backoff import Backoff, Random


def test_delays_grow_exponentially_within_equal_jitter_bounds_and_stop_at_cap():
    backoff = Backoff(base_s=1.0, cap_s=10.0, rng=Random(7))
    ceilings = [1, 2, 4, 8, 10, 10, 10]
    for ceiling in ceilings:
        delay = backoff.next()
        assert ceiling / 2.0 <= delay <= ceiling, (ceiling, delay)
    backoff.reset()
    assert backoff.next() <= 1.0


def test_same_seed_same_delays_other_seed_other_delays():
    first = [Backoff(1, 60, Random(42)).next() for _ in range(3)]
    assert first[0] == first[1] == first[2]
    a = Backoff(1, 60, Random(1))
    b = Backoff(1, 60, Random(2))
    assert [a.next() for _ in range(5)] != [b.next() for _ in range(5)]


def test_the_drivers_entropy_seed_differs_per_instance():
    from usr.qframe.builtins.link import entropy_seed
    delays = [Backoff(1.0, 60.0, Random(entropy_seed())).next() for _ in range(20)]
    assert len(set(delays)) >= 18


def test_many_devices_spread_over_the_jitter_window():
    """1000 devices at the same attempt: delays cover [e/2, e] evenly (no lockstep)."""
    ceiling = 8.0
    buckets = [0] * 8
    delays = []
    for device in range(1000):
        backoff = Backoff(1.0, 60.0, Random(device * 7919 + 1))
        backoff.attempt = 3
        delay = backoff.next()
        delays.append(delay)
        buckets[min(7, int((delay - ceiling / 2) / (ceiling / 2) * 8))] += 1
    assert min(delays) >= ceiling / 2 and max(delays) <= ceiling
    for count in buckets:                      # each eighth holds ~125 of 1000
        assert 80 <= count <= 170, buckets
    mean = sum(delays) / len(delays)
    spread = (sum((d - mean) ** 2 for d in delays) / len(delays)) ** 0.5
    assert 1.0 <= spread <= 1.4, spread       # uniform on a 4 s window: 1.15 s
