"""What the simulated HES has seen of each module: link state, counters, queue, latest meter
data and events, an activity log, and the commands sent with their replies.

    fleet = Fleet()
    hes.add_observer(fleet.observe)      # tools/simulators/hes.py feeds it from its threads
    fleet.view()                         # {"modules": [row, ...], "log": [entry, ...], ...}

Shown by the HES's web dashboard (hes_dashboard.py) and by `make sim`'s status screen
(sim_screen.py). Thread-safe; no I/O.
"""
import collections
import json
import threading
import time

from tools.simulators.condwait import wait_on
from tools.simulators.hes_wire import DATA, EVENT, HEARTBEAT, REGISTER, RESPONSE

COMMAND_TIMEOUT_S = 10.0
LOG_SIZE = 500
PREVIEW = 48


def preview(payload):
    """Meter data as a person reads it: text when it is printable, else hex; cut to PREVIEW."""
    try:
        text = payload.decode("ascii")
        printable = all(32 <= ord(c) < 127 for c in text)
    except UnicodeDecodeError:
        printable = False
    text = text if printable else payload.hex(" ")
    return text if len(text) <= PREVIEW else text[:PREVIEW - 3] + "..."


class Fleet(object):
    """What the HES has seen of each module, built from HesSim's observer calls (any thread).

    `modules`: dev -> row (a dict the page shows as is); `log`: the activity, newest last, each
    entry with an increasing `id` (events and command replies share the sequence)."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self.lock = threading.RLock()       # predicates of wait_for read the fleet
        self.changed = threading.Condition(self.lock)
        self.modules = {}
        self.log = collections.deque(maxlen=LOG_SIZE)
        self.hes = {"listening": False, "port": None}
        self.version = 0
        self._next_id = 0
        self._pending = {}          # command id -> {"cmd", "dev", "t", "expected", "replies"}

    # ------------------------------------------------------------------ HesSim's feed
    def observe(self, kind, client, data):
        with self.lock:
            if kind == "listening":
                self.hes.update(listening=True, port=data)
                self._add("hes", None, "HES listening on port %s" % data)
            elif kind == "stopped":
                self.hes["listening"] = False
                self._add("hes", None, "HES stopped")
            elif kind == "frame":
                self._frame(client, data[0], data[1])
            elif kind == "disconnected" and client.key:
                self._down(client, data)
            self.version += 1
            self.changed.notify_all()

    def wait_for(self, predicate, timeout):
        """Wait until predicate(self) is true (re-checked on every change the HES reports);
        its last value."""
        return wait_on(self.changed, lambda: predicate(self), timeout)

    def module(self, dev):
        """A copy of dev's row, or None."""
        with self.lock:
            row = self.modules.get(dev)
            return None if row is None else dict(row)

    def _row(self, dev):
        row = self.modules.get(dev)
        if row is None:
            row = {"dev": dev, "state": "down", "since": self.clock(), "addr": "", "epoch": None,
                   "app": "", "meter": "", "up_s": None, "up_at": None, "queued": None,
                   "dropped": None, "connections": 0, "live": 0, "data": 0, "last_seq": None,
                   "duplicates": 0, "heartbeats": 0, "events": 0, "last_data": None,
                   "last_event": None}
            self.modules[dev] = row
        return row

    def _frame(self, client, kind, body):
        dev = client.key[0] if client.key else None
        if dev is None:
            return
        row = self._row(dev)
        now = self.clock()
        if kind == REGISTER:
            info = json.loads(body)
            row["connections"] += 1
            row["live"] += 1
            row.update(state="up", since=now, addr="%s:%d" % client.addr[:2],
                       epoch=info.get("epoch"), app=info.get("app", ""),
                       meter=info.get("meter", ""))
            self._report(row, info, now)
            self._add("up", dev, "registered from %s, epoch %s%s" % (
                row["addr"], row["epoch"], ", reconnect %d" % (row["connections"] - 1)
                if row["connections"] > 1 else ""))
        elif kind == HEARTBEAT:
            row["heartbeats"] += 1
            self._report(row, json.loads(body), now)
        elif kind == DATA:
            seq = int.from_bytes(body[:4], "big")
            row["data"] += 1
            if row["last_seq"] is not None and seq <= row["last_seq"]:
                row["duplicates"] += 1
                return
            row["last_seq"] = seq
            text = preview(body[4:])
            row["last_data"] = {"t": now, "seq": seq, "size": len(body) - 4, "text": text}
            self._add("data", dev, "seq %d, %d bytes: %s" % (seq, len(body) - 4, text))
        elif kind == EVENT:
            event = json.loads(body)
            text = "%s %s" % (event.get("event"), json.dumps(event.get("data")))
            row["events"] += 1
            row["last_event"] = {"t": now, "text": text}
            self._add("event", dev, text)
        elif kind == RESPONSE:
            self._reply(dev, json.loads(body), now)

    @staticmethod
    def _report(row, info, now):
        """What REGISTER and HEARTBEAT report: uptime, queue depth, drops."""
        if "up" in info:
            row["up_s"], row["up_at"] = info["up"], now
        for key in ("queued", "dropped"):
            if key in info:
                row[key] = info[key]

    def _down(self, client, reason):
        row = self._row(client.key[0])
        row["live"] = max(0, row["live"] - 1)
        if row["live"] == 0:
            row.update(state="down", since=self.clock())
            self._add("down", row["dev"], "link lost: %s" % reason)

    def _add(self, kind, dev, detail, **extra):
        self._next_id += 1
        entry = dict(extra, id=self._next_id, t=self.clock(), kind=kind, dev=dev or "",
                     detail=detail)
        self.log.append(entry)
        return entry

    def note(self, kind, detail, dev=None):
        """An activity entry from outside the HES: a fault injected, an app error line."""
        with self.lock:
            self._add(kind, dev, detail)
            self.version += 1

    # ------------------------------------------------------------------ commands
    def up_modules(self, dev=None):
        with self.lock:
            return [d for d, row in self.modules.items()
                    if row["state"] == "up" and (dev is None or d == dev)]

    def command_sent(self, command_id, name, args, dev, expected):
        with self.lock:
            self._pending[command_id] = {"cmd": name, "dev": dev or "all", "t": self.clock(),
                                         "expected": expected, "replies": 0}
            self._add("command", dev, "#%d %s%s -> %s" % (
                command_id, name, "" if args is None else " " + json.dumps(args),
                dev or "all modules"))
            self.version += 1

    def command_failed(self, name, dev, error):
        """A command that could not be sent: its 'reply' says why."""
        with self.lock:
            self._add("reply", dev, "%s: %s" % (name, error), reply={
                "id": None, "cmd": name, "dev": dev or "all", "ok": False, "error": error})
            self.version += 1

    def _reply(self, dev, reply, now):
        pending = self._pending.get(reply.get("id"))
        ms = None
        if pending is not None:
            pending["replies"] += 1
            ms = round((now - pending["t"]) * 1000, 1)
            if pending["replies"] >= pending["expected"]:
                del self._pending[reply.get("id")]
        reply = dict(reply, dev=dev, ms=ms)
        self._add("reply", dev, "#%s %s %s%s" % (
            reply.get("id"), reply.get("cmd"), "ok" if reply.get("ok") else "failed",
            " in %s ms" % ms if ms is not None else ""), reply=reply)

    def expire(self, timeout=COMMAND_TIMEOUT_S):
        """Commands without every answer after timeout get a 'no answer' reply."""
        with self.lock:
            now = self.clock()
            for command_id in [i for i, p in self._pending.items() if now - p["t"] > timeout]:
                pending = self._pending.pop(command_id)
                if pending["replies"] == 0:
                    error = "no answer within %.0f s" % timeout
                    self._add("reply", pending["dev"], "#%d %s: %s" % (
                        command_id, pending["cmd"], error), reply={
                        "id": command_id, "cmd": pending["cmd"], "dev": pending["dev"],
                        "ok": False, "error": error})
                    self.version += 1

    # ------------------------------------------------------------------ the page's view
    def view(self, after_id=0, stats=None):
        """What the page shows: modules, HES state and the log entries after after_id."""
        with self.lock:
            return {"type": "update", "now": self.clock(), "hes": dict(self.hes, stats=stats),
                    "modules": [dict(row) for row in self.modules.values()],
                    "log": [entry for entry in self.log if entry["id"] > after_id]}
