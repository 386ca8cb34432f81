"""The `dlms` extension: the module as a DLMS/COSEM client of its meter (DLMS-lite).

    dlms = Dlms(app=app)                     # name "dlms", dev.json section "DLMS"

Transports (`transport`): "uart" - HDLC on its own UART (RS-485 or optical port); "meter_link"
- HDLC inside the meter link's transparent 0x2100 frames, arbitrated with the HES's
transparent traffic (qframe/protocols/arbiter.py: while the module holds an association,
meter replies come here and HES payloads wait in order, bounded and counted; while the HES
has an exchange in progress the module waits); "tcp" - WRAPPER over TCP.

One thread ("dlms") does all meter work, one association per job: the periodic read of
`objects` every `read_period_s` (published on the bus as `dlms.readings`, a dict with the
list of readings), the clock sync every `clock_sync_s` and the HES's commands, registered in
the app's command registry: dlms.read {obis, attr}, dlms.read_many {objects: [...]},
dlms.write {obis, attr, value}, dlms.action {obis, class, method, params}, dlms.profile {obis,
from, to, entries}, dlms.clock, dlms.set_clock {time: ISO | "now"}. A command waits for its
job at most `command_timeout_s`. Profile rows are published in chunks of `profile_chunk_rows`
as `dlms.profile` ({obis, columns, rows, seq, last}) while they stream in; the reply carries
the count. Readings are JSON-ready dicts (obis, class, attr, value, scaler, unit, status).

Resilience (all from config): `timeout_ms` per answer, `interframe_ms` inside a frame,
`retries`, `max_info` (HDLC information field), `window` (1), `max_pdu`, `max_blocks`,
`job_timeout_s` (the whole job, whatever the line carries: noise, foreign frames, a meter
answering RR for ever), `max_response` (a whole response's octets; also at most 1/8 of the
free heap; profiles and the object list are streamed). A meter that stops answering ends the
job with an error (counted); the association is released (RLRQ, DISC) and reset, and the
next job starts over with SNRM. A refused or malformed answer fails only its request. The
class of an OBIS code comes from the meter's object list, read once and kept.

Clock sync: the module's clock (`clock_source` "rtc": the modem's network time in the RTC;
"ntp": ntptime.settime() first) against the meter's; when they differ by more than
`clock_max_drift_s` the meter's clock is set. Counted: clock_checks, clock_sets,
clock_failures; `last_drift_s` in status().
"""
import utime

from .. import threading as threads
from ..codecs import cosem
from ..core.config import Field
from ..core.ext import AppExtension
from ..logging import getLogger
from ..protocols.arbiter import LinkArbiter

_log = getLogger("dlms")

TRANSPORTS = ("uart", "meter_link", "tcp")
STAT_KINDS = ("jobs", "job_errors", "reads", "read_errors", "cycles", "commands",
              "command_timeouts", "profile_rows", "clock_checks", "clock_sets",
              "clock_failures", "link_busy", "queue_full")


class _Job(object):
    def __init__(self, kind, args):
        self.kind = kind
        self.args = args
        self.done = threads.Event()
        self.result = None


