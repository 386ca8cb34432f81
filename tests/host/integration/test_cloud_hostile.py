"""A faulty or hostile HES: malformed commands are answered `ok: false` on a link that keeps
acknowledging, a framing error resets the connection cleanly, and an unexpected exception in
the receive path fails the connection with its cause logged; the link recovers every time."""
import pytest

pytest.importorskip("usocket", reason="needs the QuecPython shim (tools/shim)")

from cloud_helpers import budget, rig  # noqa: E402,F401 (rig: fixture)
from tools.simulators.hes_wire import COMMAND  # noqa: E402
from usr.qframe import logging as qlogging  # noqa: E402

BAD_COMMANDS = [b'{"cmd": {}}', b'{"cmd": []}', b'{"id": "b1"}', b"[" * 1000 + b"]" * 1000,
                b'{"id": ' + b"9" * 400 + b', "cmd": "ping"}', b'{"cmd": "\xff"}', b"\x00\x01",
                b'{"id": "b7", "cmd": "ping", "args": ' + b"{\"a\": " * 600 + b"1" + b"}" * 600
                + b"}"]


def _reconnects_and_delivers(r):
    assert r.hes.wait_for(lambda h: h.stats["connections"] >= 2, budget(
        r.tcp_config["backoff_cap_s"], r.tcp_config["connect_timeout"]))
    r.publish(5)
    assert r.wait_delivered(5)
    r.check_exact()


def test_a_hes_repeating_bad_commands_does_not_stop_acks(rig):
    r = rig().start()
    rounds = 5
    for round_index in range(rounds):
        for body in BAD_COMMANDS:
            assert r.hes.send_frame(COMMAND, body) == 1
        r.publish(10)
    expected = rounds * len(BAD_COMMANDS)
    assert r.hes.wait_for(lambda h: len(h.replies) >= expected, 5), "replies missing"
    assert r.wait_delivered(5)
    r.check_exact()
    assert r.wait(lambda: len(r.tcp.queue) == 0, 2), "acks stopped"
    assert all(reply["ok"] is False and reply["error"] for reply in r.hes.replies)
    assert r.hes.stats["connections"] == 1 and r.tcp.stats["link_errors"] == 0
    assert r.app.commands.stats["rejected"] == expected
    assert r.hes.command("ping")["result"] == "pong"      # and good ones still work


def test_a_framing_error_resets_the_connection_and_the_link_recovers(rig):
    r = rig().start()
    r.hes.send_frame(0x55, b"garbage")
    assert r.wait(lambda: r.tcp.stats["protocol_errors"] == 1, 2)
    _reconnects_and_delivers(r)
    assert "protocol error" in r.topics("tcp.disconnected")[0][2]


def test_an_unexpected_exception_fails_the_connection_loudly_and_the_link_recovers(rig):
    r = rig().start()
    lines = []
    token = qlogging.add_listener(lambda level, line: lines.append(line))
    session = r.tcp.session
    real_receive = session.receive
    calls = []

    def broken_once(data, now_ms):
        if not calls:
            calls.append(data)
            raise KeyError("planted bug")
        return real_receive(data, now_ms)

    session.receive = broken_once
    try:
        r.hes.send_data(b"x")
        assert r.wait(lambda: r.tcp.stats["link_exceptions"] == 1, 2)
        _reconnects_and_delivers(r)
        assert any("receive path failed" in line and "planted bug" in line for line in lines)
        assert "KeyError" in r.topics("tcp.disconnected")[0][2]
    finally:
        qlogging.remove_listener(token)
