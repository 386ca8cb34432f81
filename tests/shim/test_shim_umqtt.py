"""umqtt's publish(qos=1) as each firmware line's umqtt does it, against a broker made here
(one connection, over loopback): E1 waits for the PUBACK without a timeout and raises; E2
waits too but swallows every exception; E3 waits (up to 5 s) for another thread to consume the
PUBACK and never raises."""
import _thread

import shimctl
from umqtt import MQTTClient
from shimlib import firmware
from checks import EVENT_MS, captured, raises
from mqtt_peer import OneClientBroker
from usr.qframe.codecs import mqtt as codec


class _Broker(OneClientBroker):
    """Answers CONNECT, records PUBLISHes; ack(pid) / close() on demand."""

    def __init__(self):
        self.published = []
        OneClientBroker.__init__(self)

    def on_packet(self, packet):
        if packet.kind == codec.CONNECT:
            self.send(codec.connack(0))
        elif packet.kind == codec.PUBLISH:
            self.published.append(packet.pid)
            shimctl.fire(lambda: None)          # wakes shimctl.wait_for
        return True

    def ack(self, pid):
        self.send(codec.puback(pid))

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def _connected(broker):
    client = MQTTClient("dev", "127.0.0.1", broker.port)
    assert client.connect() == 0
    return client


def _publish_in_thread(client, outcome):
    def run():
        try:
            outcome.append(("returned", client.publish("t", b"x", False, 1)))
        except Exception as exc:
            outcome.append(("raised", exc))
    _thread.start_new_thread(run, ())


def test_publish_waits_for_the_puback_as_the_line_does():
    shimctl.reset()
    broker = _Broker()
    client = _connected(broker)
    try:
        outcome = []
        reader = []
        if firmware.LINE == "E3":               # the thread E3's publish expects
            def read():
                while not outcome:
                    client.check_msg()
                reader.append(True)
            _thread.start_new_thread(read, ())
        _publish_in_thread(client, outcome)
        assert shimctl.wait_for(lambda: broker.published, EVENT_MS)
        assert outcome == []                    # no PUBACK yet: still waiting
        broker.ack(broker.published[0])
        assert shimctl.wait_for(lambda: outcome, EVENT_MS)
        assert outcome == [("returned", None)]
    finally:
        client.close()
        broker.close()
        shimctl.reset()


def test_a_broken_connection_during_the_wait():
    shimctl.reset()
    broker = _Broker()
    client = _connected(broker)
    client._puback_wait_ms = 300                # E3's 5 s, shortened
    try:
        outcome = []
        with captured() as out:
            _publish_in_thread(client, outcome)
            assert shimctl.wait_for(lambda: broker.published, EVENT_MS)
            shimctl.reset_sockets()             # a TCP reset: no PUBACK will ever come
            assert shimctl.wait_for(lambda: outcome, EVENT_MS)
        if firmware.LINE == "E1":
            assert outcome[0][0] == "raised" and isinstance(outcome[0][1], OSError)
        else:
            assert outcome == [("returned", None)]          # swallowed / waited and gave up
            assert out.has("umqtt: ")
        assert client.get_mqttsta() == 2       # how qframe tells a publish did not go
    finally:
        client.close()
        broker.close()
        shimctl.reset()


def test_constructor_arguments_per_line():
    shimctl.reset()
    if firmware.LINE == "E1":
        assert raises(TypeError, MQTTClient, "dev", "127.0.0.1", version=4)
        assert not hasattr(MQTTClient, "error_register_cb")
    else:
        assert raises(ValueError, MQTTClient, "dev", "127.0.0.1", keepalive=3)
        assert hasattr(MQTTClient, "error_register_cb")
