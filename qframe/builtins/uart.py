"""The meter link: the UART to the meter's MCU, its frames, and their handlers.

    uart = Uart(app=app)                     # name "uart", dev.json section "UART"

    @uart.resolver.register(meter.PROTO_PARAMETERS, cmd=meter.CMD_GET, pid=0x8003)
    def csq(frame):
        return meter.get_response(0x8003, bytes((21,)))

A reader thread polls the port and passes every chunk read to `recv_callback(data)`. The
default feeds the RFC 1662 Decoder (`dialect` legacy or standard) and dispatches each good
frame through `resolver` on the app's worker pool, never on the reader thread; a handler's
reply (protocol, cmd, payload) is framed and written back. QFrame-style subclasses override
`recv_callback(data)` to get the raw bytes and call `write(data)` to send raw bytes.
QFrame's other names: `serial` (the open port: a usr.qframe.serial.Serial unless open_port()
is overridden), `read(size, timeout)` (reading yourself competes with the reader thread),
`listen_thread` (the reader Thread; its stop() ends the reading) and `listen_thread_worker`
(the reader loop).

Defaults: a 0x2100 frame from the meter is published as `meter.transparent` (payload bytes)
unless a 0x2100 handler was registered before load(); `hes.data` from the bus is framed as
0x2100/BF and written to the meter.

Acceptance (no loss of meter data): a 0x2100 frame is *accepted* once its FCS checks and it
is appended to the link's ordered inbox (at most `inbox_bytes` of payload, or one frame). One
pool task at a time drains the inbox, so frames reach their handler in wire order. When the
inbox is full the reader holds the frame and stops reading (`rx_backpressure`): the bytes wait
in the UART driver, nothing accepted is dropped. stop() waits for the inbox to drain; what is
still left when the stop bound expires is counted `transparent_abandoned` and logged. The
default handler hands the payload over when a `meter.transparent` subscriber returns; with
none, `transparent_unheard`. Other frames (0x2200) are submitted to the pool one by one; when
the pool is full they are dropped, counted `dispatch_dropped` and logged: the meter's request
times out and it retries. The drain task holds one worker while frames keep coming, so the
link needs APP.workers >= 2 (`app_minimums`: load() refuses less, naming why).

I/O errors (read, write, open) close the port; the reader reopens it every `reopen_delay_s`
(`io_errors`, `open_failures`, `reopens`). The decoder is reset on reopen. stop() ends the
reader within its timeout (it polls every `poll_ms`).

UART keys (dev.json): port (int UART number; on the host also a device path or URL), baudrate,
bytesize, parity (0 none, 1 even, 2 odd), stopbits, flowctl (QuecPython's meanings); dialect
"legacy"|"standard"; rs485_pin (GPIO number, null: none) and rs485_tx_level (its level while
sending; the UART's control_485 drives it when it has one); max_frame (decoder bound, octets
from address to FCS); read_chunk (octets per read); poll_ms (idle poll period); idle_flush_ms
(a frame whose closing flag is missing is delivered after this quiet time); inbox_bytes;
reopen_delay_s; write_timeout_s (write lock wait and partial-write bound).
"""
import utime

from ..core.config import Field, HEAP_BYTES
from ..core.ext import AppExtension
from ..protocols.resolver import Resolver
from ..codecs import meter
from ..codecs import rfc1662
from .. import threading as threads


STAT_KINDS = ("rx_bytes", "tx_bytes", "rx_frames", "tx_frames", "dispatch_dropped",
              "rx_backpressure", "drain_deferred", "transparent_in", "transparent_unheard",
              "transparent_abandoned", "hes_frames", "hes_dropped", "tx_errors", "tx_dropped",
              "tx_timeouts", "encode_errors", "io_errors", "open_failures", "reopens",
              "callback_errors", "idle_flushes", "memory_errors")


