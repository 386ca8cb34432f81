"""`make sim`'s live status screen: what a person reads at a glance, redrawn in place.

    screen = StatusScreen(gather, sys.stdout).start()   # redraws every REFRESH_S
    screen.stop()                                       # the terminal as it was
    print(summary_text(result, extra))                  # after Ctrl-C or the end of the run

`gather()` returns a snapshot (see `snapshot()`, which builds it from the running system):
link state and for how long, reconnects, meter frames/s each way, the module's queue depth
(from its last heartbeat), faults so far and the one in progress, duplicates/gaps/app errors,
the last readings (meter -> HES) and the last events. `render(snap, width, height)` is the pure
text of one screen, so tests need no terminal. The screen uses the terminal's alternate buffer
(like `top` or `less`): the shell's scrollback stays clean and the summary prints below it.
"""
import shutil
import sys
import threading
import time

REFRESH_S = 0.5
RATE_WINDOW_S = 5.0
GREEN, RED, YELLOW, BOLD, DIM, RESET = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[1m", "\x1b[2m", \
    "\x1b[0m"
ENTER, LEAVE = "\x1b[?1049h\x1b[?25l", "\x1b[?25h\x1b[?1049l"   # alternate screen, cursor


def duration(seconds):
    """0:01:23"""
    seconds = int(max(0, seconds))
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


def clock(t):
    return time.strftime("%H:%M:%S", time.localtime(t))


class Rate(object):
    """Events per second of a growing counter, over the last RATE_WINDOW_S."""

    def __init__(self, window_s=RATE_WINDOW_S, clock=time.monotonic):
        self.window_s = window_s
        self.clock = clock
        self.samples = []

    def __call__(self, count):
        now = self.clock()
        self.samples.append((now, count))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window_s:
            self.samples.pop(0)
        first_t, first = self.samples[0]
        return (count - first) / (now - first_t) if now > first_t else 0.0


class Sampler(object):
    """Builds snapshots from the running sim (tools/simulators/system.py's objects)."""

    def __init__(self, system, traffic, faults, fleet, app_lines, started, log_path, cuts=None,
                 dashboard_url=None):
        self.system = system
        self.traffic = traffic
        self.faults = faults
        self.fleet = fleet
        self.app_lines = app_lines            # {"ERROR": n, "WARNING": n}, counted by the log
        self.started = started
        self.log_path = log_path
        self.cuts = cuts                      # system.PowerCuts, or None
        self.dashboard_url = dashboard_url
        self.up_rate = Rate()
        self.down_rate = Rate()

    def __call__(self):
        system, traffic, hes = self.system, self.traffic, self.system.hes
        view = self.fleet.view()
        now_wall = view["now"]
        module = view["modules"][0] if view["modules"] else None
        meter_got = len(system.meter.transparent) if system.meter is not None else 0
        link = {"state": "connecting", "since_s": time.monotonic() - self.started,
                "module_up_s": None, "reconnects": max(0, hes.stats["connections"] - 1),
                "hes": "%s:%s" % (hes.host, hes.port), "listening": view["hes"]["listening"]}
        queue = None
        if module is not None:
            link.update(state=module["state"], since_s=now_wall - module["since"])
            if module["up_s"] is not None:     # as of the last REGISTER or HEARTBEAT
                link["module_up_s"] = module["up_s"] + (
                    now_wall - module["up_at"] if module["state"] == "up" else 0)
            if module["queued"] is not None:
                queue = {"queued": module["queued"], "dropped": module["dropped"],
                         "age_s": now_wall - module["up_at"] if module["up_at"] else None}
        faults = None
        if self.faults is not None or self.cuts is not None:
            faults = {"counts": dict(self.faults.counts) if self.faults else {},
                      "current": self.faults.current if self.faults else None}
            if self.cuts is not None:
                faults["counts"]["power_cut"] = len(self.cuts.windows)
                if self.cuts.windows and self.cuts.windows[-1][1] is None:
                    faults["current"] = "power cut"
        entries = view["log"]
        return {
            "interpreter": system.interpreter,
            "elapsed_s": time.monotonic() - self.started,
            "log_path": self.log_path,
            "dashboard": self.dashboard_url,
            "link": link,
            "uplink": {"rate": self.up_rate(len(traffic.sent)), "sent": len(traffic.sent),
                       "received": len(hes.received)},
            "downlink": {"rate": self.down_rate(meter_got), "sent": len(traffic.downlink_sent),
                         "received": meter_got},
            "queue": queue,
            "faults": faults,
            "problems": {"duplicates": hes.stats["duplicates"], "gaps": hes.stats["gaps"],
                         "app_errors": self.app_lines.get("ERROR", 0),
                         "app_warnings": self.app_lines.get("WARNING", 0)},
            "readings": [(e["t"], e["detail"]) for e in entries if e["kind"] == "data"][-5:],
            "events": [(e["t"], e["kind"], e["detail"]) for e in entries
                       if e["kind"] not in ("data", "hes")][-8:],
        }


class LogWatch(object):
    """A listener on the sim's log: counts the app's ERROR/WARNING lines (`counts`) and puts
    faults and the app's errors and warnings into the fleet's activity, for the screen."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.counts = {}

    def __call__(self, source, text):
        if source in ("fault", "power"):
            self.fleet.note(source, text)
        elif source == "app":
            words = text.split(" ", 2)               # "<ticks> LEVEL name: message"
            level = words[1] if len(words) > 2 else ""
            if level == "WARNING":
                key = "WARNING"
            elif level in ("ERROR", "CRITICAL") or text.startswith("Traceback"):
                key = "ERROR"
            else:
                return
            self.counts[key] = self.counts.get(key, 0) + 1
            self.fleet.note(key.lower(), words[2] if len(words) > 2 else text)


def _paint(text, code, color):
    return code + text + RESET if color else text


def render(snap, width=100, height=40, color=False):
    """The screen for one snapshot, as text (lines cut to width, at most height lines)."""
    link, up, down = snap["link"], snap["uplink"], snap["downlink"]
    state = link["state"].upper()
    state_color = GREEN if link["state"] == "up" else RED
    lines = [
        _paint("qframe simulation", BOLD, color) + " · %s · running %s · Ctrl-C to stop" % (
            snap["interpreter"], duration(snap["elapsed_s"])),
        "log: %s (--log shows it here)%s" % (
            snap["log_path"], " · HES dashboard: %s" % snap["dashboard"]
            if snap["dashboard"] else ""),
        "",
        " link        %s for %s · module up %s · reconnects %d · HES %s%s" % (
            _paint(state, state_color, color), duration(link["since_s"]),
            duration(link["module_up_s"]) if link["module_up_s"] is not None else "?",
            link["reconnects"], link["hes"],
            "" if link["listening"] else _paint(" (stopped)", RED, color)),
        " meter → HES %5.1f frames/s · sent %d · at the HES %d · not yet %d" % (
            up["rate"], up["sent"], up["received"], max(0, up["sent"] - up["received"])),
        " HES → meter %5.1f frames/s · sent %d · at the meter %d" % (
            down["rate"], down["sent"], down["received"]),
    ]
    queue = snap["queue"]
    if queue is None:
        lines.append(" queue       (no heartbeat yet)")
    else:
        lines.append(" queue       %d queued on the module · %s dropped%s" % (
            queue["queued"], queue["dropped"] if queue["dropped"] is not None else "?",
            " · as of %.0f s ago" % queue["age_s"] if queue["age_s"] is not None else ""))
    faults = snap["faults"]
    if faults is None:
        lines.append(" faults      off (--faults, --power-cuts N inject them)")
    else:
        counts = faults["counts"]
        text = " faults      %d so far" % sum(counts.values())
        if counts:
            text += " (%s)" % ", ".join("%s %d" % (k, counts[k]) for k in sorted(counts))
        if faults["current"]:
            text += " · now: " + _paint(faults["current"], YELLOW, color)
        lines.append(text)
    problems = snap["problems"]
    lines.append(" problems    duplicates %d · gaps %d · app errors %d · app warnings %d" % (
        problems["duplicates"], problems["gaps"], problems["app_errors"],
        problems["app_warnings"]))
    lines += ["", _paint(" last readings (meter → HES)", BOLD, color)]
    lines += ["   %s  %s" % (clock(t), text) for t, text in snap["readings"]] or ["   none yet"]
    lines += ["", _paint(" last events", BOLD, color)]
    lines += ["   %s  %-7s %s" % (clock(t), kind, text) for t, kind, text
              in snap["events"]] or ["   none yet"]
    return "\n".join(_cut(line, width, color) for line in lines[:height])


def _cut(line, width, color):
    """A line no wider than the terminal (escape codes take no room)."""
    if color:
        visible = len(line.replace(GREEN, "").replace(RED, "").replace(YELLOW, "")
                      .replace(BOLD, "").replace(RESET, ""))
        return line if visible <= width else line[:width + len(line) - visible] + RESET
    return line[:width]


class StatusScreen(object):
    """Redraws render(gather()) on stream every REFRESH_S, in the terminal's alternate screen."""

    def __init__(self, gather, stream=sys.stdout, refresh_s=REFRESH_S):
        self.gather = gather
        self.stream = stream
        self.refresh_s = refresh_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sim-screen")

    def start(self):
        self.stream.write(ENTER)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self.stream.write(LEAVE)
        self.stream.flush()

    def draw(self):
        size = shutil.get_terminal_size((100, 40))
        text = render(self.gather(), size.columns, size.lines - 1, color=True)
        # home, each line then clear to its end, clear what is below: no flicker
        self.stream.write("\x1b[H" + text.replace("\n", "\x1b[K\n") + "\x1b[K\x1b[J")
        self.stream.flush()

    def _run(self):
        while True:
            try:
                self.draw()
            except Exception as exc:      # a drawing bug must not end the simulation
                self.stream.write("\x1b[H\x1b[Jstatus screen failed: %r\n" % exc)
                self.stream.flush()
            if self._stop.wait(self.refresh_s):
                return


def summary_text(result, log_path, app_lines):
    """The human summary after the run: the JSON line's figures in words."""
    faults = result.get("faults") or {}
    lines = [
        "qframe simulation stopped after %s (%s)" % (duration(result.get("duration_s", 0)),
                                                      result.get("interpreter")),
        "  meter → HES: %d sent, %d stored at the HES, %d lost, %d duplicates%s" % (
            result.get("meter_sent", 0), result.get("hes_received", 0), result.get("lost", 0),
            result.get("duplicates", 0), " (queue dropped %s)" % result["queue_dropped"]
            if result.get("queue_dropped") else ""),
        "  HES → meter: %d sent, %d received, %d lost, %d duplicates" % (
            result.get("downlink_sent", 0), result.get("downlink_received", 0),
            result.get("downlink_lost", 0), result.get("downlink_duplicates", 0)),
        "  link: %d reconnects; faults: %s" % (
            result.get("reconnects", 0), "%d (%s)" % (sum(faults.values()), ", ".join(
                "%s %d" % (k, faults[k]) for k in sorted(faults))) if faults else "none"),
        "  app: errors %d, warnings %d, exit code %s; log: %s" % (
            app_lines.get("ERROR", 0), app_lines.get("WARNING", 0), result.get("app_exit"),
            log_path),
    ]
    if "power_cuts" in result:
        lines.append("  power cuts: %d (down %.1f s in all); sent while down %d, of which lost "
                     "%d; lost while up %d" % (
                         result["power_cuts"], result["down_s"], result["sent_while_down"],
                         result["lost_while_down"], result["lost_while_up"]))
    if result.get("lost"):
        lines.append("  lost (first): %s" % ", ".join(result.get("lost_first", [])))
    lines.append("  result: %s" % ("ok" if result.get("ok") else "FAILED (ok: false)"))
    return "\n".join(lines)
