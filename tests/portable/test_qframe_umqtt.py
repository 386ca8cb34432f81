"""qframe's own blocking MQTT client (qframe/umqtt.py) against a broker made here with the codec
(one connection over loopback, on both interpreters): every wait is bounded and ends in a
clear error, unlike the firmware's umqtt. tests/host/integration/test_qframe_umqtt_broker.py runs it
against mosquitto."""
import _thread

from checks import EVENT_MS, raises, wait_until
from mqtt_peer import OneClientBroker
from usr.qframe.codecs import mqtt as codec
from usr.qframe.umqtt import MQTTClient, MQTTException, MQTTTimeout

SHORT_MS = 300          # the client's bound on CONNACK / PUBACK where a test awaits a timeout
BUDGET_MS = EVENT_MS        # elsewhere: generous, the machine is shared


class _Broker(OneClientBroker):
    """Answers what `rc`, `ack`, `grant` say; records what it got."""

    def __init__(self, rc=0, ack=True, grant=1, connack=True, drop_on_publish=False):
        self.rc = rc
        self.ack = ack
        self.grant = grant
        self.connack = connack
        self.drop_on_publish = drop_on_publish
        self.packets = []
        self.clients = []
        OneClientBroker.__init__(self)

    def on_packet(self, packet):
        self.packets.append(packet)
        if packet.kind == codec.PUBLISH and self.drop_on_publish:
            return False
        if packet.kind == codec.CONNECT and self.connack:
            self.send(codec.connack(self.rc))
        elif packet.kind == codec.PUBLISH and packet.qos and self.ack:
            self.send(codec.puback(packet.pid))
        elif packet.kind == codec.SUBSCRIBE:
            self.send(codec.suback(packet.pid, [self.grant]))
        elif packet.kind == codec.PINGREQ:
            self.send(codec.pingresp())
        return True

    def kinds(self):
        return [p.kind for p in self.packets]

    def of(self, kind):
        return [p for p in self.packets if p.kind == kind]

    def close(self):
        """Close the clients first and let the serving thread end by itself (a socket closed
        under a thread blocked in it is not safe on every interpreter)."""
        for client in self.clients:
            client.close()
        wait_until(lambda: self.done or self.conn is None, 3000)
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def _client(broker, **kwargs):
    kwargs.setdefault("response_ms", BUDGET_MS)
    client = MQTTClient("dev1", "127.0.0.1", broker.port, **kwargs)
    broker.clients.append(client)
    return client


def test_connect_with_will_and_credentials_then_publish_qos0_and_qos1():
    broker = _Broker()
    try:
        client = _client(broker, user="u", password="pw", keepalive=30)
        assert client.get_mqttsta() == -1
        client.set_last_will(b"s/dev1", "offline", retain=True, qos=1)
        assert client.connect(clean_session=False) == 0
        assert client.get_mqttsta() == 0
        connect = broker.of(codec.CONNECT)[0]
        assert (connect.client_id, connect.keepalive, connect.clean, connect.user) == \
            ("dev1", 30, False, "u")
        assert connect.will == ("s/dev1", b"offline", 1, True)
        assert client.publish("a/b", b"zero") is None
        assert client.publish(b"a/c", "one", qos=1) is None     # returned: PUBACKed
        assert client.session.inflight == {}
        assert wait_until(lambda: len(broker.of(codec.PUBLISH)) == 2)
        zero, one = broker.of(codec.PUBLISH)
        assert (zero.topic, zero.payload, zero.qos) == ("a/b", b"zero", 0)
        assert (one.topic, one.payload, one.qos) == ("a/c", b"one", 1)
        client.disconnect()
        assert wait_until(lambda: codec.DISCONNECT in broker.kinds())
        assert client.get_mqttsta() == 2
    finally:
        broker.close()


def test_a_publish_the_broker_never_acks_raises_after_response_ms_and_closes():
    broker = _Broker(ack=False)
    try:
        client = _client(broker)
        client.connect()
        client.response_ms = SHORT_MS
        exc = raises(MQTTTimeout, client.publish, "t", b"x", False, 1)
        assert "PUBACK" in str(exc) and isinstance(exc, MQTTException)
        assert client.get_mqttsta() == 2 and client.sock is None
        raises(OSError, client.publish, "t", b"y", False, 1)
    finally:
        broker.close()


def test_a_refused_connect_raises_with_the_return_code():
    broker = _Broker(rc=5)
    try:
        exc = raises(MQTTException, _client(broker).connect)
        assert exc.args[0] == 5
    finally:
        broker.close()


