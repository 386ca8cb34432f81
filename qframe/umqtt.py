"""qframe's own MQTT 3.1.1 client with the API of the firmware's `umqtt`, over usocket/ussl.

    from usr.qframe.umqtt import MQTTClient, MQTTException, MQTTTimeout
    c = MQTTClient("dev1", "broker.example.net", port=0, user=None, password=None,
                   keepalive=60, ssl=False, ssl_params={}, response_ms=5000)
    c.set_callback(fn)                      # fn(topic: bytes, msg: bytes)
    c.set_last_will(topic, msg, retain=False, qos=0)
    c.connect(clean_session=True)           # 0/1: session present; MQTTException(rc) if refused
    c.publish(topic, msg, retain=False, qos=0)  # qos 1: returns once PUBACKed, else raises
    c.subscribe(topic, qos=0)               # True once granted; MQTTException if refused
    c.wait_msg(); c.check_msg()             # handle incoming packets (block / do not block)
    c.ping(); c.disconnect(); c.close(); c.get_mqttsta()

Why not the firmware's: its publish(qos=1) waits for the PUBACK without a timeout on early
2021 firmware and swallows every error from mid 2021 on, so a caller cannot know whether a
message got through (docs/MQTT.md). Here every wait is bounded by `response_ms` and ends in a
clear exception: OSError when the connection fails (the socket is closed), MQTTTimeout (an
MQTTException) when the broker does not answer in time (the connection is closed too: a live
broker always answers), MQTTException for a refusal or bytes that are not MQTT.

The protocol is qframe/protocols/mqtt_session.py (sans I/O); this module only moves bytes
and waits. While a call waits it sends the keepalive's PINGREQs and hands incoming messages
to the callback. Two threads may share a client (one in wait_msg, another publishing, as apps
for the September 2021 firmware do): socket reads take turns in slices of `slice_ms` and
callbacks run outside the lock, so a callback may publish.

TLS: `ssl_params` go to `ussl.wrap_socket` (key, cert; server_hostname defaults to the
server); `ssl_params["fingerprint"]` (SHA-256 of the broker certificate's DER, hex) pins the
broker, since the module's TLS verifies no CA (qframe/builtins/tls.py).
"""
import usocket
import utime

from .protocols import mqtt_session
from .codecs.mqtt import PINGRESP, PUBLISH
from .protocols.mqtt_session import ConnAck, MqttError, PingResp, PubAck, Publish, SubAck
from .threading import Lock

_TIMEOUT_ERRNOS = (11, 110, 116)
_READ_SIZE = 4096


class MQTTException(Exception):
    """A refused CONNECT (args[0]: the return code), a refused subscription, bad MQTT."""


class MQTTTimeout(MQTTException):
    """The broker did not answer within response_ms; the connection was closed."""


def _would_block(exc):
    if exc.args and exc.args[0] in _TIMEOUT_ERRNOS:
        return True
    return "timed out" in str(exc) or "SSLWant" in type(exc).__name__


def _text(value):
    return value.decode() if isinstance(value, (bytes, bytearray)) else value


def _bytes(value):
    return value.encode() if isinstance(value, str) else bytes(value)


