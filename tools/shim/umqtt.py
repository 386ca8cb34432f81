"""umqtt on the host: QuecPython's `MQTTClient` API over the shim's real sockets (MQTT 3.1.1).

    from umqtt import MQTTClient
    c = MQTTClient(client_id, server, port=0, user=None, password=None, keepalive=0,
                   ssl=False, ssl_params={}, reconn=True[, version=4, pingmaxnum=0 (E2+)])
    c.set_callback(fn)                  # fn(topic: bytes, msg: bytes)
    c.set_last_will(topic, msg, retain=False, qos=0)
    c.connect(clean_session=True)       # session-present flag (0/1); MQTTException(rc) if refused
    c.subscribe(topic, qos)             # True once SUBACKed
    c.publish(topic, msg, retain=False, qos=0)  # None; qos 1 per firmware line, see below
    c.check_msg()                       # handle what has arrived, without waiting
    c.wait_msg()                        # wait for one packet and handle it
    c.ping(); c.disconnect(); c.close(); c.get_mqttsta()

publish(qos=1) as each firmware line's umqtt does it (shimlib.firmware.LINE):
    E1  calls wait_msg() until the PUBACK arrives, with no timeout; errors raise.
    E2  the same, but publish swallows every exception and returns None.
    E3  waits up to 5 s for the PUBACK to be consumed by wait_msg()/check_msg() running in
        another thread, then notes a warning and returns None; never raises.

As on the module: the client is not thread-safe (one thread drives it, but on E3 a reader
thread is what publish expects), incoming PUBLISHes are handed to the callback from inside
whichever call read them, and packet ids restart with each client (nothing in flight survives
a reconnect). `reconn` is accepted and ignored: this client never reconnects by itself. Unlike
the module, a connection the broker closed raises OSError from check_msg/wait_msg instead of
returning None, and `sock` is the live socket. The packets come from qframe/codecs/mqtt.py,
shared with the device side and the tests.
"""
from shimlib import core as _core, firmware as _firmware, notes as _notes
import usocket as _usocket
import utime as _utime

from shimlib.hostio import select as _select
from usr.qframe.codecs import mqtt as _codec

_CONNECT_TIMEOUT_S = 20     # QuecPython's umqtt connects with this socket timeout
_IPPROTO_TCP = 6
_TCP_NODELAY = 1


class MQTTException(Exception):
    pass


def _would_block(exc):
    return (exc.args and exc.args[0] in (11, 110)) or "SSLWant" in type(exc).__name__


def _bytes(value):
    return value.encode() if isinstance(value, str) else bytes(value)


