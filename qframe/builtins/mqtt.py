"""The MQTT uplink: `MqttClient` (dev.json section MQTT, `app.mqtt`), chosen by APP.uplink "mqtt".

The same store-and-forward as the TCP uplink, driven by the same UplinkSession
(qframe/protocols/uplink.py) and link thread (UplinkDriver, qframe/builtins/link.py); qframe
speaks MQTT 3.1.1 itself over usocket/ussl with its sans-I/O MqttSession
(qframe/protocols/mqtt_session.py), not with the firmware's umqtt (whose publish(qos=1) waits
for the PUBACK without a timeout on early 2021 firmware and swallows errors later: docs/MQTT.md).
Topics (qframe/codecs/mqtt.py, `uplink_topics`):

    meter.transparent -> flash queue -> PUBLISH QoS 1 <prefix>/<dev>/up/meter/<epoch>/<seq>
                                        (leaves the queue on its PUBACK)
    registration                     -> <prefix>/<dev>/status, retained {"state": "online", ...}
                                        (last will: retained {"state": "offline"})
    heartbeat                        -> <prefix>/<dev>/up/event/heartbeat
    <prefix>/<dev>/down/cmd          -> app.commands (worker pool) -> reply on <prefix>/<dev>/up/resp
    <prefix>/<dev>/down/meter        -> hes.data (the meter)
    bus events (EVENT_TOPICS)        -> <prefix>/<dev>/up/event/<name>

Delivery: up to `window` records are in flight at once, each one PUBLISH whose packet id maps
to its seq; a PUBACK confirms that record (and, brokers acknowledging in order, the ones
before it). A connection that breaks leaves the unconfirmed records in the flash queue; the
next connection sends them again with the same topic, and a consumer dedupes on
(device, epoch, seq). `clean_session` false (the default) keeps the subscription of the
command topics at the broker, so commands sent while the module is offline arrive later.
A command runs once: a redelivery of one already received (DUP set, same packet id) and a
retained command seen before are dropped (counted: `duplicate_commands`); the last
COMMAND_MEMORY of each are remembered.

Threads: the link thread connects (CONNECT/CONNACK, SUBSCRIBE/SUBACK within `response_ms`),
publishes, sends PUBACKs and keepalive PINGREQs; a receive thread feeds what arrives to the
sessions. TLS (`tls`, pinned by `tls_fingerprint`) as the TCP uplink's.
"""
import utime

from ..codecs import mqtt as mqttcodec
from ..codecs.hes import Command, Downlink
from ..core.config import Field
from ..protocols.mqtt_session import (CLOSED, OPEN, ConnAck, MqttError, MqttSession, PubAck,
                                      Publish, SubAck)
from ..protocols.uplink import SESSION_FIELDS
from .identity import device_id
from .link import QUEUE_FIELDS, RECONNECT_FIELDS, TLS_FIELDS, UplinkDriver, merge_fields, \
    tls_problem

# bus topics forwarded as module events besides link.REPORTS (kept while offline, bounded)
EVENT_TOPICS = ("network.up", "network.down")
COMMAND_MEMORY = 16     # redelivered / retained commands remembered, each
PUBACK_HOLD_MS = 20     # a PUBACK waits this long to ride with the next write (see _service)
_READ_SIZE = 4096

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
    "response_ms": Field(int, 5000, lo=50, hi=120000),   # CONNACK / SUBACK wait, one write
}


def _remember(memory, key):
    """True if key is in memory (a short list, newest last); else add it (bounded)."""
    if key in memory:
        return True
    memory.append(key)
    if len(memory) > COMMAND_MEMORY:
        del memory[0]
    return False


