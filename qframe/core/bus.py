"""The app's event bus: extensions publish and subscribe by topic, never import each other.

Subscribers run synchronously in the publisher's thread, in subscription order; a subscriber
that raises is logged and counted and the others still run. Long work belongs on a thread or
the app's worker pool, not in a subscriber.

subscribe() returns a Subscription handle, and unsubscribe() takes that handle: MicroPython
before 1.22 (the module's 1.13) never finds two bound methods equal, so a bus that looked a
callback up by equality would silently keep it. Each subscribe() is one delivery; subscribing
the same callback twice delivers twice.

A topic can hold a retained value (the last one published with retain=True): `retained(topic)`
reads it at any time, and `subscribe(..., replay=True)` delivers it at once. That is how an
extension reads another's state (the meter's serial, the link state) without importing it.
"""
from ..logging import getLogger

_log = getLogger("bus")


class Subscription(object):
    """A handle on one subscribe() call; cancel() (or bus.unsubscribe(handle)) ends it."""

    def __init__(self, bus, topic, callback):
        self.bus = bus
        self.topic = topic
        self.callback = callback
        self.active = True

    def cancel(self):
        self.bus.unsubscribe(self)


class EventBus(object):
    def __init__(self):
        self._subscriptions = {}
        self._retained = {}
        self.stats = {"published": 0, "delivered": 0, "failed": 0, "unheard": 0, "memory_errors": 0}

    def subscribe(self, topic, callback, replay=False):
        """Call callback(topic, data) for each publish on topic; return the Subscription.

        replay=True also delivers the topic's retained value now, if it has one.
        """
        handle = Subscription(self, topic, callback)
        self._subscriptions.setdefault(topic, []).append(handle)
        if replay and topic in self._retained:
            self._deliver(handle, topic, self._retained[topic])
        return handle

    def unsubscribe(self, handle):
        """End the subscription behind handle (found by identity); a second call does nothing."""
        handles = self._subscriptions.get(handle.topic)
        handle.active = False
        if handles:
            for index in range(len(handles)):
                if handles[index] is handle:
                    del handles[index]
                    break

    def subscribers(self, topic):
        """The callbacks subscribed to topic, in delivery order."""
        return [handle.callback for handle in self._subscriptions.get(topic, ())]

    def retained(self, topic, default=None):
        """The last value published on topic with retain=True, or default."""
        return self._retained.get(topic, default)

    def publish(self, topic, data=None, retain=False):
        """Deliver data to every subscriber of topic; return how many took it without error.

        retain=True also keeps data as the topic's retained value. A subscriber's MemoryError
        reaches the publisher (which backs off and publishes again: subscribers before it may
        see the data twice); any other error is logged and counted.
        """
        self.stats["published"] += 1
        if retain:
            self._retained[topic] = data
        handles = self._subscriptions.get(topic)
        if not handles:
            self.stats["unheard"] += 1
            return 0
        delivered = 0
        for handle in list(handles):
            if handle.active and self._deliver(handle, topic, data):
                delivered += 1
        self.stats["delivered"] += delivered
        return delivered

    def _deliver(self, handle, topic, data):
        try:
            handle.callback(topic, data)
            return True
        except MemoryError:
            self.stats["memory_errors"] += 1
            raise       # the publisher backs off and publishes again (core/heap.py)
        except Exception as exc:
            self.stats["failed"] += 1
            _log.exception("subscriber of %s failed", exc, topic)
            return False
