"""What goes wrong in `make sim`: link faults drawn from a seed (`Faults`: HES-side drops,
restarts and refusals, and through the shim's control server network outages, PDP, SIM, DNS,
socket resets and a full flash) and power cuts of the app process (`PowerCuts`)."""
import random
import threading
import time

SHIM_COMMANDS = {   # fault: (start, end, shortest and longest hold in s)
    "outage": ("network down", "network up", 1.0, 6.0),
    "pdp": ("pdp down", "pdp up", 0.5, 3.0),
    "sim": ("sim out", "sim in", 0.5, 3.0),
    "dns": ("dns fail on", "dns fail off", 0.5, 3.0),
    "flash_full": ("flash free 0", "flash free none", 1.0, 5.0),
}
SHIM_FAULTS = tuple(sorted(SHIM_COMMANDS)) + ("socket_reset",)
HES_FAULTS = ("drop", "server_restart", "refuse")


class Faults(object):
    """Random link faults from a seed, one at a time, each undone before the next."""

    def __init__(self, seed, every_s, hes, shim, log, stop_event, exclude=()):
        self.rng = random.Random(seed)
        self.every_s = every_s
        self.hes = hes
        self.shim = shim
        self.log = log
        self.stop_event = stop_event
        self.counts = {}
        self.current = None       # the fault in progress
        kinds = list(HES_FAULTS)
        if shim is not None:
            kinds += list(SHIM_FAULTS)
        self.kinds = [kind for kind in kinds if kind not in exclude]
        self.thread = threading.Thread(target=self._run, daemon=True, name="faults")

    def start(self):
        self.thread.start()
        return self

    def _hold(self, low, high):
        self.stop_event.wait(self.rng.uniform(low, high))

    def _run(self):
        while not self.stop_event.wait(self.rng.expovariate(1.0 / self.every_s)):
            kind = self.rng.choice(self.kinds)
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.current = kind
            self.log("fault", kind)
            try:
                self._inject(kind)
            except Exception as exc:     # a fault that cannot be injected is reported, not fatal
                self.log("fault", "%s failed: %r" % (kind, exc))
            self.current = None
            self.log("fault", "%s over" % kind)

    def _inject(self, kind):
        hes, shim = self.hes, self.shim
        if kind == "drop":
            hes.drop_clients()
        elif kind == "server_restart":
            hes.stop()
            self._hold(0.5, 4.0)
            hes.start()
        elif kind == "refuse":
            hes.refuse = True
            hes.drop_clients()
            self._hold(0.5, 3.0)
            hes.refuse = False
        elif kind == "socket_reset":
            shim.command("reset_sockets")
        else:
            start, end, low, high = SHIM_COMMANDS[kind]
            shim.command(start)
            if kind == "dns":
                hes.drop_clients()          # the reconnect needs DNS
            self._hold(low, high)
            shim.command(end)

    def heal(self):
        """Undo everything (the run is ending)."""
        self.hes.refuse = False
        if self.hes._listener is None:
            self.hes.start()
        if self.shim is not None:
            for kind in SHIM_COMMANDS:
                self.shim.command(SHIM_COMMANDS[kind][1])


class PowerCuts(object):
    """SIGKILL the app at random moments (seeded) and boot it again on the same flash; keeps
    the down windows (cut time, time the restarted app opened its UART)."""

    def __init__(self, system, count, duration_s, seed, stop_event, log):
        self.system = system
        self.rng = random.Random(seed * 7919 + 1)
        step = max(1.0, (duration_s or 10.0 * count) - 2.0) / max(1, count)
        self.at = [1.0 + (i + self.rng.random()) * step for i in range(count)]   # one per step
        self.stop_event = stop_event
        self.log = log
        self.windows = []         # [down_at, up_at or None]
        self.thread = threading.Thread(target=self._run, daemon=True, name="power-cuts")

    def start(self):
        self.started = time.monotonic()
        self.thread.start()
        return self

    def _run(self):
        app = self.system.app
        for at in self.at:
            if self.stop_event.wait(max(0.0, self.started + at - time.monotonic())):
                return
            window = [time.monotonic(), None]
            self.windows.append(window)
            app.power_cut()
            self.log("power", "cut %d/%d" % (len(self.windows), len(self.at)))
            self.stop_event.wait(self.rng.uniform(0.2, 1.5))     # off time
            app.start()
            if app.wait_line(self.system.uart_open(), 60) is None:
                self.log("power", "the app did not come back up")
                return
            window[1] = time.monotonic()
            self.log("power", "up again after %.1f s" % (window[1] - window[0]))
            if self.system.shim is not None:
                self.system.shim.close()
                if not self.system.shim.connect(10.0):
                    self.log("power", "shim control server not back: shim faults off")

    def down(self, at, inflight_s):
        """Was a payload sent at `at` sent while the app was down (or just before a cut)?"""
        for start, end in self.windows:
            if start - inflight_s <= at and (end is None or at <= end):
                return True
        return False

    def split(self, sent, sent_at, lost, inflight_s):
        """(lost while up, lost while down) and how many payloads were sent while down."""
        lost_set = set(lost)
        while_up = while_down = sent_down = 0
        for payload, at in zip(sent, sent_at):
            is_down = self.down(at, inflight_s)
            sent_down += is_down
            if payload in lost_set:
                if is_down:
                    while_down += 1
                else:
                    while_up += 1
        return while_up, while_down, sent_down
