"""The simulated HES's REST API, served by its web dashboard's server (hes_dashboard.py) on the
same loopback port: what a head-end integration reads and sends, as JSON.

    GET  /modules                      {"modules": [row, ...]}: every module the HES has seen
    GET  /modules/{id}                 {"module": row}: one module as the HES sees it
    GET  /modules/{id}/status          {"reply": ...}: the module's own `status` command
    POST /modules/{id}/commands        body {"cmd": NAME, "args": ANY, "timeout_s": S}:
                                       {"reply": ...}: the module's answer to the command
    GET  /modules/{id}/dlms/{obis}     {"reply": ...}: `dlms.read` of a meter object through
                                       the module (?attr=N, default 2: the value)

A row is the dashboard's (tools/simulators/fleet.py: state, since, addr, epoch, uptime, data
frames, last_seq, duplicates, queued, dropped, connections, latest data and event). A reply
is the module's RESPONSE as it came ({"id", "cmd", "ok", "result"} or {..., "ok": false,
"error"}). Errors answer {"error": text} with 400 (bad JSON, no cmd, bad OBIS or attr), 404 (no
such module), 409 (the module is not connected), 502 (the module answered ok false: its reply
is included) or 504 (no reply within timeout_s, default fleet.COMMAND_TIMEOUT_S).

Works over either uplink: the HES object gives `send_command(name, args, dev)` -> id and
`wait_reply(id, timeout)` (HesSim, mqtt_hes.MqttHesSim).
"""
import asyncio
import re

from aiohttp import web

from tools.simulators.fleet import COMMAND_TIMEOUT_S

MAX_TIMEOUT_S = 120.0
# 'A.B.C.D.E.F', 'A-B:C.D.E.F' (F may be left out, as the module allows) or 12 hex digits
OBIS = re.compile(r"^(\d{1,3}[.\-:*&]){4,5}\d{1,3}$|^[0-9a-fA-F]{12}$")


class _Failure(Exception):
    def __init__(self, status, error, **extra):
        Exception.__init__(self, error)
        self.status = status
        self.body = dict(extra, error=error)


def routes(hes, fleet):
    """The API's aiohttp routes over hes (a HesSim or MqttHesSim) and the fleet it feeds."""
    api = _Api(hes, fleet)
    return [web.get("/modules", api.modules),
            web.get("/modules/{dev}", api.module),
            web.get("/modules/{dev}/status", api.status),
            web.post("/modules/{dev}/commands", api.command),
            web.get("/modules/{dev}/dlms/{obis}", api.dlms_read)]


def _answering(handler):
    """Turn a _Failure into its JSON error response."""
    async def wrapped(self, request):
        try:
            return web.json_response(await handler(self, request))
        except _Failure as failure:
            return web.json_response(failure.body, status=failure.status)
    return wrapped


class _Api(object):
    def __init__(self, hes, fleet):
        self.hes = hes
        self.fleet = fleet

    @_answering
    async def modules(self, request):
        return {"modules": self.fleet.view()["modules"]}

    @_answering
    async def module(self, request):
        return {"module": self._row(request.match_info["dev"])}

    @_answering
    async def status(self, request):
        return await self._ask(request.match_info["dev"], "status", None, COMMAND_TIMEOUT_S)

    @_answering
    async def command(self, request):
        try:
            body = await request.json()
        except ValueError:
            raise _Failure(400, "the body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("cmd"), str) or not body["cmd"]:
            raise _Failure(400, 'the body needs "cmd": the command\'s name')
        timeout = body.get("timeout_s", COMMAND_TIMEOUT_S)
        if not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT_S:
            raise _Failure(400, "timeout_s must be a number of seconds in (0, %g]"
                           % MAX_TIMEOUT_S)
        return await self._ask(request.match_info["dev"], body["cmd"], body.get("args"),
                               timeout)

    @_answering
    async def dlms_read(self, request):
        obis = request.match_info["obis"]
        if not OBIS.match(obis):
            raise _Failure(400, "not an OBIS code: %r (e.g. 1.0.1.8.0.255 or 1-0:1.8.0.255)"
                           % obis)
        args = {"obis": obis}
        if "attr" in request.query:
            try:
                args["attr"] = int(request.query["attr"])
            except ValueError:
                args["attr"] = 0
            if not 1 <= args["attr"] <= 255:
                raise _Failure(400, "attr must be an attribute number 1..255")
        return await self._ask(request.match_info["dev"], "dlms.read", args, COMMAND_TIMEOUT_S)

    def _row(self, dev):
        row = self.fleet.module(dev)
        if row is None:
            raise _Failure(404, "no module %r (GET /modules lists them)" % dev)
        return row

    async def _ask(self, dev, name, args, timeout):
        """Send name to dev, await its reply off the event loop; the reply or a _Failure."""
        if self._row(dev)["state"] != "up":
            raise _Failure(409, "module %r is not connected" % dev)
        command_id = self.hes.send_command(name, args, dev)
        self.fleet.command_sent(command_id, name, args, dev, 1)
        reply = await asyncio.get_running_loop().run_in_executor(
            None, self.hes.wait_reply, command_id, timeout)
        if reply is None:
            raise _Failure(504, "no reply from %r to %s within %g s" % (dev, name, timeout))
        if not reply.get("ok"):
            raise _Failure(502, "the module answered %s: %s" % (name, reply.get("error")),
                           reply=reply)
        return {"reply": reply}
