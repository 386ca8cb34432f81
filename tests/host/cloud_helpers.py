"""Host-test rig for the cloud link: an in-process app (TcpClient, optionally NetWatch) against a
HesSim on loopback, with the meter side played on the `meter.transparent` bus topic.

Every payload is unique (`m<rig>-<n>`), so the HES's records can be checked one by one: in
order, none lost, none twice. Timeouts are small and come from the config dicts below, which the
tests also use to compute their recovery budgets.
"""
import os
import shutil
import threading
import time

import pytest

from tools.hostrun import board_root

from tools.simulators.condwait import wait_on
from tools.simulators.hes import HesSim
from tools.simulators.hes_auth import provision_sim
from usr.qframe import Application
from usr.qframe.builtins.auth import Auth
from usr.qframe.builtins.netwatch import NetWatch
from usr.qframe.builtins.watchdog import Watchdog
from usr.qframe.builtins.clients import TcpClient

QUEUE_ROOT = "/usr/test_cloud"

TCP = {
    "host": "127.0.0.1",
    "protocol": "ack",
    "connect_timeout": 1.0,
    "backoff_base_s": 0.1,
    "backoff_cap_s": 0.8,
    "stable_s": 0.3,
    "heartbeat_s": 0.5,
    "ack_timeout_s": 1.0,
    "send_timeout_s": 1.0,
    "poll_s": 0.05,
    "device_id": "test-dev",
    "queue_retry_s": 0.05,
}
NETWORK = {
    "boot_timeout_s": 2,
    "check_s": 0.1,
    "radio_after_s": 0,
    "restart_after_s": 0,
}
MARGIN_S = 1.0   # scheduling slack added to every budget computed from the config


def host_path(device_path):
    return os.path.join(board_root.DEFAULT_ROOT, device_path.lstrip("/"))


def clear_queue(name):
    shutil.rmtree(host_path(QUEUE_ROOT + "/" + name), ignore_errors=True)
    shutil.rmtree(host_path(QUEUE_ROOT + "/" + name + "-auth"), ignore_errors=True)


class CloudRig(object):
    def __init__(self, name, hes=None, tcp=None, network=None, with_network=False, clear=True,
                 watchdog=None, provision=True):
        self.name = name
        self.hes = hes if hes is not None else HesSim().start()
        self.own_hes = hes is None
        if clear:
            clear_queue(name)
        self.app = Application(name)
        self.tcp_config = dict(TCP, port=self.hes.port, queue_path=QUEUE_ROOT + "/" + name)
        self.tcp_config.update(tcp or {})
        self.net_config = dict(NETWORK)
        self.net_config.update(network or {})
        self.auth_path = QUEUE_ROOT + "/" + name + "-auth"
        if provision:                     # the simulator-only key HesSim signs with
            provision_sim(host_path(self.auth_path), self.tcp_config["device_id"])
        self.app.config.merge({"APP": {"stop_timeout": 2.0, "log_level": "WARNING"},
                               "TCP_SERVER": self.tcp_config, "NETWORK": self.net_config,
                               "AUTH": {"keys_path": self.auth_path}})
        if with_network:
            NetWatch(app=self.app)
        Auth(app=self.app)
        self.tcp = TcpClient(app=self.app)
        if watchdog is not None:          # a WATCHDOG section: the WDT extension, last
            self.app.config.merge({"WATCHDOG": watchdog})
            Watchdog(app=self.app)
        self.sent = []
        self.downlink = []
        self.events = []
        self._cond = threading.Condition()
        self.app.bus.subscribe("hes.data", self._on_downlink)
        for topic in ("network.up", "network.down", "sim.changed", "tcp.connected",
                      "tcp.disconnected"):
            self.app.bus.subscribe(topic, self._on_event)

    def _on_downlink(self, topic, data):
        with self._cond:
            self.downlink.append(data)
            self._cond.notify_all()

    def _on_event(self, topic, data):
        with self._cond:
            self.events.append((time.monotonic(), topic, data))
            self._cond.notify_all()

    def wait(self, predicate, timeout):
        """Wait until predicate() (re-checked on every rig event, at least every 20 ms)."""
        return wait_on(self._cond, predicate, timeout, recheck_s=0.02)

    def start(self, connected=True):
        self.app.load()
        if connected:
            assert self.hes.wait_for(lambda h: h.client_count() >= 1, 5), "never connected"
        return self

    def publish(self, count=1):
        for _ in range(count):
            payload = ("m%s-%05d" % (self.name, len(self.sent))).encode()
            self.sent.append(payload)
            self.app.bus.publish("meter.transparent", payload)

    def mine(self):
        prefix = ("m%s-" % self.name).encode()
        return [p for p in self.hes.received if p.startswith(prefix)]

    def delivered(self):
        return len(self.mine()) >= len(self.sent)

    def wait_delivered(self, timeout):
        return self.hes.wait_for(lambda h: self.delivered(), timeout)

    def check_exact(self):
        """Every sent payload reached the HES once, in order."""
        mine = self.mine()
        assert mine == self.sent, "sent %d, HES has %d (first difference at %s)" % (
            len(self.sent), len(mine), _first_difference(self.sent, mine))

    def topics(self, topic):
        return [e for e in self.events if e[1] == topic]

    def close(self):
        ok = self.app.stop()
        if self.own_hes:
            self.hes.stop()
        return ok


def _first_difference(a, b):
    for index in range(min(len(a), len(b))):
        if a[index] != b[index]:
            return index
    return min(len(a), len(b))


def certificate(folder, name, subject="/CN=hes.test", ip=None):
    """(cert.pem, key.pem, sha256 hex of the DER) of a fresh self-signed EC certificate made by
    the openssl CLI (the venv has no `cryptography`); ip: also valid for that address."""
    import hashlib
    import subprocess
    cert, key = str(folder / (name + ".pem")), str(folder / (name + ".key"))
    extra = ["-addext", "subjectAltName=IP:%s" % ip] if ip else []
    subprocess.run([shutil.which("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", subject] + extra, check=True, capture_output=True)
    der = subprocess.run([shutil.which("openssl"), "x509", "-in", cert, "-outform", "der"],
                         check=True, capture_output=True).stdout
    return cert, key, hashlib.sha256(der).hexdigest()


def slow_command(app, name="slow", result="late"):
    """Register a command that blocks as a DLMS read of a meter that never answers does, until
    the test lets it go: (started, release) threading Events."""
    started, release = threading.Event(), threading.Event()

    def slow(args):
        started.set()
        release.wait(30)
        return result
    app.commands.register(name, slow)
    return started, release


def budget(*parts):
    return sum(parts) + MARGIN_S


@pytest.fixture
def rig(request):
    """make(name=None, **CloudRig kwargs) -> a CloudRig named after the test; every rig made
    is closed at the end, and must stop within its bound."""
    rigs = []

    def make(name=None, **kwargs):
        r = CloudRig(name or request.node.name[5:25], **kwargs)
        rigs.append(r)
        return r

    yield make
    for r in rigs:
        assert r.close(), "app did not stop within its bound"
