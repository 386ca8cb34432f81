"""The cloud link's socket driver: `TcpClient` (dev.json section TCP_SERVER, `app.tcp`).

    TcpClient(app=app)                  # or QFrame's way: client = TcpClient("client");
                                        # client.init_app(app)

The uplink's decisions (what to send when, acks, window, heartbeat, timeouts) are the
UplinkSession's (qframe/protocols/uplink.py); the wire format is the HES-protocol plug-in's
(qframe/codecs/hes.py, `protocol`); the link thread (reconnect, backoff, network pause,
health, commands on the worker pool) is UplinkDriver's (qframe/builtins/link.py). This module
only moves bytes: it opens a connection (DNS, TCP, TLS), writes what the session hands out,
runs a receive thread that feeds the session what arrives, and closes. The server role
(`role: "server"`, or `TcpServer`) accepts instead of connecting: qframe/builtins/server.py.

QFrame's API: `send(data)` (True: accepted into the flash queue, False: rejected), a
`recv_callback(data)` subclasses override (the default publishes `hes.data`), `connect()` /
`disconnect()` (True on success; disconnect holds the link down until connect), `sock` (the
live connection; ValueError when there is none).

Threads: the link thread (connects, writes) and, per connection, a receive thread; both notice
stop within `poll_s` (a blocking connect within `connect_timeout`). Neither ends on an
unexpected exception: it is logged with its cause, counted (`link_exceptions`), the connection
is dropped and the link reconnects. HES commands run on the app's worker pool.
"""
import usocket
import utime

from .sms import SmsClient  # noqa: F401  (QFrame's builtins.clients exports it)
from ..codecs import hes as hesproto
from ..core.config import Field
from ..logging import getLogger
from ..protocols.uplink import SESSION_FIELDS
from ..threading import Lock, Thread
from .link import (MAX_WAIT_S, QUEUE_FIELDS, RECONNECT_FIELDS, TLS_FIELDS,  # noqa: F401
                   UplinkDriver, is_timeout, input_poller, merge_fields, tls_problem)

_log = getLogger("tcp")
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
        self.stats = {"dns_failures": 0, "tls_failures": 0, "pin_failures": 0,
                      "sent_bytes": 0, "received_bytes": 0, "replaced": 0}
        self._endpoint = None
        self._keepalive_noted = False
        UplinkDriver.__init__(self, name, app)

    def __str__(self):
        cfg = self.config if self.app is not None else {}
        return "%s(host=\"%s\",port=%s)" % (type(self).__name__, cfg.get("host"),
                                            cfg.get("port"))

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

    # ------------------------------------------------------------------ UplinkDriver's steps
    def _new_protocol(self):
        return hesproto.load(self.config["protocol"], self.config)

    def _config_problem(self):
        if self.current_role() == "client":
            return tls_problem(self.config, "TCP_SERVER")
        return None

    def _prepare(self):
        if self.current_role() == "server":
            from .server import Listener
            self._endpoint = Listener(self)
        else:
            self._endpoint = _Dialer(self)
        self.backs_off = self._endpoint.backs_off

    def _closed(self):
        if self._endpoint is not None:
            self._endpoint.close()

    def _connect_bound_s(self):
        """A connect, then a write of the registration."""
        return self._connect_timeout() + self.config["send_timeout_s"]

    def _connect_timeout(self):
        cfg = self.config
        return cfg["timeout"] if cfg.get("timeout") is not None else cfg["connect_timeout"]

    def _open_link(self):
        return self._endpoint.open()

    def _peer(self, conn):
        return conn.peer

    def _interrupt(self, conn, reason):
        conn.fail(reason)

    def _drop(self, conn, graceful):
        conn.close()

    def _serve(self, conn):
        """Write what the session hands out over conn while a receive thread feeds it; the
        reason the connection ended."""
        rx = Thread(self._rx_loop, (conn,), name="tcp-rx").start()
        endpoint = self._endpoint
        try:
            while conn.alive and self._running():
                reason, outgoing, wait_ms = self._session_pass(utime.ticks_ms())
                if reason:
                    conn.fail(reason)
                    break
                if outgoing:
                    self._write(conn, outgoing)
                    continue            # more may fit in the window now
                if wait_ms is None or wait_ms > MAX_WAIT_S * 1000:
                    wait_ms = MAX_WAIT_S * 1000
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
        conn.close()
        if not rx.join(max(1.0, self.config["poll_s"] * 4)):
            _log.warning("receive thread did not end in time")
        return conn.reason or "closed"

    # ------------------------------------------------------------------ connections
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
                self._written(outgoing, done, utime.ticks_ms())

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
                reason = self._received(utime.ticks_ms(), chunk)
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


class TcpServer(TcpClient):
    """TcpClient in the server role whatever TCP_SERVER.role says (qframe/builtins/server.py
    accepts the connections)."""

    role = "server"
