"""What every uplink driver shares (TcpClient, MqttClient): `UplinkDriver`, the config groups of
TLS and reconnection, and small socket helpers.

An UplinkDriver owns the flash queue and the UplinkSession (qframe/protocols/uplink.py) and the
QFrame-style surface: `send(data)` (True once on flash), `recv_callback(data)` (publishes
`hes.data`), `status()` (its counters, state, last error and the queue's `queue_*` figures).
`open_uplink(protocol)` in a subclass's load() creates the queue, the session and the backoff
and subscribes `meter.transparent` and `meter.serial`; the subclass adds its transport.
"""
import usocket
import utime

from ..core.config import ConfigError, Field
from ..core.ext import AppExtension
from ..protocols.backoff import Backoff
from ..protocols.commands import commands_of
from ..protocols.uplink import UplinkSession, open_queue
from ..threading import Event
from .identity import device_id

_TIMEOUT_ERRNOS = (11, 110, 116)

TLS_FIELDS = {
    "tls": Field(bool, False),
    "tls_ca": Field(str, ""),
    "tls_fingerprint": Field(str, ""),
    "tls_hostname": Field(str, ""),
    "tls_verify": Field(str, "required", choices=("required", "none")),
}
RECONNECT_FIELDS = {
    "backoff_base_s": Field(float, 1.0, lo=0.01, hi=3600),
    "backoff_cap_s": Field(float, 300.0, lo=0.01, hi=86400),
    "stable_s": Field(float, 10.0, lo=0, hi=3600),
}


def merge_fields(*groups):
    """One config_fields dict from several groups."""
    fields = {}
    for group in groups:
        fields.update(group)
    return fields


def is_timeout(exc):
    """A timeout or would-block error (the operation may simply be tried again)."""
    if exc.args and exc.args[0] in _TIMEOUT_ERRNOS:
        return True
    if type(exc).__name__ in ("SSLWantReadError", "SSLWantWriteError"):
        return True
    return "timed out" in str(exc)


def tls_problem(config, section):
    """Why this config section must not start a TLS link, or None. The firmware's ussl
    verifies no CA on any 2021 line (tools/firmware/api.json): the server is checked by
    pinning its certificate (tls_fingerprint), so a CA file is refused, not ignored."""
    if not config.get("tls"):
        return None
    if config.get("tls_ca"):
        return ConfigError([(section, "tls_ca", "the module's TLS (ussl) cannot verify a"
                             " server against a CA; pin the server certificate with"
                             " tls_fingerprint (SHA-256 of its DER) instead")])
    if not config.get("tls_fingerprint") and config.get("tls_verify") != "none":
        return ConfigError([(section, "tls", "true without tls_fingerprint would accept any"
                             " server (the module's TLS verifies no CA, so tls_ca is not an"
                             " option); set it, or tls_verify: \"none\" to accept that")])
    return None


def input_poller(sock):
    """A uselect poll object watching sock for input, or None where the firmware has no
    uselect (lines before September 2021): wait with socket timeouts there."""
    try:
        import uselect
        poller = uselect.poll()
        poller.register(sock, uselect.POLLIN)
    except ImportError:
        return None
    return poller


# Bus reports every uplink forwards to the HES as events: topic -> (event name, the config
# switch that turns it off, or None). Kept while the link is down, at most MAX_REPORTS.
REPORTS = {"dlms.readings": ("dlms.readings", "forward_dlms"),
           "dlms.profile": ("dlms.profile", "forward_dlms"),
           "ota.event": ("ota", None),
           "heap.exhausted": ("heap.exhausted", None)}
MAX_REPORTS = 16


