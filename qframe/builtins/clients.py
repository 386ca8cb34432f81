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
import utime

from .sms import SmsClient  # noqa: F401  (QFrame's builtins.clients exports it)
from ..codecs import hes as hesproto
from ..core.config import Field
from ..protocols.uplink import SESSION_FIELDS
from .connection import Connection  # noqa: F401 (the type of TcpClient.sock)
from .link import (QUEUE_FIELDS, RECONNECT_FIELDS, TLS_FIELDS, UplinkDriver, merge_fields,
                   tls_problem)


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
class _Dialer(object):
    """Client role: each open() is one connect attempt; failures back off."""

    backs_off = True
    polls = False

    def __init__(self, client):
        self.client = client

    def open(self):
        return self.client.dial_config()

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
        self.stats = {"replaced": 0, "peers_refused": 0}
        self._endpoint = None
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

    def _connect_timeout(self):
        cfg = self.config
        return cfg["timeout"] if cfg.get("timeout") is not None else cfg["connect_timeout"]

    def _send_timeout_s(self):
        return self.config["send_timeout_s"]

    def _open_link(self):
        return self._endpoint.open()

    def _peer(self, conn):
        return conn.peer

    def _transmit(self, conn, outgoing):
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

    def _on_bytes(self, conn, chunk, now):
        return self._received(now, chunk)

    def _service(self, conn, now):
        """Server role: a new connection replaces this one (noticed within poll_s) unless
        this one's peer proved the key: then the newcomer is closed (counted, logged)."""
        endpoint = self._endpoint
        if not endpoint.polls:
            return None, None
        incoming = endpoint.replacement()
        if incoming is not None:
            with self._lock:
                keep = self.session.proven
            if keep:
                endpoint.reject()
                self.stats["peers_refused"] += 1
                self.log.warning("connection from %s refused: the HES at %s proved the key",
                                 incoming.peer, conn.peer)
                return None, self.config["poll_s"] * 1000
            self.stats["replaced"] += 1
            return "replaced by a new connection from %s" % incoming.peer, None
        return None, self.config["poll_s"] * 1000

    def dial_config(self):
        """Client role: one connection attempt to TCP_SERVER host:port."""
        cfg = self.config
        return self.dial(cfg["host"], cfg["port"], cfg["tls"])


class TcpServer(TcpClient):
    """TcpClient in the server role whatever TCP_SERVER.role says (qframe/builtins/server.py
    accepts the connections)."""

    role = "server"