class MQTTClient(object):
    """See the module docstring."""

    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=False, ssl_params=None, reconn=True, version=4, pingmaxnum=0,
                 response_ms=5000, connect_timeout_ms=20000, max_packet=65536, slice_ms=100):
        if version != 4:
            raise ValueError("only MQTT 3.1.1 (version=4) here")
        self.client_id = client_id
        self.user = user
        self.pswd = password
        self.keepalive = keepalive
        self.server = server
        self.port = port or (8883 if ssl else 1883)
        self.ssl = ssl
        self.ssl_params = dict(ssl_params or {})
        self.response_ms = response_ms
        self.connect_timeout_ms = connect_timeout_ms
        self.slice_ms = slice_ms
        self.session = mqtt_session.MqttSession(
            _text(client_id), keepalive, True, None, _text(user), password,
            max_packet=max_packet, response_ms=response_ms)
        self.sock = None            # the socket MQTT is spoken over (TLS: the TLS socket)
        self.cb = None
        self._plain = None          # the TCP socket (under the TLS one with ssl)
        self._recv = None
        self._poller = None
        self._io = Lock()           # one reader/writer on the socket at a time
        self._waiting = {}          # pid -> None until its PUBACK/SUBACK arrives
        self._ever = False
        self._err_cb = None

    # ---------------------------------------------------------------- the umqtt API
    def set_callback(self, callback):
        self.cb = callback

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.session.will = (_text(topic), _bytes(msg), qos, retain)

    def error_register_cb(self, callback):
        """Accepted for compatibility: errors are raised to the caller, not reported here."""
        self._err_cb = callback

    def connect(self, clean_session=True):
        """Open the connection; 1 if the broker kept a session, else 0. With clean_session
        False, QoS 1 messages still unacknowledged from the last connection go again (DUP)."""
        self.close()
        self._ever = True
        session = self.session
        session.clean_session = clean_session
        try:
            self._open_socket()
            self._send(session.connect)
            deadline = utime.ticks_add(utime.ticks_ms(), self.response_ms)
            connack = None
            while connack is None:
                for event in self._exchange(deadline, "CONNACK"):
                    if isinstance(event, ConnAck):
                        connack = event
            if connack.return_code:
                raise MQTTException(connack.return_code, session.close_reason)
            self._send(session.resend)
        except Exception:
            self.close()
            raise
        return 1 if connack.session_present else 0

    def publish(self, topic, msg, retain=False, qos=0):
        """Send msg; qos 1 returns once the broker acknowledged it, else raises (OSError,
        MQTTTimeout after response_ms; the connection is closed then)."""
        pid, _data = self._send(self.session.publish, _text(topic), _bytes(msg), qos, retain)
        if pid is None:
            return None
        try:
            self._await(pid, "PUBACK for packet %d" % pid)
        finally:
            self._waiting.pop(pid, None)
        return None

    def subscribe(self, topic, qos=0):
        """True once the broker granted it; MQTTException if it refused."""
        topic = _text(topic)
        pid, _data = self._send(self.session.subscribe, [(topic, qos)])
        try:
            codes = self._await(pid, "SUBACK for %s" % topic)
        finally:
            self._waiting.pop(pid, None)
        if codes[0] == 0x80:
            raise MQTTException("subscription to %s refused" % topic)
        return True

    def wait_msg(self):
        """Wait for incoming packets and handle them (PUBLISH: the callback); the kind of
        event handled last. Keepalive pings go out meanwhile; raises when the link fails."""
        while True:
            events = self._exchange(None, None)
            if events:
                return self._handle(events)

    def check_msg(self):
        """Handle what has arrived, without waiting (None when nothing had)."""
        return self._handle(self._exchange(None, None, wait=False))

    def ping(self):
        self._send(self.session.ping)

    def disconnect(self):
        try:
            if self.session.state == mqtt_session.OPEN:
                self._send(self.session.disconnect)
        except OSError:
            pass
        self.close()

    def close(self):
        """Close the socket (no DISCONNECT: the broker sends the last will)."""
        with self._io:
            self.session.lost("closed by the client")
            self._close_socket()

    def get_mqttsta(self):
        """0 connected, 2 not (the link failed or was closed), -1 never connected."""
        if not self._ever:
            return -1
        return 0 if self.session.state == mqtt_session.OPEN else 2

    # ---------------------------------------------------------------- sockets
    def _open_socket(self):
        addr = usocket.getaddrinfo(self.server, self.port)[0][-1]
        sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        self._plain = sock
        sock.settimeout(self.connect_timeout_ms / 1000)
        sock.connect(addr)
        if self.ssl:
            self.sock = self._wrap(sock)
        else:
            self.sock = sock
        self._recv = getattr(self.sock, "recv", None) or self.sock.read     # TLS: read only
        self._poller = self._input_poller()

    def _wrap(self, sock):
        import ussl
        params = dict(self.ssl_params)
        pin = params.pop("fingerprint", "")
        params.setdefault("server_hostname", self.server)
        tls = ussl.wrap_socket(sock, **params)
        if pin:
            from .builtins.tls import PinError, check_pin
            try:
                check_pin(tls, pin)
            except PinError as exc:
                tls.close()
                raise MQTTException("broker certificate rejected: %s" % exc)
        return tls

    def _input_poller(self):
        """TLS where the firmware has uselect (Sept 2021 on): poll the TLS socket, which is
        made non-blocking. Elsewhere the plain socket's timeout bounds each read."""
        if not self.ssl:
            return None
        try:
            import uselect
            poller = uselect.poll()
            poller.register(self.sock, uselect.POLLIN)
        except ImportError:
            return None
        self.sock.setblocking(False)
        return poller

    def _send(self, method, *args):
        """Under the socket lock: the session's packet(s) from method(*args), written; the
        method's result. A (pid, bytes) result with a pid registers it as awaited before the
        bytes go, so an ack read by another thread is kept for the caller."""
        with self._io:
            if self.sock is None:
                raise OSError(107, "not connected")
            try:
                result = method(*args)
            except MqttError as exc:
                if self.session.state != mqtt_session.OPEN:
                    raise OSError(107, "not connected (%s)" % exc)
                raise MQTTException(str(exc))
            data, pid = result, None
            if isinstance(result, tuple):
                pid, data = result
                if pid is not None:
                    self._waiting[pid] = None
            try:
                for packet in (data if isinstance(data, list) else (data,)):
                    self._write_locked(packet)
            except Exception:
                self._waiting.pop(pid, None)
                raise
        return result

    def _write_locked(self, data):
        view = memoryview(data)
        start = utime.ticks_ms()
        write = getattr(self.sock, "send", None) or self.sock.write     # TLS: write only
        while len(view):
            try:
                count = write(view)
            except OSError as exc:
                if not _would_block(exc):
                    self._fail("write failed: %s" % exc)
                    raise
                count = 0
            if not count:
                if utime.ticks_diff(utime.ticks_ms(), start) > self.response_ms:
                    self._fail("write timed out")
                    raise OSError(110, "write timed out after %d ms" % self.response_ms)
                utime.sleep_ms(1)
            view = view[count or 0:]

    def _read_locked(self, timeout_ms):
        """Bytes that arrived within timeout_ms (None: none); b"" or OSError: the link is
        over. TCP: recv takes what is there. TLS with uselect: non-blocking reads (the TLS
        layer may hold decrypted bytes the socket no longer shows, so read before polling).
        TLS without uselect: a read that times out loses what it had read, so it never asks
        for more than the packet under way needs (see _read_tls_blocking)."""
        if not self.ssl:
            self._plain.settimeout(timeout_ms / 1000 if timeout_ms > 0 else 0)
            return self._try_read(self._recv, _READ_SIZE)
        if self._poller is not None:
            data = self._try_read(self.sock.read, _READ_SIZE)
            if data is None and self._poller.poll(timeout_ms):
                data = self._try_read(self.sock.read, _READ_SIZE)
            return data
        return self._read_tls_blocking(timeout_ms)

    def _read_tls_blocking(self, timeout_ms):
        """The first octet of a packet waits timeout_ms (one octet: a timeout loses nothing);
        the rest of a packet begun waits response_ms (a broker that stalls mid-packet ends
        the link). _exchange reads on while a packet is incomplete."""
        if not self.session.receiving():
            self._plain.settimeout(timeout_ms / 1000 if timeout_ms > 0 else 0)
            return self._try_read(self.sock.read, 1)
        self._plain.settimeout(self.response_ms / 1000)
        data = self._try_read(self.sock.read, self.session.needed())
        if not data:
            raise OSError(110, "the broker stalled in the middle of a packet")
        return data

    @staticmethod
    def _try_read(read, size):
        try:
            return read(size)
        except OSError as exc:
            if _would_block(exc):
                return None
            raise

    # ---------------------------------------------------------------- waiting
    def _exchange(self, deadline, what, wait=True):
        """One read slice (or until deadline) under the socket lock: the session's events.
        Raises MQTTTimeout past deadline (what: what was awaited), OSError when the link
        fails. Keepalive pings are written here."""
        session = self.session
        with self._io:
            if self.sock is None:
                raise OSError(107, "not connected")
            now = utime.ticks_ms()
            ping = session.tick(now)
            if ping is not None:
                self._write_locked(ping)
            if session.state == mqtt_session.CLOSED:    # no CONNACK / PINGRESP in time
                reason = session.close_reason or "connection closed"
                self._close_socket()
                raise MQTTTimeout(reason)
            slice_ms = self.slice_ms if wait else 0
            wake = session.next_wakeup(now)
            if wake is not None:
                slice_ms = min(slice_ms, wake)
            if deadline is not None:
                left = utime.ticks_diff(deadline, now)
                if left <= 0:
                    self._fail("no %s within %d ms" % (what, self.response_ms))
                    raise MQTTTimeout("no %s within %d ms" % (what, self.response_ms))
                slice_ms = min(slice_ms, left)
            try:
                data = self._read_locked(slice_ms)
            except OSError as exc:
                self._fail("read failed: %s" % exc)
                raise
            if data is None:
                return []
            try:
                events = session.receive(data, utime.ticks_ms())
                while data and self.ssl and self._poller is None and session.receiving():
                    data = self._read_tls_blocking(0)
                    events.extend(session.receive(data, utime.ticks_ms()))
            except MqttError as exc:
                self._fail(str(exc))
                raise MQTTException("broker sent bad MQTT: %s" % exc)
            except OSError as exc:
                self._fail("read failed: %s" % exc)
                raise
            if not (events and isinstance(events[-1], ConnAck)):    # a refusal is returned
                self._check_alive()
        return self._note(events)

    def _note(self, events):
        """Record the acks someone waits for; the other events are returned."""
        rest = []
        for event in events:
            if isinstance(event, (PubAck, SubAck)):
                if event.pid in self._waiting:
                    self._waiting[event.pid] = event.codes if isinstance(event, SubAck) \
                        else True
            else:
                rest.append(event)
        return rest

    def _await(self, pid, what):
        deadline = utime.ticks_add(utime.ticks_ms(), self.response_ms)
        while self._waiting.get(pid) is None:
            events = self._exchange(deadline, what)
            self._handle(events)
        return self._waiting[pid]

    def _check_alive(self):
        session = self.session
        if session.state == mqtt_session.CLOSED:
            reason = session.close_reason or "connection closed"
            self._close_socket()
            raise OSError(104, reason)

    def _fail(self, reason):
        self.session.lost(reason)
        self._close_socket()

    def _close_socket(self):
        self._poller = None
        for sock in (self.sock, self._plain):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        self.sock = self._plain = None

    # ---------------------------------------------------------------- events
    def _handle(self, events):
        """Incoming messages to the callback (QoS 1: PUBACK after it returned); the packet
        type of the last event (codecs.mqtt.PUBLISH, PINGRESP, ...; None if none)."""
        last = None
        for event in events:
            if isinstance(event, Publish):
                self._dispatch(event)
                last = PUBLISH
            elif isinstance(event, PingResp):
                last = PINGRESP
        return last

    def _dispatch(self, event):
        if not isinstance(event, Publish):
            return
        if self.cb is not None:
            self.cb(_bytes(event.topic), event.payload)
        if event.qos:
            self._send(self.session.puback, event.pid)
