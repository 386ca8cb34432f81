"""umqtt on the host: QuecPython's `MQTTClient` API over the shim's real sockets (MQTT 3.1.1).

    from umqtt import MQTTClient
    c = MQTTClient(client_id, server, port=0, user=None, password=None, keepalive=0,
                   ssl=False, ssl_params=None, reconn=True, version=4)
    c.set_callback(fn)                  # fn(topic: bytes, msg: bytes)
    c.set_last_will(topic, msg, retain=False, qos=0)
    c.connect(clean_session=True)       # session-present flag (0/1); MQTTException(rc) if refused
    c.subscribe(topic, qos)             # True once SUBACKed
    c.publish(topic, msg, retain=False, qos=0)  # qos 1: True once PUBACKed within 5 s, else False
    c.check_msg()                       # handle what has arrived, without waiting
    c.wait_msg()                        # wait for one packet and handle it
    c.ping(); c.disconnect(); c.close(); c.get_mqttsta()

As on the module: the client is not thread-safe (one thread drives it), incoming PUBLISHes are
handed to the callback from inside whichever call read them (check_msg, wait_msg, or a
publish waiting for its PUBACK), a QoS 1 publish that gets no PUBACK within `response_ms`
returns False, and packet ids restart with each client (nothing in flight survives a
reconnect). `reconn` is accepted and ignored: this client never reconnects by itself. Unlike
the module, a connection the broker closed raises OSError instead of returning None, and
`sock` is the live socket (poll it to wait for input), with TCP_NODELAY set. The packets come from
qframe/codecs/mqtt.py, shared with the device side and the tests.
"""
import uselect
import usocket
import utime

from usr.qframe.codecs import mqtt as codec

CONNECT_TIMEOUT_S = 20      # QuecPython's umqtt connects with this socket timeout


class MQTTException(Exception):
    pass


def _would_block(exc):
    return (exc.args and exc.args[0] in (11, 110)) or "SSLWant" in type(exc).__name__


def _bytes(value):
    return value.encode() if isinstance(value, str) else bytes(value)