class MqttClient(UplinkDriver):
    """See the module docstring. `send(data)` / `recv_callback(data)` / `connect()` /
    `disconnect()` as TcpClient's."""

    name = "mqtt"
    config_section = "MQTT"
    config_fields = merge_fields(MQTT_FIELDS, TLS_FIELDS, RECONNECT_FIELDS, SESSION_FIELDS,
                                 QUEUE_FIELDS)

    def __init__(self, name=None, app=None):
        self.stats = {"refused": 0, "subscribe_failures": 0, "published": 0, "received": 0,
                      "bad_topics": 0, "bad_payloads": 0, "duplicate_commands": 0,
                      "mqtt_errors": 0}
        self.topics = None
        self.mqtt = None             # the MqttSession of the current connection
        self._pids = {}              # packet id -> the record seq it carries
        self._pubacks = []           # packet ids of received QoS 1 messages to acknowledge
        self._puback_since = None    # ticks_ms: the oldest of them arrived
        self._early = []             # events that came with the CONNACK / SUBACK
        self._dup_pids = []          # COMMAND_MEMORY packet ids of commands received
        self._retained = []          # COMMAND_MEMORY payloads of retained commands run
        UplinkDriver.__init__(self, name, app)

    # ------------------------------------------------------------------ UplinkDriver's steps
    def _proves_peer(self):
        return False        # the broker acks records (PUBACK), not the HES: nothing to prove

    def _new_protocol(self):
        cfg = self.config
        self._device = device_id(cfg["device_id"])
        self.topics = mqttcodec.uplink_topics(cfg["prefix"], self._device)
        for topic in EVENT_TOPICS:
            self.subscribe(topic, self.report)
        return mqttcodec.MqttFormat(cfg)

    def _queue_name(self):
        return "mqtt"

    def _config_problem(self):
        return tls_problem(self.config, "MQTT")

    def _send_timeout_s(self):
        return self.config["response_ms"] / 1000.0

    def _connect_bound_s(self):
        return self._connect_timeout() + 3 * self.config["response_ms"] / 1000.0

    def _peer(self, conn):
        return conn.peer

    def _open_link(self):
        """Connect (TLS, pin), CONNECT and SUBSCRIBE; the Connection or None (counted)."""
        cfg = self.config
        port = cfg["port"] or (8883 if cfg["tls"] else 1883)
        conn = self.dial(cfg["host"], port, cfg["tls"])
        if conn is None:
            return None
        session = MqttSession(cfg["client_id"] or self._device, cfg["keepalive_s"],
                              cfg["clean_session"],
                              (self.topics["status"], mqttcodec.OFFLINE, 1, True),
                              cfg["user"] or None, cfg["password"] or None,
                              response_ms=cfg["response_ms"])
        self._early = []
        try:
            conn.send(session.connect())
            connack = self._handshake(conn, session, ConnAck, "CONNACK")
            if connack.return_code:
                conn.close()
                self.note_failure("refused", "%s refused the connection: %s" % (
                    conn.peer, mqttcodec.CONNACK_ERRORS.get(connack.return_code,
                                                            connack.return_code)))
                return None
            _pid, data = session.subscribe([(self.topics["down"], 1)])
            conn.send(data)
            suback = self._handshake(conn, session, SubAck, "SUBACK")
        except (OSError, MqttError) as exc:
            conn.close()
            self.note_failure("connect_failures", "MQTT handshake with %s failed" % conn.peer,
                              exc)
            return None
        if 0x80 in suback.codes:
            conn.close()
            self.note_failure("subscribe_failures", "cannot subscribe %s" % self.topics["down"])
            return None
        with self._lock:
            self.mqtt = session
            self._pids = {}
            self._pubacks = []
        return conn

    def _handshake(self, conn, session, kind, what):
        """Read until the session yields a `kind` event (others wait in _early); OSError when
        none came within response_ms."""
        deadline = utime.ticks_add(utime.ticks_ms(), self.config["response_ms"])
        found = None
        while found is None:
            if utime.ticks_diff(deadline, utime.ticks_ms()) <= 0:
                raise OSError(110, "no %s within %d ms" % (what, self.config["response_ms"]))
            chunk = conn.recv(_READ_SIZE)
            if chunk is None:
                continue
            if not chunk:
                raise OSError(104, "closed by the broker")
            for event in session.receive(chunk, utime.ticks_ms()):
                if found is None and isinstance(event, kind):
                    found = event
                else:
                    self._early.append(event)
        return found

    def _transmit(self, conn, outgoing):
        """One QoS 1 PUBLISH per Transmit (a record's packet id maps back to its seq), written
        at once with the PUBACKs that wait: one segment where the stack has Nagle's algorithm
        on (every 2021 firmware: no TCP_NODELAY), so no write waits for the broker's delayed
        ACK."""
        out_bytes = bytearray()
        with self._lock:
            self._take_pubacks(out_bytes)
            for out in outgoing:
                topic, retain = self._topic_for(out)
                try:
                    pid, data = self.mqtt.publish(topic, out.data, 1, retain)
                except MqttError as exc:        # the session closed (a broker violation)
                    raise OSError(104, "cannot publish: %s" % exc)
                if out.seq is not None:
                    self._pids[pid] = out.seq
                out_bytes.extend(data)
        conn.send(out_bytes)
        self.stats["published"] += len(outgoing)
        self.stats["sent_bytes"] += len(out_bytes)
        self._written(outgoing, len(outgoing), utime.ticks_ms())

    def _service(self, conn, now):
        """Early events, PUBACKs held PUBACK_HOLD_MS (a reply or an echoed record usually
        comes first and takes them along) and the keepalive; (reason, ms to wait at most)."""
        early, self._early = self._early, []
        if early:
            self._dispatch(early, now)
        session = self.mqtt
        out_bytes = bytearray()
        with self._lock:
            hold_ms = None
            if self._pubacks:
                hold_ms = PUBACK_HOLD_MS - utime.ticks_diff(now, self._puback_since)
                if hold_ms <= 0:
                    self._take_pubacks(out_bytes)
                    hold_ms = None
            ping = session.tick(now)
            if ping is not None:
                out_bytes.extend(ping)
            reason = session.close_reason if session.state == CLOSED else None
            wait_ms = session.next_wakeup(now)
        if out_bytes:
            conn.send(out_bytes)
        if hold_ms is not None:
            wait_ms = hold_ms if wait_ms is None else min(wait_ms, hold_ms)
        return reason, wait_ms

    def _on_bytes(self, conn, chunk, now):
        session = self.mqtt
        with self._lock:
            try:
                events = session.receive(chunk, now)
            except MqttError as exc:
                self.stats["mqtt_errors"] += 1
                return "the broker sent bad MQTT: %s" % exc
            reason = session.close_reason if session.state == CLOSED else None
        self._dispatch(events, now)
        return reason

    def _drop(self, conn, graceful):
        """Close the connection: a graceful one says "offline" first (the will is not sent)."""
        session = self.mqtt
        if graceful and conn.alive and session is not None and session.state == OPEN:
            try:
                with self._lock:
                    _pid, offline = session.publish(self.topics["status"], mqttcodec.OFFLINE,
                                                    1, True)
                    goodbye = session.disconnect()
                conn.send(offline)
                conn.send(goodbye)
            except (OSError, MqttError) as exc:
                self.log.warning("no graceful goodbye: %s", exc)
        conn.close()

    # ------------------------------------------------------------------ incoming
    def _dispatch(self, events, now):
        """PUBACKs confirm records (the window moves: the link thread is woken); PUBLISHes
        are commands or downlink."""
        for event in events:
            if isinstance(event, PubAck):
                with self._lock:
                    seq = self._pids.pop(event.pid, None)
                    if seq is not None:
                        self.session.ack(seq, now)
                self.wake()
            elif isinstance(event, Publish):
                self._on_publish(event, now)

    def _on_publish(self, message, now):
        self.stats["received"] += 1
        if message.qos:
            with self._lock:
                if not self._pubacks:
                    self._puback_since = now
                self._pubacks.append(message.pid)
            self.wake()
        topics = self.topics
        payload = message.payload
        if message.topic == topics["cmd"]:
            if self._seen_command(message):
                self.stats["duplicate_commands"] += 1
                self.log.info("command redelivered (pid %s, retained %s): not run again",
                              message.pid, message.retain)
                return
            events = [Command(bytes(payload))]
        elif message.topic == topics["downlink"]:
            if not payload or len(payload) > self.config["max_frame"]:
                self.note_failure("bad_payloads", "downlink of %d bytes on %s dropped (1..%d)"
                                  % (len(payload), message.topic, self.config["max_frame"]))
                return
            events = [Downlink(bytes(payload))]
        else:
            self.note_failure("bad_topics", "message on unknown topic %r dropped (expected"
                              " %s or %s)" % (message.topic, topics["cmd"],
                                              topics["downlink"]))
            return
        self._received(now, events=events)

    def _seen_command(self, message):
        """A command received before: redelivered with DUP under a packet id seen, or a
        retained one already run. New packet ids are remembered (brokers reuse free ids, so
        only a DUP redelivery is checked against them)."""
        if message.retain:
            return _remember(self._retained, bytes(message.payload))
        if message.pid is None:
            return False
        if message.dup and message.pid in self._dup_pids:
            return True
        if message.pid in self._dup_pids:
            self._dup_pids.remove(message.pid)
        _remember(self._dup_pids, message.pid)
        return False

    def _take_pubacks(self, out_bytes):
        """The waiting PUBACKs appended to out_bytes (under the lock)."""
        for pid in self._pubacks:
            out_bytes.extend(self.mqtt.puback(pid))
        self._pubacks = []

    def _topic_for(self, out):
        topics = self.topics
        if out.kind == "record":
            return "%s%s/%d" % (topics["meter"], self.queue.epoch, out.seq), False
        if out.kind == "register":
            return topics["status"], True
        if out.kind == "response":
            return topics["resp"], False
        return topics["event"] + (out.name or out.kind).replace(".", "/"), False
