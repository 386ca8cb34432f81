"""The simulated HES's web dashboard: every module that connected, live, and a command box.

    dash = Dashboard(hes, port=8080).start()     # dash.url; hes: a HesSim (running or not)
    dash.stop()

The page (hes_dashboard.html beside this file, no build step) shows a table of modules (link
state and for how long, address, uptime, DATA frames, last sequence number, duplicates, queue
and drops from the last heartbeat, reconnects, the latest meter data and event), the activity
log (link changes, meter data, events, commands and replies) and the HES's own counters. Both
tables filter (the box above them) and sort (click a column). Updates arrive over a websocket
about every UPDATE_S. The command box sends "NAME [ARGS]" (ARGS: JSON, or plain text) as a
COMMAND to one module or all; each reply (or "no answer") appears under it.

Fed by HesSim through a narrow interface: `hes.add_observer(fn)` (link changes and every frame
it handled), `hes.send_command(name, args, dev)`, `hes.stats`, `hes.host`/`hes.port`.

A new command needs nothing here (the module's command registry decides what it answers);
give it a line in COMMANDS so the page suggests it.
"""
import asyncio
import collections
import json
import os
import threading
import time

from aiohttp import WSMsgType, web

from tools.simulators.hes import DATA, EVENT, HEARTBEAT, REGISTER, RESPONSE

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = os.path.join(HERE, "hes_dashboard.html")
DEFAULT_PORT = 8080
UPDATE_S = 0.25
COMMAND_TIMEOUT_S = 10.0
LOG_SIZE = 500
PREVIEW = 48

# (name, what the module answers): suggestions in the page's command box
COMMANDS = [
    ("ping", "pong: the module's command path works"),
    ("status", "the app's status: every extension's counters, the queue, the link"),
]


def preview(payload):
    """Meter data as a person reads it: text when it is printable, else hex; cut to PREVIEW."""
    try:
        text = payload.decode("ascii")
        printable = all(32 <= ord(c) < 127 for c in text)
    except UnicodeDecodeError:
        printable = False
    text = text if printable else payload.hex(" ")
    return text if len(text) <= PREVIEW else text[:PREVIEW - 3] + "..."


def parse_command(text):
    """'status' -> ('status', None); 'read {"obis": "1.0.1.8.0.255"}' -> (name, dict);
    'name plain words' -> (name, 'plain words'); '' -> (None, None)."""
    words = text.strip().split(None, 1)
    if not words:
        return None, None
    if len(words) == 1:
        return words[0], None
    try:
        return words[0], json.loads(words[1])
    except ValueError:
        return words[0], words[1]


class Fleet(object):
    """What the HES has seen of each module, built from HesSim's observer calls (any thread).

    `modules`: dev -> row (a dict the page shows as is); `log`: the activity, newest last, each
    entry with an increasing `id` (events and command replies share the sequence)."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self.lock = threading.Lock()
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
                    "log": [entry for entry in self.log if entry["id"] > after_id],
                    "commands": COMMANDS}


class Dashboard(object):
    """The web server (aiohttp, in its own thread and event loop) over a HesSim."""

    def __init__(self, hes, host="127.0.0.1", port=DEFAULT_PORT):
        self.hes = hes
        self.host = host
        self.port = port
        self.fleet = Fleet()
        if hes._listener is not None:
            self.fleet.observe("listening", None, hes.port)
        hes.add_observer(self.fleet.observe)
        self._loop = None
        self._thread = None
        self._runner = None
        self._sockets = set()
        self._error = None

    @property
    def url(self):
        return "http://%s:%d/" % (self.host, self.port)

    def start(self, timeout=10.0):
        """Serve (port 0: any free port; self.port is the real one); returns self. Raises
        OSError when the port is taken."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True,
                                        name="hes-dashboard")
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the dashboard did not start within %.0f s" % timeout)
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error
        return self

    def stop(self, timeout=5.0):
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._thread = None

    # ------------------------------------------------------------------ the server thread
    def _serve(self, ready):
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._open())
        except Exception as exc:
            self._error = exc
            ready.set()
            loop.close()
            return
        ready.set()
        pusher = loop.create_task(self._push())
        try:
            loop.run_forever()
        finally:
            pusher.cancel()
            loop.run_until_complete(self._close())
            loop.close()

    async def _open(self):
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/ws", self._socket)
        app.router.add_get("/state.json", self._state)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError:
            await self._runner.cleanup()
            raise
        self.port = self._runner.addresses[0][1]

    async def _close(self):
        for ws in list(self._sockets):
            await ws.close()
        await self._runner.cleanup()

    async def _page(self, request):
        return web.FileResponse(PAGE, headers={"Cache-Control": "no-store"})

    async def _state(self, request):
        return web.json_response(self._view())

    def _view(self, after_id=0):
        return self.fleet.view(after_id, dict(self.hes.stats, received=len(self.hes.received)))

    async def _socket(self, request):
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await ws.send_json(self._view())
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_message(message.data)
        finally:
            self._sockets.discard(ws)
        return ws

    def _on_message(self, text):
        """{"type": "command", "text": "status", "dev": "sim-module-1" or ""} from the page."""
        try:
            message = json.loads(text)
            name, args = parse_command(message.get("text", ""))
            dev = message.get("dev") or None
        except (ValueError, AttributeError):
            return
        if not name:
            return
        expected = len(self.fleet.up_modules(dev))
        if not expected:
            self.fleet.command_failed(name, dev, "%s is not connected" % dev if dev
                                      else "no module is connected")
            return
        command_id = self.hes.send_command(name, args, dev)
        self.fleet.command_sent(command_id, name, args, dev, expected)

    async def _push(self):
        """Every UPDATE_S: what changed, to every page."""
        sent_version, sent_id = -1, 0
        while True:
            await asyncio.sleep(UPDATE_S)
            self.fleet.expire()
            if self.fleet.version == sent_version or not self._sockets:
                continue
            sent_version = self.fleet.version
            view = self._view(sent_id)
            if view["log"]:
                sent_id = view["log"][-1]["id"]
            for ws in list(self._sockets):
                try:
                    await ws.send_json(view)
                except (ConnectionError, RuntimeError):
                    self._sockets.discard(ws)


def start(hes, port=DEFAULT_PORT, host="127.0.0.1", say=print):
    """A dashboard on port, or on a free port when that one is taken (said); None if the port
    is None (disabled)."""
    if port is None:
        return None
    try:
        dashboard = Dashboard(hes, host, port).start()
    except OSError as exc:
        if not port:
            raise
        say("dashboard: port %d is taken (%s): using a free port" % (port, exc.strerror))
        dashboard = Dashboard(hes, host, 0).start()
    say("HES dashboard: %s" % dashboard.url)
    return dashboard


def port_option(text):
    """argparse type of --dashboard: a port number, or off/none/no to disable."""
    if text.lower() in ("off", "none", "no"):
        return None
    return int(text)
