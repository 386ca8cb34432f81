"""Issue 20's attacks on the cloud link, against the in-process app over real loopback sockets:
a rogue HES (no key) commanding fota / ota / a meter disconnect, a recorded command replayed,
counters reordered, and a module that has no key yet."""
import pytest

pytest.importorskip("usocket", reason="needs the QuecPython shim (tools/shim)")

import json

from cloud_helpers import rig  # noqa: F401
from tools.simulators.hes import COMMAND, HesSim
from tools.simulators.hes_auth import SIM_MASTER, command_body, derive_key


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
