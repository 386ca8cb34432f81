"""The app's command registry: named handlers the HES (or any uplink) can call.

    commands = commands_of(app)            # the app's registry (created on first use)
    @commands.register("relay")
    def relay(args):                       # args: whatever the request's "args" held
        return {"closed": True}            # the reply's "result" (JSON-serialisable)
    commands.register("reboot", do_reboot) # the same without a decorator
    reply = commands.execute(b'{"id": 7, "cmd": "relay", "args": null}')
    # -> {"id": 7, "cmd": "relay", "ok": True, "result": {"closed": True}}

The registry belongs to the app (`app.commands`, not an extension: QFrame apps see only the
extensions they added) and `app.status()` reports its counters; `commands_of(app)` creates it
on first use, so any extension (TCP and MQTT uplinks, DLMS, OTA) can register into the same
one in any order.
Every app has `ping` (-> "pong") and `status` (-> app.status()).

`execute(request)` never raises: a request (JSON bytes/str or an already decoded dict) that is
not valid JSON, not UTF-8, not an object, too deep, with a `cmd` that is not a short string, or
an `id` that is not null, a string of at most MAX_ID_CHARS or an int of at most 64 bits, gets
`ok: false` and an `error` saying why (counted as `rejected`); an unknown name `unknown`; a
handler that raises or returns what JSON cannot carry `failed` (the error says why).
`refuse(request, error)` is the reply to a request that could not be run at all (e.g. the
worker pool is full). Handlers run in the caller's thread: the uplinks call execute on the
app's worker pool, outside their locks, so a slow handler (a DLMS read of a silent meter)
holds up only itself; handlers may publish on the bus and queue uplink data.
"""
import ujson

from ..codecs import utf8
from ..logging import getLogger

_log = getLogger("commands")

MAX_ID_CHARS = 64
MAX_NAME_CHARS = 64
MAX_DEPTH = 32
_INT64 = 1 << 63


class CommandRegistry(object):
    """See the module docstring."""

    def __init__(self, app=None):
        self.app = app
        self.stats = {"executed": 0, "ok": 0, "unknown": 0, "failed": 0, "rejected": 0}
        self._handlers = {}
        self.register("ping", _pong)
        self.register("status", self._status)

    def register(self, name, handler=None):
        """Add handler(args) -> result under name; without handler, a decorator.
        A name registered twice raises ValueError."""
        if handler is None:
            def decorate(fn):
                self.register(name, fn)
                return fn
            return decorate
        if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS:
            raise ValueError("a command name is a string of 1..%d chars" % MAX_NAME_CHARS)
        if name in self._handlers:
            raise ValueError("command %r is already registered" % name)
        self._handlers[name] = handler
        return handler

    def unregister(self, name):
        """Remove a command; False if it was not there."""
        return self._handlers.pop(name, None) is not None

    def names(self):
        return sorted(self._handlers)

    def execute(self, request):
        """The reply dict for one request (see the module docstring); never raises."""
        self.stats["executed"] += 1
        command, error = _decode(request)
        if error is not None:
            self.stats["rejected"] += 1
            _log.warning("command rejected: %s", error)
            return {"id": _safe_id(command), "cmd": _safe_name(command), "ok": False,
                    "error": error}
        name = command.get("cmd")
        reply = {"id": command.get("id"), "cmd": name}
        handler = self._handlers.get(name)
        if handler is None:
            self.stats["unknown"] += 1
            reply["ok"] = False
            reply["error"] = "unknown command"
            return reply
        try:
            result = handler(command.get("args"))
        except Exception as exc:
            self.stats["failed"] += 1
            _log.exception("command %s failed", exc, name)
            reply["ok"] = False
            reply["error"] = "%s: %s" % (type(exc).__name__, exc)
            return reply
        problem = _json_problem(result)
        if problem is not None:
            self.stats["failed"] += 1
            _log.error("command %s returned %s", name, problem)
            reply["ok"] = False
            reply["error"] = "result is not JSON: %s" % problem
            return reply
        reply["result"] = result
        reply["ok"] = True
        self.stats["ok"] += 1
        return reply

    def refuse(self, request, error):
        """The reply to a request that was not run (counted as rejected): its id and name
        where they can be read, ok false, error."""
        self.stats["rejected"] += 1
        command, _ = _decode(request)
        return {"id": _safe_id(command), "cmd": _safe_name(command), "ok": False,
                "error": error}

    def _status(self, args):
        return self.app.status() if self.app is not None else {}


def _pong(args):
    return "pong"


def commands_of(app):
    """The app's CommandRegistry (`app.commands`), created and registered on first use."""
    registry = getattr(app, "commands", None)
    if registry is None:
        registry = app.commands = CommandRegistry(app)
    return registry


def _decode(request):
    """(command dict, None) or (partial dict or None, error text)."""
    if isinstance(request, (bytes, bytearray, memoryview)):
        try:
            request = utf8.decode(request)
        except ValueError:
            return None, "command is not UTF-8 text"
    if isinstance(request, str):
        depth = _depth(request)
        if depth > MAX_DEPTH:
            return None, "command nests deeper than %d levels" % MAX_DEPTH
        try:
            request = ujson.loads(request)
        except Exception as exc:
            return None, "command is not valid JSON (%s)" % (type(exc).__name__,)
    if not isinstance(request, dict):
        return None, "command is not a JSON object"
    if request.get("id") is not None and _safe_id(request) is None:
        return request, "id must be null, a string of at most %d chars or a 64-bit int" % (
            MAX_ID_CHARS,)
    if _safe_name(request) is None:
        return request, "cmd must be a string of 1..%d chars" % MAX_NAME_CHARS
    return request, None


def _safe_name(command):
    """The request's command name if it is a short string, else None."""
    name = command.get("cmd") if isinstance(command, dict) else None
    if isinstance(name, str) and 0 < len(name) <= MAX_NAME_CHARS:
        return name
    return None


def _safe_id(command):
    """The request's id if it may be echoed, else None."""
    if not isinstance(command, dict):
        return None
    value = command.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and -_INT64 <= value < _INT64:
        return value
    if isinstance(value, str) and len(value) <= MAX_ID_CHARS:
        return value
    return None


def _json_problem(value):
    """None if value encodes as JSON (plain types, str keys, at most MAX_DEPTH deep), else
    what is wrong. Checked, not tried: MicroPython's ujson writes any object's repr."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return "nested deeper than %d levels" % MAX_DEPTH
        if item is None or isinstance(item, (bool, int, float, str)):
            continue
        if isinstance(item, (list, tuple)):
            for element in item:
                stack.append((element, depth + 1))
        elif isinstance(item, dict):
            for key in item:
                if not isinstance(key, str):
                    return "a %s key" % type(key).__name__
                stack.append((item[key], depth + 1))
        else:
            return "a %s value" % type(item).__name__
    return None


def _depth(text):
    """How deep [ and { nest in JSON text (strings skipped), without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "[" or char == "{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif char == "]" or char == "}":
            depth -= 1
    return deepest
