"""qframe.protocols.arbiter: the meter link shared by the module's DLMS client and the HES."""
from usr.qframe.protocols.arbiter import LinkArbiter


def test_free_link_passes_hes_and_routes_replies_to_hes():
    a = LinkArbiter(hes_hold_ms=100, max_waiting=10)
    assert a.hes_data(b"x", 0) is True and a.owner == "hes"
    assert a.meter_data(10) == "hes"
    assert a.try_acquire(50) is False                  # the HES exchange is in progress
    assert a.try_acquire(200) is True and a.owner == "dlms"
    assert a.stats["dlms_deferred"] == 1


def test_hes_waits_in_order_while_dlms_holds_then_flushes():
    a = LinkArbiter(hes_hold_ms=100, max_waiting=5)
    assert a.try_acquire(0)
    assert a.meter_data(1) == "dlms"
    assert a.hes_data(b"ab", 2) is False and a.hes_data(b"cd", 3) is False
    assert a.hes_data(b"efg", 4) is False                # over the bound: dropped, counted
    assert a.stats["hes_overflow"] == 1 and a.waiting == 2
    assert a.release(5) == [b"ab", b"cd"]
    assert a.owner == "hes" and a.meter_data(6) == "hes"  # the HES's replies go to the HES
    assert a.try_acquire(50) is False and a.try_acquire(300) is True


def test_release_without_waiting_frees_the_link():
    a = LinkArbiter()
    a.try_acquire(0)
    assert a.release(1) == [] and a.owner is None
    assert a.hes_data(b"x", 2) is True
