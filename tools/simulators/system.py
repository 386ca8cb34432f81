"""Run the whole system on the host: the app (a subprocess through tools/hostrun/board_root.py's
runner, CPython or MicroPython), the simulated meter on a pty (tools/simulators/meter.py) and the
simulated HES on loopback (tools/simulators/hes.py).

    python -m tools.simulators.system                                  # until Ctrl-C
    python -m tools.simulators.system --duration 60 --faults --seed 7  # unattended, link faults
    python -m tools.simulators.system --interpreter micropython --rate 20 --downlink 1
    python -m tools.simulators.system --uplink mqtt --duration 60 --faults --seed 7
    python -m tools.simulators.system --app examples/first_app                # your own app
    python -m tools.simulators.system --duration 30 --garbage 0.3        # a noisy meter line

`--uplink mqtt` puts a real MQTT broker (mosquitto, else amqtt) between the app and the HES,
played by an MQTT client (tools/simulators/mqtt_hes.py); the HES-side faults become broker
restarts, a refusing broker and a session takeover that drops the module's connection.

In a terminal it shows a live status screen (tools/simulators/sim_screen.py: link state and
uptime, meter frames/s each way, the module's queue, reconnects, faults, the last readings and
events), the log goes to <root>/sim.log (`--log`: the log on the console instead), the HES's
web dashboard runs (its URL on the screen; `--dashboard PORT|off`), and Ctrl-C ends with a
summary in words and the JSON line. Without a terminal (or with --log) the log lines go to
stdout, as they happen.

The meter sends `--rate` transparent payloads per second (each unique: `M<n>` padded to
`--size` bytes); the HES sends `--downlink` payloads per second to the meter. With `--faults`,
faults drawn from `--seed` hit the link every `--fault-every` seconds on average: HES-side
connection drops, HES restarts, refused connections, and - through the shim's control server in
the app process (tools/shim/shimctl.py) - network outages, PDP deactivation, SIM out/in, DNS
failures, module-side socket resets and a full flash. At the end the faults stop, the queue
drains (up to `--drain-s`), and one JSON line reports `meter_sent`, `hes_received`, `lost`
(payloads the meter sent that never reached the HES), `duplicates` and more.

With `--garbage RATE` the meter line is noisy: that share of the meter's frames (0..1) comes
after a burst of 1..24 random octets (seeded by `--seed`; flags and frame headers included).
The summary then adds `garbage_sent` (octets) and `garbage_bursts`, and `meter_link`: the app's
framing counters (its decoder's `garbage_bytes`, `bad_fcs`, `bad_length`, ... and `frames`).
`lost` must stay 0.

`--interpreter micropython` runs the app on `$QFRAME_MICROPYTHON` when set (e.g. a 1.13 build
like the module's), else on the MicroPython of the .venv or PATH.

With `--power-cuts N`, the app process is killed (SIGKILL) N times at random moments drawn from
`--seed` and started again on the same flash after a short off time, as the module reboots,
while the meter keeps sending. `lost` is then split into `lost_while_down` (sent from
`--cut-inflight-s` before a cut until the restarted app opened its UART: nothing can receive
them, or they were still between the UART and the flash queue) and `lost_while_up` (everything
else: must be 0); the exit status is non-zero when `lost_while_up` > 0. With `--faults` too,
the flash-full fault is left out: RAM records lost in a cut are a documented, counted limit.

The app's dev.json is generated (see `app_config`) into the board root `--root` (default
build/sim, a fresh flash each run unless --keep-flash). `--app DIR` runs an app folder instead
of the repo's code/: its own main.py, modules and dev.json, with UART.port and TCP_SERVER
pointed at the simulators (`wire`); its TCP_SERVER.protocol must frame records ("ack").
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from tools.hostrun import board_root
from tools.hostrun.board_root import REPO
from tools.simulators import hes_dashboard, sim_screen
from tools.simulators.fleet import Fleet
from tools.simulators.faults import Faults, PowerCuts
from tools.simulators.hes import HesSim
from tools.simulators.ports import server_port
from tools.simulators.sim_config import (DLMS_CONFIG, HEAP_TRACE_CONFIG, app_config,
                                         app_folder_config, mqtt_config, provision, wire)
from tools.simulators.traffic import Traffic

DEFAULT_ROOT = os.path.join(REPO, "build", "sim")
CTRL_C_DRAIN_S = 3.0     # after Ctrl-C on the status screen: wait this long for the queue


def _load_meter_sim():
    """tools/simulators/meter.MeterSim, or None if it cannot be imported."""
    try:
        from tools.simulators.meter import MeterSim
    except ImportError:
        return None
    return MeterSim


class Log(object):
    """The sim's log: one line per event (seconds since the start, where it came from, what) to
    stream (stdout, or the log file behind the status screen), and to each of `listeners`
    (fn(source, text)) even when quiet."""

    def __init__(self, quiet=False, stream=sys.stdout):
        self.start = time.monotonic()
        self.quiet = quiet
        self.stream = stream
        self.lock = threading.Lock()
        self.listeners = []

    def __call__(self, source, text):
        for listener in self.listeners:
            listener(source, text)
        if self.quiet:
            return
        with self.lock:
            self.stream.write("%8.3f %-6s %s\n" % (time.monotonic() - self.start, source, text))
            self.stream.flush()


class AppProcess(object):
    """The app in a subprocess (tools/hostrun/boot.py through board_root.run_command); its output is
    logged and kept so callers can wait for lines."""

    def __init__(self, root, config, interpreter="cpython", log=None, keep_flash=False,
                 control_port=None, mpy=False, app=None):
        self.root = root
        self.interpreter = interpreter
        self.log = log or (lambda source, text: None)
        self.control_port = control_port
        if not keep_flash:
            shutil.rmtree(os.path.join(root, "usr", "queue"), ignore_errors=True)
        board_root.stage(root, config, mpy=mpy, app=app)
        self.lines = []
        self.cond = threading.Condition()
        self.proc = None
        self._reader = None

    def start(self):
        self.lines = []
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(board_root.run_command(self.root, self.interpreter,
                                                       control_port=self.control_port),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=REPO,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True, name="app-output")
        self._reader.start()
        return self

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
            self.log("app", line)
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, text, timeout):
        """The first output line containing text (None after timeout or exit)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return None
                self.cond.wait(min(remaining, 0.1))

    def power_cut(self):
        """SIGKILL the app's process group, as a power cut stops the module."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)

    def stop(self, timeout=10.0):
        """Ctrl-C the app (it stops its extensions and exits); kill it if it does not."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        try:
            self.proc.send_signal(signal.SIGINT)
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.log("sim", "app did not stop within %.0f s: killed" % timeout)
            self.proc.kill()
            return self.proc.wait(5)


