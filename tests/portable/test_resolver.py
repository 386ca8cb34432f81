"""qframe.resolver: handler registry and dispatch (CPython and MicroPython)."""
from checks import raises
from usr.qframe import logging
from usr.qframe.codecs import meter
from usr.qframe.protocols.resolver import Resolver
from usr.qframe.codecs.rfc1662 import Frame


def _get(pid):
    return Frame(0x2200, meter.CMD_GET, bytes((pid & 0xFF, pid >> 8)))


def _set(pid, value=b"\x01"):
    return Frame(*meter.set_request(pid, value))


def _logged(fn, *args):
    """Run fn(*args); return (its result, the log lines emitted meanwhile)."""
    lines = []

    def listener(level, line):
        lines.append(line)
    logging.add_listener(listener)
    try:
        return fn(*args), lines
    finally:
        logging.remove_listener(listener)


def test_most_specific_handler_wins():
    resolver = Resolver()
    calls = []

    @resolver.register(0x2200)
    def any_parameter(frame):
        calls.append("protocol")

    @resolver.register(0x2200, cmd=meter.CMD_GET)
    def any_get(frame):
        calls.append("cmd")

    @resolver.register(0x2200, cmd=meter.CMD_GET, pid=meter.PID_CSQ)
    def csq(frame):
        calls.append("pid")
        return meter.get_response(meter.PID_CSQ, b"\x15")

    assert resolver.dispatch(_get(meter.PID_CSQ)) == (0x2200, 0xC4, b"\x03\x80\x01\x15")
    assert resolver.dispatch(_get(meter.PID_METER_SERIAL)) is None
    assert resolver.dispatch(_set(meter.PID_CSQ)) is None
    assert resolver.dispatch(Frame(0x2200, meter.CMD_GET, b"")) is None  # no PID: cmd level
    assert calls == ["pid", "cmd", "protocol", "cmd"]
    assert resolver.stats["dispatched"] == 4 and resolver.stats["replies"] == 1
    assert resolver.stats["handled"] == 4 and resolver.stats["unhandled"] == 0


def test_decorator_returns_the_handler_and_add_works():
    resolver = Resolver()

    def handler(frame):
        return meter.transparent(frame.payload + b"!")
    assert resolver.register(0x2100)(handler) is handler
    resolver.add(lambda frame: None, 0x2200, meter.CMD_SET, 0x8007)
    assert resolver.dispatch(Frame(0x2100, 0xBF, b"abc")) == (0x2100, 0xBF, b"abc!")
    assert resolver.handler_for(0x2100, 0xBF) is handler
    assert resolver.handler_for(0x2300, 0xBF) is None


def test_duplicates_raise():
    resolver = Resolver()
    resolver.register(0x2100)(lambda f: None)
    resolver.register(0x2200, cmd=0xC0)(lambda f: None)
    resolver.register(0x2200, cmd=0xC0, pid=0x8003)(lambda f: None)
    message = str(raises(ValueError, resolver.register(0x2100), lambda f: None))
    assert "0x2100" in message
    raises(ValueError, resolver.register(0x2200, cmd=0xC0), lambda f: None)
    message = str(raises(ValueError, resolver.register(0x2200, cmd=0xC0, pid=0x8003),
                         lambda f: None))
    assert "0x8003" in message
    raises(ValueError, resolver.register, 0x2200, None, 0x8003)  # PID without cmd
    raises(ValueError, resolver.add, lambda f: None, 0x10000)
    raises(ValueError, resolver.add, lambda f: None, 0x2200, 0x100)
    raises(ValueError, resolver.add, lambda f: None, 0x2200, 0xC0, -1)
    resolver.register(0x2200, cmd=0xC0, pid=0x8005)(lambda f: None)  # other keys are fine
    resolver.register(0x2200)(lambda f: None)


def test_resolvers_share_nothing():
    first = Resolver()
    second = Resolver()
    first.register(0x2100)(lambda f: meter.transparent(b"first"))
    second.register(0x2100)(lambda f: meter.transparent(b"second"))  # no duplicate error
    assert first.dispatch(Frame(0x2100, 0xBF, b""))[2] == b"first"
    assert second.dispatch(Frame(0x2100, 0xBF, b""))[2] == b"second"
    assert first.stats["dispatched"] == 1 and second.stats["dispatched"] == 1


def test_unregistered_get_and_set_are_answered_with_failures():
    resolver = Resolver()
    reply, lines = _logged(resolver.dispatch, _get(0x8005))
    assert reply == (0x2200, meter.CMD_GET_ERROR, b"\x05\x80\x01\x0c")
    assert any("no handler" in line and "0x8005" in line for line in lines), lines
    reply = resolver.dispatch(_set(0x8007))
    assert reply == (0x2200, meter.CMD_SET_RESPONSE, b"\x07\x80\x01\x0c")
    assert resolver.dispatch(Frame(*meter.event(0x3001, b""))) == meter.event_response(0x0C)
    assert resolver.stats["unhandled"] == 3 and resolver.stats["failure_responses"] == 3


def test_unregistered_others_are_logged_and_counted():
    resolver = Resolver()
    for frame in (Frame(0x2100, 0xBF, b"apdu"), Frame(0x2300, 0x01, b""),
                  Frame(*meter.get_response(0x2801, b"\x01")),
                  Frame(0x2200, meter.CMD_GET, b"\x01")):  # a GET without a whole PID
        reply, lines = _logged(resolver.dispatch, frame)
        assert reply is None
        assert len(lines) == 1 and "WARNING" in lines[0], lines
    assert resolver.stats["unhandled"] == 4 and resolver.stats["failure_responses"] == 0


def test_handler_exceptions_are_isolated():
    resolver = Resolver()

    @resolver.register(0x2200, cmd=meter.CMD_GET, pid=meter.PID_CSQ)
    def broken(frame):
        raise RuntimeError("modem busy")

    @resolver.register(0x2100)
    def broken_too(frame):
        raise KeyError("x")

    @resolver.register(0x2200, cmd=meter.CMD_GET, pid=meter.PID_METER_SERIAL)
    def fine(frame):
        return meter.get_response(meter.PID_METER_SERIAL, b"42")

    reply, lines = _logged(resolver.dispatch, _get(meter.PID_CSQ))
    assert reply == meter.get_error(meter.PID_CSQ)
    assert any("ERROR" in line and "RuntimeError" in line and "modem busy" in line
               for line in lines), lines
    assert resolver.dispatch(Frame(0x2100, 0xBF, b"")) is None
    assert resolver.dispatch(_get(meter.PID_METER_SERIAL)) == meter.get_response(0x8005, b"42")
    assert resolver.stats["handler_errors"] == 2 and resolver.stats["handled"] == 1
    assert resolver.stats["failure_responses"] == 1


def test_bad_replies_are_counted_and_answered():
    resolver = Resolver()
    resolver.register(0x2200, cmd=meter.CMD_SET)(lambda f: [0x2200, 0xC5, b""])
    resolver.register(0x2100)(lambda f: (0x2100, 0xBF, "text"))
    assert resolver.dispatch(_set(0x8007)) == meter.set_response(0x8007, meter.ACK_FAILURE)
    assert resolver.dispatch(Frame(0x2100, 0xBF, b"")) is None
    assert resolver.stats["bad_replies"] == 2 and resolver.stats["replies"] == 0
