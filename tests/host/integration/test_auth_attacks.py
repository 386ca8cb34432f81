"""Issue 20's attacks on the cloud link, against the in-process app over real loopback sockets:
a rogue HES (no key) commanding fota / ota / a meter disconnect, a recorded command replayed,
counters reordered, and a module that has no key yet."""
import pytest

pytest.importorskip("usocket", reason="needs the QuecPython shim (tools/shim)")

import json
import socket
import struct

from cloud_helpers import rig  # noqa: F401
from tools.simulators.hes import COMMAND, HesSim
from tools.simulators.hes_auth import SIM_MASTER, HesSigner, command_body, derive_key
from tools.simulators.hes_wire import DATA, REGISTER, frame


def _ran(app, name):
    from usr.qframe.protocols.commands import commands_of
    runs = []
    commands_of(app).unregister(name)
    commands_of(app).register(name, lambda args: runs.append(args) or "done")
    return runs


def test_a_rogue_hes_without_the_key_commands_nothing(rig):
    rogue = HesSim(signer=None).start()
    r = rig(hes=rogue)
    runs = {name: _ran(r.app, name) for name in ("fota", "ota", "dlms.action", "ping")}
    r.start()
    for name, args in (("fota", {"url": "http://attacker/x.bin"}),
                       ("ota", {"url": "http://attacker/m.ota"}),
                       ("dlms.action", {"target": "70/0.0.96.3.10.255/1"}), ("ping", None)):
        reply = rogue.command(name, args)
        assert reply["ok"] is False and "not signed" in reply["error"], reply
    assert all(not calls for calls in runs.values())
    assert r.app.auth.stats["refused_unsigned"] == 4 and r.tcp.stats["auth_refused"] == 4
    assert rogue.stats["replies_unsigned"] == 4          # refusals carry no MAC


def test_the_real_hes_commands_and_its_replies_verify(rig):
    r = rig()
    runs = _ran(r.app, "relay")
    r.start()
    reply = r.hes.command("relay", {"close": True})
    assert reply["ok"] and reply["result"] == "done" and runs == [{"close": True}]
    assert r.hes.stats["replies_verified"] >= 2           # the hello and the relay reply
    assert r.hes.stats["replies_bad"] == 0


def test_a_recorded_command_replayed_and_an_older_counter_are_refused(rig):
    r = rig()
    runs = _ran(r.app, "relay")
    r.start()
    signer = r.hes.signer                                # its counters: above the hello's
    dev = r.tcp_config["device_id"]
    newer = signer.seal(dev, json.dumps({"id": 1, "cmd": "relay", "args": "new"}))
    older_ctr = json.loads(newer)["ctr"] - 10
    key = derive_key(SIM_MASTER, dev)
    older = command_body(key, dev, "k1", older_ctr, json.dumps({"id": 2, "cmd": "relay",
                                                                  "args": "old"}))
    r.hes.send_frame(COMMAND, newer)
    assert r.hes.wait_for(lambda h: 1 in h.responses, 5)
    r.hes.send_frame(COMMAND, newer)                      # the same frame again
    r.hes.send_frame(COMMAND, older)                      # signed, but its counter is older
    assert r.wait(lambda: r.app.auth.stats["refused_replay"] == 2, 5)
    assert runs == ["new"]


def test_a_module_without_a_key_runs_no_command_and_says_so(rig):
    r = rig(provision=False)
    runs = _ran(r.app, "relay")
    r.start()
    reply = r.hes.command("relay", None)
    assert reply["ok"] is False and "no command key" in reply["error"]
    assert runs == [] and r.app.auth.stats["refused_not_provisioned"] == 2   # hello too
    assert r.app.auth.status()["provisioned"] is False
    r.publish(3)                                          # data still flows (unproven mode)
    assert r.wait_delivered(5)


def test_open_read_only_commands_run_unsigned_only_when_configured(rig):
    rogue = HesSim(signer=None).start()
    r = rig(hes=rogue)
    r.app.config.merge({"AUTH": {"open_commands": ["status"]}})
    r.start()
    assert rogue.command("status")["ok"] is True
    assert rogue.command("ota", {"url": "http://x"})["ok"] is False
    assert r.app.auth.stats["admitted_unsigned"] == 1


def test_records_carry_macs_and_forged_moved_or_replayed_ones_are_refused(rig):
    """Issue 20 item 2: each record carries a MAC over the module's identity, the queue's epoch,
    its seq and its payload; the HES checks it. On the path, a record with a forged payload,
    a real one moved to another seq and one replayed at its own seq gain nothing."""
    r = rig()
    r.app.config.merge({"AUTH": {"sign_data": True}})
    r.start()
    r.publish(5)
    assert r.wait_delivered(5)
    signer = r.hes.signer
    assert signer.stats["records_verified"] >= 5 and signer.failures() == 0
    assert r.app.auth.stats["records_signed"] >= 5
    registration = r.hes.registrations[-1]
    dev, epoch = registration["dev"], registration["epoch"]
    assert registration["data_kid"] == "k1"
    key = derive_key(SIM_MASTER, dev)
    from usr.qframe.codecs.cmdauth import record_mac
    real = record_mac(key, dev, "k1", epoch, 9, b"M-real")     # the module's own MAC
    received = list(r.hes.received)
    # an attacker's connection claiming the module (same dev and epoch)
    sock = socket.create_connection(("127.0.0.1", r.hes.port))
    try:
        sock.sendall(frame(REGISTER, json.dumps(registration).encode()))
        sock.sendall(frame(DATA, struct.pack(">I", 9) + b"M-evil" + real))      # forged payload
        sock.sendall(frame(DATA, struct.pack(">I", 10) + b"M-real" + real))     # moved seq
        sock.sendall(frame(DATA, struct.pack(">I", 11) + b"M-none"))            # no MAC at all
        assert r.hes.wait_for(lambda h: h.signer.stats["records_bad"] == 3, 10)
    finally:
        sock.close()
    assert r.hes.received == received                   # none of them was taken


def test_events_verify_and_a_replayed_or_reordered_one_is_refused():
    """The HES's check of events signed the module's way (qframe/codecs/cmdauth.seal_json,
    n = boot << 32 | number): a new n passes, the same n again is a duplicate, a lower one
    (replayed or reordered) is refused, a tampered one fails the MAC."""
    from usr.qframe.codecs.cmdauth import seal_json
    key, dev = bytes(range(32)), "m1"
    signer = HesSigner(keys={dev: key})

    def event(n, data):
        return bytes(seal_json(key, "evt", dev, "k1", n, json.dumps({"event": "e",
                                                                        "data": data})))
    assert signer.open_event(dev, event((1 << 32) | 1, 1)) == {"event": "e", "data": 1}
    assert signer.open_event(dev, event((1 << 32) | 2, 2))["data"] == 2
    assert signer.open_event(dev, event((1 << 32) | 2, 2)) is None         # duplicate
    assert signer.open_event(dev, event((1 << 32) | 1, 1)) is None         # replayed
    tampered = event((2 << 32) | 1, 3).replace(b'"data": 3', b'"data": 4')
    assert signer.open_event(dev, tampered) is None
    assert signer.open_event(dev, event((2 << 32) | 1, 3))["data"] == 3     # next start
    assert (signer.stats["events_verified"], signer.stats["events_duplicate"],
            signer.stats["events_replayed"], signer.stats["events_bad"]) == (3, 1, 1, 1)
    assert signer.failures() == 2
