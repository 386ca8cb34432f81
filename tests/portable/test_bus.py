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
    bus.subscribe("t", _cb)
    bus.subscribe("t", _cb)
    assert bus.subscribers("t") == [_cb]
    bus.unsubscribe("t", _cb)
    bus.publish("t", 1)
    assert seen == []
