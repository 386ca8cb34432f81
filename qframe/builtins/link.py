"""What every uplink driver shares (TcpClient, MqttClient): `UplinkDriver`, the link thread's
skeleton, the config groups of the queue, TLS and reconnection, and small socket helpers.

An UplinkDriver owns the flash queue, the UplinkSession (qframe/protocols/uplink.py, pure:
no clock, no I/O, no threads) and the link thread; a transport implements three steps
(underscored: QFrame apps subclass the drivers and must not collide with them):

    _open_link()       -> a connection object, or None (the failure counted and logged)
    _serve(conn)       -> the reason the connection ended; drives the session over conn with
                          `_session_pass()` (notes, events, timers -> what to send) and
                          `_received(...)` (what came in -> downlink, commands)
    _drop(conn, graceful)  close the transport (graceful: stopping or disconnect())

The skeleton (`_run`) does the rest, once for both transports: wait for the network
(network.down / network.up pause and resume), hold while disconnect()ed, connect with
exponential backoff and jitter (entropy from the module's urandom, `entropy_seed`), open and
close the session, count connects and disconnects, publish `<name>.connected` /
`<name>.disconnected`, beat for healthy(), and stop. Nothing ends the thread but stop(): an
exception drops the connection and backs off; a MemoryError anywhere, even while another
error is handled, is counted, logged once per spell and backed off (core/heap.py).

Commands: the session hands them out as events; the driver runs each on the app's worker
pool (`app.submit`), outside every lock, and gives the reply back with `session.respond`, so a
slow command (a DLMS read of a silent meter: up to its timeout) never stalls acks,
heartbeats or records. A full pool refuses the command at once ("busy", counted
`commands_refused`). Before that, the app's Auth extension (builtins/auth.py) admits each
command in arrival order (a MAC under the module's key and a fresh counter, or an open
read-only command; else refused at once, counted `auth_refused`), and a signed command's reply
goes back signed; a signed command also proves the peer to the session. Every session call is made under `self._lock` (link thread, receive
thread, workers).

QFrame-style surface: `send(data)` (True once on flash), `recv_callback(data)` (publishes
`hes.data`), `connect()` / `disconnect()`, `status()` (counters, state, last error and the
queue's `queue_*` figures).
"""
import uos
import usocket
import utime

from ..core.config import ConfigError, Field, HEAP_BYTES, USR_FLASH_BYTES
from ..core.ext import AppExtension
from ..protocols.backoff import Backoff, Random
from ..protocols.commands import commands_of
from ..protocols.uplink import UplinkSession
from ..threading import Event, Lock, Thread
from .connection import Connection, input_poller  # noqa: F401 (shared)
from .sockets import ResolveError, is_timeout, open_socket  # noqa: F401 (shared)
from .identity import device_id

MAX_WAIT_S = 1.0    # longest uninterrupted wait of the link thread (it beats between waits)

