"""The cloud link in the server role: the module listens and the HES dials in.

    TcpServer(app=app)       # or TcpClient with TCP_SERVER.role "server" (the dev.json way)

TcpServer (qframe/builtins/clients.py) is TcpClient in this role: the same section, session,
queue and counters; only how a connection comes about differs, and that is this module's: `Listener` binds `listen_port` (0: `port`) on every
interface, serves one HES at a time. A new connection replaces the current one (counted:
`replaced`), so a HES that reconnects after a silent drop is not locked out, but only while
the current peer has not proved the module's key (a signed command, qframe/builtins/auth.py):
a proven HES is never replaced; the newcomer is closed (`peers_refused`) and the proven link
ends only by its own timeouts (idle_timeout_s, ack_timeout_s) or close. With a key installed
the module sends records to, and takes acks from, a proven peer only. No TLS here (the
module has no server certificate): the link is plain TCP in this role.
"""
import usocket

from .link import is_timeout


class Listener(object):
    """Accepts connections for a TcpClient; open() waits up to poll_s for one."""

    backs_off = False
    polls = True        # replacement() is polled while a connection is served

    def __init__(self, client):
        self.client = client
        self._sock = None
        self._pending = None

    def open(self):
        """The next connection (one that replaced the last first), or None."""
        conn, self._pending = self._pending, None
        if conn is None:
            self.client.state = "listening"
            conn = self._accept(self.client.config["poll_s"])
        return conn

    def replacement(self):
        """A connection that arrived while another is served (kept for open()), or None."""
        conn = self._accept(0)
        if conn is not None:
            self._pending = conn
        return conn

    def reject(self):
        """Close the connection replacement() returned (the served peer proved the key)."""
        conn, self._pending = self._pending, None
        if conn is not None:
            conn.close()

    def _accept(self, wait_s):
        client = self.client
        cfg = client.config
        try:
            if self._sock is None:
                sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
                sock.setsockopt(usocket.SOL_SOCKET, usocket.SO_REUSEADDR, 1)
                addr = usocket.getaddrinfo("0.0.0.0", cfg["listen_port"] or cfg["port"])[0][-1]
                sock.bind(addr)
                sock.listen(1)
                self._sock = sock
            self._sock.settimeout(wait_s)
            sock, addr = self._sock.accept()
        except OSError as exc:
            if not is_timeout(exc):
                self.close()
                client.note_failure("connect_failures", "cannot accept", exc)
                client.pause(max(wait_s, cfg["poll_s"]))
            return None
        client.set_options(sock)
        return client.adopt(sock, "%s" % (addr,))

    def close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        if self._pending is not None:
            self._pending.close()
            self._pending = None
