"""The cloud link's socket driver: `TcpClient` (dev.json section TCP_SERVER, `app.tcp`).

    TcpClient(app=app)                  # or QFrame's way: client = TcpClient("client");
                                        # client.init_app(app)

The uplink's decisions (what to send when, acks, window, heartbeat, timeouts, commands) are
the UplinkSession's (qframe/protocols/uplink.py); the wire format is the HES-protocol plug-in's
(qframe/codecs/hes.py, `protocol`). This module only moves bytes: it connects (DNS, TCP, TLS;
exponential backoff with jitter between attempts, paused between `network.down` and
`network.up`), feeds the session what arrives and writes what the session hands out, and drops
the connection when the session says so. The server role (`role: "server"`) accepts instead of
connecting: qframe/builtins/server.py.

QFrame's API: `send(data)` (True: accepted into the flash queue, False: rejected), a
`recv_callback(data)` subclasses override (the default publishes `hes.data`), `connect()` /
`disconnect()` (True on success; disconnect holds the link down until connect), `sock` (the
live connection; ValueError when there is none).

Threads: the link thread (connects, writes) and, per connection, a receive thread; both notice
stop within `poll_s` (a blocking connect within `connect_timeout`). Neither ends on an
unexpected exception: it is logged with its cause, counted (`link_exceptions`), the connection
is dropped and the link reconnects.
"""
import usocket
import utime

from .sms import SmsClient  # noqa: F401  (QFrame's builtins.clients exports it)
from ..codecs import hes as hesproto
from ..core.config import Field
from ..logging import getLogger
from ..protocols.uplink import QUEUE_FIELDS, SESSION_FIELDS
from ..threading import Event, Lock, Thread
from .link import (RECONNECT_FIELDS, TLS_FIELDS, UplinkDriver, is_timeout,  # noqa: F401
                   input_poller, merge_fields, tls_problem)

_log = getLogger("tcp")
_MAX_WAIT_S = 1.0   # longest uninterrupted wait of the link thread (it beats between waits)
TLS_RECORD = 16384  # a TLS read takes a whole record, so no decrypted bytes wait unseen

# TCP_SERVER keys by concern (docs/CLOUD_LINK.md has the table); QFrame's own are host, port,
# timeout and keep_alive.
LINK_FIELDS = {
    "host": Field(str, "127.0.0.1", required=lambda cfg: cfg.get("role") != "server"),
    "port": Field(int, 9000, lo=1, hi=65535),
    "role": Field(str, "client", choices=("client", "server")),
    "listen_port": Field(int, 0, lo=0, hi=65535),
    "connect_timeout": Field(float, 10.0, lo=0.1, hi=120),
    "timeout": Field(float, None, lo=0.1, hi=120, optional=True),
    "keepalive": Field(int, 0, lo=0, hi=120),
    "keep_alive": Field(int, None, lo=0, hi=120, optional=True),
    "nodelay": Field(bool, True),
    "send_timeout_s": Field(float, 30.0, lo=0.1, hi=3600),
    "poll_s": Field(float, 0.2, lo=0.01, hi=5),
    "recv_size": Field(int, 1024, lo=16, hi=65536),
}
def _ticks():
    return utime.ticks_ms()


def _since_ms(start):
    return utime.ticks_diff(utime.ticks_ms(), start)


