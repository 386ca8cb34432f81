"""The MQTT uplink: `MqttClient` (dev.json section MQTT, `app.mqtt`), chosen by APP.uplink "mqtt".

The same store-and-forward as the TCP uplink: the UplinkSession (qframe/protocols/uplink.py)
decides what goes out when; this driver moves it over QuecPython's `umqtt.MQTTClient` (the
host shim has the same API) and maps it onto topics (qframe/codecs/mqtt.py, `uplink_topics`):

    meter.transparent -> flash queue -> PUBLISH QoS 1 <prefix>/<dev>/up/meter/<epoch>/<seq>
                                        (leaves the queue once publish() returned connected)
    registration                     -> <prefix>/<dev>/status, retained {"state": "online", ...}
                                        (last will: retained {"state": "offline"})
    heartbeat                        -> <prefix>/<dev>/up/event/heartbeat
    <prefix>/<dev>/down/cmd          -> app.commands -> reply on <prefix>/<dev>/up/resp
    <prefix>/<dev>/down/meter        -> hes.data (the meter)
    bus events (EVENT_TOPICS)        -> <prefix>/<dev>/up/event/<name>

What umqtt cannot give and this adds on top: umqtt forgets a QoS 1 message in flight when the
connection breaks (its packet ids restart with each client) and a broker keeps QoS 1 at least
once anyway, so the guarantee comes from the flash queue and the record's id in the topic: a
record is sent until a publish of it is confirmed, a resend has the same topic, and a consumer
dedupes on (device, epoch, seq). umqtt's publish returns None on every 2021 firmware line, so
"confirmed" is what each line allows (`_publish`): exact (after the PUBACK) before September
2021; on later firmware "publish returned with the connection up", which a connection lost
within umqtt's 5 s PUBACK wait can break (qframe's own MQTT client is to close that gap). `clean_session` false (the default) keeps the subscription of
the command topics at the broker, so commands sent while the module is offline arrive later.

One thread (umqtt is not thread-safe) connects with backoff and jitter, publishes, calls
check_msg and waits for input on the client's socket up to `poll_s`, in slices of 10 ms so
new meter data is noticed within one. Commands and downlink run on it: handlers must be short.
"""
import utime

from ..codecs import mqtt as mqttcodec, utf8
from ..codecs.hes import Command, Downlink
from ..core.config import Field
from ..logging import getLogger
from ..protocols.uplink import QUEUE_FIELDS, SESSION_FIELDS
from ..threading import Event, Thread
from .identity import device_id
from .link import (RECONNECT_FIELDS, TLS_FIELDS, UplinkDriver, input_poller, is_timeout,
                   merge_fields, tls_problem)

_log = getLogger("mqtt")
_MAX_WAIT_S = 1.0
# bus topics forwarded as module events besides link.REPORTS (health only with forward_health)
EVENT_TOPICS = ("network.up", "network.down", "health")
_SERVER_CLOSED = 2  # get_mqttsta(): QuecPython's umqtt reports a closed socket, not raises
_SLICE_MS = 10      # longest a wake-up (new meter data) waits while the socket is polled

MQTT_FIELDS = {
    "host": Field(str, "127.0.0.1", required=True),
    "port": Field(int, 0, lo=0, hi=65535),          # 0: 1883, or 8883 with TLS
    "client_id": Field(str, ""),                    # "": the device id
    "user": Field(str, ""),
    "password": Field(str, ""),
    "keepalive_s": Field(int, 60, lo=0, hi=65535),
    "clean_session": Field(bool, False),
    "prefix": Field(str, "qframe"),
    "poll_s": Field(float, 0.1, lo=0.01, hi=5),
    "nodelay": Field(bool, True),
    "response_ms": Field(int, 5000, lo=50, hi=120000),   # PUBACK / SUBACK wait
}


def _ticks():
    return utime.ticks_ms()


def _bytes_to_str(value):
    try:
        return utf8.decode(value) if isinstance(value, (bytes, bytearray)) else str(value)
    except ValueError:
        return None


