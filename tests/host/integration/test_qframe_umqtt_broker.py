"""qframe's own MQTT client (qframe/umqtt.py) against a real broker (mosquitto, else amqtt) and a
paho-mqtt peer: publish QoS 0/1, subscribe and receive, the last will on a dropped connection,
TLS with a pinned broker certificate, and a broker restart that makes the blocking publish
raise instead of hanging. The portable twin (tests/portable/test_qframe_umqtt.py) covers the
timeouts against a broker that stays silent."""
import os
import shutil
import subprocess
import threading

import paho.mqtt.client as paho
import pytest

from tools.hostrun import board_root
from tools.simulators.mqtt_hes import Broker
from usr.qframe.umqtt import MQTTClient, MQTTException

BUDGET_S = 10.0         # generous: the machine is shared; every wait ends as soon as it can
RESPONSE_MS = 2000


@pytest.fixture(scope="module")
def broker():
    b = Broker().start()
    yield b
    b.close()


class Peer(object):
    """A paho client subscribed to `topic`: what it received, and publish()."""

    def __init__(self, port, topic, tls=False):
        self.messages = []
        self._changed = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, clean_session=True)
        self.client.username_pw_set("peer")
        if tls:
            self.client.tls_set(cert_reqs=__import__("ssl").CERT_NONE)
            self.client.tls_insecure_set(True)
        subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, 1)
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert subscribed.wait(BUDGET_S), "the peer never subscribed"

    def _on_message(self, client, userdata, message):
        with self._changed:
            self.messages.append((message.topic, message.payload, message.retain))
            self._changed.notify_all()

    def wait_for(self, count):
        with self._changed:
            return self._changed.wait_for(lambda: len(self.messages) >= count, BUDGET_S)

    def publish(self, topic, payload, qos=1):
        self.client.publish(topic, payload, qos=qos).wait_for_publish(BUDGET_S)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def _client(port, name, **kwargs):
    kwargs.setdefault("response_ms", RESPONSE_MS)
    return MQTTClient(name, "127.0.0.1", port, user="module", **kwargs)


def test_publish_qos0_and_qos1_reach_a_subscriber(broker):
    peer = Peer(broker.port, "q/pub/#")
    client = _client(broker.port, "q-pub", keepalive=30)
    try:
        assert client.connect() == 0
        client.publish("q/pub/zero", b"0")
        client.publish("q/pub/one", b"1", qos=1)
        assert peer.wait_for(2), peer.messages
        assert sorted(peer.messages) == [("q/pub/one", b"1", False), ("q/pub/zero", b"0", False)]
        assert client.session.inflight == {} and client.session.stats["acked"] == 1
    finally:
        client.disconnect()
        peer.close()


def test_subscribe_and_receive_qos1(broker):
    client = _client(broker.port, "q-sub")
    got = []
    client.set_callback(lambda topic, msg: got.append((topic, msg)))
    peer = Peer(broker.port, "q/unused")
    try:
        client.connect()
        assert client.subscribe(b"q/sub/#", 1) is True
        peer.publish("q/sub/cmd", b"hello")
        while not got:
            client.wait_msg()
        assert got == [(b"q/sub/cmd", b"hello")]
    finally:
        client.disconnect()
        peer.close()


def test_the_last_will_goes_out_when_the_connection_drops(broker):
    peer = Peer(broker.port, "q/will/#")
    client = _client(broker.port, "q-will")
    try:
        client.set_last_will("q/will/status", b"offline", retain=False, qos=1)
        client.connect()
        client.close()                  # no DISCONNECT: the broker sends the will
        assert peer.wait_for(1), "no will"
        assert peer.messages == [("q/will/status", b"offline", False)]
    finally:
        peer.close()


def test_a_broker_restart_makes_the_blocking_publish_raise_then_reconnect_resends():
    b = Broker().start()
    client = _client(b.port, "q-restart")
    try:
        client.connect(clean_session=False)
        client.publish("q/restart/a", b"before", qos=1)
        b.stop()
        with pytest.raises((OSError, MQTTException)):
            client.publish("q/restart/a", b"during", qos=1)
        assert client.get_mqttsta() == 2
        b.start()
        peer = Peer(b.port, "q/restart/#")
        try:
            client.connect(clean_session=False)     # resends "during" (DUP): not acked
            client.publish("q/restart/a", b"after", qos=1)
            assert peer.wait_for(2)
            assert sorted(m[1] for m in peer.messages) == [b"after", b"during"]
        finally:
            peer.close()
    finally:
        client.close()
        b.close()


OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")
def test_tls_with_a_pinned_certificate_and_a_wrong_pin_refused(tmp_path):
    pytest.importorskip("ussl", reason="needs the shim's ussl")
    from cloud_helpers import certificate
    cert, key, pin = certificate(tmp_path, "broker", "/CN=broker.test", ip="127.0.0.1")
    _other_cert, _other_key, other_pin = certificate(tmp_path, "other", "/CN=broker.test")
    b = Broker(tls=(cert, key)).start()
    peer = Peer(b.port, "q/tls/#", tls=True)
    try:
        wrong = _client(b.port, "q-tls-bad", ssl=True, ssl_params={"fingerprint": other_pin})
        with pytest.raises(MQTTException, match="certificate"):
            wrong.connect()
        assert wrong.sock is None
        client = _client(b.port, "q-tls", ssl=True, ssl_params={"fingerprint": pin})
        client.connect()
        client.publish("q/tls/x", b"secret", qos=1)
        assert peer.wait_for(1) and peer.messages == [("q/tls/x", b"secret", False)]
        client.disconnect()
    finally:
        peer.close()
        b.close()


@pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")
@pytest.mark.parametrize("line", ["E1", "E3"])
def test_micropython_over_tls_with_and_without_uselect(tmp_path, line):
    """The firmware's TLS socket (MicroPython's ussl): polled non-blocking where uselect exists
    (E3), read with the plain socket's timeout and never past a packet before (E1)."""
    from cloud_helpers import certificate
    cert, key, pin = certificate(tmp_path, "broker", "/CN=broker.test", ip="127.0.0.1")
    argv = board_root.interpreter_command("micropython")
    b = Broker(tls=(cert, key)).start()
    try:
        done = subprocess.run(
            argv + [os.path.join(board_root.REPO, "tests", "host", "qframe_umqtt_mp.py"),
                    board_root.DEFAULT_ROOT, str(b.port), pin],
            cwd=board_root.REPO, env=dict(os.environ, QFRAME_FIRMWARE=line), capture_output=True,
            text=True, timeout=60)
    finally:
        b.close()
    assert done.returncode == 0 and "ok 20" in done.stdout, done.stdout + done.stderr