QUEUE_FIELDS = {
    "queue_path": Field(str, "/usr/queue/uplink"),
    "queue_max_bytes": Field(int, 65536, lo=64, hi=USR_FLASH_BYTES // 2),
    "queue_segment_bytes": Field(int, 4096, lo=64, hi=HEAP_BYTES // 8),   # read whole at open
    "queue_ram_bytes": Field(int, 8192, lo=0, hi=HEAP_BYTES // 8),
    "queue_retry_s": Field(float, 5.0, lo=0, hi=3600),
}
TLS_FIELDS = {
    "tls": Field(bool, False),
    "tls_ca": Field(str, ""),
    "tls_fingerprint": Field(str, ""),
    "tls_hostname": Field(str, ""),
    "tls_verify": Field(str, "required", choices=("required", "none")),
}
RECONNECT_FIELDS = {
    "backoff_base_s": Field(float, 1.0, lo=0.01, hi=3600),
    "backoff_cap_s": Field(float, 300.0, lo=0.01, hi=86400),
    "stable_s": Field(float, 10.0, lo=0, hi=3600),
}


def open_queue(config, name="uplink"):
    """The PersistentQueue described by the queue_* keys of a config section."""
    from ..store.pqueue import PersistentQueue
    return PersistentQueue(config["queue_path"], config["queue_max_bytes"],
                           config["queue_segment_bytes"], config["queue_ram_bytes"],
                           int(config["queue_retry_s"] * 1000), name=name)


def entropy_seed():
    """32 bits from the module's entropy (urandom; without it, the microsecond ticks)."""
    try:
        raw = uos.urandom(4)
        return (raw[0] << 24) | (raw[1] << 16) | (raw[2] << 8) | raw[3]
    except (AttributeError, OSError):
        return utime.ticks_us()


def merge_fields(*groups):
    """One config_fields dict from several groups."""
    fields = {}
    for group in groups:
        fields.update(group)
    return fields


def tls_problem(config, section):
    """Why this config section must not start a TLS link, or None. The firmware's ussl
    verifies no CA on any 2021 line (tools/firmware/api.json): the server is checked by
    pinning its certificate (tls_fingerprint), so a CA file is refused, not ignored."""
    if not config.get("tls"):
        return None
    if config.get("tls_ca"):
        return ConfigError([(section, "tls_ca", "the module's TLS (ussl) cannot verify a"
                             " server against a CA; pin the server certificate with"
                             " tls_fingerprint (SHA-256 of its DER) instead")])
    if not config.get("tls_fingerprint") and config.get("tls_verify") != "none":
        return ConfigError([(section, "tls", "true without tls_fingerprint would accept any"
                             " server (the module's TLS verifies no CA, so tls_ca is not an"
                             " option); set it, or tls_verify: \"none\" to accept that")])
    return None


# Bus reports every uplink forwards to the HES as events: topic -> (event name, the config
# switch that turns it off, or None). Kept while the link is down, at most MAX_REPORTS.
REPORTS = {"dlms.readings": ("dlms.readings", "forward_dlms"),
           "dlms.profile": ("dlms.profile", "forward_dlms"),
           "ota.event": ("ota", None),
           "heap.exhausted": ("heap.exhausted", None)}
MAX_REPORTS = 16


class _NoAuth(object):
    """Stands in for a missing Auth extension (qframe/builtins/auth.py): refuses every command."""

    config = {}

    def admit(self, body):
        from ..protocols.auth import Verdict
        return Verdict(False, body, "refused: this app checks no command signatures (it has no"
                       " Auth extension, qframe/builtins/auth.py)", "not_provisioned")

    def seal(self, reply, verdict):
        return reply

    def provisioned(self):
        return False

    def pins(self):
        return []


class UplinkDriver(AppExtension):
    """See the module docstring. Subclasses set `stats` (their own counters) before calling
    UplinkDriver.__init__ and implement _new_protocol, _open_link, _serve and _drop (and, where
    they need them, _config_problem, _prepare, _connect_bound_s, _peer, _interrupt and
    _closed)."""

    backs_off = True            # failed or ended connections wait a backoff (a listener: no)

    def __init__(self, name=None, app=None):
        for key in ("connects", "connect_failures", "dns_failures", "tls_failures",
                    "pin_failures", "sent_bytes", "received_bytes", "disconnects", "link_errors",
                    "link_exceptions", "memory_errors", "uplink_rejected", "option_errors",
                    "callback_errors", "events_dropped", "net_pauses", "config_errors",
                    "commands_refused", "auth_refused"):
            self.stats.setdefault(key, 0)
        self.state = "stopped"
        self.last_error = ""
        self.queue = None
        self.protocol = None
        self.session = None
        self.commands = None
        self.auth = None             # the app's Auth extension: admits and seals commands
        self._backoff = None
        self._device = None
        self._conn = None            # the connection being served
        self._reregister = False
        self._health = None          # the latest health report to forward (forward_health)
        self._reports = []           # (event name, data) waiting for the link thread
        self._thread = None          # the driver's link thread
        self._stopping = False
        self._held = False           # disconnect() keeps the link down until connect()
        self._net_up = True
        self._short_of_memory = False
        self._keepalive_noted = False
        self._lock = Lock()          # around every session call
        self._wake = Event()         # set: the link thread has something to do
        self._kick = Event()         # set: a pause ends (network change, connect, stop)
        self._up = Event()           # set while connected
        self._beat_at = utime.ticks_ms()   # the link thread's last sign of life
        self._started = utime.time()
        AppExtension.__init__(self, name, app)

    # ------------------------------------------------------------------ for subclasses
    def _new_protocol(self):
        """The session's wire format (a codecs.hes Protocol)."""
        raise NotImplementedError

    def _config_problem(self):
        """Why the link must not start (the queue still accepts), or None."""
        return None

    def _prepare(self):
        """Set up what _open_link needs (called in load, before the thread starts)."""

    def _open_link(self):
        """One attempt at a connection: the connection, or None (counted and logged)."""
        raise NotImplementedError

    def _transmit(self, conn, outgoing):
        """Send the session's Transmits over conn, in order (and tell it: _written)."""
        raise NotImplementedError

    def _on_bytes(self, conn, chunk, now):
        """Bytes from the peer (receive thread): feed them on; a reason to close, or None."""
        raise NotImplementedError

    def _service(self, conn, now):
        """Transport upkeep before the link thread waits (keepalive, a replacing connection):
        (a reason to close or None, ms it may wait at most or None)."""
        return None, None

    def _drop(self, conn, graceful):
        """Close conn (graceful: the link is stopping or held down by disconnect())."""
        conn.close()

    def _closed(self):
        """The link thread ends (stop): release what _prepare() set up."""

    def _connect_timeout(self):
        """Seconds a TCP connect may take."""
        return 20.0

    def _send_timeout_s(self):
        """Seconds a whole write may take."""
        return 30.0

    def _connect_bound_s(self):
        """The longest one _open_link() may take."""
        return self._connect_timeout() + self._send_timeout_s()

    def _peer(self, conn):
        """What `<name>.connected` carries: where conn leads."""
        return str(conn)

    def _proves_peer(self):
        """True when the peer itself acks records (TCP to the HES), so its acks and the
        records it reads wait for its proof (AUTH.require_proof); False when a broker acks."""
        return self.protocol.acked

    # ------------------------------------------------------------------ lifecycle
    def load(self):
        cfg = self.config
        self.auth = self.extension("auth") or _NoAuth()    # without one: every command refused
        self.protocol = self._new_protocol()
        self.queue = open_queue(cfg, self._queue_name())
        self.commands = commands_of(self.app)
        self.session = UplinkSession(self.queue, self.protocol, cfg, self._info, self.stats,
                                     utime)
        self.session.require_proof = bool(self.auth.provisioned() and self._proves_peer() and
                                          self.auth.config.get("require_proof", True))
        if self.auth.provisioned() and getattr(self.protocol, "macs", False) and \
                self.auth.config.get("sign_data", False):
            self.session.signer = self.auth         # records and events carry MACs
        self._backoff = Backoff(cfg["backoff_base_s"], cfg["backoff_cap_s"],
                                Random(entropy_seed()))
        self._started = utime.time()
        self._stopping = False
        self._net_up = self.network_is_up()
        self.subscribe("meter.transparent", self._on_meter)
        self.subscribe("meter.serial", self._on_identity)
        self.subscribe("network.down", self._on_network_down)
        self.subscribe("network.up", self._on_network_up)
        self.subscribe("health", self._on_health)
        for topic in REPORTS:
            self.subscribe(topic, self._on_report)
        problem = self._config_problem()
        if problem is not None:
            self.stats["config_errors"] += 1
            self.state = "refused"
            self.last_error = "link not started: %s" % problem
            self.log.error("%s", self.last_error)
            return                      # the queue still accepts; nothing leaves unverified
        self._prepare()
        self._thread = Thread(self._run, name="%s-link" % self.name).start()

    def _queue_name(self):
        return "uplink"

    def stop(self, timeout=2.0):
        self._stopping = True
        self._wake.set()
        self._kick.set()
        ok = self._thread.join(timeout / 2) if self._thread is not None else True
        if not ok:                      # blocked in the transport: break the connection
            conn = self._conn
            if conn is not None:
                self._drop(conn, False)
            ok = self._thread.join(timeout / 2)
        self.unsubscribe_all()
        if self._thread is None:
            self._closed()
        if self.queue is not None:
            self.queue.close()
        self.state = "stopped"
        return ok

    def healthy(self):
        """The link thread is alive and beats (at least every connect bound); a link refused
        by its config has no thread to watch and a reset would not help."""
        if self.state == "refused":
            return True
        if self._thread is None or not self._thread.is_alive():
            return False
        return utime.ticks_diff(utime.ticks_ms(), self._beat_at) < (
            self._connect_bound_s() + 5) * 1000

    def is_connected(self):
        return self._up.is_set()

    # ------------------------------------------------------------------ QFrame's surface
    def send(self, data):
        """Queue data for the HES (safe from any thread): True once accepted (it stays on flash
        until delivered), False if it was rejected (counted)."""
        seq = self.queue.put(data)
        self.wake()
        if seq is None:
            self.stats["uplink_rejected"] += 1
            return False
        return True

    def recv_callback(self, data):
        """Data received from the HES; QFrame-style subclasses override it."""
        self.app.bus.publish("hes.data", data)

    def connect(self):
        """(Re)enable the link and connect now; True once connected (within the connect
        bound)."""
        if self._thread is None:
            return False
        self._held = False
        self._backoff.reset()
        self._kick.set()
        self._wake.set()
        return self._up.wait(self._connect_bound_s() + 1.0)

    def disconnect(self):
        """Close the connection (gracefully) and keep the link down until connect(); True."""
        self._held = True
        self._kick.set()
        self._wake.set()
        return True

    def status(self):
        report = dict(self.stats)
        report["state"] = self.state
        report["last_error"] = self.last_error
        report["connected"] = self.is_connected()
        report["backoff_attempt"] = self._backoff.attempt if self._backoff else 0
        if self.queue is not None:
            queue = self.queue.status()
            for key in queue:
                report["queue_" + key] = queue[key]
        return report

    def report(self, name, data):
        """Queue an event for the HES (sent by the link thread, in order; bounded)."""
        if len(self._reports) >= MAX_REPORTS:
            self.stats["events_dropped"] += 1
            return
        self._reports.append((name, data))
        self.wake()

    def wake(self):
        """Something for the link thread to do (new data, a note, a reply)."""
        self._wake.set()

    # ------------------------------------------------------------------ helpers for _serve()
    def _running(self):
        """_serve() goes on: not stopping, network up, not held down."""
        return not self._stopping and self._net_up and not self._held

    def _end_reason(self):
        """Why _serve() should end now, or None."""
        if self._stopping:
            return "stopping"
        if not self._net_up:
            return "network down"
        if self._held:
            return "disconnected by the app"
        return None

    def _session_pass(self, now):
        """One pass over the session: notes and events in, timers run; (close reason,
        Transmits to send, ms until the next timer or None)."""
        self._beat()
        self._wake.clear()
        reregister, self._reregister = self._reregister, False
        health, self._health = self._health, None
        events = self.take_reports()
        session = self.session
        with self._lock:
            if reregister:
                session.register()
            if health is not None:
                session.event("health", health)
            for name, data in events:
                session.event(name, data)
            session.tick(now)
            return session.close_reason, session.take(), session.next_wakeup(now)

    def _received(self, now, chunk=None, events=None):
        """Bytes (or decoded events) from the peer: downlink goes to recv_callback, commands
        to the worker pool; the session's close reason, or None."""
        session = self.session
        with self._lock:
            if events is None:
                downlink = session.receive(chunk, now)
            else:
                downlink = session.handle(events, now)
            calls = session.take_commands()
            reason = session.close_reason
        self._wake.set()
        for data in downlink:
            self.deliver(data)
        for call in calls:
            call.verdict = verdict = self.auth.admit(call.request)
            if not verdict.ok:
                self.stats["auth_refused"] += 1
                self._answer(call.id, self.commands.refuse(verdict.request, verdict.error))
                continue
            if verdict.signed:
                with self._lock:
                    session.prove()
            if not self.app.submit(self._run_command, call):
                self.stats["commands_refused"] += 1
                self._answer(call.id, self.commands.refuse(
                    verdict.request, "busy: the worker pool is full"))
        return reason

    def _written(self, outgoing, count, now):
        """The first count Transmits of outgoing were handed to the transport."""
        with self._lock:
            for index in range(count):
                self.session.written(outgoing[index], now)

    def _acked(self, seq, now):
        """The transport confirmed record seq (e.g. its MQTT PUBACK)."""
        with self._lock:
            self.session.ack(seq, now)

    def deliver(self, data):
        """Hand downlink data to recv_callback; a failing callback is logged and counted."""
        try:
            self.recv_callback(data)
        except Exception as exc:
            self.stats["callback_errors"] += 1
            self.log.exception("recv_callback failed", exc)

    def note_failure(self, counter, message, exc=None):
        """Count and log a failed link step."""
        self.stats[counter] += 1
        self.last_error = message if exc is None else "%s (%s)" % (message, exc)
        self.log.warning("%s", self.last_error)

    def set_nodelay(self, sock):
        """TCP_NODELAY (small frames go out at once) where the stack has it."""
        if not self.config["nodelay"] or sock is None or not hasattr(usocket, "TCP_NODELAY"):
            return
        try:
            sock.setsockopt(getattr(usocket, "IPPROTO_TCP", 6), usocket.TCP_NODELAY, 1)
        except (OSError, AttributeError) as exc:
            self.note_failure("option_errors", "cannot set TCP_NODELAY", exc)

    def pause(self, seconds):
        """Wait up to seconds, beating; a network change, connect() or stop() ends it."""
        deadline = utime.ticks_add(utime.ticks_ms(), int(seconds * 1000))
        while not self._stopping:
            remaining = utime.ticks_diff(deadline, utime.ticks_ms())
            if remaining <= 0:
                return
            if self._kick.wait(min(remaining / 1000.0, MAX_WAIT_S)):
                return
            self._beat()

    def network_is_up(self):
        """The network watchdog's view (True without one)."""
        network = self.extension("network")
        if network is None or not hasattr(network, "is_up"):
            return True
        return network.is_up()

    def _network_back(self):
        """While it waits for the network, the link asks the network watchdog itself: a
        network.up it never heard (a subscriber before it ran out of memory, which ends the
        delivery) must not hold it offline for good."""
        network = self.extension("network")
        return network is not None and hasattr(network, "is_up") and network.is_up()

    def extension(self, name):
        """The app's extension called name, or None."""
        return self.app.extensions.get(name)

    def take_reports(self):
        """The queued events, oldest first; the queue is empty afterwards."""
        reports, self._reports = self._reports, []
        return reports

    # ------------------------------------------------------------------ stream connections
    def dial(self, host, port, tls=False):
        """One connection attempt: a Connection, or None (counted, logged)."""
        self.state = "connecting"
        try:
            sock = open_socket(host, port, self._connect_timeout(), prepare=self.set_options)
        except ResolveError as exc:
            self.note_failure("dns_failures", "cannot resolve %s" % host, exc)
            return None
        except OSError as exc:
            self.note_failure("connect_failures", "cannot connect to %s:%d" % (host, port), exc)
            return None
        return self.adopt(sock, "%s:%d" % (host, port), tls)

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
        conn = Connection(sock, peer, tls, cfg["poll_s"], self._send_timeout_s())
        if conn._poller is not None:
            sock.setblocking(False)
        return conn

    def set_options(self, sock):
        """TCP_NODELAY (small frames go out at once) where the stack has it, and TCP
        keepalive (keep_alive / keepalive minutes) where the config and the firmware have it."""
        cfg = self.config
        self.set_nodelay(sock)
        minutes = cfg.get("keep_alive")
        if minutes is None:
            minutes = cfg.get("keepalive")
        if not minutes:
            return
        if not hasattr(usocket, "TCP_KEEPALIVE"):       # early-2021 firmware: no keepalive
            if not self._keepalive_noted:
                self._keepalive_noted = True
                self.log.warning("keepalive %d min not set: this firmware has no TCP_KEEPALIVE",
                                 minutes)
            return
        try:
            sock.setsockopt(usocket.SOL_SOCKET, usocket.TCP_KEEPALIVE, minutes)
        except (OSError, AttributeError) as exc:
            self.note_failure("option_errors", "cannot set keepalive", exc)

    def _wrap_tls(self, sock):
        from .tls import wrap, PinError
        cfg = self.config
        pins = ",".join([cfg["tls_fingerprint"]] + self.auth.pins()).strip(",")
        if not pins:
            self.log.warning("TLS without verification (tls_verify \"none\"): any server "
                             "certificate is accepted")
        try:
            return wrap(sock, cfg["tls_hostname"] or cfg["host"], pins)
        except PinError as exc:
            sock.close()
            self.note_failure("pin_failures", "server certificate rejected", exc)
        except (OSError, ValueError) as exc:
            sock.close()
            self.note_failure("tls_failures", "TLS handshake failed", exc)
        return None

    def _serve(self, conn):
        """Drive the session over conn: this thread sends what the session hands out, a
        receive thread feeds it what arrives; the reason the connection ended."""
        rx = Thread(self._rx_loop, (conn,), name="%s-rx" % self.name).start()
        try:
            while conn.alive and self._running():
                now = utime.ticks_ms()
                reason, outgoing, wait_ms = self._session_pass(now)
                if reason:
                    conn.fail(reason)
                    break
                if outgoing:
                    self._transmit(conn, outgoing)
                    continue            # more may fit in the window now
                reason, upkeep_ms = self._service(conn, now)
                if reason:
                    conn.fail(reason)
                    break
                if wait_ms is None or wait_ms > MAX_WAIT_S * 1000:
                    wait_ms = MAX_WAIT_S * 1000
                if upkeep_ms is not None:
                    wait_ms = min(wait_ms, upkeep_ms)
                self._wake.wait(max(wait_ms, 1) / 1000.0)
        except OSError as exc:
            conn.fail("send failed (%s)" % exc)
        reason = conn.reason
        self._drop(conn, self._stopping or self._held)
        if not rx.join(max(1.0, self.config["poll_s"] * 4)):
            self.log.warning("receive thread did not end in time")
        return reason or "closed"

    def _rx_loop(self, conn):
        """The receive thread of one connection: bytes to _on_bytes until it breaks."""
        size = self.config.get("recv_size") or 1024
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
                    conn.fail("closed by the peer")
                    break
                if self._short_of_memory:
                    self._short_of_memory = False
                    self.memory_recovered()
                self.stats["received_bytes"] += len(chunk)
                reason = self._on_bytes(conn, chunk, utime.ticks_ms())
                if reason:
                    conn.fail(reason)
                    break
        except MemoryError as exc:  # the link thread reconnects, backing off
            self.out_of_memory(exc)
            self._short_of_memory = True
            conn.fail("receive path out of memory")
        except Exception as exc:    # never end silently: fail the connection, say why
            self.stats["link_exceptions"] += 1
            self.log.exception("receive path failed; dropping the connection", exc)
            conn.fail("receive path failed (%s: %s)" % (type(exc).__name__, exc))
        self._wake.set()

    # ------------------------------------------------------------------ the link thread
    def _run(self):
        """The link thread. A MemoryError anywhere, even while handling another error, backs
        off: it never ends the thread."""
        while not self._stopping:
            try:
                self._guarded_step()
            except MemoryError as exc:      # counted, logged once per spell, backed off
                self._short_of_memory = True
                try:
                    delay = self.out_of_memory(exc)
                    try:
                        self._end("out of memory")
                    finally:                # even if the cleanup ran short too
                        self.pause(delay)
                except MemoryError:
                    pass
        self._closed()

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
            self.log.exception("link thread failed; reconnecting", exc)
            self._end(self.last_error)
            self.pause(self._backoff.next())

    def _step(self):
        """One pass: wait for the network, open a connection, serve it, back off."""
        self._beat()
        self._kick.clear()
        if not self._net_up and self._network_back():
            self._net_up = True     # a network.up this link missed (see _network_back)
        if not self._net_up or self._held:
            self.state = "waiting for network" if not self._net_up else "disconnected"
            self.pause(MAX_WAIT_S)
            return
        opened = utime.ticks_ms()
        conn = self._open_link()
        if conn is None:
            if self.backs_off and not self._stopping and self._net_up:
                delay = self._backoff.next()
                self.state = "backoff"
                self.log.info("reconnecting in %d ms (attempt %d)", int(delay * 1000),
                              self._backoff.attempt)
                self.pause(delay)
            return
        self._conn = conn
        with self._lock:
            self.session.open(utime.ticks_ms())
        self.stats["connects"] += 1
        self.last_error = ""
        self.state = "connected"
        self._up.set()
        peer = self._peer(conn)
        self.log.info("connected to %s (%s)", peer, self.protocol.name)
        self.app.bus.publish("%s.connected" % self.name, peer)
        reason = self._serve(conn)
        self._end(self._end_reason() or reason)
        if utime.ticks_diff(utime.ticks_ms(), opened) >= self.config["stable_s"] * 1000:
            self._backoff.reset()
        if self.backs_off and not self._stopping and not self._held:
            self.state = "backoff"       # jittered pause: devices that lost the same
            self.pause(self._backoff.next())   # server come back spread out

    def _end(self, reason):
        """The connection is over: close it, close the session, count and tell the bus."""
        conn, self._conn = self._conn, None
        was_up = self._up.is_set()
        self._up.clear()
        if conn is not None:
            conn.close()                # _serve dropped it already, unless it failed
        with self._lock:
            self.session.close(reason)
        if not was_up:
            return
        self.stats["disconnects"] += 1
        if not self._stopping and not self._held:
            self.stats["link_errors"] += 1
            self.last_error = reason
        log = self.log.info if self._stopping else self.log.warning   # a clean stop: no warning
        log("disconnected: %s", reason)
        self.app.bus.publish("%s.disconnected" % self.name, reason)

    def _beat(self):
        self._beat_at = utime.ticks_ms()

    def _run_command(self, call):
        """On a worker: run one HES command, outside every lock, and hand the reply back."""
        reply = self.commands.execute(call.verdict.request)
        self._answer(call.id, self.auth.seal(reply, call.verdict))

    def _answer(self, command_id, reply):
        with self._lock:
            self.session.respond(command_id, reply)
        self._wake.set()

    # ------------------------------------------------------------------ bus (notes only)
    # Bus callbacks only leave a note for the link thread: they may run on any thread.
    def _on_network_down(self, topic, reason):
        if self._net_up:
            self.stats["net_pauses"] += 1
        self._net_up = False
        self._wake.set()
        self._kick.set()
        conn = self._conn
        if conn is not None:
            self._interrupt(conn, "network down: %s" % (reason,))

    def _on_network_up(self, topic, reason):
        self._net_up = True
        if self._backoff is not None:
            self._backoff.reset()
        self._wake.set()
        self._kick.set()

    def _interrupt(self, conn, reason):
        """Make _serve(conn) return soon (called from any thread)."""
        conn.fail(reason)

    def _on_health(self, topic, status):
        if self.config.get("forward_health") and self.is_connected():
            self._health = status
            self._wake.set()

    def _on_report(self, topic, data):
        name, switch = REPORTS[topic]
        if switch is None or self.config.get(switch):
            self.report(name, data)

    def _on_meter(self, topic, data):
        self.send(data)

    def _on_identity(self, topic, value):
        self._reregister = True          # the HES learns the meter's serial without a reconnect
        self.wake()

    def _info(self):
        """What registration and heartbeat carry: the queue's figures, who and how long up."""
        if self._device is None or self._device == "unknown":
            self._device = device_id(self.config["device_id"])
        queue = self.queue
        return {"epoch": queue.epoch, "queued": len(queue), "dropped": queue.stats["dropped"],
                "dev": self._device, "app": self.app.name, "up": utime.time() - self._started,
                "meter": self.app.bus.retained("meter.serial", "") or ""}
