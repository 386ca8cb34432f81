"""The MQTT uplink over TLS to a real broker (amqtt with a TLS listener): the broker is verified
by a pinned certificate or by a CA file, as for the TCP uplink; a wrong pin or CA is refused
and nothing is published. Certificates come from the openssl CLI at test time."""
import shutil

import pytest

from tools.simulators.mqtt_hes import Broker, MqttHes

pytest.importorskip("ussl", reason="needs the shim's ussl")
from checks import wait_until  # noqa: E402
from cloud_helpers import certificate  # noqa: E402
from mqtt_helpers import BUDGET_S, Rig  # noqa: E402

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mqtt-tls")
    return (certificate(folder, "broker", "/CN=broker.test", ip="127.0.0.1"),
            certificate(folder, "other", "/CN=broker.test", ip="127.0.0.1"))


@pytest.fixture(scope="module")
def tls_broker(certs):
    (cert, key, _fp), _other = certs
    broker = Broker(tls=(cert, key)).start()
    yield broker
    broker.close()


def _rig(name, broker, **config):
    config.update({"tls": True, "port": broker.port})
    return Rig(name, broker, **config)


def test_pinned_broker_certificate_connects_and_delivers(tls_broker, certs):
    (_cert, _key, pinned), _other = certs
    r = _rig("tlspin", tls_broker, tls_fingerprint=pinned).start()
    try:
        r.publish(5)
        assert _wait_acked(r, 5), r.mqtt.status()
        assert r.mqtt.stats["connects"] == 1 and r.mqtt.stats["pin_failures"] == 0
    finally:
        assert r.app.stop()


def test_another_pin_is_refused_and_nothing_is_published(tls_broker, certs):
    _mine, (_cert, _key, other_pin) = certs
    r = _rig("tlsbadpin", tls_broker, tls_fingerprint=other_pin)
    r.app.load()
    try:
        r.publish(3)
        assert _wait_for(lambda: r.mqtt.stats["pin_failures"] >= 2), r.mqtt.status()
        assert r.mqtt.stats["connects"] == 0 and r.mqtt.stats["published"] == 0
        assert len(r.mqtt.queue) == 3                 # kept for a broker it can trust
    finally:
        assert r.app.stop()


def test_a_ca_file_is_refused_because_the_module_cannot_verify_one(tls_broker, certs):
    (cert, _key, _fp), _other = certs
    r = _rig("tlsca", tls_broker, tls_ca=cert)
    r.app.load()
    try:
        assert r.mqtt.state == "refused" and r.mqtt.stats["config_errors"] == 1
        assert "tls_ca" in r.mqtt.last_error and "tls_fingerprint" in r.mqtt.last_error
        assert r.mqtt.send(b"kept") is True and len(r.mqtt.queue) == 1
    finally:
        assert r.app.stop()


def test_tls_with_nothing_to_verify_against_refuses_to_start(tls_broker):
    r = _rig("tlsnone", tls_broker)
    r.app.load()
    try:
        assert r.mqtt.state == "refused" and r.mqtt.stats["config_errors"] == 1
        assert "tls_ca" in r.mqtt.last_error and "MQTT" in r.mqtt.last_error
        assert r.mqtt.send(b"kept") is True and len(r.mqtt.queue) == 1
    finally:
        assert r.app.stop()


def _wait_for(predicate):
    return wait_until(predicate, int(BUDGET_S * 1000), 10)


def _wait_acked(rig, count):
    return _wait_for(lambda: rig.mqtt.stats["acked_records"] >= count)