class UplinkDriver(AppExtension):
    """See the module docstring. Subclasses set `stats` (their own counters) before calling
    UplinkDriver.__init__, and call `open_uplink(protocol)` in load()."""

    def __init__(self, name=None, app=None):
        for key in ("uplink_rejected", "option_errors", "callback_errors", "events_dropped"):
            self.stats.setdefault(key, 0)
        self.state = "stopped"
        self.last_error = ""
        self.queue = None
        self.protocol = None
        self.session = None
        self._backoff = None
        self._device = None
        self._reregister = False
        self._reports = []           # (event name, data) waiting for the link thread
        self._thread = None          # the driver's link thread
        self._stopping = False
        self._held = False           # disconnect() keeps the link down until connect()
        self._net_up = True
        self._wake = Event()         # set: the link thread has something to do
        self._up = Event()           # set while connected
        self._beat_at = utime.ticks_ms()   # the link thread's last sign of life
        self._started = utime.time()
        AppExtension.__init__(self, name, app)

    def open_uplink(self, protocol, queue_name="uplink"):
        """Queue, session and backoff from the config; subscribe the meter's topics."""
        cfg = self.config
        self.protocol = protocol
        self.queue = open_queue(cfg, queue_name)
        self.session = UplinkSession(self.queue, protocol, cfg, commands_of(self.app),
                                     self._info, self.stats)
        self._backoff = Backoff(cfg["backoff_base_s"], cfg["backoff_cap_s"])
        self._started = utime.time()
        self.subscribe("meter.transparent", self._on_meter)
        self.subscribe("meter.serial", self._on_identity)
        for topic in REPORTS:
            self.subscribe(topic, self._on_report)

    def report(self, name, data):
        """Queue an event for the HES (sent by the link thread, in order; bounded)."""
        if len(self._reports) >= MAX_REPORTS:
            self.stats["events_dropped"] += 1
            return
        self._reports.append((name, data))
        self.wake()

    def take_reports(self):
        """The queued events, oldest first; the queue is empty afterwards."""
        reports, self._reports = self._reports, []
        return reports

    def _on_report(self, topic, data):
        name, switch = REPORTS[topic]
        if switch is None or self.config.get(switch):
            self.report(name, data)

    def network_is_up(self):
        """The network watchdog's view (True without one)."""
        network = self.extension("network")
        if network is None or not hasattr(network, "is_up"):
            return True
        return network.is_up()

    def extension(self, name):
        """The app's extension called name, or None."""
        return self.app.extensions.get(name)

    # ------------------------------------------------------------------ QFrame's surface
    def send(self, data):
        """Queue data for the HES (safe from any thread): True once accepted (it stays on flash
        until delivered), False if it was rejected (counted)."""
        seq = self.queue.put(data)
        self.wake()
        if seq is None:
            self.stats["uplink_rejected"] += 1
            return False
        return True

    def recv_callback(self, data):
        """Data received from the HES; QFrame-style subclasses override it."""
        self.app.bus.publish("hes.data", data)

    def status(self):
        report = dict(self.stats)
        report["state"] = self.state
        report["last_error"] = self.last_error
        report["connected"] = self.is_connected()
        report["backoff_attempt"] = self._backoff.attempt if self._backoff else 0
        if self.queue is not None:
            queue = self.queue.status()
            for key in queue:
                report["queue_" + key] = queue[key]
        return report

    # ------------------------------------------------------------------ for subclasses
    def wake(self):
        """Something for the link thread to do (new data, a note)."""
        self._wake.set()

    def is_connected(self):
        return self._up.is_set()

    def note_failure(self, counter, message, exc=None):
        """Count and log a failed link step."""
        self.stats[counter] += 1
        self.last_error = message if exc is None else "%s (%s)" % (message, exc)
        self.log.warning("%s", self.last_error)

    def deliver(self, data):
        """Hand downlink data to recv_callback; a failing callback is logged and counted."""
        try:
            self.recv_callback(data)
        except Exception as exc:
            self.stats["callback_errors"] += 1
            self.log.exception("recv_callback failed", exc)

    def set_nodelay(self, sock):
        """TCP_NODELAY (small frames go out at once) where the stack has it."""
        if not self.config["nodelay"] or sock is None or not hasattr(usocket, "TCP_NODELAY"):
            return
        try:
            sock.setsockopt(getattr(usocket, "IPPROTO_TCP", 6), usocket.TCP_NODELAY, 1)
        except (OSError, AttributeError) as exc:
            self.note_failure("option_errors", "cannot set TCP_NODELAY", exc)

    def _on_meter(self, topic, data):
        self.send(data)

    def _on_identity(self, topic, value):
        self._reregister = True          # the HES learns the meter's serial without a reconnect
        self.wake()

    def _info(self):
        """What registration and heartbeat carry besides the queue's figures."""
        if self._device is None or self._device == "unknown":
            self._device = device_id(self.config["device_id"])
        return {"dev": self._device, "app": self.app.name, "up": utime.time() - self._started,
                "meter": self.app.bus.retained("meter.serial", "") or ""}
