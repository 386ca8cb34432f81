"""Cloud link against the simulated HES (in-process app, real sockets on loopback): delivery,
downlink, commands, recovery from server-side faults within budgets taken from the config,
persistence across an app restart, server role and stop bounds."""
import pytest

pytest.importorskip("usocket", reason="needs the QuecPython shim (tools/shim)")

import os
import time

from checks import wait_until
from cloud_helpers import CloudRig, budget, host_path, rig, slow_command  # noqa: F401
from tools.simulators.ports import server_port
from tools.simulators.hes import HesSim


WAIT_S = 15          # waits for an event; long only when it fails (a loaded machine)


def test_uplink_in_order_downlink_and_commands(rig):
    r = rig().start()
    r.publish(50)
    assert r.wait_delivered(5)
    r.check_exact()
    reg = r.hes.registrations[0]
    assert reg["dev"] == "test-dev" and reg["epoch"] == r.tcp.queue.epoch
    assert r.hes.send_data(b"\x7e\x00down") == 1
    assert r.wait(lambda: r.downlink == [b"\x7e\x00down"], 2)
    reply = r.hes.command("status")
    assert reply["ok"] and reply["result"]["tcp"]["connected"] is True
    assert r.hes.command("nope")["ok"] is False
    assert r.hes.wait_for(lambda h: h.stats["heartbeats"] >= 1, budget(r.tcp_config["heartbeat_s"]))
    assert r.wait(lambda: r.tcp.queue.status()["records"] == 0, 2), "acked records stay queued"
    assert r.wait(lambda: r.tcp.stats["pongs"] >= 1, 2)


def test_a_slow_command_does_not_stall_records_acks_or_heartbeats(rig):
    """Issue 19's bug: a command that takes long (a DLMS read of a meter that never answers
    waits up to its timeout) used to run under the session lock on the receive thread: no
    acks, no heartbeats meanwhile. It runs on a worker now and its reply comes when ready."""
    r = rig(tcp={"heartbeat_s": 0.2}).start()
    started, release = slow_command(r.app)
    slow_id = r.hes.send_command("slow")
    assert started.wait(5)
    beats = r.hes.stats["heartbeats"]
    r.publish(20)
    assert r.wait_delivered(5)
    assert r.wait(lambda: r.tcp.queue.status()["records"] == 0, 5), "acks stalled"
    assert r.hes.wait_for(lambda h: h.stats["heartbeats"] >= beats + 2, 5), "heartbeats stalled"
    assert r.hes.command("ping")["result"] == "pong"     # another command answered meanwhile
    assert slow_id not in r.hes.responses
    release.set()
    assert r.hes.wait_for(lambda h: slow_id in h.responses, 5)
    assert r.hes.responses[slow_id]["result"] == "late"
    r.check_exact()
    assert r.hes.stats["connections"] == 1


def test_registration_carries_the_meter_serial_the_meter_link_learned(rig):
    known = rig(name="serial1")
    known.app.bus.publish("meter.serial", "MTR00000042", retain=True)   # as code/params.py does
    known.start()
    assert known.hes.wait_for(lambda h: h.registrations, 2)
    assert known.hes.registrations[0]["meter"] == "MTR00000042"
    later = rig(name="serial2").start()
    assert later.hes.wait_for(lambda h: h.registrations, 2)
    assert later.hes.registrations[0]["meter"] == ""      # not known yet
    later.app.bus.publish("meter.serial", "MTR00000043", retain=True)
    assert later.hes.wait_for(lambda h: len(h.registrations) == 2, 2)  # no reconnect needed
    assert later.hes.registrations[1]["meter"] == "MTR00000043"
    assert later.hes.stats["connections"] == 1
    # a command handler runs on a worker; what it publishes must not deadlock
    later.app.commands.register(
        "set_serial", lambda args: later.app.bus.publish("meter.serial", args, retain=True))
    assert later.hes.command("set_serial", "MTR00000044", timeout=3)["ok"] is True
    assert later.hes.wait_for(lambda h: len(h.registrations) == 3, 2)
    assert later.hes.registrations[2]["meter"] == "MTR00000044"
    later.publish(3)
    assert later.wait_delivered(3)
    later.check_exact()


