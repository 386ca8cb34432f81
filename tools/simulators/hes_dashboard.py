"""The simulated HES's web dashboard: every module that connected, live, and a command box.

    dash = Dashboard(hes, port=8080).start()     # dash.url; hes: a HesSim (running or not)
    dash.stop()

The page (hes_dashboard.html beside this file, no build step) shows a table of modules (link
state and for how long, address, uptime, DATA frames, last sequence number, duplicates, queue
and drops from the last heartbeat, reconnects, the latest meter data and event), the activity
log (link changes, meter data, events, commands and replies) and the HES's own counters. Both
tables filter (the box above them) and sort (click a column). Updates arrive over a websocket
about every UPDATE_S. The command box sends "NAME [ARGS]" (ARGS: JSON, or plain text) as a
COMMAND to one module or all; each reply (or "no answer") appears under it. Beside the page, the
same server answers a REST API (hes_rest.py: modules, status, commands, DLMS reads).

Fed by HesSim, or mqtt_hes.MqttHesSim for the MQTT uplink, through a narrow interface:
`hes.add_observer(fn)` (link changes and every frame it handled, into a
tools/simulators/fleet.Fleet), `hes.send_command(name, args, dev)`, `hes.wait_reply(id,
timeout)`, `hes.stats`, `hes.received`.

Who may command: the server listens on loopback only (host 127.0.0.1 by default) and answers
only requests whose Host is that address or a loopback name (so a rebound DNS name cannot reach
it). The websocket and the REST API take commands only with the dashboard's `token` (random at
start, printed with the URL; `QFRAME_HES_TOKEN` or `token=` sets it): the page gets it inside
the HTML served from the same origin (a page on another origin cannot read it), the websocket
carries it in its URL (`/ws?token=`), REST clients in `Authorization: Bearer <token>`. A
websocket or a REST request sent from a page (an `Origin` header) must come from this
server's own origin. Refused: 401 (no or wrong token), 403 (another origin or Host), counted in
`dash.refused` by reason.

A new command needs nothing here (the module's command registry decides what it answers);
give it a line in COMMANDS so the page suggests it.
"""
import asyncio
import hmac
import json
import os
import secrets
import threading

from aiohttp import WSMsgType, web

from tools.simulators import hes_rest
from tools.simulators.fleet import COMMAND_TIMEOUT_S, Fleet

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = os.path.join(HERE, "hes_dashboard.html")
DEFAULT_PORT = 8080
UPDATE_S = 0.25
TOKEN_ENV = "QFRAME_HES_TOKEN"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")

# (name, what the module answers): suggestions in the page's command box
COMMANDS = [
    ("ping", "pong: the module's command path works"),
    ("status", "the app's status: every extension's counters, the queue, the link"),
]


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


class Dashboard(object):
    """The web server (aiohttp, in its own thread and event loop) over a HesSim."""

    def __init__(self, hes, host="127.0.0.1", port=DEFAULT_PORT, fleet=None, token=None):
        """fleet: one the caller already feeds from hes (make sim shares its own), else new;
        token: what commands need (else $QFRAME_HES_TOKEN, else a random one)."""
        self.hes = hes
        self.host = host
        self.port = port
        self.token = token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(18)
        self.refused = {"token": 0, "origin": 0, "host": 0}
        self.fleet = fleet
        if fleet is None:
            self.fleet = Fleet()
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

    # ------------------------------------------------------------------ who may ask
    def _hosts(self):
        return ["%s:%d" % (name, self.port) for name in (self.host,) + LOOPBACK_NAMES]

    def _refusal(self, request):
        """None if request may go on, else (HTTP status, why)."""
        if request.host not in self._hosts():
            return "host", 403, "unexpected Host %r: this server answers %s only" % (
                request.host, ", ".join(self._hosts()))
        origin = request.headers.get("Origin")
        guarded = request.path == "/ws" or request.path.startswith("/modules")
        if not guarded:
            return None
        if origin is not None and origin not in ["http://" + h for h in self._hosts()]:
            return "origin", 403, "requests from %s are refused (same origin only)" % origin
        given = request.query.get("token", "") if request.path == "/ws" else \
            request.headers.get("Authorization", "")[len("Bearer "):]
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return "token", 401, "a token is needed (Authorization: Bearer <token>; the " \
                "dashboard prints it with its URL)"
        return None

    @web.middleware
    async def _guard(self, request, handler):
        refusal = self._refusal(request)
        if refusal is None:
            return await handler(request)
        what, status, why = refusal
        self.refused[what] += 1
        return web.json_response({"error": why}, status=status)

    async def _open(self):
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._page)
        app.router.add_get("/ws", self._socket)
        app.router.add_get("/state.json", self._state)
        app.router.add_routes(hes_rest.routes(self.hes, self.fleet))
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
        with open(PAGE) as f:
            page = f.read().replace("{{QFRAME_TOKEN}}", self.token)
        return web.Response(text=page, content_type="text/html",
                            headers={"Cache-Control": "no-store"})

    async def _state(self, request):
        return web.json_response(self._view())

    def _view(self, after_id=0):
        view = self.fleet.view(after_id, dict(self.hes.stats, received=len(self.hes.received)))
        view["commands"] = COMMANDS
        return view

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


def start(hes, port=DEFAULT_PORT, host="127.0.0.1", say=print, fleet=None):
    """A dashboard on port, or on a free port when that one is taken (said); None if the port
    is None (disabled)."""
    if port is None:
        return None
    try:
        dashboard = Dashboard(hes, host, port, fleet).start()
    except OSError as exc:
        if not port:
            raise
        say("dashboard: port %d is taken (%s): using a free port" % (port, exc.strerror))
        dashboard = Dashboard(hes, host, 0, fleet).start()
    say("HES dashboard: %s (REST: Authorization: Bearer %s)" % (dashboard.url, dashboard.token))
    return dashboard


def port_option(text):
    """argparse type of --dashboard: a port number, or off/none/no to disable."""
    if text.lower() in ("off", "none", "no"):
        return None
    return int(text)