class Connection(object):
    """One connected socket (plain or TLS): whole-buffer send, recv that returns None when
    nothing arrived within `poll_s`.

    Plain TCP: the socket's timeout is `poll_s` and recv/send run concurrently. TLS: a session
    must not be used by two threads at once, so reads and writes share a lock, and the TLS
    socket is used through read/write only (the firmware's has no send/recv/settimeout). Where
    the firmware has uselect (from September 2021) the TLS socket is non-blocking and recv
    polls it without the lock, reading a whole record once bytes are there; before that the
    plain socket's timeout (`poll_s`) bounds each read.
    """

    def __init__(self, sock, peer, tls, poll_s, send_timeout_s):
        self.sock = sock
        self.peer = peer
        self.lock = Lock() if tls else None
        self.poll_ms = int(poll_s * 1000)
        self.send_timeout_ms = int(send_timeout_s * 1000)
        self.alive = True
        self.reason = None
        self.opened = _ticks()
        self._poller = input_poller(sock) if tls else None
        self._write = getattr(sock, "send", None) or sock.write
        self._read = getattr(sock, "recv", None) or sock.read

    def __str__(self):
        return "Connection(%s%s)" % (self.peer, "" if self.alive else ", closed")

    def fail(self, reason):
        """Mark the connection broken (the first reason is kept)."""
        if self.alive:
            self.alive = False
            self.reason = reason

    def send(self, data):
        view = memoryview(data)
        sent = 0
        start = _ticks()
        while sent < len(view):
            if not self.alive:
                raise OSError(104, "connection closed")
            try:
                if self.lock is not None:
                    with self.lock:
                        count = self._write(view[sent:])
                else:
                    count = self._write(view[sent:])
            except OSError as exc:
                if not is_timeout(exc):
                    raise
                count = 0
            sent += count or 0
            if sent < len(view):
                if _since_ms(start) > self.send_timeout_ms:
                    raise OSError(110, "send timed out")
                if not count and self.lock is not None:
                    utime.sleep_ms(1)       # non-blocking TLS: wait for room
        return sent

    def recv(self, size):
        """Bytes received, None if nothing arrived within poll_s, b"" at EOF."""
        if self.lock is not None:
            if self._poller is not None and not self._poller.poll(self.poll_ms):
                return None
            with self.lock:
                try:
                    return self._read(TLS_RECORD)   # None: only part of a record so far
                except OSError as exc:
                    if is_timeout(exc):
                        return None
                    raise
        try:
            return self._read(size)
        except OSError as exc:
            if is_timeout(exc):
                return None
            raise

    # QFrame's TcpSocket-style calls on client.sock (they bypass the flash queue)
    def write(self, data):
        """Send data now; True if all of it was written."""
        try:
            return self.send(data) == len(data)
        except OSError:
            return False

    def read(self, size=1024):
        """Bytes received within poll_s (b"" if none)."""
        return self.recv(size) or b""

    @property
    def status_code(self):
        """4 (established) while alive, 99 once closed (QuecPython's socket state codes)."""
        return 4 if self.alive else 99

    def close(self):
        self.fail("closed")
        try:
            self.sock.close()
        except OSError:
            pass

    disconnect = close


class _Dialer(object):
    """Client role: each open() is one connect attempt; failures back off."""

    backs_off = True
    polls = False

    def __init__(self, client):
        self.client = client

    def open(self):
        return self.client.dial()

    def replacement(self):
        return None

    def close(self):
        pass


