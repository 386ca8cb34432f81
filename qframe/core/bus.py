"""The app's event bus: extensions publish and subscribe by topic, never import each other.

Subscribers run synchronously in the publisher's thread, in subscription order; a subscriber
that raises is logged and counted and the others still run. Long work belongs on a thread or
the app's worker pool, not in a subscriber.
"""
from ..logging import getLogger

_log = getLogger("bus")


class EventBus(object):
    def __init__(self):
        self._subscribers = {}
        self.stats = {"published": 0, "delivered": 0, "failed": 0, "unheard": 0}

    def subscribe(self, topic, callback):
        """Call callback(topic, data) for each publish on topic. Returns callback."""
        callbacks = self._subscribers.setdefault(topic, [])
        if callback not in callbacks:
            callbacks.append(callback)
        return callback

    def unsubscribe(self, topic, callback):
        callbacks = self._subscribers.get(topic)
        if callbacks and callback in callbacks:
            callbacks.remove(callback)

    def subscribers(self, topic):
        return list(self._subscribers.get(topic, ()))

    def publish(self, topic, data=None):
        """Deliver data to every subscriber of topic; return how many took it without error."""
        self.stats["published"] += 1
        callbacks = self._subscribers.get(topic)
        if not callbacks:
            self.stats["unheard"] += 1
            return 0
        delivered = 0
        for callback in list(callbacks):
            try:
                callback(topic, data)
                delivered += 1
            except Exception as exc:
                self.stats["failed"] += 1
                _log.exception("subscriber of %s failed", exc, topic)
        self.stats["delivered"] += delivered
        return delivered
