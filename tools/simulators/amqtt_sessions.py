"""amqtt's session database plugin, restoring before the broker listens (tools/simulators/mqtt_hes.py).

amqtt 0.12's SessionDBPlugin restores the stored sessions (the HES's subscriptions) after the
listeners are up, so a module that reconnects at once after a broker restart can publish into a
broker that has no subscriber yet and the message is gone. This subclass restores in the
pre-start event, before anything can connect. Loaded by the amqtt subprocess by module path.
"""
from amqtt.contrib.persistence import SessionDBPlugin


class SessionsFirst(SessionDBPlugin):
    async def on_broker_pre_start(self) -> None:
        await super().on_broker_pre_start()            # the tables
        await super().on_broker_post_start()           # the sessions, before listening

    async def on_broker_post_start(self) -> None:
        pass