class MQTTClient(object):
    response_ms = 5000

    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=False, ssl_params=None, reconn=True, version=4):
        if version != 4:
            raise ValueError("only MQTT 3.1.1 (version=4) here")
        if keepalive and keepalive < 5:
            raise ValueError("inport parameter error : keepalive >= 5S")
        self.client_id = client_id
        self.server = server
        self.port = port or (8883 if ssl else 1883)
        self.user = user
        self.pswd = password
        self.keepalive = keepalive
        self.ssl = ssl
        self.ssl_params = ssl_params or {}
        self.sock = None
        self.cb = None
        self._err_cb = None
        self._will = None
        self._pid = 0
        self._acks = {}
        self._connack = None
        self._parser = codec.Parser(1 << 20)
        self._poller = None
        self._connected = False

    # ------------------------------------------------------------------ API
    def set_callback(self, callback):
        self.cb = callback

    def error_register_cb(self, callback):
        self._err_cb = callback

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self._will = (topic, _bytes(msg), qos, retain)

    def connect(self, clean_session=True):
        addr = usocket.getaddrinfo(self.server, self.port)[0][-1]
        sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(addr)
            # TCP_NODELAY (1 on Linux): without it a PUBLISH written right after a PUBACK
            # waits for the broker's delayed ACK (40 ms) on loopback
            sock.setsockopt(usocket.IPPROTO_TCP, 1, 1)
            if self.ssl:
                import ussl
                params = dict(self.ssl_params)
                params["server_hostname"] = self.server     # as QuecPython's umqtt does
                sock = ussl.wrap_socket(sock, **params)
                sock.settimeout(0)      # TLS: read what has arrived, never wait in read()
        except Exception:
            sock.close()
            raise
        self.sock = sock
        self._parser.reset()
        self._acks = {}
        self._poller = uselect.poll()
        self._poller.register(sock, uselect.POLLIN)
        self._recv = getattr(sock, "recv", None) or sock.read
        self._send(codec.connect(self.client_id, self.keepalive, clean_session, self._will,
                                 self.user, self.pswd))
        packet = self._wait_for(codec.CONNACK, 0, self.response_ms)
        if packet is None:
            self.close()
            raise MQTTException("no CONNACK within %d ms" % self.response_ms)
        if packet.rc:
            self.close()
            raise MQTTException(packet.rc)
        self._connected = True
        return 1 if packet.session_present else 0

    def disconnect(self):
        try:
            self._send(codec.disconnect())
        except OSError:
            pass
        self.close()

    def close(self):
        self._connected = False
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass

    def ping(self):
        self._send(codec.pingreq())

    def publish(self, topic, msg, retain=False, qos=0):
        pid = self._next_pid() if qos else 0
        self._send(codec.publish(topic, _bytes(msg), qos, retain, pid))
        if not qos:
            return True
        return self._wait_for(codec.PUBACK, pid, self.response_ms) is not None

    def subscribe(self, topic, qos=0):
        pid = self._next_pid()
        self._send(codec.subscribe(pid, [(topic, qos)]))
        packet = self._wait_for(codec.SUBACK, pid, self.response_ms)
        return packet is not None and packet.codes[0] != 0x80

    def check_msg(self):
        return self._handle(self._read(0))

    def wait_msg(self):
        return self._handle(self._read(-1))

    def get_mqttsta(self):
        if self.sock is None:
            return -1
        return 0 if self._connected else 2

    # ------------------------------------------------------------------ internals
    def _next_pid(self):
        self._pid = self._pid % 0xFFFF + 1
        return self._pid

    def _send(self, data):
        if self.sock is None:
            raise OSError(107, "not connected")
        view = memoryview(data)
        start = utime.ticks_ms()
        while len(view):
            try:
                count = self.sock.write(view)
            except OSError as exc:          # non-blocking TLS: no room yet
                if not _would_block(exc) or \
                        utime.ticks_diff(utime.ticks_ms(), start) > self.response_ms:
                    raise
                count = 0
                utime.sleep_ms(1)
            view = view[count or 0:]

    def _read(self, timeout_ms):
        """Packets that arrived within timeout_ms (-1: wait for at least one byte). TLS may
        hold a decrypted record the socket no longer shows: it is read before polling."""
        if self.sock is None:
            raise OSError(107, "not connected")
        chunk = self._chunk() if self.ssl else None
        if not chunk:
            if not self._poller.poll(timeout_ms):
                return []
            chunk = self._chunk()
        if not chunk:
            return []
        try:
            return self._parser.feed(chunk)
        except codec.MqttError as exc:
            self.close()
            raise OSError(71, "broker sent bad MQTT: %s" % exc)

    def _chunk(self):
        """Bytes that have arrived (None: none yet); OSError once the broker closed."""
        try:
            chunk = self._recv(4096)
        except OSError as exc:
            if _would_block(exc):
                return None
            raise
        if chunk is not None and not chunk:
            self._connected = False
            raise OSError(104, "connection closed by the broker")
        return chunk

    def _handle(self, packets):
        """Act on received packets; the kind of the last one (None if none)."""
        last = None
        for packet in packets:
            last = packet.kind
            if packet.kind == codec.PUBLISH:
                if self.cb is not None:
                    self.cb(_bytes(packet.topic), packet.payload)
                if packet.qos:
                    self._send(codec.puback(packet.pid))
            elif packet.kind in (codec.PUBACK, codec.SUBACK):
                self._acks[(packet.kind, packet.pid)] = packet
            elif packet.kind == codec.CONNACK:
                self._connack = packet
        return last

    def _wait_for(self, kind, pid, timeout_ms):
        """The packet of kind (and pid) once it arrived within timeout_ms, else None; other
        packets are handled meanwhile."""
        start = utime.ticks_ms()
        self._connack = None
        while True:
            if kind == codec.CONNACK and self._connack is not None:
                return self._connack
            packet = self._acks.pop((kind, pid), None)
            if packet is not None:
                return packet
            left = timeout_ms - utime.ticks_diff(utime.ticks_ms(), start)
            if left <= 0:
                return None
            self._handle(self._read(min(left, 100)))
