"""TLS to a local TLS HES: a pinned server certificate (SHA-256 of its DER) is accepted, any
other is refused before a byte of data leaves; a CA file is refused at load (the module's ussl
cannot verify a CA). Certificates are generated at test time with the openssl CLI (the venv has no `cryptography`)."""
import shutil

import pytest

pytest.importorskip("usocket", reason="needs the QuecPython shim (tools/shim)")
pytest.importorskip("ussl", reason="needs the shim's ussl")

from cloud_helpers import CloudRig, budget, certificate  # noqa: E402
from tools.simulators.hes import HesSim  # noqa: E402

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    return certificate(folder, "hes"), certificate(folder, "other")


@pytest.fixture
def tls_hes(certs):
    (cert, key, _fp), _other = certs
    hes = HesSim(tls_cert=cert, tls_key=key).start()
    yield hes
    hes.stop()


def _rig(name, hes, **tcp):
    tcp.update({"tls": True, "backoff_base_s": 0.1, "backoff_cap_s": 0.3})
    return CloudRig(name, hes=hes, tcp=tcp)


def test_pinned_certificate_connects_and_delivers(tls_hes, certs):
    (_cert, _key, fingerprint), _other = certs
    pinned = ":".join(fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()   # any notation
    r = _rig("tlspin", tls_hes, tls_fingerprint=pinned)
    try:
        r.start()
        r.publish(20)
        assert r.wait_delivered(5)
        r.check_exact()
        tls_hes.send_data(b"\x00down")
        assert r.wait(lambda: r.downlink == [b"\x00down"], 3)
        assert r.tcp.stats["pin_failures"] == 0
    finally:
        assert r.close()


def test_other_certificate_is_refused_and_nothing_is_sent(tls_hes, certs):
    _mine, (_cert, _key, other_fingerprint) = certs
    r = _rig("tlsbad", tls_hes, tls_fingerprint=other_fingerprint)
    try:
        r.start(connected=False)
        r.publish(3)
        assert r.wait(lambda: r.tcp.stats["pin_failures"] >= 2,
                      budget(r.tcp_config["backoff_cap_s"] * 2))
        assert tls_hes.registrations == [] and tls_hes.received == []
        assert len(r.tcp.queue) == 3 and r.tcp.stats["connects"] == 0
    finally:
        assert r.close()


def test_a_ca_file_is_refused_because_the_module_cannot_verify_one(tls_hes, certs):
    (cert, _key, _fp), _other = certs
    r = _rig("tlsca", tls_hes, tls_ca=cert, tls_hostname="hes.test")
    try:
        r.start(connected=False)
        assert r.tcp.state == "refused" and r.tcp.stats["config_errors"] == 1
        assert "tls_ca" in r.tcp.last_error and "tls_fingerprint" in r.tcp.last_error
        r.publish(3)
        assert len(r.tcp.queue) == 3 and tls_hes.stats["connections"] == 0
    finally:
        assert r.close()


def test_any_of_several_pins_is_accepted(tls_hes, certs):
    (_cert, _key, fingerprint), (_ocert, _okey, other_fingerprint) = certs
    r = _rig("tlspins", tls_hes, tls_fingerprint="%s, %s" % (other_fingerprint, fingerprint))
    try:
        r.start()
        r.publish(3)
        assert r.wait_delivered(5) and r.tcp.stats["pin_failures"] == 0
    finally:
        assert r.close()


def test_tls_with_nothing_to_verify_against_refuses_to_start(tls_hes):
    r = _rig("tlsnone", tls_hes)                 # tls: true, neither tls_ca nor tls_fingerprint
    try:
        r.start(connected=False)
        assert r.tcp.state == "refused" and r.tcp.stats["config_errors"] == 1
        assert "tls_ca" in r.tcp.last_error and "tls_verify" in r.tcp.last_error
        r.publish(3)
        assert len(r.tcp.queue) == 3             # accepted and kept: nothing leaves unverified
        assert r.tcp.healthy()                   # a module reset would not fix the config
        assert r.tcp.connect() is False
        assert tls_hes.stats["connections"] == 0 and tls_hes.registrations == []
    finally:
        assert r.close()


def test_tls_verify_none_is_explicit_and_warned_at_every_connect(tls_hes):
    from usr.qframe import logging as qlogging
    warnings = []
    token = qlogging.add_listener(
        lambda level, line: "without verification" in line and warnings.append(line))
    r = _rig("tlsnonev", tls_hes, tls_verify="none")
    try:
        r.start()                                # any certificate: the impostor is accepted
        r.publish(3)
        assert r.wait_delivered(5)
        tls_hes.drop_clients()
        assert tls_hes.wait_for(lambda h: h.stats["connections"] >= 2, 5)
        assert r.wait(lambda: len(warnings) >= 2, 2)
    finally:
        qlogging.remove_listener(token)
        assert r.close()