def test_tcp_reset_recovers_within_budget_and_resends_unacked(rig):
    r = rig().start()
    r.publish(10)
    assert r.wait_delivered(5)
    time.sleep(r.tcp_config["stable_s"])      # the connection counts as stable: backoff resets
    started = time.monotonic()
    assert r.hes.drop_clients() == 1
    r.publish(10)
    limit = budget(r.tcp_config["backoff_base_s"], r.tcp_config["connect_timeout"])
    assert r.wait_delivered(limit), "not recovered within %.1f s" % limit
    print("tcp reset recovery %.3f s" % (time.monotonic() - started))
    r.check_exact()
    assert r.tcp.stats["link_errors"] == 1


def test_server_down_for_a_while_then_back(rig):
    r = rig().start()
    r.hes.stop()
    r.publish(30)                                    # queued while the HES is away
    assert wait_until(lambda: r.tcp.stats["connect_failures"] >= 2 and len(r.tcp.queue) == 30)
    started = time.monotonic()
    r.hes.start()
    limit = budget(r.tcp_config["backoff_cap_s"], r.tcp_config["connect_timeout"])
    assert r.wait_delivered(limit), "not recovered within %.1f s" % limit
    print("server restart recovery %.3f s" % (time.monotonic() - started))
    r.check_exact()


def test_refused_connections_back_off_then_recover(rig):
    r = rig().start()
    r.hes.refuse = True
    r.hes.drop_clients()
    r.publish(5)
    assert r.hes.wait_for(lambda h: h.stats["refused"] >= 3, 5)
    attempts = r.tcp._backoff.attempt
    assert attempts >= 2                              # not reset by connections that die at once
    r.hes.refuse = False
    assert r.wait_delivered(budget(r.tcp_config["backoff_cap_s"], 1))
    r.check_exact()


def test_missing_acks_time_out_and_records_are_resent():
    hes = HesSim(ack=False).start()
    r = CloudRig("noack", hes=hes)
    try:
        r.start()
        r.publish(3)
        assert hes.wait_for(lambda h: len(h.received) == 3, 3)
        assert r.wait(lambda: r.tcp.stats["ack_timeouts"] >= 1,
                      budget(r.tcp_config["ack_timeout_s"]))
        assert len(r.tcp.queue) == 3                   # unconfirmed: still queued
        hes.ack = True
        assert r.wait(lambda: len(r.tcp.queue) == 0, budget(r.tcp_config["backoff_base_s"]))
        assert hes.stats["duplicates"] >= 1            # resent after the timeout, deduplicated
        assert r.mine() == r.sent
    finally:
        r.close()
        hes.stop()


def test_idle_timeout_detects_a_silent_server(rig):
    r = rig(tcp={"idle_timeout_s": 0.6, "heartbeat_s": 0}).start()
    assert r.wait(lambda: r.tcp.stats["idle_timeouts"] >= 1, budget(0.6))
    assert r.hes.wait_for(lambda h: h.stats["connections"] >= 2, budget(0.8))


def test_window_bounds_unacked_records_in_flight():
    hes = HesSim(ack=False).start()
    r = CloudRig("window", hes=hes, tcp={"window": 4, "ack_timeout_s": 30})
    try:
        r.start()
        r.publish(10)
        assert hes.wait_for(lambda h: len(h.received) == 4, 2)
        time.sleep(0.3)
        assert len(hes.received) == 4
        hes.ack = True
        r.publish(1)
        hes.drop_clients()                              # resend; now acked
        assert r.wait_delivered(5)
        r.check_exact()
    finally:
        r.close()
        hes.stop()


def test_queue_survives_app_restart_and_half_written_record():
    hes = HesSim().start()
    try:
        first = CloudRig("restart", hes=hes).start()
        hes.stop()
        first.publish(20)
        assert first.close()
        folder = host_path(first.tcp_config["queue_path"])
        segments = sorted(n for n in os.listdir(folder) if n.endswith(".seg"))
        with open(os.path.join(folder, segments[-1]), "ab") as f:
            f.write(b"\xa7\x00\x40\x00\x00")                # a record torn by a reset
        hes.start()
        second = CloudRig("restart", hes=hes, clear=False)
        second.sent = list(first.sent)
        second.start()
        assert second.tcp.queue.stats["recovered"] == 20
        assert second.tcp.queue.stats["torn"] == 1
        assert second.wait_delivered(5)
        second.check_exact()
        assert second.close()
    finally:
        hes.stop()


