from usr.qframe.core.bus import EventBus


def test_publish_reaches_subscribers_in_order():
    bus = EventBus()
    seen = []
    bus.subscribe("link", lambda topic, data: seen.append(("a", topic, data)))
    bus.subscribe("link", lambda topic, data: seen.append(("b", topic, data)))
    assert bus.publish("link", "up") == 2
    assert seen == [("a", "link", "up"), ("b", "link", "up")]


def test_failing_subscriber_is_isolated_and_counted():
    bus = EventBus()
    seen = []

    def _bad(topic, data):
        raise RuntimeError("subscriber bug")

    bus.subscribe("t", _bad)
    bus.subscribe("t", lambda topic, data: seen.append(data))
    assert bus.publish("t", 1) == 1
    assert seen == [1]
    assert bus.stats["failed"] == 1


def test_unheard_topics_are_counted_and_unsubscribe_works():
    bus = EventBus()
    seen = []

    def _cb(topic, data):
        seen.append(data)

    assert bus.publish("nobody") == 0
    assert bus.stats["unheard"] == 1
    handle = bus.subscribe("t", _cb)
    assert bus.subscribers("t") == [_cb]
    bus.unsubscribe(handle)
    bus.publish("t", 1)
    assert seen == []


class _IdentityOnly(object):
    """A callable that equals nothing but itself, as bound methods behave on MicroPython 1.13."""

    def __init__(self, seen):
        self.seen = seen

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    def __hash__(self):
        return id(self)

    def __call__(self, topic, data):
        self.seen.append(data)


def test_unsubscribe_finds_the_subscription_without_comparing_callbacks():
    bus = EventBus()
    seen = []
    handle = bus.subscribe("t", _IdentityOnly(seen))
    bus.publish("t", 1)
    bus.unsubscribe(handle)
    bus.unsubscribe(handle)
    bus.publish("t", 2)
    assert seen == [1]
    assert bus.subscribers("t") == []


def test_each_subscribe_is_one_delivery_and_cancel_ends_it():
    bus = EventBus()
    seen = []
    callback = _IdentityOnly(seen)
    first = bus.subscribe("t", callback)
    bus.subscribe("t", callback)
    bus.publish("t", "a")
    first.cancel()
    bus.publish("t", "b")
    assert seen == ["a", "a", "b"]


def test_unsubscribing_during_delivery_stops_later_deliveries_to_it():
    bus = EventBus()
    seen = []
    handles = []
    handles.append(bus.subscribe("t", lambda topic, data: handles[1].cancel()))
    handles.append(bus.subscribe("t", lambda topic, data: seen.append(data)))
    assert bus.publish("t", 1) == 1
    assert seen == []


def test_retained_value_is_kept_read_and_replayed():
    bus = EventBus()
    assert bus.retained("meter.serial") is None
    assert bus.retained("meter.serial", "") == ""
    bus.publish("meter.serial", "A1", retain=True)
    bus.publish("meter.serial.tmp", "x")
    assert bus.retained("meter.serial") == "A1"
    assert bus.retained("meter.serial.tmp") is None
    seen = []
    bus.subscribe("meter.serial", lambda topic, data: seen.append(data), replay=True)
    bus.subscribe("meter.serial", lambda topic, data: seen.append("late " + data))
    bus.publish("meter.serial", "B2", retain=True)
    assert seen == ["A1", "B2", "late B2"]
    assert bus.retained("meter.serial") == "B2"