class MqttClient(UplinkDriver):
    """See the module docstring. `send(data)` / `recv_callback(data)` / `connect()` /
    `disconnect()` as TcpClient's."""

    name = "mqtt"
    config_section = "MQTT"
    config_fields = merge_fields(MQTT_FIELDS, TLS_FIELDS, RECONNECT_FIELDS, SESSION_FIELDS,
                                 QUEUE_FIELDS)

    def __init__(self, name=None, app=None):
        self.stats = {"connects": 0, "connect_failures": 0, "refused": 0, "tls_failures": 0,
                      "pin_failures": 0, "subscribe_failures": 0, "disconnects": 0,
                      "link_errors": 0, "link_exceptions": 0, "published": 0,
                      "puback_timeouts": 0, "received": 0, "bad_topics": 0, "bad_payloads": 0,
                      "callback_errors": 0, "uplink_rejected": 0, "net_pauses": 0,
                      "config_errors": 0, "option_errors": 0}
        self.topics = None
        self.client = None
        self._refusal = OSError          # umqtt's MQTTException once umqtt is imported
        UplinkDriver.__init__(self, name, app)

    # ------------------------------------------------------------------ lifecycle
    def load(self):
        cfg = self.config
        self.open_uplink(mqttcodec.MqttFormat(cfg), "mqtt")
        self._device = device_id(cfg["device_id"])
        self.topics = mqttcodec.uplink_topics(cfg["prefix"], self._device)
        self._net_up = self.network_is_up()
        self.subscribe("network.down", self._on_network_down)
        self.subscribe("network.up", self._on_network_up)
        for topic in EVENT_TOPICS:
            self.subscribe(topic, self._on_event)
        self._stopping = False
        problem = tls_problem(cfg, "MQTT")
        if problem is None and 0 < cfg["keepalive_s"] < 5:
            problem = "MQTT.keepalive_s is 0 (off) or at least 5 (umqtt refuses %d)" % (
                cfg["keepalive_s"])
        if problem is not None:
            self.stats["config_errors"] += 1
            self.state = "refused"
            self.last_error = "link not started: %s" % problem
            _log.error("%s", self.last_error)
            return
        self._thread = Thread(self._run, name="mqtt-link").start()

    def stop(self, timeout=2.0):
        self._stopping = True
        self._wake.set()
        ok = self._thread.join(timeout / 2) if self._thread is not None else True
        if not ok:                      # blocked in a publish: break its socket
            client = self.client
            if client is not None:
                self._close(client)
            ok = self._thread.join(timeout / 2)
        self.unsubscribe_all()
        if self.queue is not None:
            self.queue.close()
        self.state = "stopped"
        return ok

    def healthy(self):
        """The link thread is alive and beats (at least every connect/publish bound)."""
        if self.state == "refused":
            return True
        if self._thread is None or not self._thread.is_alive():
            return False
        bound = 20000 + 3 * self.config["response_ms"] + 5000
        return utime.ticks_diff(_ticks(), self._beat_at) < bound

    # ------------------------------------------------------------------ public API
    def connect(self):
        """(Re)enable the link; True once connected within the connect bound."""
        if self._thread is None:
            return False
        self._held = False
        self._backoff.reset()
        self._wake.set()
        return self._up.wait(20 + self.config["response_ms"] / 1000.0)

    def disconnect(self):
        """Close the connection (gracefully, status "offline") and hold the link down."""
        self._held = True
        self._wake.set()
        return True

    # ------------------------------------------------------------------ bus (notes only)
    def _on_network_down(self, topic, reason):
        if self._net_up:
            self.stats["net_pauses"] += 1
        self._net_up = False
        self._wake.set()

    def _on_network_up(self, topic, reason):
        self._net_up = True
        if self._backoff is not None:
            self._backoff.reset()
        self._wake.set()

    def _on_event(self, topic, data):
        """Kept (bounded) until connected: a reconnect reports what happened."""
        if topic == "health" and not self.config.get("forward_health"):
            return
        self.report(topic, data)

    # ------------------------------------------------------------------ link thread
    def _beat(self):
        self._beat_at = _ticks()

    def _pause(self, seconds):
        """Wait up to seconds (beating); a network change, connect() or stop() ends it."""
        deadline = utime.ticks_add(_ticks(), int(seconds * 1000))
        self._wake.clear()
        while not self._stopping:
            remaining = utime.ticks_diff(deadline, _ticks())
            if remaining <= 0:
                return
            if self._wake.wait(min(remaining / 1000.0, _MAX_WAIT_S)):
                return
            self._beat()

    def _run(self):
        while not self._stopping:
            try:
                self._step()
            except Exception as exc:        # a bug must not end the link
                self.stats["link_exceptions"] += 1
                self.last_error = "link thread: %s: %s" % (type(exc).__name__, exc)
                _log.exception("link thread failed; reconnecting", exc)
                self._drop(self.last_error, graceful=False)
                self._pause(self._backoff.next())

    def _step(self):
        self._beat()
        if not self._net_up or self._held:
            self.state = "waiting for network" if not self._net_up else "disconnected"
            self._pause(_MAX_WAIT_S)
            return
        opened = _ticks()
        client = self._open()
        if client is None:
            if not self._stopping and self._net_up:
                self.state = "backoff"
                delay = self._backoff.next()
                _log.info("reconnecting in %d ms (attempt %d)", int(delay * 1000),
                          self._backoff.attempt)
                self._pause(delay)
            return
        reason = self._serve(client)
        self._drop(reason, graceful=self._stopping or self._held)
        if utime.ticks_diff(_ticks(), opened) >= self.config["stable_s"] * 1000:
            self._backoff.reset()
        if not self._stopping and not self._held:
            self.state = "backoff"
            self._pause(self._backoff.next())

    def _new_client(self):
        """A umqtt MQTTClient for the config (the module's, or the host shim's)."""
        import umqtt
        self._refusal = getattr(umqtt, "MQTTException", OSError)
        MQTTClient = umqtt.MQTTClient
        cfg = self.config
        client = MQTTClient(cfg["client_id"] or self._device, cfg["host"], cfg["port"],
                            cfg["user"] or None, cfg["password"] or None, cfg["keepalive_s"],
                            cfg["tls"], {}, False)     # the server is checked by its pin
        if hasattr(client, "response_ms"):
            client.response_ms = cfg["response_ms"]
        return client

    def _open(self):
        """Connect, check the pin, subscribe, open the session; the client or None (counted)."""
        cfg = self.config
        self.state = "connecting"
        client = self._new_client()
        client.set_callback(self._on_message)
        client.set_last_will(self.topics["status"], mqttcodec.OFFLINE, True, 1)
        where = "%s:%d" % (cfg["host"], cfg["port"])
        try:
            client.connect(cfg["clean_session"])
        except (OSError, ValueError, IndexError, AssertionError) as exc:
            self._close(client)
            self.note_failure("tls_failures" if cfg["tls"] else "connect_failures",
                          "cannot connect to %s" % where, exc)
            return None
        except self._refusal as exc:         # CONNACK with a refusal code
            self._close(client)
            code = exc.args[0] if exc.args else None
            self.note_failure("refused", "%s refused the connection: %s" % (
                where, mqttcodec.CONNACK_ERRORS.get(code, code)))
            return None
        self.set_nodelay(getattr(client, "sock", None))
        if cfg["tls"] and cfg["tls_fingerprint"]:
            from .tls import PinError, check_pin
            try:
                check_pin(getattr(client, "sock", None), cfg["tls_fingerprint"])
            except PinError as exc:
                self._close(client)
                self.note_failure("pin_failures", "broker certificate rejected", exc)
                return None
        try:
            subscribed = client.subscribe(self.topics["down"], 1)
        except OSError as exc:
            subscribed = False
            self.last_error = str(exc)
        if subscribed is False:
            self._close(client)
            self.note_failure("subscribe_failures", "cannot subscribe %s" % self.topics["down"])
            return None
        self.client = client
        self.session.open(_ticks())
        self.stats["connects"] += 1
        self.last_error = ""
        self._up.set()
        _log.info("connected to broker %s as %s", where, cfg["client_id"] or self._device)
        self.app.bus.publish("mqtt.connected", where)
        return client

    def _close(self, client):
        try:
            client.close()
        except Exception:       # QuecPython's umqtt: no socket yet after a failed connect
            pass

    def _serve(self, client):
        """Drive the session over client until something ends it; the reason."""
        self.state = "connected"
        session = self.session
        keepalive_ms = self.config["keepalive_s"] * 500       # ping at half the keepalive
        last_tx = _ticks()
        poll_ms = int(self.config["poll_s"] * 1000)
        try:
            while True:
                if self._stopping:
                    return "stopping"
                if not self._net_up:
                    return "network down"
                if self._held:
                    return "disconnected by the app"
                self._beat()
                self._wake.clear()
                try:
                    client.check_msg()
                except OSError as exc:      # a non-blocking read with nothing there
                    if not is_timeout(exc):
                        raise
                if client.get_mqttsta() in (_SERVER_CLOSED, -1):
                    return "connection closed by the broker"
                now = _ticks()
                if self._reregister:
                    self._reregister = False
                    session.register()
                for name, data in self.take_reports():
                    session.event(name, data)
                session.tick(now)
                if session.close_reason:
                    return session.close_reason
                outgoing = session.take()
                if outgoing:
                    for out in outgoing:
                        self._publish(client, out)
                    last_tx = _ticks()
                    continue
                if keepalive_ms and utime.ticks_diff(_ticks(), last_tx) >= keepalive_ms:
                    client.ping()
                    last_tx = _ticks()
                wait_ms = session.next_wakeup(_ticks())
                if wait_ms is None or wait_ms > poll_ms:
                    wait_ms = poll_ms
                self._wait_input(client, wait_ms)
        except OSError as exc:
            return "connection lost (%s)" % (exc,)

    def _wait_input(self, client, wait_ms):
        """Until input on the client's socket, a wake-up (new data, a note), or wait_ms: the
        socket is polled in slices of _SLICE_MS, so a wake-up is seen within one slice."""
        sock = getattr(client, "sock", None)
        poller = input_poller(sock) if sock is not None else None
        if poller is None:          # no uselect (firmware before September 2021)
            self._wake.wait(wait_ms / 1000.0)
            return
        deadline = utime.ticks_add(_ticks(), wait_ms)
        while not self._wake.is_set():
            left = utime.ticks_diff(deadline, _ticks())
            if left <= 0 or poller.poll(max(1, min(left, _SLICE_MS))):
                return

    def _topic_for(self, out):
        topics = self.topics
        if out.kind == "record":
            return "%s%s/%d" % (topics["meter"], self.queue.epoch, out.seq), False
        if out.kind == "register":
            return topics["status"], True
        if out.kind == "response":
            return topics["resp"], False
        return topics["event"] + (out.name or out.kind).replace(".", "/"), False

    def _publish(self, client, out):
        """Publish one Transmit at QoS 1; a record leaves the queue once umqtt's publish
        returned with the client still connected (get_mqttsta() 0): early-2021 firmware
        returns only after the PUBACK and raises on errors, mid-2021 firmware the same but
        swallows errors (the connection is gone then), firmware with uselect waits up to 5 s
        for a reader (_publish_qos1) to consume the PUBACK. Otherwise the connection is
        dropped and the record resent (the HES dedupes on its id)."""
        topic, retain = self._topic_for(out)
        self._publish_qos1(client, topic, out.data, retain)
        if client.get_mqttsta() != 0:
            self.stats["puback_timeouts"] += 1
            raise OSError(110, "publish to %s unconfirmed: the connection is gone" % topic)
        self.stats["published"] += 1
        now = _ticks()
        if out.seq is not None:
            self.session.ack(out.seq, now)
        self.session.written(out, now)

    def _publish_qos1(self, client, topic, data, retain):
        """client.publish(qos=1). Where the firmware has uselect its umqtt waits for the PUBACK
        to be consumed by another thread: a reader calls check_msg meanwhile (the link thread
        is blocked in publish, so the session still sees one thread at a time)."""
        sock = getattr(client, "sock", None)
        poller = input_poller(sock) if sock is not None else None
        if poller is None:
            client.publish(topic, data, retain, 1)
            return
        done = Event()

        def read_acks():
            while not done.is_set():
                if poller.poll(_SLICE_MS):
                    try:
                        client.check_msg()
                    except OSError:
                        return          # the connection broke: get_mqttsta() tells
        reader = Thread(read_acks, name="mqtt-acks").start()
        try:
            client.publish(topic, data, retain, 1)
        finally:
            done.set()
            reader.join(1.0)

    def _on_message(self, topic, msg):
        """A PUBLISH from the broker (inside check_msg or a publish): command or downlink."""
        self.stats["received"] += 1
        name = _bytes_to_str(topic)
        topics = self.topics
        try:
            if name == topics["cmd"]:
                events = [Command(bytes(msg))]
            elif name == topics["downlink"]:
                if not msg or len(msg) > self.config["max_frame"]:
                    self.note_failure("bad_payloads", "downlink of %d bytes on %s dropped"
                                      " (1..%d)" % (len(msg), name, self.config["max_frame"]))
                    return
                events = [Downlink(bytes(msg))]
            else:
                self.note_failure("bad_topics", "message on unknown topic %r dropped (expected"
                                  " %s or %s)" % (topic, topics["cmd"], topics["downlink"]))
                return
            for data in self.session.handle(events, _ticks()):
                self.deliver(data)
        except Exception as exc:
            self.stats["callback_errors"] += 1
            _log.exception("handling a message on %s failed", exc, topic)

    def _drop(self, reason, graceful):
        """End the connection: a graceful one says "offline" first (the will is not sent)."""
        client, self.client = self.client, None
        was_up = self._up.is_set()
        self._up.clear()
        if client is not None:
            if graceful:
                try:
                    self._publish_qos1(client, self.topics["status"], mqttcodec.OFFLINE, True)
                    client.disconnect()
                except Exception:
                    self._close(client)
            else:
                self._close(client)
        self.session.close(reason)
        if not was_up:
            return
        self.stats["disconnects"] += 1
        if not self._stopping and not self._held:
            self.stats["link_errors"] += 1
            self.last_error = reason
        log = _log.info if self._stopping else _log.warning   # a clean stop is no warning
        log("disconnected from the broker: %s", reason)
        self.app.bus.publish("mqtt.disconnected", reason)
