"""The cloud link: a TCP/TLS client (or one-client server) to the HES with store-and-forward uplink.

    TcpClient(app=app)        # dev.json section TCP_SERVER, reachable as app.tcp

Uplink: every `meter.transparent` payload (and every `send(data)`, from any thread) goes into a
PersistentQueue on flash first and stays there until delivery is confirmed: by the HES's ack in
the framed protocol ("ack"), or by the socket accepting it in "raw" mode (the default: bytes
in, bytes out, as QFrame apps and a plain HES expect; see qframe/hesproto.py for both). While the link is down the queue fills (bounded, oldest dropped
and counted) and drains in order once it is back.

Downlink: received data goes to `recv_callback(data)` (QFrame's hook; the default publishes
`hes.data`), HES commands are answered (`commands`: name -> fn(args) -> result).

Link: DNS + connect with `connect_timeout`, optional TLS in the client role (a CA file and/or a
pinned SHA-256 fingerprint of the server certificate, see qframe/tls.py), a registration frame on connect, a heartbeat every
`heartbeat_s`, reconnects with exponential backoff and jitter (`backoff_base_s` .. `backoff_cap_s`),
paused between `network.down` and `network.up`. Publishes `tcp.connected` (peer) and
`tcp.disconnected` (reason). Two threads: the link thread (connects, sends) and, per connection,
a receive thread; both notice stop within `poll_s` (a blocking connect within `connect_timeout`).
"""
import usocket
import utime

from ..protocols.backoff import Backoff
from ..core.config import Field
from ..core.ext import AppExtension
from ..logging import getLogger
from ..store.pqueue import PersistentQueue
from ..threading import Event, Lock, Thread
from ..codecs import hes as hesproto

_log = getLogger("tcp")
_TIMEOUT_ERRNOS = (11, 110, 116)
_MAX_WAIT_S = 1.0   # longest uninterrupted wait of the link thread (it beats between waits)
TLS_RECORD = 16384  # a TLS read takes a whole record, so no decrypted bytes wait unseen


def _is_timeout(exc):
    """A timeout or would-block error (the operation may simply be tried again)."""
    if exc.args and exc.args[0] in _TIMEOUT_ERRNOS:
        return True
    if type(exc).__name__ in ("SSLWantReadError", "SSLWantWriteError"):
        return True
    return "timed out" in str(exc)


def _ticks():
    return utime.ticks_ms()


def _since_ms(start):
    return utime.ticks_diff(utime.ticks_ms(), start)