class TcpClient(UplinkDriver):
    name = "tcp"
    config_section = "TCP_SERVER"
    config_fields = merge_fields(LINK_FIELDS, TLS_FIELDS, RECONNECT_FIELDS, SESSION_FIELDS,
                                 QUEUE_FIELDS)
    role = None     # None: TCP_SERVER.role decides; TcpServer sets "server"

    def __init__(self, name=None, app=None):
        self.stats = {"connects": 0, "connect_failures": 0, "dns_failures": 0,
                      "tls_failures": 0, "pin_failures": 0, "disconnects": 0, "link_errors": 0,
                      "link_exceptions": 0, "memory_errors": 0, "sent_bytes": 0,
                      "received_bytes": 0, "callback_errors": 0, "uplink_rejected": 0,
                      "option_errors": 0, "replaced": 0, "net_pauses": 0, "config_errors": 0}
        self._conn = None
        self._endpoint = None
        self._short_of_memory = False
        self._health = None
        self._kick = Event()
        self._lock = Lock()          # around every session call (two threads drive it)
        self._keepalive_noted = False
        UplinkDriver.__init__(self, name, app)

    def __str__(self):
        cfg = self.config if self.app is not None else {}
        return "%s(host=\"%s\",port=%s)" % (type(self).__name__, cfg.get("host"),
                                            cfg.get("port"))

    # ------------------------------------------------------------------ lifecycle
    def load(self):
        cfg = self.config
        self.open_uplink(hesproto.load(cfg["protocol"], cfg))
        self._net_up = self.network_is_up()
        self.subscribe("network.down", self._on_network_down)
        self.subscribe("network.up", self._on_network_up)
        self.subscribe("health", self._on_health)
        self._stopping = False
        problem = tls_problem(cfg, "TCP_SERVER") if self.current_role() == "client" else None
        if problem is not None:
            self.stats["config_errors"] += 1
            self.state = "refused"
            self.last_error = "link not started: %s" % problem
            _log.error("%s", self.last_error)
            return                      # the queue still accepts; nothing leaves unverified
        if self.current_role() == "server":
            from .server import Listener
            self._endpoint = Listener(self)
        else:
            self._endpoint = _Dialer(self)
        self._thread = Thread(self._run, name="tcp-link").start()

    def stop(self, timeout=2.0):
        self._stopping = True
        self._wake.set()
        self._kick.set()
        conn = self._conn
        if conn is not None:
            conn.fail("stopping")
        ok = self._thread.join(timeout) if self._thread is not None else True
        self.unsubscribe_all()
        if self._endpoint is not None:
            self._endpoint.close()
        if self.queue is not None:
            self.queue.close()
        self.state = "stopped"
        return ok

    def healthy(self):
        """The link thread is alive and not stuck (it beats at least every connect/send bound);
        a link refused by its config has no thread to watch and a reset would not help."""
        if self.state == "refused":
            return True
        if self._thread is None or not self._thread.is_alive():
            return False
        bound = (self._connect_timeout() + self.config["send_timeout_s"] + 5) * 1000
        return _since_ms(self._beat_at) < bound

    def is_connected(self):
        return self._conn is not None and self._conn.alive

    def current_role(self):
        return self.role or self.config.get("role") or "client"

    # ------------------------------------------------------------------ public API (QFrame)
    @property
    def sock(self):
        """The live connection (QFrame's TcpClient.sock); ValueError when not connected."""
        conn = self._conn
        if conn is None or not conn.alive:
            raise ValueError("%s is not connected" % self)
        return conn

    def connect(self):
        """(Re)enable the link and connect now; True once connected (within connect_timeout)."""
        if self._thread is None:
            return False
        self._held = False
        if self._backoff is not None:
            self._backoff.reset()
        self._kick.set()
        self._wake.set()
        return self._up.wait(self._connect_timeout() + 1.0)

    def disconnect(self):
        """Close the connection and keep the link down until connect(); True."""
        self._held = True
        conn = self._conn
        if conn is not None:
            conn.fail("disconnected by the app")
        self._kick.set()
        self._wake.set()
        return True

    # ------------------------------------------------------------------ bus
    def _on_network_down(self, topic, reason):
        if self._net_up:
            self.stats["net_pauses"] += 1
        self._net_up = False
        conn = self._conn
        if conn is not None:
            conn.fail("network down: %s" % (reason,))
        self._wake.set()
        self._kick.set()

    def _on_network_up(self, topic, reason):
        self._net_up = True
        if self._backoff is not None:
            self._backoff.reset()
        self._wake.set()
        self._kick.set()

    # Bus callbacks only leave a note for the link thread: they may run inside a command
    # handler, which runs under the session lock.
    def _on_health(self, topic, status):
        if self.config.get("forward_health") and self.is_connected():
            self._health = status
            self._wake.set()

    # ------------------------------------------------------------------ link thread
    def _connect_timeout(self):
        cfg = self.config
        return cfg["timeout"] if cfg.get("timeout") is not None else cfg["connect_timeout"]

    def _beat(self):
        self._beat_at = _ticks()

    def pause(self, seconds):
        """Wait up to seconds; a network change, connect() or stop() ends it early."""
        self._wait(self._kick, seconds)

    def _wait(self, event, seconds):
        """Wait for event up to seconds, beating at least every _MAX_WAIT_S; True if it fired."""
        deadline = utime.ticks_add(_ticks(), int(seconds * 1000))
        while not self._stopping:
            remaining = utime.ticks_diff(deadline, _ticks())
            if remaining <= 0:
                return False
            if event.wait(min(remaining / 1000.0, _MAX_WAIT_S)):
                return True
            self._beat()
        return True

    def _run(self):
        """The link thread. A MemoryError anywhere, even while handling another error, backs
        off: it never ends the thread."""
        while not self._stopping:
            try:
                self._guarded_step()
            except MemoryError as exc:      # logged once per spell, counted, backed off
                self._short_of_memory = True
                try:
                    self._drop_connection()
                    self._wait(self._kick, self.out_of_memory(exc))
                except MemoryError:
                    pass
        self._endpoint.close()

    def _drop_connection(self):
        conn = self._conn
        if conn is not None:
            conn.close()
        self._conn = None

    def _guarded_step(self):
        try:
            self._step()
            if self._short_of_memory:
                self._short_of_memory = False
                self.memory_recovered()
        except MemoryError:
            raise
        except Exception as exc:        # a bug must not end the link: log, drop, go on
            self.stats["link_exceptions"] += 1
            self.last_error = "link thread: %s: %s" % (type(exc).__name__, exc)
            _log.exception("link thread failed; reconnecting", exc)
            self._drop_connection()
            self._up.clear()
            self.pause(self._backoff.next())

    def _step(self):
        """One pass of the link thread: wait for the network, open a connection, serve it."""
        self._beat()
        self._kick.clear()
        if not self._net_up or self._held:
            self.state = "waiting for network" if not self._net_up else "disconnected"
            self.pause(_MAX_WAIT_S)
            return
        endpoint = self._endpoint
        conn = endpoint.open()
        if conn is None:
            if endpoint.backs_off and not self._stopping and self._net_up:
                delay = self._backoff.next()
                self.state = "backoff"
                _log.info("reconnecting in %d ms (attempt %d)", int(delay * 1000),
                          self._backoff.attempt)
                self.pause(delay)
            return
        self._serve(conn)
        if _since_ms(conn.opened) >= self.config["stable_s"] * 1000:
            self._backoff.reset()
        if endpoint.backs_off and not self._stopping and not self._held:
            self.state = "backoff"       # jittered pause: devices that lost the same
            self.pause(self._backoff.next())   # server come back spread out

    def dial(self):
        """Client role: one connection attempt; a Connection, or None (counted, logged)."""
        cfg = self.config
        host, port = cfg["host"], cfg["port"]
        self.state = "connecting"
        try:
            addr = usocket.getaddrinfo(host, port)[0][-1]
        except (OSError, IndexError) as exc:
            self.note_failure("dns_failures", "cannot resolve %s" % host, exc)
            return None
        sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        try:
            sock.settimeout(self._connect_timeout())
            self.set_options(sock)
            sock.connect(addr)
        except OSError as exc:
            sock.close()
            self.note_failure("connect_failures", "cannot connect to %s:%d" % (host, port), exc)
            return None
        return self.adopt(sock, "%s:%d" % (host, port), cfg["tls"])

    def adopt(self, sock, peer, tls=False):
        """A Connection over a connected socket (TLS handshake first if tls); None on failure.
        The timeout is set on the plain socket (a TLS socket has no settimeout; it reads
        through the plain one); with uselect the TLS socket is made non-blocking instead."""
        cfg = self.config
        plain = sock
        if tls:
            sock = self._wrap_tls(sock)
            if sock is None:
                return None
        try:
            plain.settimeout(cfg["poll_s"])
        except (OSError, AttributeError):
            pass
        conn = Connection(sock, peer, tls, cfg["poll_s"], cfg["send_timeout_s"])
        if conn._poller is not None:
            sock.setblocking(False)
        return conn

    def set_options(self, sock):
        """TCP_NODELAY (small frames go out at once) where the stack has it, and keepalive."""
        cfg = self.config
        self.set_nodelay(sock)
        minutes = cfg["keep_alive"] if cfg.get("keep_alive") is not None else cfg["keepalive"]
        if not minutes:
            return
        if not hasattr(usocket, "TCP_KEEPALIVE"):       # early-2021 firmware: no keepalive
            if not self._keepalive_noted:
                self._keepalive_noted = True
                _log.warning("keepalive %d min not set: this firmware has no TCP_KEEPALIVE",
                             minutes)
            return
        try:
            sock.setsockopt(usocket.SOL_SOCKET, usocket.TCP_KEEPALIVE, minutes)
        except (OSError, AttributeError) as exc:
            self.note_failure("option_errors", "cannot set keepalive", exc)

    def _wrap_tls(self, sock):
        from .tls import wrap, PinError
        cfg = self.config
        if not cfg["tls_fingerprint"]:
            _log.warning("TLS without verification (tls_verify \"none\"): any server "
                         "certificate is accepted")
        try:
            return wrap(sock, cfg["tls_hostname"] or cfg["host"], cfg["tls_fingerprint"])
        except PinError as exc:
            sock.close()
            self.note_failure("pin_failures", "server certificate rejected", exc)
        except (OSError, ValueError) as exc:
            sock.close()
            self.note_failure("tls_failures", "TLS handshake failed", exc)
        return None

    def _write(self, conn, outgoing):
        """Write the session's Transmits in order, then tell it which were written."""
        done = 0
        try:
            for out in outgoing:
                conn.send(out.data)
                self.stats["sent_bytes"] += len(out.data)
                done += 1
        finally:
            if done:
                now = _ticks()
                with self._lock:
                    for index in range(done):
                        self.session.written(outgoing[index], now)

    def _start(self, conn):
        """Open the session on conn and write the registration; False (closed) on failure."""
        with self._lock:
            self.session.open(_ticks())
            outgoing = self.session.take()
        try:
            self._write(conn, outgoing)
        except OSError as exc:
            conn.close()
            with self._lock:
                self.session.close()
            self.note_failure("connect_failures", "registration to %s failed" % conn.peer, exc)
            return False
        self.stats["connects"] += 1
        self.last_error = ""
        _log.info("connected to %s (%s%s)", conn.peer, self.protocol.name,
                  ", TLS" if conn.lock is not None else "")
        self._conn = conn
        self._up.set()
        self.app.bus.publish("tcp.connected", conn.peer)
        return True

    def _serve(self, conn):
        """Drive the session over conn until the connection breaks or the session ends it."""
        if not self._start(conn):
            return
        self.state = "connected"
        rx = Thread(self._rx_loop, (conn,), name="tcp-rx").start()
        endpoint = self._endpoint
        session = self.session
        try:
            while conn.alive and not self._stopping and self._net_up and not self._held:
                self._wake.clear()
                self._beat()
                now = _ticks()
                reregister, self._reregister = self._reregister, False
                health, self._health = self._health, None
                events = self.take_reports()
                with self._lock:
                    if reregister:
                        session.register()
                    if health is not None:
                        session.event("health", health)
                    for name, data in events:
                        session.event(name, data)
                    session.tick(now)
                    reason = session.close_reason
                    outgoing = session.take()
                    wait_ms = session.next_wakeup(now)
                if reason:
                    conn.fail(reason)
                    break
                if outgoing:
                    self._write(conn, outgoing)
                    continue            # more may fit in the window now
                if wait_ms is None or wait_ms > _MAX_WAIT_S * 1000:
                    wait_ms = _MAX_WAIT_S * 1000
                if endpoint.polls:          # a replacing connection is noticed within poll_s
                    wait_ms = min(wait_ms, self.config["poll_s"] * 1000)
                incoming = endpoint.replacement()
                if incoming is not None:
                    self.stats["replaced"] += 1
                    conn.fail("replaced by a new connection from %s" % incoming.peer)
                    break
                self._wake.wait(max(wait_ms, 1) / 1000.0)
        except OSError as exc:
            conn.fail("send failed (%s)" % exc)
        self._end(conn, rx)

    def _end(self, conn, rx):
        reason = conn.reason or "closed"
        if self._stopping:
            reason = "stopping"
        elif not self._net_up and not reason.startswith("network down"):
            reason = "network down"
        conn.close()
        if not rx.join(max(1.0, self.config["poll_s"] * 4)):
            _log.warning("receive thread did not end in time")
        self._up.clear()
        self._conn = None
        with self._lock:
            self.session.close(reason)
        self.stats["disconnects"] += 1
        if not self._stopping and not self._held:
            self.stats["link_errors"] += 1
            self.last_error = reason
        log = _log.info if self._stopping else _log.warning   # a clean stop is no warning
        log("disconnected from %s: %s", conn.peer, reason)
        self.app.bus.publish("tcp.disconnected", reason)

    # ------------------------------------------------------------------ receive thread
    def _rx_loop(self, conn):
        size = self.config["recv_size"]
        try:
            while conn.alive and not self._stopping:
                try:
                    chunk = conn.recv(size)
                except OSError as exc:
                    conn.fail("receive failed (%s)" % exc)
                    break
                if chunk is None:
                    continue
                if not chunk:
                    conn.fail("closed by the HES")
                    break
                if self._short_of_memory:
                    self._short_of_memory = False
                    self.memory_recovered()
                self.stats["received_bytes"] += len(chunk)
                with self._lock:
                    downlink = self.session.receive(chunk, _ticks())
                    reason = self.session.close_reason
                self._wake.set()
                for data in downlink:
                    self.deliver(data)
                if reason:
                    conn.fail(reason)
                    break
        except MemoryError as exc:  # the link thread reconnects, backing off
            self.out_of_memory(exc)
            self._short_of_memory = True
            conn.fail("receive path out of memory")
        except Exception as exc:    # never end silently: fail the connection, say why
            self.stats["link_exceptions"] += 1
            _log.exception("receive path failed; dropping the connection", exc)
            conn.fail("receive path failed (%s: %s)" % (type(exc).__name__, exc))
        self._wake.set()
