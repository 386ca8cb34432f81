"""The app's command registry (qframe/protocols/commands.py): registration, dispatch, errors."""
from checks import raises
from usr.qframe import Application
from usr.qframe.protocols.commands import CommandRegistry, commands_of


def test_register_by_decorator_and_by_call_then_execute():
    commands = CommandRegistry()

    @commands.register("double")
    def double(args):
        return args * 2

    commands.register("echo", lambda args: args)
    assert double(4) == 8                           # the decorator returns the function
    assert commands.execute(b'{"id": 1, "cmd": "double", "args": 21}') == {
        "id": 1, "cmd": "double", "ok": True, "result": 42}
    assert commands.execute({"id": "a", "cmd": "echo", "args": [1]})["result"] == [1]
    assert commands.execute('{"cmd": "ping"}')["result"] == "pong"
    assert commands.names() == ["double", "echo", "ping", "status"]


def test_duplicate_and_bad_names_raise():
    commands = CommandRegistry()
    commands.register("x", len)
    raises(ValueError, commands.register, "x", len)
    raises(ValueError, commands.register, "ping", len)
    raises(ValueError, commands.register, "", len)
    raises(ValueError, commands.register, 5, len)
    assert commands.unregister("x") and not commands.unregister("x")
    commands.register("x", len)


def test_unknown_and_failing_commands_answer_ok_false():
    commands = CommandRegistry()

    def broken(args):
        raise RuntimeError("relay stuck")

    commands.register("broken", broken)
    assert commands.execute({"id": 5, "cmd": "nope"}) == {
        "id": 5, "cmd": "nope", "ok": False, "error": "unknown command"}
    reply = commands.execute({"id": 6, "cmd": "broken"})
    assert reply["ok"] is False and "relay stuck" in reply["error"]
    commands.register("bytes", lambda args: {"raw": b"\x00"})
    commands.register("keys", lambda args: {1: "x"})
    assert "bytes value" in commands.execute({"cmd": "bytes"})["error"]
    assert "int key" in commands.execute({"cmd": "keys"})["error"]
    assert commands.stats["unknown"] == 1 and commands.stats["failed"] == 3


def test_hostile_requests_get_a_clear_error():
    commands = CommandRegistry()
    cases = [
        (b'{"cmd": {}}', "cmd must be"), (b'{"cmd": []}', "cmd must be"),
        (b'{"cmd": 7}', "cmd must be"), (b'{"id": 1}', "cmd must be"),
        (b'{"cmd": "' + b"x" * 200 + b'"}', "cmd must be"),
        (b"[1, 2]", "not a JSON object"), (b"nope", "not valid JSON"), (b"", "not valid JSON"),
        (b"\xff\xfe\xfd", "not UTF-8"), (b"[" * 1000 + b"]" * 1000, "deeper than"),
        (b'{"cmd": "ping", "args": ' + b"[" * 1000 + b"]" * 1000 + b"}", "deeper than"),
        (b'{"id": ' + b"9" * 30 + b', "cmd": "ping"}', "id must be"),
        (b'{"id": {"a": 1}, "cmd": "ping"}', "id must be"),
        (b'{"id": "' + b"i" * 65 + b'", "cmd": "ping"}', "id must be"),
        (7, "not a JSON object"), (None, "not a JSON object"),
    ]
    for request, error in cases:
        reply = commands.execute(request)
        assert reply["ok"] is False, request
        assert error in reply["error"], (request, reply["error"])
        assert reply["id"] is None or isinstance(reply["id"], (int, str))
    assert commands.stats["rejected"] == len(cases)
    assert commands.execute(b'{"id": "ok-id", "cmd": "nope"}')["id"] == "ok-id"


def test_the_app_owns_one_registry_any_extension_can_reach():
    app = Application("cmdapp")
    first = commands_of(app)
    assert commands_of(app) is first and app.commands is first
    first.register("hello", lambda args: "hi")
    assert app.commands.execute({"cmd": "hello"})["result"] == "hi"
    status = app.commands.execute({"id": 1, "cmd": "status"})
    assert status["ok"] and status["result"]["commands"]["executed"] == 2