class _Connection(object):
    """One connected socket (plain or TLS): whole-buffer send, recv that returns None when
    nothing arrived within `poll_s`.

    Plain TCP: the socket's timeout is `poll_s` and recv/send run concurrently. TLS: a session
    must not be used by two threads at once and, on MicroPython, a timed-out TLS read breaks the
    session; so the socket is non-blocking, recv polls it (without the lock) and reads a whole
    record once bytes are there, and reads and writes share a lock.
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
        self.last_rx = self.opened
        self._poller = None
        if tls:
            import uselect
            self._poller = uselect.poll()
            self._poller.register(sock, uselect.POLLIN)
        self._write = getattr(sock, "send", None) or sock.write
        self._read = getattr(sock, "recv", None) or sock.read

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
                if not _is_timeout(exc):
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
        if self._poller is not None:
            if not self._poller.poll(self.poll_ms):
                return None
            with self.lock:
                try:
                    return self._read(TLS_RECORD)   # None: only part of a record so far
                except OSError as exc:
                    if _is_timeout(exc):
                        return None
                    raise
        try:
            return self._read(size)
        except OSError as exc:
            if _is_timeout(exc):
                return None
            raise

    def close(self):
        self.fail("closed")
        try:
            self.sock.close()
        except OSError:
            pass


class TcpClient(AppExtension):
    name = "tcp"
    config_section = "TCP_SERVER"
    config_fields = {
        "host": Field(str, "127.0.0.1"),
        "port": Field(int, 9000, lo=1, hi=65535),
        "role": Field(str, "client", choices=("client", "server")),
        "listen_port": Field(int, 0, lo=0, hi=65535),
        "connect_timeout": Field(float, 10.0, lo=0.1, hi=120),
        "timeout": Field(float, None, lo=0.1, hi=120, optional=True),
        "keepalive": Field(int, 0, lo=0, hi=120),
        "keep_alive": Field(int, None, lo=0, hi=120, optional=True),
        "nodelay": Field(bool, True),
        "tls": Field(bool, False),
        "tls_ca": Field(str, ""),
        "tls_fingerprint": Field(str, ""),
        "tls_hostname": Field(str, ""),
        "backoff_base_s": Field(float, 1.0, lo=0.01, hi=3600),
        "backoff_cap_s": Field(float, 300.0, lo=0.01, hi=86400),
        "stable_s": Field(float, 10.0, lo=0, hi=3600),
        "heartbeat_s": Field(float, 60.0, lo=0, hi=86400),
        "idle_timeout_s": Field(float, 0.0, lo=0, hi=86400),
        "protocol": Field(str, "raw"),
        "window": Field(int, 8, lo=1, hi=256),
        "ack_timeout_s": Field(float, 30.0, lo=0.1, hi=3600),
        "send_timeout_s": Field(float, 30.0, lo=0.1, hi=3600),
        "poll_s": Field(float, 0.2, lo=0.01, hi=5),
        "recv_size": Field(int, 1024, lo=16, hi=65536),
        "max_frame": Field(int, 8192, lo=64, hi=65535),
        "device_id": Field(str, ""),
        "raw_register": Field(str, ""),
        "raw_heartbeat": Field(str, ""),
        "forward_health": Field(bool, False),
        "queue_path": Field(str, "/usr/queue/uplink"),
        "queue_max_bytes": Field(int, 65536, lo=64),
        "queue_segment_bytes": Field(int, 4096, lo=64),
        "queue_ram_bytes": Field(int, 8192, lo=0),
        "queue_retry_s": Field(float, 5.0, lo=0, hi=3600),
    }

    def __init__(self, name=None, app=None):
        self.stats = {"connects": 0, "connect_failures": 0, "dns_failures": 0,
                      "tls_failures": 0, "pin_failures": 0, "disconnects": 0, "link_errors": 0,
                      "ack_timeouts": 0, "idle_timeouts": 0, "protocol_errors": 0,
                      "registrations": 0, "heartbeats": 0, "pongs": 0, "sent_records": 0,
                      "sent_bytes": 0, "acked_records": 0, "received_bytes": 0, "hes_data": 0,
                      "commands": 0, "callback_errors": 0, "uplink_rejected": 0,
                      "option_errors": 0, "replaced": 0, "net_pauses": 0}
        self.state = "stopped"
        self.last_error = ""
        self.commands = {"ping": lambda args: "pong", "status": self._status_command}
        self.queue = None
        self.protocol = None
        self._conn = None
        self._listener = None
        self._pending = None
        self._thread = None
        self._stopping = False
        self._net_up = True
        self._wake = Event()
        self._kick = Event()
        self._lock = Lock()
        self._inflight = []
        self._ack_base = None
        self._control = []
        self._beat_at = _ticks()
        self._started = utime.time()
        self._backoff = None
        AppExtension.__init__(self, name, app)

    # ------------------------------------------------------------------ lifecycle
    def load(self):
        cfg = self.config
        self.protocol = hesproto.load(cfg["protocol"], cfg)
        self.queue = PersistentQueue(cfg["queue_path"], cfg["queue_max_bytes"],
                                     cfg["queue_segment_bytes"], cfg["queue_ram_bytes"],
                                     int(cfg["queue_retry_s"] * 1000), name="uplink")
        self._backoff = Backoff(cfg["backoff_base_s"], cfg["backoff_cap_s"])
        network = self._extension("network")
        self._net_up = network.is_up() if network is not None and hasattr(network,
                                                                            "is_up") else True
        self.subscribe("meter.transparent", self._on_meter)
        self.subscribe("network.down", self._on_network_down)
        self.subscribe("network.up", self._on_network_up)
        self.subscribe("health", self._on_health)
        self._stopping = False
        self._started = utime.time()
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
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self.queue is not None:
            self.queue.close()
        self.state = "stopped"
        return ok

    def status(self):
        report = dict(self.stats)
        report["state"] = self.state
        report["last_error"] = self.last_error
        report["connected"] = self._conn is not None and self._conn.alive
        report["backoff_attempt"] = self._backoff.attempt if self._backoff else 0
        if self.queue is not None:
            queue = self.queue.status()
            for key in queue:
                report["queue_" + key] = queue[key]
        return report

    def healthy(self):
        """The link thread is alive and not stuck (it beats at least every connect/send bound)."""
        if self._thread is None or not self._thread.is_alive():
            return False
        cfg = self.config
        bound = (self._connect_timeout() + cfg["send_timeout_s"] + 5) * 1000
        return _since_ms(self._beat_at) < bound

    def is_connected(self):
        return self._conn is not None and self._conn.alive

    # ------------------------------------------------------------------ public API
    def send(self, data):
        """Queue data for the HES (safe from any thread); its seq, or None if it was rejected."""
        seq = self.queue.put(data)
        if seq is None:
            self.stats["uplink_rejected"] += 1
        self._wake.set()
        return seq

    def recv_callback(self, data):
        """Data received from the HES; QFrame-style subclasses override it."""
        self.app.bus.publish("hes.data", data)

    # ------------------------------------------------------------------ bus
    def _on_meter(self, topic, data):
        self.send(data)

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

    def _on_health(self, topic, status):
        if self.config.get("forward_health") and self.is_connected():
            self._queue_control(self.protocol.event("health", status))

    # ------------------------------------------------------------------ link thread
    def _extension(self, name):
        for ext in self.app.extensions:
            if ext.name == name:
                return ext
        return None

    def _connect_timeout(self):
        cfg = self.config
        return cfg["timeout"] if cfg.get("timeout") is not None else cfg["connect_timeout"]

    def _beat(self):
        self._beat_at = _ticks()

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
        server = self.config["role"] == "server"
        while not self._stopping:
            self._beat()
            self._kick.clear()
            if not self._net_up:
                self.state = "waiting for network"
                self._wait(self._kick, _MAX_WAIT_S)
                continue
            if server:
                conn, self._pending = self._pending, None
                if conn is None:
                    self.state = "listening"
                    conn = self._accept(self.config["poll_s"])
            else:
                conn = self._connect()
            if conn is None:
                if not server and not self._stopping and self._net_up:
                    delay = self._backoff.next()
                    self.state = "backoff"
                    _log.info("reconnecting in %d ms (attempt %d)", int(delay * 1000),
                              self._backoff.attempt)
                    self._wait(self._kick, delay)
                continue
            self._serve(conn)
            if _since_ms(conn.opened) >= self.config["stable_s"] * 1000:
                self._backoff.reset()
            if not server and not self._stopping:
                self.state = "backoff"       # jittered pause: devices that lost the same
                self._wait(self._kick, self._backoff.next())   # server come back spread out
        self._close_listener()

    def _fail(self, counter, message, exc=None):
        self.stats[counter] += 1
        self.last_error = message if exc is None else "%s (%s)" % (message, exc)
        _log.warning("%s", self.last_error)

    def _connect(self):
        cfg = self.config
        host, port = cfg["host"], cfg["port"]
        self.state = "connecting"
        try:
            addr = usocket.getaddrinfo(host, port)[0][-1]
        except (OSError, IndexError) as exc:
            self._fail("dns_failures", "cannot resolve %s" % host, exc)
            return None
        sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        try:
            sock.settimeout(self._connect_timeout())
            self._set_options(sock)
            sock.connect(addr)
        except OSError as exc:
            sock.close()
            self._fail("connect_failures", "cannot connect to %s:%d" % (host, port), exc)
            return None
        return self._open(sock, "%s:%d" % (host, port))

    def _open(self, sock, peer):
        """Finish a connected socket: TLS, timeouts, registration. None (closed) on failure."""
        cfg = self.config
        tls = cfg["tls"] and cfg["role"] == "client"
        if tls:
            sock = self._wrap_tls(sock)
            if sock is None:
                return None
        try:
            sock.settimeout(0 if tls else cfg["poll_s"])
        except (OSError, AttributeError):
            pass
        conn = _Connection(sock, peer, tls, cfg["poll_s"], cfg["send_timeout_s"])
        try:
            self._send(conn, self.protocol.registration(self._info()))
        except OSError as exc:
            conn.close()
            self._fail("connect_failures", "registration to %s failed" % peer, exc)
            return None
        self.stats["registrations"] += 1
        self.stats["connects"] += 1
        self.last_error = ""
        _log.info("connected to %s (%s%s)", peer, self.protocol.name, ", TLS" if tls else "")
        self.app.bus.publish("tcp.connected", peer)
        return conn

    def _set_options(self, sock):
        """TCP_NODELAY (small frames go out at once) where the stack has it, and keepalive."""
        if self.config["nodelay"] and hasattr(usocket, "TCP_NODELAY"):
            try:
                sock.setsockopt(getattr(usocket, "IPPROTO_TCP", 6), usocket.TCP_NODELAY, 1)
            except (OSError, AttributeError) as exc:
                self._fail("option_errors", "cannot set TCP_NODELAY", exc)
        self._set_keepalive(sock)

    def _set_keepalive(self, sock):
        cfg = self.config
        minutes = cfg["keep_alive"] if cfg.get("keep_alive") is not None else cfg["keepalive"]
        if not minutes:
            return
        try:
            if hasattr(usocket, "TCP_KEEPALIVE"):
                sock.setsockopt(usocket.SOL_SOCKET, usocket.TCP_KEEPALIVE, minutes)
            else:
                sock.setsockopt(usocket.SOL_SOCKET, usocket.SO_KEEPALIVE, 1)
        except (OSError, AttributeError) as exc:
            self._fail("option_errors", "cannot set keepalive", exc)

    def _wrap_tls(self, sock):
        from .tls import wrap, PinError
        cfg = self.config
        try:
            return wrap(sock, cfg["tls_hostname"] or cfg["host"], cfg["tls_ca"],
                        cfg["tls_fingerprint"])
        except PinError as exc:
            sock.close()
            self._fail("pin_failures", "server certificate rejected", exc)
        except (OSError, ValueError) as exc:
            sock.close()
            self._fail("tls_failures", "TLS handshake failed", exc)
        return None

    def _accept(self, wait_s):
        """Server role: a connection from the HES within wait_s seconds, else None."""
        cfg = self.config
        try:
            if self._listener is None:
                listener = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
                listener.setsockopt(usocket.SOL_SOCKET, usocket.SO_REUSEADDR, 1)
                addr = usocket.getaddrinfo("0.0.0.0", cfg["listen_port"] or cfg["port"])[0][-1]
                listener.bind(addr)
                listener.listen(1)
                self._listener = listener
            self._listener.settimeout(wait_s)
            sock, addr = self._listener.accept()
        except OSError as exc:
            if not _is_timeout(exc):
                self._close_listener()
                self._fail("connect_failures", "cannot accept", exc)
                self._wait(self._kick, max(wait_s, self.config["poll_s"]))
            return None
        self._set_options(sock)
        return self._open(sock, "%s" % (addr,))

    def _close_listener(self):
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
            self._listener = None

    def _send(self, conn, data):
        if data:
            conn.send(data)
            self.stats["sent_bytes"] += len(data)

    def _queue_control(self, data):
        if data:
            with self._lock:
                self._control.append(data)
            self._wake.set()

    def _serve(self, conn):
        """Send queued records, heartbeats and replies until the connection breaks."""
        cfg = self.config
        proto = self.protocol
        self._conn = conn
        self.state = "connected"
        with self._lock:
            self._inflight = []
            self._ack_base = None
            self._control = []
        self.protocol.reset()            # the previous receive thread has ended
        rx = Thread(self._rx_loop, (conn,), "tcp-rx").start()
        heartbeat_ms = int(cfg["heartbeat_s"] * 1000)
        next_heartbeat = utime.ticks_add(_ticks(), heartbeat_ms)
        last_sent = None
        server = cfg["role"] == "server"
        try:
            while conn.alive and not self._stopping and self._net_up:
                self._wake.clear()
                self._beat()
                with self._lock:
                    control, self._control = self._control, []
                for data in control:
                    self._send(conn, data)
                last_sent = self._send_records(conn, last_sent)
                now = _ticks()
                if heartbeat_ms and utime.ticks_diff(now, next_heartbeat) >= 0:
                    self._send(conn, proto.heartbeat(self._info()))
                    self.stats["heartbeats"] += 1
                    next_heartbeat = utime.ticks_add(now, heartbeat_ms)
                if self._ack_overdue():
                    self.stats["ack_timeouts"] += 1
                    conn.fail("no ack within %s s" % cfg["ack_timeout_s"])
                    break
                if cfg["idle_timeout_s"] and utime.ticks_diff(now, conn.last_rx) > \
                        cfg["idle_timeout_s"] * 1000:
                    self.stats["idle_timeouts"] += 1
                    conn.fail("nothing received for %s s" % cfg["idle_timeout_s"])
                    break
                wait_ms = _MAX_WAIT_S * 1000
                if heartbeat_ms:
                    wait_ms = min(wait_ms, max(1, utime.ticks_diff(next_heartbeat, now)))
                if server:
                    wait_ms = min(wait_ms, cfg["poll_s"] * 1000)
                    incoming = self._accept(0)
                    if incoming is not None:
                        self.stats["replaced"] += 1
                        conn.fail("replaced by a new connection from %s" % incoming.peer)
                        self._pending = incoming
                        break
                self._wake.wait(wait_ms / 1000.0)
        except OSError as exc:
            conn.fail("send failed (%s)" % exc)
        reason = conn.reason or "closed"
        if self._stopping:
            reason = "stopping"
        elif not self._net_up and not reason.startswith("network down"):
            reason = "network down"
        conn.close()
        if not rx.join(max(1.0, cfg["poll_s"] * 4)):
            _log.warning("receive thread did not end in time")
        self._conn = None
        self.stats["disconnects"] += 1
        if not self._stopping:
            self.stats["link_errors"] += 1
            self.last_error = reason
        _log.warning("disconnected from %s: %s", conn.peer, reason)
        self.app.bus.publish("tcp.disconnected", reason)

    def _send_records(self, conn, last_sent):
        """Send queued records after last_sent within the window; the new last_sent."""
        proto = self.protocol
        window = self.config["window"]
        while conn.alive:
            if proto.acked and len(self._inflight) >= window:
                break
            record = self.queue.peek(last_sent)
            if record is None:
                break
            seq, payload = record
            self._send(conn, proto.data(seq, payload))
            self.stats["sent_records"] += 1
            last_sent = seq
            if proto.acked:
                with self._lock:
                    if not self._inflight:
                        self._ack_base = _ticks()
                    self._inflight.append(seq)
            else:
                self.stats["acked_records"] += self.queue.ack(seq)
        return last_sent

    def _ack_overdue(self):
        with self._lock:
            if not self._inflight or self._ack_base is None:
                return False
            return _since_ms(self._ack_base) > self.config["ack_timeout_s"] * 1000

    # ------------------------------------------------------------------ receive thread
    def _rx_loop(self, conn):
        size = self.config["recv_size"]
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
            conn.last_rx = _ticks()
            self.stats["received_bytes"] += len(chunk)
            try:
                events = self.protocol.feed(chunk)
            except hesproto.ProtocolError as exc:
                self.stats["protocol_errors"] += 1
                conn.fail("protocol error: %s" % exc)
                break
            for kind, value in events:
                self._dispatch(kind, value)
        self._wake.set()

    def _dispatch(self, kind, value):
        if kind == "ack":
            self._on_ack(value)
        elif kind == "data":
            self.stats["hes_data"] += 1
            try:
                self.recv_callback(value)
            except Exception as exc:
                self.stats["callback_errors"] += 1
                _log.exception("recv_callback failed", exc)
        elif kind == "command":
            self._queue_control(self.protocol.response(self._run_command(value)))
        elif kind == "pong":
            self.stats["pongs"] += 1

    def _on_ack(self, seq):
        removed = self.queue.ack(seq)
        self.stats["acked_records"] += removed
        with self._lock:
            self._inflight = [s for s in self._inflight if s > seq]
            self._ack_base = _ticks() if self._inflight else None
        self._wake.set()

    def _run_command(self, command):
        self.stats["commands"] += 1
        name = command.get("cmd")
        reply = {"id": command.get("id"), "cmd": name}
        handler = self.commands.get(name)
        if handler is None:
            reply["ok"] = False
            reply["error"] = "unknown command"
            return reply
        try:
            reply["result"] = handler(command.get("args"))
            reply["ok"] = True
        except Exception as exc:
            self.stats["callback_errors"] += 1
            _log.exception("command %s failed", exc, name)
            reply["ok"] = False
            reply["error"] = str(exc)
        return reply

    def _status_command(self, args):
        return self.app.status()

    def _info(self):
        """What registration and heartbeat frames report."""
        return {"dev": self._device_id(), "epoch": self.queue.epoch, "app": self.app.name,
                "up": utime.time() - self._started, "queued": len(self.queue),
                "dropped": self.queue.stats["dropped"], "proto": self.protocol.name}

    def _device_id(self):
        device = self.config["device_id"]
        if device:
            return device
        try:
            import modem
            device = modem.getDevImei()
        except Exception:
            device = None
        return device if isinstance(device, str) and device else "unknown"