class Uart(AppExtension):
    """The meter link extension (see the module docstring)."""

    name = "uart"
    config_section = "UART"
    app_minimums = {"workers": (2, "the inbox drain holds one worker while frames arrive; "
                                   "parameter requests need another")}
    config_fields = {
        "port": Field((int, str), 2),
        "baudrate": Field(int, 115200, lo=300, hi=4000000),
        "bytesize": Field(int, 8, choices=(5, 6, 7, 8)),
        "parity": Field(int, 0, choices=(0, 1, 2)),
        "stopbits": Field(int, 1, choices=(1, 2)),
        "flowctl": Field(int, 0, choices=(0, 1)),
        "dialect": Field(str, rfc1662.LEGACY, choices=rfc1662.DIALECTS),
        "rs485_pin": Field(int, None, lo=0, hi=255, optional=True),
        "rs485_tx_level": Field(int, 1, choices=(0, 1)),
        "max_frame": Field(int, rfc1662.MAX_FRAME, lo=rfc1662.OVERHEAD + 1, hi=65535),
        "read_chunk": Field(int, 512, lo=1, hi=8192),
        "poll_ms": Field(int, 5, lo=1, hi=1000),
        "idle_flush_ms": Field(int, 200, lo=1, hi=60000),
        "inbox_bytes": Field(int, 8192, lo=1, hi=HEAP_BYTES // 8),
        "reopen_delay_s": Field(float, 1.0, lo=0.01, hi=600),
        "write_timeout_s": Field(float, 1.0, lo=0.01, hi=60),
    }

    def __init__(self, name=None, app=None):
        self.stats = {}
        for kind in STAT_KINDS:
            self.stats[kind] = 0
        self.resolver = Resolver()
        self.decoder = None
        self._port = None
        self._failure = None        # set by a writer: the reader closes and reopens the port
        self._ever_opened = False
        self._dir_pin = None
        self._dialect = rfc1662.LEGACY
        self._stop_signal = threads.Event()
        self.serial = None
        self.listen_thread = None
        self._write_lock = threads.Lock()
        self._inbox = []
        self._inbox_bytes = 0
        self._inbox_lock = threads.Lock()
        self._draining = False
        self._retry_at = None
        self._oom_delay = 0     # s to back off while out of memory (0: not short of memory)
        self.shared_with = None     # who shares the link (share_link): the dlms extension
        AppExtension.__init__(self, name, app)

    # -- lifecycle -------------------------------------------------------------------------

    def load(self):
        cfg = self.config
        self._dialect = cfg["dialect"]
        self._ever_opened = False
        self.decoder = rfc1662.Decoder(self._dialect, cfg["max_frame"])
        if self.resolver.handler_for(meter.PROTO_TRANSPARENT, meter.CMD_TRANSPARENT) is None:
            self.resolver.add(self.on_transparent, meter.PROTO_TRANSPARENT)
        self._stop_signal.clear()
        self.subscribe("hes.data", self._on_hes_data)
        self.listen_thread = self.app.spawn(self.listen_thread_worker, name="uart-reader",
                                            stop_event=self._stop_signal)

    def stop(self, timeout=2.0):
        """End the reader, let the inbox drain, close the port; False if a bound expired."""
        deadline = utime.ticks_add(utime.ticks_ms(), int(timeout * 1000))
        self._stop_signal.set()
        self.unsubscribe_all()
        ok = True
        if self.listen_thread is not None:
            ok = self.listen_thread.join(timeout)
            self.listen_thread = None
        while self._pending() and utime.ticks_diff(deadline, utime.ticks_ms()) > 0:
            self._schedule_drain()
            utime.sleep_ms(2)
        with self._inbox_lock:
            left = len(self._inbox)
            self._inbox = []
            self._inbox_bytes = 0
        if left:
            self.stats["transparent_abandoned"] += left
            self.log.error("stopped with %d accepted meter frame(s) undelivered", left)
            ok = False
        self._close()
        return ok

    def status(self):
        report = dict(self.stats)
        report["open"] = self._port is not None
        report["inbox"] = len(self._inbox)
        if self.decoder is not None:
            for key in self.decoder.stats:
                report["decoder_" + key] = self.decoder.stats[key]
        for key in self.resolver.stats:
            report["resolver_" + key] = self.resolver.stats[key]
        return report

    @property
    def is_open(self):
        return self._port is not None

    # -- receive path ----------------------------------------------------------------------

    def recv_callback(self, data):
        """Called on the reader thread with every chunk read (bytes). QFrame subclasses
        override it to get raw bytes; the default feeds the decoder and dispatches frames."""
        for frame in self.decoder.feed(data):
            self.dispatch(frame)

    def dispatch(self, frame):
        """Hand a decoded frame to its handler off the reader thread (see module docstring)."""
        self.stats["rx_frames"] += 1
        if frame.protocol == meter.PROTO_TRANSPARENT:
            self._accept(frame)
        elif not self.app.submit(self._handle, frame):
            self.stats["dispatch_dropped"] += 1
            self.log.warning("worker pool full: dropped protocol 0x%04x cmd 0x%02x from the meter",
                         frame.protocol, frame.cmd)

    def on_transparent(self, frame):
        """Default 0x2100 handler: publish the payload as `meter.transparent` (unless the
        extension sharing the link takes it: the module's own DLMS client)."""
        sharer = self.shared_with
        if sharer is not None and sharer.meter_data(frame.payload):
            return
        self.stats["transparent_in"] += 1
        if not self.app.bus.publish("meter.transparent", frame.payload):
            self.stats["transparent_unheard"] += 1
            self.log.error("meter.transparent: nobody took %d octets from the meter",
                       len(frame.payload))

    def _handle(self, frame):
        reply = self.resolver.dispatch(frame)
        if reply is not None:
            self.send(reply)

    def _accept(self, frame):
        """Append frame to the inbox, waiting (not reading) while it is full."""
        limit = self.config["inbox_bytes"]
        size = len(frame.payload)
        waited = False
        while True:
            with self._inbox_lock:
                # Stopping: take it anyway, stop() drains or counts what is left.
                if (not self._inbox or self._inbox_bytes + size <= limit
                        or self._stop_signal.is_set()):
                    self._inbox.append(frame)
                    self._inbox_bytes += size
                    break
            if not waited:
                waited = True
                self.stats["rx_backpressure"] += 1
            self._schedule_drain()
            utime.sleep_ms(self.config["poll_ms"])
        self._schedule_drain()

    def _pending(self):
        return self._inbox or self._draining

    def _schedule_drain(self):
        """Start the drain task unless it runs; after the pool refused it, retry no sooner
        than 20 polls later (the pool logs every refusal)."""
        now = utime.ticks_ms()
        with self._inbox_lock:
            if self._draining or not self._inbox:
                return
            if self._retry_at is not None and utime.ticks_diff(self._retry_at, now) > 0:
                return
            self._draining = True
            self._retry_at = None
        if self.app.submit(self._drain):
            return
        with self._inbox_lock:
            self._draining = False
        self._retry_at = utime.ticks_add(now, 20 * self.config["poll_ms"])
        self.stats["drain_deferred"] += 1

    def _drain(self):
        """Pool task: handle inbox frames in order until it is empty."""
        while True:
            with self._inbox_lock:
                if not self._inbox:
                    self._draining = False
                    return
                frame = self._inbox.pop(0)
                self._inbox_bytes -= len(frame.payload)
            try:
                self._handle(frame)
            except MemoryError as exc:     # keep the frame first in line; retry after a pause
                delay_ms = int(self.out_of_memory(exc) * 1000)
                with self._inbox_lock:
                    self._inbox.insert(0, frame)
                    self._inbox_bytes += len(frame.payload)
                    self._retry_at = utime.ticks_add(utime.ticks_ms(), delay_ms)
                    self._draining = False
                return
            except Exception as exc:
                self.log.exception("transparent frame handling failed", exc)

    def read(self, size, timeout=None):
        """Read up to size bytes from the port (QFrame's; see the module docstring)."""
        return self.serial.read(size, timeout)

    def listen_thread_worker(self):
        """The reader thread: read, pass each chunk to recv_callback, reopen on errors. A
        MemoryError anywhere (even while handling another error) backs off; it never ends it."""
        stop = self._stop_signal
        while not stop.is_set():
            try:
                self._listen()
            except MemoryError as exc:
                self._oom_delay = 1
                try:
                    stop.wait(self.out_of_memory(exc))
                except MemoryError:
                    pass

    def _listen(self):
        cfg = self.config
        chunk = cfg["read_chunk"]
        poll_ms = cfg["poll_ms"]
        idle_flush_ms = cfg["idle_flush_ms"]
        stop = self._stop_signal
        last_rx = utime.ticks_ms()
        while not stop.is_set():
            if self._port is None or self._failure is not None:
                if not self._reopen():
                    stop.wait(self._oom_delay or cfg["reopen_delay_s"])
                    continue
            if self._inbox and not self._draining:
                self._schedule_drain()
            try:
                port = self._port
                count = port.any()
                data = port.read(count if count < chunk else chunk) if count > 0 else None
            except MemoryError as exc:
                stop.wait(self.out_of_memory(exc))
                self._oom_delay = 1     # the next read that works ends the spell
                continue
            except Exception as exc:
                self._fail("read", exc)
                continue
            if self._oom_delay:
                self._oom_delay = 0
                self.memory_recovered()
            if data:
                self.stats["rx_bytes"] += len(data)
                last_rx = utime.ticks_ms()
                try:
                    self.recv_callback(data)
                except MemoryError as exc:
                    stop.wait(self.out_of_memory(exc))
                    self._oom_delay = 1
                except Exception as exc:
                    self.stats["callback_errors"] += 1
                    self.log.exception("recv_callback failed on %d octets", exc, len(data))
                continue
            if (self.decoder is not None and self.decoder.buffered
                    and utime.ticks_diff(utime.ticks_ms(), last_rx) >= idle_flush_ms):
                self.stats["idle_flushes"] += 1
                for frame in self.decoder.flush():
                    self.dispatch(frame)
            utime.sleep_ms(poll_ms)

    # -- transmit path ---------------------------------------------------------------------

    def write(self, data):
        """Write raw bytes to the meter (QFrame's write); True once all were written."""
        cfg = self.config
        if not self._write_lock.acquire(True, cfg["write_timeout_s"]):
            self.stats["tx_timeouts"] += 1
            self.log.error("write of %d octets: the port stayed busy", len(data))
            return False
        try:
            return self._write_locked(data, cfg)
        finally:
            self._write_lock.release()

    def _write_locked(self, data, cfg):
        port = self._port
        if port is None or self._failure is not None:
            self.stats["tx_dropped"] += 1
            self.log.warning("port closed: dropped %d octets for the meter", len(data))
            return False
        deadline = utime.ticks_add(utime.ticks_ms(), int(cfg["write_timeout_s"] * 1000))
        sent = 0
        total = len(data)
        self._direction(True)
        try:
            while sent < total:
                count = port.write(data if sent == 0 else data[sent:])
                if count is None:
                    count = total - sent
                sent += count
                if sent < total:
                    if utime.ticks_diff(deadline, utime.ticks_ms()) <= 0:
                        self.stats["tx_timeouts"] += 1
                        self.log.error("write timed out after %d of %d octets", sent, total)
                        return False
                    utime.sleep_ms(1)
        except Exception as exc:
            self.stats["tx_errors"] += 1
            self._failure = exc
            self.log.exception("write of %d octets failed", exc, total)
            return False
        finally:
            self.stats["tx_bytes"] += sent
            self._direction(False, sent)
        return True

    def send(self, message):
        """Frame a (protocol, cmd, payload) message in the configured dialect and write it."""
        try:
            protocol, cmd, payload = message
            data = rfc1662.encode(protocol, cmd, payload, self._dialect)
        except (TypeError, ValueError) as exc:
            self.stats["encode_errors"] += 1
            self.log.exception("cannot frame %r", exc, message)
            return False
        if self.write(data):
            self.stats["tx_frames"] += 1
            return True
        return False

    def send_transparent(self, data):
        """Send data to the meter as a 0x2100/BF frame."""
        return self.send(meter.transparent(data))

    def send_hes(self, data):
        """Send HES bytes to the meter as a 0x2100/BF frame, counted (hes_frames, hes_dropped)."""
        if self.send_transparent(data):
            self.stats["hes_frames"] += 1
            return True
        self.stats["hes_dropped"] += 1
        return False

    def _on_hes_data(self, topic, data):
        sharer = self.shared_with
        if sharer is not None and not sharer.hes_data(data):
            return                  # it waits with the sharer (sent with send_hes on release)
        self.send_hes(data)

    # -- sharing the link with another extension ---------------------------------------------

    def share_link(self, owner):
        """Share the meter link with `owner` (one at a time): `owner.meter_data(payload)` sees
        every 0x2100 payload first (True: taken, not published) and `owner.hes_data(data)`
        every HES payload (False: it waits there; the owner sends it later with send_hes)."""
        if self.shared_with is not None and self.shared_with is not owner:
            raise ValueError("the meter link is already shared with %r" % self.shared_with)
        self.shared_with = owner

    def release_link(self, owner):
        """End the sharing `owner` started (nothing if it holds none)."""
        if self.shared_with is owner:
            self.shared_with = None

    # -- the port --------------------------------------------------------------------------

    def open_port(self):
        """A new open port (any/read/write/close) from the config: a Serial; override to use
        another kind of port."""
        from ..serial import Serial
        cfg = self.config
        return Serial(cfg["port"], cfg["baudrate"], cfg["bytesize"], cfg["parity"],
                      cfg["stopbits"], cfg["flowctl"]).open()

    def _setup_rs485(self, port):
        """Let the UART drive the RS-485 direction pin, or drive it ourselves around writes."""
        cfg = self.config
        pin = cfg["rs485_pin"]
        self._dir_pin = None
        if pin is None:
            return
        if hasattr(port, "control_485"):
            port.control_485(pin, cfg["rs485_tx_level"])
        else:
            import machine
            self._dir_pin = machine.Pin(pin, machine.Pin.OUT, machine.Pin.PULL_DISABLE,
                                        1 - cfg["rs485_tx_level"])

    def _reopen(self):
        """(Re)open the port after a failure; True when open."""
        if self._port is not None:
            self._close()
        self._failure = None
        port = None
        try:
            port = self.open_port()
            self._setup_rs485(getattr(port, "uart", port))
        except Exception as exc:
            if port is not None:
                try:
                    port.close()
                except Exception:
                    pass
            self.stats["open_failures"] += 1
            if isinstance(exc, MemoryError):
                self._oom_delay = self.out_of_memory(exc)
            else:
                self.log.exception("cannot open UART %r", exc, self.config["port"])
            return False
        if self._oom_delay:
            self._oom_delay = 0
            self.memory_recovered()
        if self.decoder is not None:
            self.decoder.reset()
        self._port = self.serial = port
        if self._ever_opened:
            self.stats["reopens"] += 1
            self.log.warning("UART %r reopened", self.config["port"])
        else:
            self.log.info("UART %r open (%s dialect)", self.config["port"], self._dialect)
        self._ever_opened = True
        return True

    def _fail(self, what, exc):
        self.stats["io_errors"] += 1
        self.log.exception("UART %s failed; reopening", exc, what)
        self._close()

    def _close(self):
        with self._write_lock:
            port = self._port
            self._port = None
            if port is not None:
                try:
                    port.close()
                except Exception as exc:
                    self.log.exception("closing the UART failed", exc)

    def _direction(self, transmit, sent=0):
        """Drive the RS-485 direction pin when the UART cannot do it itself."""
        pin = self._dir_pin
        if pin is None:
            return
        level = self.config["rs485_tx_level"]
        if transmit:
            pin.write(level)
            return
        cfg = self.config
        bits = 1 + cfg["bytesize"] + cfg["stopbits"] + (1 if cfg["parity"] else 0)
        utime.sleep_ms((sent * bits * 1000) // cfg["baudrate"] + 1)
        pin.write(1 - level)