def test_raw_mode_is_confirmed_on_send():
    hes = HesSim(protocol="raw").start()
    r = CloudRig("raw", hes=hes, tcp={"protocol": "raw", "raw_register": "HELLO {dev}\n",
                                      "heartbeat_s": 0})
    try:
        r.start()
        r.publish(5)
        expected = b"HELLO test-dev\n" + b"".join(r.sent)
        assert hes.wait_for(lambda h: bytes(h.raw) == expected, 3)
        assert r.wait(lambda: len(r.tcp.queue) == 0, 2)
        hes.send_data(b"\x01\x02")
        assert r.wait(lambda: r.downlink == [b"\x01\x02"], 2)
    finally:
        r.close()
        hes.stop()


def _dial(hes, port):
    deadline = time.monotonic() + 5
    while not hes.connect_to("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_server_role_keeps_a_proven_hes_and_refuses_a_second_connection(rig):
    """Issue 20: any peer that connected replaced the HES connection. A HES that proved the
    key (its signed hello) keeps the link: a second connection is closed and counted; once the
    proven one goes, the next HES is served."""
    port = server_port()                 # the module listens on it
    hes = HesSim()
    r = rig(hes=hes, tcp={"role": "server", "port": port})
    r.start(connected=False)
    r.publish(5)
    _dial(hes, port)
    assert r.wait_delivered(5)
    second = HesSim()
    second._last_seq = hes._last_seq
    assert second.connect_to("127.0.0.1", port)
    assert r.wait(lambda: r.tcp.stats["peers_refused"] == 1, WAIT_S)
    assert second.wait_for(lambda h: h.client_count() == 0, WAIT_S), \
        "the newcomer stays connected"
    assert r.tcp.stats["replaced"] == 0
    r.publish(5)
    assert r.wait_delivered(5) and second.received == []
    hes.drop_clients()                   # the proven HES goes: the next one is served
    assert r.wait(lambda: not r.tcp.is_connected(), WAIT_S)   # once the module has seen it go
    _dial(second, port)
    r.publish(5)
    assert second.wait_for(lambda h: len(h.received) == 5, WAIT_S)
    assert hes.received + second.received == r.sent
    second.drop_clients()


def test_server_role_a_rogue_peer_gets_no_records_and_its_acks_count_for_nothing(rig):
    """Issue 20's takeover: a peer without the key connected first (or replaced the HES), read
    the queued records and acked them away. It gets none now, its acks are ignored (counted),
    and the real HES, once it dials in, replaces it and receives every record."""
    port = server_port()
    rogue = HesSim(signer=None)          # acks whatever arrives, cannot sign
    hes = HesSim()
    r = rig(hes=hes, tcp={"role": "server", "port": port})
    r.start(connected=False)
    r.publish(10)
    _dial(rogue, port)
    assert rogue.wait_for(lambda h: h.stats["registrations"] == 1, WAIT_S)
    rogue.send_frame(0x81, b"\x00\x00\x00\x0a")      # ACK 10: "every record is stored"
    assert r.wait(lambda: r.tcp.stats["acks_unproven"] >= 1, WAIT_S)
    assert rogue.received == [] and len(r.tcp.queue) == 10
    _dial(hes, port)                     # the real HES replaces the unproven peer
    assert r.wait_delivered(5)
    r.check_exact()
    assert r.tcp.stats["replaced"] == 1
    hes.drop_clients()


def test_stop_is_bounded_while_reconnecting(rig):
    r = rig(tcp={"backoff_base_s": 30, "backoff_cap_s": 60}).start()
    r.hes.stop()
    assert r.wait(lambda: r.tcp.state == "backoff", 3)
    started = time.monotonic()
    assert r.app.stop()
    assert time.monotonic() - started < r.app.config["APP"]["stop_timeout"]