def test_no_connack_raises_a_timeout():
    broker = _Broker(connack=False)
    try:
        client = _client(broker, response_ms=SHORT_MS)
        exc = raises(MQTTTimeout, client.connect)
        assert "CONNACK" in str(exc) and client.sock is None
    finally:
        broker.close()


def test_the_broker_closing_while_publish_waits_raises_oserror():
    broker = _Broker(drop_on_publish=True)
    try:
        client = _client(broker)
        client.connect()
        exc = raises(OSError, client.publish, "t", b"x", False, 1)
        assert not isinstance(exc, MQTTTimeout)
        assert client.get_mqttsta() == 2
    finally:
        broker.close()


def test_subscribe_then_incoming_qos1_reaches_the_callback_and_is_acked():
    broker = _Broker()
    try:
        client = _client(broker)
        got = []
        client.set_callback(lambda topic, msg: got.append((topic, msg)))
        client.connect()
        assert client.subscribe("down/#", 1) is True
        assert broker.of(codec.SUBSCRIBE)[0].topics == [("down/#", 1)]
        assert client.check_msg() is None and got == []
        broker.send(codec.publish("down/cmd", b"{}", qos=1, pid=42, retain=True))
        assert client.wait_msg() == codec.PUBLISH
        assert got == [(b"down/cmd", b"{}")]
        assert wait_until(lambda: broker.of(codec.PUBACK))
        assert broker.of(codec.PUBACK)[0].pid == 42
    finally:
        broker.close()


def test_a_refused_subscription_raises():
    broker = _Broker(grant=0x80)
    try:
        client = _client(broker)
        client.connect()
        exc = raises(MQTTException, client.subscribe, "x/#")
        assert "refused" in str(exc)
    finally:
        broker.close()


def test_a_packet_that_arrives_one_octet_at_a_time_is_whole_for_the_callback():
    broker = _Broker()
    try:
        client = _client(broker)
        got = []
        client.set_callback(lambda topic, msg: got.append(msg))
        client.connect()
        data = codec.publish("d", b"p" * 300)
        for index in range(len(data)):
            broker.send(data[index:index + 1])
        while not got:
            client.wait_msg()
        assert got == [b"p" * 300]
    finally:
        broker.close()


def test_a_callback_may_publish_and_a_reader_thread_serves_another_publisher():
    broker = _Broker()
    try:
        client = _client(broker)
        client.set_callback(lambda topic, msg: client.publish("up/resp", msg, False, 1))
        client.connect()
        stop = []
        ended = []

        def reader():
            try:
                while not stop:
                    client.wait_msg()
            except OSError:
                pass
            ended.append(True)
        _thread.start_new_thread(reader, ())
        broker.send(codec.publish("down/cmd", b"ping"))
        for index in range(5):                      # the E3-style pattern: publish while
            client.publish("up/data", b"%d" % index, False, 1)   # another thread reads
        assert wait_until(lambda: [p.payload for p in broker.of(codec.PUBLISH)
                                   if p.topic == "up/resp"] == [b"ping"])
        assert len([p for p in broker.of(codec.PUBLISH) if p.topic == "up/data"]) == 5
        stop.append(True)
        client.ping()                               # wakes the reader (PINGRESP)
        assert wait_until(lambda: ended)
    finally:
        broker.close()


def test_wait_msg_keeps_the_connection_alive_with_pings():
    broker = _Broker()
    try:
        client = _client(broker, keepalive=1)
        client.connect()
        assert client.wait_msg() == codec.PINGRESP          # after the 1 s keepalive
        assert codec.PINGREQ in broker.kinds()
    finally:
        broker.close()


def test_inflight_qos1_is_resent_with_dup_on_a_reconnect_without_clean_session():
    first = _Broker(ack=False)
    client = _client(first)
    try:
        client.connect(clean_session=False)
        client.response_ms = SHORT_MS
        raises(MQTTTimeout, client.publish, "t/r", b"again", False, 1)
    finally:
        first.close()
    second = _Broker(ack=False)
    second.clients.append(client)
    try:
        client.port = second.port
        client.connect(clean_session=False)
        assert wait_until(lambda: second.of(codec.PUBLISH))
        resent = second.of(codec.PUBLISH)[0]
        assert (resent.topic, resent.payload, resent.dup) == ("t/r", b"again", True)
    finally:
        second.close()