class MQTTClient(object):
    _response_ms = 5000         # the shim's bound on CONNACK / SUBACK
    _puback_wait_ms = 5000      # E3: how long publish waits for its PUBACK to be consumed

    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=False, ssl_params=None, reconn=True, **later):
        if later and _firmware.LINE == "E1":
            raise TypeError("unexpected keyword argument %s" % ", ".join(later))
        for name in later:
            if name not in ("version", "pingmaxnum"):
                raise TypeError("unexpected keyword argument '%s'" % name)
        if later.get("version", 4) != 4:
            raise ValueError("only MQTT 3.1.1 (version=4) here")
        if 0 < keepalive < 5 and _firmware.LINE != "E1":
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
        self._parser = _codec.Parser(1 << 20)
        self._poller = None
        self._connected = False
        self._unacked = []          # qos 1 packet ids whose PUBACK was not handled yet

    # ------------------------------------------------------------------ API
    def set_callback(self, callback):
        self.cb = callback

    def error_register_cb(self, callback):
        self._err_cb = callback

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self._will = (topic, _bytes(msg), qos, retain)

    def connect(self, clean_session=True):
        addr = _usocket.getaddrinfo(self.server, self.port)[0][-1]
        sock = _usocket.socket(_usocket.AF_INET, _usocket.SOCK_STREAM)
        try:
            sock.settimeout(_CONNECT_TIMEOUT_S)
            sock.connect(addr)
            # TCP_NODELAY on the host socket (the firmware's setsockopt has no such option):
            # without it a PUBLISH written right after a PUBACK waits for the broker's
            # delayed ACK (40 ms) on loopback
            sock._raw.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
            if self.ssl:
                import ussl
                params = dict(self.ssl_params)
                params["server_hostname"] = self.server     # as QuecPython's umqtt does
                sock = ussl.wrap_socket(sock, **params)
                sock._raw.settimeout(0)     # TLS: read what has arrived, never wait
        except Exception:
            sock.close()
            raise
        self.sock = sock
        self._parser.reset()
        self._acks = {}
        self._unacked = []
        self._poller = _select.poll()       # the host's: the shim's internals, any line
        self._poller.register(sock._raw, _select.POLLIN)
        self._recv = getattr(sock, "recv", None) or sock.read
        self._send(_codec.connect(self.client_id, self.keepalive, clean_session, self._will,
                                 self.user, self.pswd))
        packet = self._wait_for(_codec.CONNACK, 0, self._response_ms)
        if packet is None:
            self.close()
            raise MQTTException("no CONNACK within %d ms" % self._response_ms)
        if packet.rc:
            self.close()
            raise MQTTException(packet.rc)
        self._connected = True
        return 1 if packet.session_present else 0

    def disconnect(self):
        try:
            self._send(_codec.disconnect())
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
        self._send(_codec.pingreq())

    def publish(self, topic, msg, retain=False, qos=0):
        """None. qos 1: E1 waits (wait_msg) for the PUBACK without a timeout; E2 the same but
        swallows every exception; E3 waits up to 5 s for another thread to consume it."""
        if _firmware.LINE == "E1":
            return self._publish(topic, msg, retain, qos)
        try:
            return self._publish(topic, msg, retain, qos)
        except Exception as exc:    # the firmware's publish from mid 2021 on
            _notes.note("umqtt: publish to %s failed: %r" % (topic, exc))
            return None

    def _publish(self, topic, msg, retain, qos):
        assert qos in (0, 1)
        pid = self._next_pid() if qos else 0
        if qos:
            self._unacked.append(pid)
        self._send(_codec.publish(topic, _bytes(msg), qos, retain, pid))
        if not qos:
            return None
        if _firmware.LINE == "E3":
            if not _core.wait_for(lambda: pid not in self._unacked, self._puback_wait_ms):
                _notes.note("umqtt: no PUBACK for packet %d consumed within %d ms"
                            % (pid, self._puback_wait_ms))
            return None
        while pid in self._unacked:
            self.wait_msg()
        return None

    def subscribe(self, topic, qos=0):
        pid = self._next_pid()
        self._send(_codec.subscribe(pid, [(topic, qos)]))
        packet = self._wait_for(_codec.SUBACK, pid, self._response_ms)
        return packet is not None and packet.codes[0] != 0x80

    def check_msg(self):
        return self._handle(self._read(0))

    def wait_msg(self):
        return self._handle(self._read(-1))

    def get_mqttsta(self):
        """0 connected, 2 the socket is closed or broken (-1 never connected), from the
        socket's TCP state as the firmware's umqtt reads it."""
        if self.sock is None:
            return -1
        return 0 if self._connected and self.sock._sta() == 4 else 2

    # ------------------------------------------------------------------ internals
    def _next_pid(self):
        self._pid = self._pid % 0xFFFF + 1
        return self._pid

    def _send(self, data):
        if self.sock is None:
            raise OSError(107, "not connected")
        view = memoryview(data)
        start = _utime.ticks_ms()
        while len(view):
            try:
                count = self.sock.write(view)
            except OSError as exc:          # non-blocking TLS: no room yet
                if not _would_block(exc) or \
                        _utime.ticks_diff(_utime.ticks_ms(), start) > self._response_ms:
                    raise
                count = 0
                _utime.sleep_ms(1)
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
        except _codec.MqttError as exc:
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
            if packet.kind == _codec.PUBLISH:
                if self.cb is not None:
                    self.cb(_bytes(packet.topic), packet.payload)
                if packet.qos:
                    self._send(_codec.puback(packet.pid))
            elif packet.kind == _codec.PUBACK:
                if packet.pid in self._unacked:
                    self._unacked.remove(packet.pid)
                    _core.changed()         # wakes an E3 publish waiting for it
            elif packet.kind == _codec.SUBACK:
                self._acks[(packet.kind, packet.pid)] = packet
            elif packet.kind == _codec.CONNACK:
                self._connack = packet
        return last

    def _wait_for(self, kind, pid, timeout_ms):
        """The packet of kind (and pid) once it arrived within timeout_ms, else None; other
        packets are handled meanwhile."""
        start = _utime.ticks_ms()
        self._connack = None
        while True:
            if kind == _codec.CONNACK and self._connack is not None:
                return self._connack
            packet = self._acks.pop((kind, pid), None)
            if packet is not None:
                return packet
            left = timeout_ms - _utime.ticks_diff(_utime.ticks_ms(), start)
            if left <= 0:
                return None
            self._handle(self._read(min(left, 100)))


_firmware.prune(globals(), "umqtt")