class ShimControl(object):
    """Client of the shim's control server in the app process (shimctl.serve_control): one
    text command per line ("network down", "flash free 0", ... see shimctl.command)."""

    def __init__(self, port, log):
        self.port = port
        self.log = log
        self.sock = None
        self.file = None

    def connect(self, timeout=10.0):
        import socket
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port), 1.0)
                self.sock.settimeout(5.0)
                self.file = self.sock.makefile("rwb")
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def command(self, line):
        if self.file is None:
            return None
        self.file.write(line.encode() + b"\n")
        self.file.flush()
        reply = self.file.readline().decode().strip()
        if not reply.startswith("ok") and not reply.startswith("{"):
            self.log("sim", "shim command %r: %s" % (line, reply))
        return reply

    def send(self, line):
        """Send a command whose reply may never come (`heap fill`: the reply itself needs
        memory) and close the connection, so a late reply is never read as another's."""
        if self.file is None:
            return
        self.file.write(line.encode() + b"\n")
        self.file.flush()
        self.close()

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = self.file = None      # command() answers None until connect() again


class System(object):
    """HES sim + meter sim + app subprocess, wired together (also used by bench_cloud.py)."""

    def __init__(self, interpreter="cpython", root=DEFAULT_ROOT, log=None, echo=False,
                 dialect="legacy", protocol="usr.hes_protocol", control=False,
                 keep_flash=False, log_level="INFO", extra_config=None, uplink="tcp", mpy=False,
                 garbage_rate=0.0, seed=1, app=None):
        self.log = log or Log(quiet=True)
        self.interpreter = interpreter
        on_event = lambda kind, detail: self.log("hes", "%s %s" % (kind, detail))  # noqa: E731
        self.device_id = app_config(0)["TCP_SERVER"]["device_id"]
        if uplink == "mqtt":
            from tools.simulators.mqtt_hes import MqttHesSim
            self.hes = MqttHesSim(self.device_id, on_event=on_event)
        else:
            self.hes = HesSim(on_event=on_event)
        self.hes.start()
        meter_cls = _load_meter_sim()
        self.meter = None
        if meter_cls is not None:
            self.meter = meter_cls(dialect, echo=echo,
                                   on_event=lambda text: self.log("meter", text),
                                   garbage_rate=garbage_rate, seed=seed).start()
        else:
            self.log("sim", "tools/simulators/meter.py not found: running without a meter")
        self.control_port = server_port() if control else None
        meter_path = self.meter.path if self.meter else None
        if app:         # an app folder: its own dev.json, its links wired to the simulators
            config = wire(app_folder_config(app), self.hes.port, meter_path)
        else:
            config = app_config(self.hes.port, meter_path, dialect, protocol, log_level)
        if uplink == "mqtt":
            mqtt_config(config, self.hes.port)
        for section in extra_config or {}:
            config.setdefault(section, {}).update(extra_config[section])
        self.config = config
        self.app = AppProcess(root, config, interpreter, self.log, keep_flash, self.control_port,
                              mpy, app)
        provision(root, config)     # the simulator-only key the simulated HES signs with
        self.shim = None

    def start(self, timeout=30.0):
        """Start the app and wait until it registered (and opened its UART); on failure
        everything started is stopped again."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout):
        self.app.start()
        proc = self.app.proc
        if not self.hes.wait_for(lambda h: h.registrations or proc.poll() is not None, timeout):
            raise RuntimeError("the app never registered with the HES (see the log)")
        if not self.hes.registrations:
            raise RuntimeError("the app exited (status %s) before it registered with the HES "
                               "(see the log)" % proc.poll())
        # a UART starts empty: what the meter sends before the port is open is gone
        if self.meter is not None and not self.app.wait_line(self.uart_open(), timeout):
            raise RuntimeError("the app never opened its UART (see the log)")
        if self.control_port:
            shim = ShimControl(self.control_port, self.log)
            if shim.connect(5.0):
                self.shim = shim
            else:
                self.log("sim", "no shim control server on port %d: shim faults disabled"
                         % self.control_port)
        return self

    def uart_open(self):
        """The text of the app's log line saying it opened the meter's port."""
        return "'%s' open" % self.meter.path

    def stop(self):
        code = self.app.stop()
        if self.shim is not None:
            self.shim.close()
        if self.meter is not None:
            self.meter.stop()
        getattr(self.hes, "close", self.hes.stop)()     # MqttHesSim: the broker and the HES
        return code




def summarize(system, traffic, faults, args, elapsed, cuts=None):
    """The run's figures, the JSON line (every key: docs/SIM.md); `ok` and `app_exit` are
    added by verdict() once the app has stopped."""
    hes = system.hes
    received = list(hes.received)
    received_set = set(received)
    lost = [p for p in traffic.sent if p not in received_set]
    status = None
    if hes.client_count():
        reply = hes.command("status", timeout=5)
        status = reply.get("result") if reply else None
    tcp = (status or {}).get("tcp") or (status or {}).get("mqtt") or {}
    result = {
        "interpreter": args.interpreter,
        "uplink": getattr(args, "uplink", "tcp"),
        "seed": args.seed,
        "duration_s": round(elapsed, 1),
        "meter_sent": len(traffic.sent),
        "meter_send_errors": traffic.errors,
        "hes_received": len([p for p in received if p[:1] == b"M"]),
        "lost": len(lost),
        "lost_first": [p[:8].decode("ascii", "replace") for p in lost[:5]],
        "duplicates": hes.stats["duplicates"],
        "auth_failures": hes.signer.failures() if hes.signer is not None else None,
        "auth": dict(hes.signer.stats) if hes.signer is not None else None,
        "out_of_order": int(received != sorted(received)),
        "queue_dropped": tcp.get("queue_dropped"),
        "reconnects": hes.stats["connections"] - 1,
        "faults": faults.counts if faults else {},
        "shim_faults": system.shim is not None,
        "app_exit": None,
    }
    result.update(_summary_downlink(system, traffic))
    if cuts is not None:
        result.update(_summary_cuts(traffic, lost, cuts, args))
    if getattr(args, "garbage", 0) and system.meter is not None:
        result.update(_summary_garbage(system.meter, status))
    return result


def _summary_downlink(system, traffic):
    """HES -> meter: sent (the HES took it: on MQTT also those queued while its client
    reconnected), received (distinct payloads the meter got), duplicates (further copies:
    a QoS 1 redelivery or a resend on the meter link), lost (sent, never received)."""
    got = [p for p in (system.meter.transparent if system.meter is not None else [])
           if p[:1] == b"D"]
    distinct = set(got)
    return {"downlink_sent": len(traffic.downlink_sent), "downlink_received": len(distinct),
            "downlink_duplicates": len(got) - len(distinct),
            "downlink_lost": len([p for p in traffic.downlink_sent if p not in distinct])}


def verdict(result, app_exit, cuts=None):
    """Add app_exit and `ok`: nothing lost (with power cuts: nothing lost while the app was
    up), no meter send failed, nothing the module sent failed the HES's MAC check
    (auth_failures), the app exited 0 on its own; without faults or power cuts also
    no downlink payload lost (with them the downlink is best effort: a payload in flight
    when the link breaks is gone)."""
    result["app_exit"] = app_exit
    lost = result.get("lost_while_up" if cuts is not None else "lost")
    quiet = not result.get("faults") and cuts is None
    result["ok"] = bool(lost == 0 and not result.get("meter_send_errors") and app_exit == 0
                        and not result.get("auth_failures")
                        and (result.get("downlink_lost") == 0 or not quiet))
    return result


def _summary_garbage(meter_sim, status):
    """What the noisy meter sent between frames, and the app's framing counters (None when the
    app did not answer the status command)."""
    uart = (status or {}).get("uart")
    link = None
    if uart is not None:
        link = dict((key[len("decoder_"):], uart[key]) for key in uart
                    if key.startswith("decoder_"))
    return {"garbage_sent": meter_sim.stats["garbage_bytes"],
            "garbage_bursts": meter_sim.stats["garbage_bursts"], "meter_link": link}


def _summary_cuts(traffic, lost, cuts, args):
    while_up, while_down, sent_down = cuts.split(traffic.sent, traffic.sent_at, lost,
                                                 args.cut_inflight_s)
    return {"power_cuts": len(cuts.windows), "sent_while_down": sent_down,
            "lost_while_down": while_down, "lost_while_up": while_up,
            "down_s": round(sum((end or time.monotonic()) - start
                                for start, end in cuts.windows), 1)}


def _extra_config(args):
    """The dev.json sections the options add (--heap-trace, --dlms, --sign-data)."""
    extra = dict(HEAP_TRACE_CONFIG) if args.heap_trace else {}
    if args.dlms:
        extra.update(DLMS_CONFIG)
    if args.sign_data:
        extra["AUTH"] = {"sign_data": True}
    return extra or None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=0, help="seconds (0: until Ctrl-C)")
    parser.add_argument("--faults", action="store_true", help="inject random link faults")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-every", type=float, default=4.0,
                        help="mean seconds between faults")
    parser.add_argument("--interpreter", choices=["cpython", "micropython"], default="cpython")
    parser.add_argument("--rate", type=float, default=5.0, help="meter payloads per second")
    parser.add_argument("--size", type=int, default=64, help="meter payload bytes")
    parser.add_argument("--downlink", type=float, default=0.5,
                        help="HES payloads per second to the meter")
    parser.add_argument("--dialect", choices=["legacy", "standard"], default="legacy")
    parser.add_argument("--garbage", type=float, default=0.0, metavar="RATE",
                        help="a noisy meter line: this share of the meter's frames (0..1) "
                             "comes after a burst of random octets")
    parser.add_argument("--protocol", default="usr.hes_protocol")
    parser.add_argument("--uplink", choices=["tcp", "mqtt"], default="tcp",
                        help="the cloud link: TCP to the HES, or MQTT through a real broker")
    parser.add_argument("--drain-s", type=float, default=60.0,
                        help="how long to wait for queued data after the run")
    parser.add_argument("--app", metavar="DIR",
                        help="run this app folder (its main.py, dev.json, modules) instead of "
                        "the repo's code/: its UART.port and TCP_SERVER are wired to the "
                        "simulators, the rest of its dev.json is used as it is")
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--keep-flash", action="store_true", help="keep the queue of a past run")
    parser.add_argument("--heap", metavar="SIZE",
                        help="MicroPython's GC heap for the app, e.g. 128K (-X heapsize)")
    parser.add_argument("--app-heap", metavar="SIZE",
                        help="the app's own heap, e.g. 192K, as on the module: the QuecPython "
                             "shim's stand-ins (C in the firmware) are held apart "
                             "(QFRAME_APP_HEAPSIZE, tools/hostrun/board_root.py)")
    parser.add_argument("--sign-data", action="store_true",
                        help="the module signs its records and events (AUTH.sign_data); the "
                             "HES checks them (the summary's auth)")
    parser.add_argument("--heap-trace", action="store_true",
                        help="the app logs its heap per phase (APP.heap_trace, a health report "
                             "every second)")
    parser.add_argument("--dlms", action="store_true",
                        help="configure DLMS-lite (a DLMS section: the meter link, reads on "
                             "demand), so the app loads it; with --uplink mqtt every extension "
                             "is configured (the heap bench's \"all extensions\")")
    parser.add_argument("--mpy", action="store_true",
                        help="run the device code precompiled to .mpy, as `deploy --mpy` does")
    parser.add_argument("--quiet", action="store_true", help="only the final JSON line")
    parser.add_argument("--log", action="store_true",
                        help="the live log on the console instead of the status screen")
    parser.add_argument("--dashboard", default="auto", metavar="PORT|auto|off",
                        help="the HES's web dashboard (auto: port %d, or a free one, with the "
                             "status screen; off otherwise)" % hes_dashboard.DEFAULT_PORT)
    parser.add_argument("--power-cuts", type=int, default=0,
                        help="SIGKILL and reboot the app N times at random moments")
    parser.add_argument("--cut-inflight-s", type=float, default=0.5,
                        help="payloads sent this long before a cut count as sent while down")
    parser.add_argument("--ota", nargs="?", const="next", metavar="VERSION",
                        help="push an app update (default: the next patch version) to the "
                             "running app and show it switch versions (tools/ota/demo.py)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.garbage <= 1.0:
        parser.error("--garbage takes a share of frames, 0..1")
    if args.app:
        if args.uplink != "tcp" or args.ota or args.mpy:
            parser.error("--app runs an app folder over TCP: not with --uplink mqtt, --ota "
                         "or --mpy")
        args.dialect = app_folder_config(args.app).get("UART", {}).get("dialect", "legacy")
    if args.heap:
        os.environ[board_root.HEAPSIZE_ENV] = args.heap
    if args.app_heap:
        os.environ[board_root.APP_HEAPSIZE_ENV] = args.app_heap
    if args.ota:
        from tools.ota import demo
        return demo.main(["--interpreter", args.interpreter] +
                         ([] if args.ota == "next" else ["--version", args.ota]))

    screen_mode = sys.stdout.isatty() and not args.log and not args.quiet
    if args.dashboard == "auto":
        dashboard_port = hes_dashboard.DEFAULT_PORT if screen_mode else None
    else:
        try:
            dashboard_port = hes_dashboard.port_option(args.dashboard)
        except ValueError:
            parser.error("--dashboard takes a port number, auto or off")
    log_path = None
    if screen_mode:
        os.makedirs(args.root, exist_ok=True)
        log_path = os.path.join(args.root, "sim.log")
        log = Log(stream=open(log_path, "w"))
        print("qframe simulation: starting the app (%s); the log goes to %s" % (
            args.interpreter, log_path), flush=True)
    else:
        log = Log(quiet=args.quiet)
    stop_event = threading.Event()
    system = System(args.interpreter, args.root, log, dialect=args.dialect,
                    protocol=args.protocol, control=args.faults, keep_flash=args.keep_flash,
                    uplink=args.uplink, mpy=args.mpy, garbage_rate=args.garbage, seed=args.seed,
                    app=args.app, extra_config=_extra_config(args))
    fleet = Fleet()
    system.hes.add_observer(fleet.observe)       # either uplink's HES (hes.py, mqtt_hes.py)
    watch = sim_screen.LogWatch(fleet)
    log.listeners.append(watch)
    dashboard = screen = faults = traffic = cuts = None
    started = time.monotonic()
    interrupted = False
    try:
        if dashboard_port is not None:
            dashboard = hes_dashboard.start(system.hes, dashboard_port, say=lambda text: (
                print(text, flush=True) if screen_mode else log("sim", text)), fleet=fleet)
        system.start()
        log("sim", "running: %s, meter %s, HES port %d%s" % (
            args.interpreter, system.meter.path if system.meter else "none", system.hes.port,
            ", faults seed %d" % args.seed if args.faults else ""))
        traffic = Traffic(system, args.rate, args.size, args.downlink, stop_event, log).start()
        if args.faults:
            faults = Faults(args.seed, args.fault_every, system.hes, system.shim, log,
                            stop_event, ("flash_full",) if args.power_cuts else ()).start()
        if args.power_cuts:
            cuts = PowerCuts(system, args.power_cuts, args.duration, args.seed, stop_event,
                             log).start()
        if screen_mode:
            screen = sim_screen.StatusScreen(sim_screen.Sampler(
                system, traffic, faults, fleet, watch.counts, started, log_path, cuts,
                dashboard.url if dashboard else None)).start()
        next_report = time.monotonic() + 5
        while not args.duration or time.monotonic() - started < args.duration:
            time.sleep(0.2)
            if time.monotonic() >= next_report:
                next_report += 5
                log("count", "meter_sent=%d hes_received=%d duplicates=%d connections=%d" % (
                    len(traffic.sent), len(system.hes.received), system.hes.stats["duplicates"],
                    system.hes.stats["connections"]))
    except KeyboardInterrupt:
        interrupted = True
        log("sim", "Ctrl-C: stopping")
    if screen is not None:
        screen.stop()
    stop_event.set()
    if cuts is not None:
        cuts.thread.join(90)
    if faults is not None:
        faults.thread.join(10)
        faults.heal()
    if traffic is not None:
        traffic.join()
        sent = set(traffic.sent)
        if cuts is not None:     # what was sent while the app was down may never arrive
            sent = set(p for p, at in zip(traffic.sent, traffic.sent_at)
                       if not cuts.down(at, args.cut_inflight_s))
        drain_s = args.drain_s
        if interrupted and screen_mode:
            drain_s = min(drain_s, CTRL_C_DRAIN_S)
            print("Ctrl-C: stopping; up to %.0f s for the module's queue to reach the HES "
                  "(Ctrl-C again: do not wait)" % drain_s, flush=True)
        elif screen_mode:
            print("%d s are up: up to %.0f s for the module's queue to reach the HES" % (
                args.duration, drain_s), flush=True)
        if not interrupted or screen_mode:
            log("sim", "draining: waiting for %d payloads" % len(traffic.sent))
            try:
                drain_end = time.monotonic() + drain_s
                system.hes.wait_for(lambda h: sent <= set(h.received), drain_s)
                if system.meter is not None:        # the HES's last payloads to the meter
                    down = set(traffic.downlink_sent)
                    system.meter.wait_for(lambda: down <= set(system.meter.transparent),
                                          max(0.0, drain_end - time.monotonic()))
            except KeyboardInterrupt:
                pass
    elapsed = time.monotonic() - started
    try:
        result = summarize(system, traffic, faults, args, elapsed, cuts) if traffic else {}
    finally:                # the app (its own session) must not outlive a failed summary
        app_exit = system.stop()
    verdict(result, app_exit, cuts)
    if dashboard is not None:
        dashboard.stop()
    if screen_mode and traffic is not None:
        print(sim_screen.summary_text(result, log_path, watch.counts))
    print(json.dumps(result, sort_keys=True))
    return 0 if traffic is not None and result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
