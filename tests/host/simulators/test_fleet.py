"""What the simulated HES has seen of each module (tools/simulators/fleet.py), from HesSim's
observer calls: the model behind the web dashboard and make sim's status screen."""
import json
import struct

from tools.simulators import fleet as fleet_module
from tools.simulators.hes_wire import DATA, EVENT, HEARTBEAT, REGISTER, RESPONSE


class _Client(object):
    """What HesSim hands its observers: a connection's address and (dev, epoch) key."""

    def __init__(self, dev, port=40000):
        self.addr = ("127.0.0.1", port)
        self.key = (dev, 7)


def _fleet():
    clock = [1000.0]
    fleet = fleet_module.Fleet(clock=lambda: clock[0])
    return fleet, clock


def _register(fleet, client, **info):
    fleet.observe("frame", client, (REGISTER, json.dumps(dict(info, dev=client.key[0],
                                                              epoch=7)).encode()))


def test_fleet_follows_a_module_through_register_heartbeat_data_event_and_down():
    fleet, clock = _fleet()
    client = _Client("m1")
    fleet.observe("connected", client, None)          # not registered yet: no row
    assert fleet.view()["modules"] == []
    _register(fleet, client, up=3, queued=4, meter="SN1")
    row = fleet.view()["modules"][0]
    assert (row["state"], row["addr"], row["queued"], row["meter"]) == ("up", "127.0.0.1:40000",
                                                                         4, "SN1")
    clock[0] += 5
    fleet.observe("frame", client, (HEARTBEAT, b'{"up": 8, "queued": 0, "dropped": 2}'))
    fleet.observe("frame", client, (DATA, struct.pack(">I", 1) + b"reading 42"))
    fleet.observe("frame", client, (DATA, struct.pack(">I", 1) + b"reading 42"))   # resent
    fleet.observe("frame", client, (DATA, struct.pack(">I", 2) + b"\x00\x01\xff"))
    fleet.observe("frame", client, (EVENT, b'{"event": "power", "data": "cut"}'))
    row = fleet.view()["modules"][0]
    assert (row["up_s"], row["queued"], row["dropped"], row["heartbeats"]) == (8, 0, 2, 1)
    assert (row["data"], row["duplicates"], row["last_seq"]) == (3, 1, 2)
    assert row["last_data"]["text"] == "00 01 ff"                 # not printable: hex
    assert row["last_event"]["text"] == 'power "cut"'
    clock[0] += 1
    fleet.observe("disconnected", client, "reset by peer")
    row = fleet.view()["modules"][0]
    assert (row["state"], row["since"]) == ("down", 1006.0)
    _register(fleet, _Client("m1", 40001))
    row = fleet.view()["modules"][0]
    assert (row["state"], row["connections"]) == ("up", 2)
    kinds = [entry["kind"] for entry in fleet.view()["log"]]
    assert kinds == ["up", "data", "data", "event", "down", "up"]
    assert [e["id"] for e in fleet.view(after_id=4)["log"]] == [5, 6]


def test_fleet_keeps_a_module_up_while_another_of_its_connections_lives():
    fleet, _ = _fleet()
    old, new = _Client("m1", 1), _Client("m1", 2)
    _register(fleet, old)
    _register(fleet, new)                        # reconnected before the old one was noticed
    fleet.observe("disconnected", old, "timed out")
    assert fleet.view()["modules"][0]["state"] == "up"


def test_fleet_pairs_replies_with_commands_and_says_when_none_came():
    fleet, clock = _fleet()
    client = _Client("m1")
    _register(fleet, client)
    fleet.command_sent(1, "ping", None, "m1", expected=1)
    clock[0] += 0.25
    fleet.observe("frame", client, (RESPONSE, b'{"id": 1, "cmd": "ping", "ok": true, '
                                              b'"result": "pong"}'))
    fleet.command_sent(2, "slow", {"n": 1}, None, expected=1)
    clock[0] += fleet_module.COMMAND_TIMEOUT_S + 1
    fleet.expire()
    fleet.command_failed("ping", "m9", "m9 is not connected")
    replies = [e["reply"] for e in fleet.view()["log"] if e["kind"] == "reply"]
    assert [(r["id"], r["cmd"], r["ok"]) for r in replies] == [
        (1, "ping", True), (2, "slow", False), (None, "ping", False)]
    assert (replies[0]["result"], replies[0]["ms"], replies[0]["dev"]) == ("pong", 250.0, "m1")
    assert replies[1]["error"].startswith("no answer within")
    assert fleet.up_modules() == ["m1"] and fleet.up_modules("m9") == []


def test_preview_shows_text_or_hex_and_cuts_long_data():
    assert fleet_module.preview(b"M0000001....") == "M0000001...."
    assert fleet_module.preview(b"\x00\x01\xff") == "00 01 ff"
    assert fleet_module.preview(b"x" * 100).endswith("...")
    assert len(fleet_module.preview(b"x" * 100)) == fleet_module.PREVIEW


def test_notes_join_the_activity_log():
    fleet, _ = _fleet()
    fleet.note("fault", "outage", dev="m1")
    assert [(e["kind"], e["dev"], e["detail"]) for e in fleet.view()["log"]] == [
        ("fault", "m1", "outage")]