class Dlms(AppExtension):
    """See the module docstring."""

    name = "dlms"
    config_section = "DLMS"
    config_fields = {
        "transport": Field(str, "meter_link", choices=TRANSPORTS),
        "uart_port": Field((int, str), 1),
        "baudrate": Field(int, 9600, lo=300, hi=921600),
        "parity": Field(int, 0, choices=(0, 1, 2)),
        "host": Field(str, "127.0.0.1"),
        "port": Field(int, 4059, lo=1, hi=65535),
        "client_sap": Field(int, 16, lo=1, hi=127),
        "server_sap": Field(int, 1, lo=0, hi=0x3FFF),
        "server_lower": Field(int, None, lo=0, hi=0x3FFF, optional=True),
        "password": Field(str, None, optional=True),
        "objects": Field(list, [], check=cosem.targets_problem),
        "read_period_s": Field(int, 0, lo=0, hi=86400),
        "timeout_ms": Field(int, 3000, lo=10, hi=60000),
        "interframe_ms": Field(int, 500, lo=5, hi=10000),
        "retries": Field(int, 2, lo=0, hi=10),
        "max_info": Field(int, 128, lo=32, hi=2030),
        "window": Field(int, 1, choices=(1,)),
        "max_pdu": Field(int, 1024, lo=64, hi=65535),
        "max_blocks": Field(int, 1000, lo=1, hi=100000),
        "command_timeout_s": Field(float, 30.0, lo=0.1, hi=600),
        "job_timeout_s": Field(int, 300, lo=1, hi=3600),
        "max_response": Field(int, 16384, lo=256, hi=65536),
        "profile_chunk_rows": Field(int, 50, lo=1, hi=1000),
        "hes_hold_ms": Field(int, 2000, lo=0, hi=60000),
        "hes_wait_bytes": Field(int, 4096, lo=0, hi=65536),
        "clock_sync_s": Field(int, 0, lo=0, hi=604800),
        "clock_max_drift_s": Field(int, 10, lo=1, hi=86400),
        "clock_source": Field(str, "rtc", choices=("rtc", "ntp")),
        "queue": Field(int, 8, lo=1, hi=64),
    }

    def __init__(self, name=None, app=None):
        self.stats = {}
        for kind in STAT_KINDS:
            self.stats[kind] = 0
        self.last_drift_s = None
        self.last_error = None
        self.arbiter = None
        self._arb_lock = threads.Lock()
        self._port = None
        self._jobs = None
        self._thread = None
        self._stop_signal = threads.Event()
        self.assoc = None
        self.classes = {}                # OBIS -> class, from the meter's object list
        AppExtension.__init__(self, name, app)

    # -- lifecycle -------------------------------------------------------------------------

    def load(self):
        cfg = self.config
        for text in cfg["objects"]:
            cosem.parse_target(text)            # a bad OBIS code fails the load, named
        self.assoc = None                       # made with the first job (dlms_job.py)
        self._jobs = threads.Queue(cfg["queue"])
        self._stop_signal.clear()
        if cfg["transport"] == "meter_link":
            self.arbiter = LinkArbiter(cfg["hes_hold_ms"], cfg["hes_wait_bytes"])
            self.uart().share_link(self)
        commands = _commands_of(self.app)
        for name, fn in (("dlms.read", self._cmd_read), ("dlms.read_many", self._cmd_read_many),
                         ("dlms.write", self._cmd_write), ("dlms.action", self._cmd_action),
                         ("dlms.profile", self._cmd_profile), ("dlms.clock", self._cmd_clock),
                         ("dlms.set_clock", self._cmd_set_clock)):
            commands.unregister(name)
            commands.register(name, fn)
        self._thread = self.app.spawn(self._run, name="dlms")

    def stop(self, timeout=2.0):
        self._stop_signal.set()
        if self._jobs is not None:
            self._jobs.close()
        ok = True
        if self._thread is not None:
            ok = self._thread.join(timeout)
            self._thread = None
        if self.arbiter is not None:
            self.uart().release_link(self)
            self._flush_hes(self._release_link())
        self.unsubscribe_all()
        return ok

    def status(self):
        report = dict(self.stats)
        report["last_drift_s"] = self.last_drift_s
        report["last_error"] = self.last_error
        if self.assoc is not None:
            for key in self.assoc.stats:
                report["assoc_" + key] = self.assoc.stats[key]
        if self.arbiter is not None:
            for key in self.arbiter.stats:
                report["link_" + key] = self.arbiter.stats[key]
        return report

    def uart(self):
        uart = getattr(self.app, "uart", None)
        if uart is None:
            raise OSError("transport meter_link needs the uart extension")
        return uart

    # -- the meter link's arbitration (called by Uart on its threads) -----------------------

    def meter_data(self, payload):
        """True when a transparent payload from the meter is this client's (taken)."""
        with self._arb_lock:
            who = self.arbiter.meter_data(utime.ticks_ms())
        if who != "dlms":
            return False
        port = self._port
        if getattr(port, "inbox", None) is not None:   # dlms_job's meter-link port
            try:
                port.inbox.put(payload)
            except threads.QueueFull:
                _log.warning("dlms inbox full: dropped %d octets from the meter", len(payload))
        return True

    def hes_data(self, data):
        """True when HES bytes may go to the meter now (else they wait here, in order)."""
        with self._arb_lock:
            return self.arbiter.hes_data(data, utime.ticks_ms())

    def _acquire_link(self):
        deadline = utime.ticks_add(utime.ticks_ms(), self.config["timeout_ms"] * 4)
        while not self._stop_signal.is_set():
            with self._arb_lock:
                if self.arbiter.try_acquire(utime.ticks_ms()):
                    return True
            if utime.ticks_diff(deadline, utime.ticks_ms()) <= 0:
                return False
            self._stop_signal.wait(0.02)
        return False

    def _release_link(self):
        with self._arb_lock:
            return self.arbiter.release(utime.ticks_ms())

    def _flush_hes(self, waiting):
        uart = getattr(self.app, "uart", None)
        if uart is not None:
            for data in waiting:
                uart.send_hes(data)

    # -- the worker thread -----------------------------------------------------------------

    def _run(self):
        cfg = self.config
        now = utime.ticks_ms()
        next_read = now if cfg["read_period_s"] and cfg["objects"] else None
        next_sync = now if cfg["clock_sync_s"] else None
        while not self._stop_signal.is_set():
            now = utime.ticks_ms()
            wait_ms = 1000
            for due in (next_read, next_sync):
                if due is not None:
                    wait_ms = min(wait_ms, max(0, utime.ticks_diff(due, now)))
            try:
                job = self._jobs.get(wait_ms / 1000)
            except threads.QueueEmpty:
                job = None
            except threads.QueueClosed:
                return
            if job is not None:
                job.result = self._job(job.kind, job.args)
                job.done.set()
            now = utime.ticks_ms()
            if next_read is not None and utime.ticks_diff(now, next_read) >= 0:
                next_read = utime.ticks_add(now, cfg["read_period_s"] * 1000)
                self._cycle()
            if next_sync is not None and utime.ticks_diff(now, next_sync) >= 0:
                next_sync = utime.ticks_add(now, cfg["clock_sync_s"] * 1000)
                self._job("clock_sync", None)

    def _cycle(self):
        self.stats["cycles"] += 1
        result = self._job("read_many", {"objects": self.config["objects"]})
        if result.get("status") == "ok":
            self.app.bus.publish("dlms.readings", result)


    def _open_port(self):
        from . import dlms_job
        return dlms_job.open_port(self)

    def _job(self, kind, args):
        """One association: open, the work, close (builtins/dlms_job.py, imported with the
        first job). A JSON-ready dict, never raises."""
        from . import dlms_job
        return dlms_job.run_job(self, kind, args)
    # -- commands (on the uplink's thread: queue the job, wait for it) ----------------------

    def submit(self, kind, args=None, timeout_s=None):
        """Queue a job for the dlms thread and wait for its result dict."""
        job = _Job(kind, args)
        try:
            self._jobs.put(job)
        except (threads.QueueFull, threads.QueueClosed):
            self.stats["queue_full"] += 1
            return {"status": "busy", "error": "dlms job queue full"}
        self.stats["commands"] += 1
        if not job.done.wait(timeout_s or self.config["command_timeout_s"]):
            self.stats["command_timeouts"] += 1
            return {"status": "timeout", "error": "no result within the command timeout"}
        return job.result

    def _cmd_read(self, args):
        return self.submit("read", _args(args))

    def _cmd_read_many(self, args):
        return self.submit("read_many", _args(args))

    def _cmd_write(self, args):
        return self.submit("write", _args(args))

    def _cmd_action(self, args):
        return self.submit("action", _args(args))

    def _cmd_profile(self, args):
        return self.submit("profile", _args(args))

    def _cmd_clock(self, args):
        return self.submit("clock")

    def _cmd_set_clock(self, args):
        return self.submit("set_clock", _args(args))


def _commands_of(app):
    from ..protocols.commands import commands_of
    return commands_of(app)


def _args(args):
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise ValueError("arguments must be a JSON object")
    return args

