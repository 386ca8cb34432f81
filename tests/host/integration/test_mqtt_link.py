"""The MQTT uplink against a real broker (amqtt on loopback) and a real HES-side client
(paho-mqtt): an in-process app (MqttClient: qframe's own MQTT over the shim's usocket) on
CPython; the whole system on both interpreters is in test_mqtt_e2e.py."""
import time

import pytest

import shimctl
from checks import wait_until
from cloud_helpers import slow_command
from mqtt_helpers import BUDGET_S, Rig
from tools.simulators.mqtt_hes import Broker, MqttHes, watch_status
from usr.qframe import logging

_HES_IDS = []


@pytest.fixture(scope="module")
def broker():
    b = Broker().start()
    yield b
    b.close()


@pytest.fixture
def hes(broker):
    _HES_IDS.append(len(_HES_IDS))                 # a fresh session per test
    h = MqttHes(broker.port, client_id="hes-%d" % len(_HES_IDS)).start()
    yield h
    h.stop()


@pytest.fixture
def rig(broker):
    rigs = []

    def make(name, **config):
        r = Rig(name, broker, **config)
        rigs.append(r)
        return r.start()

    yield make
    for r in rigs:
        assert r.app.stop(), "app did not stop within its bound"


def test_records_arrive_once_in_order_and_leave_the_queue_on_puback(rig, hes):
    r = rig("order")
    r.publish(40)
    assert hes.wait_for(lambda h: len(r.mine(h)) == 40, BUDGET_S)
    assert r.mine(hes) == r.sent and hes.duplicates == 0
    assert wait_until(lambda: r.mqtt.stats["acked_records"] == 40, int(BUDGET_S * 1000))
    assert len(r.mqtt.queue) == 0 and r.mqtt.stats["published"] >= 41   # status + records
    status = hes.statuses[r.device]
    assert status["state"] == "online" and status["dev"] == r.device


def test_broker_restart_loses_nothing(rig, hes, broker):
    r = rig("restart")
    r.publish(20)
    assert hes.wait_for(lambda h: len(r.mine(h)) == 20, BUDGET_S)
    # the HES has them; the module drops each once its PUBACK is in (it can lag the delivery)
    assert wait_until(lambda: len(r.mqtt.queue) == 0, int(BUDGET_S * 1000))
    broker.stop()
    r.publish(20)                     # accepted while the broker is down: kept on flash
    assert len(r.mqtt.queue) == 20
    broker.start()
    r.publish(10)
    assert hes.wait_for(lambda h: len(r.mine(h)) == 50, BUDGET_S), (
        sorted(set(r.sent) - set(r.mine(hes))), hes.connects, hes.subscribed,
        r.mqtt.stats["acked_records"], len(r.mqtt.queue))
    assert hes.ordered(r.device) == r.sent       # each once; arrival order may differ
    assert r.mqtt.stats["connects"] >= 2 and r.mqtt.stats["link_errors"] >= 1


def test_command_round_trip_through_the_registry(rig, hes):
    r = rig("cmd")
    r.app.commands.register("relay", lambda args: {"closed": args["close"]})
    hes.command(r.device, "relay", {"close": True}, request_id=41)
    assert hes.reply(41, BUDGET_S) == {"id": 41, "cmd": "relay", "ok": True,
                                      "result": {"closed": True}}
    hes.command(r.device, "nope", None, request_id="x")
    reply = hes.reply("x", BUDGET_S)
    assert reply["ok"] is False and reply["error"] == "unknown command"
    status = hes.command(r.device, "status", None, request_id=42) and hes.reply(42, BUDGET_S)
    assert status["result"]["mqtt"]["connects"] == 1


def test_a_slow_command_does_not_stall_records_acks_or_heartbeats(rig, hes):
    """Issue 19's bug on MQTT: a command that takes long (a DLMS read of a silent meter) ran
    on the only thread. It runs on a worker now: records are published and PUBACKed, heartbeats
    go out and other commands are answered meanwhile."""
    r = rig("slowcmd", heartbeat_s=0.2)
    started, release = slow_command(r.app)
    hes.command(r.device, "slow", None, request_id="slow")
    assert started.wait(BUDGET_S)
    beats = len([e for e in hes.events if e[0] == "heartbeat"])
    r.publish(20)
    assert wait_until(lambda: r.mqtt.stats["acked_records"] == 20, int(BUDGET_S * 1000))
    assert len(r.mqtt.queue) == 0
    assert hes.wait_for(lambda h: len([e for e in h.events if e[0] == "heartbeat"]) >= beats + 2,
                        BUDGET_S), "heartbeats stalled"
    hes.command(r.device, "ping", None, request_id="p")
    assert hes.reply("p", BUDGET_S)["result"] == "pong"   # another command answered meanwhile
    assert not [x for x in hes.replies if x and x.get("id") == "slow"]
    release.set()
    assert hes.reply("slow", BUDGET_S)["result"] == "late"
    assert r.mine(hes) == r.sent and r.mqtt.stats["connects"] == 1


def test_downlink_reaches_the_meter_topic(rig, hes):
    r = rig("down")
    hes.send_data(r.device, b"\x7e to the meter")
    assert r._got.wait(BUDGET_S)
    assert r.downlink == [b"\x7e to the meter"]


def test_bad_topics_and_payloads_are_counted_and_the_link_stays_up(rig, hes):
    r = rig("bad")
    lines = []
    remove = logging.add_listener(lambda level, line: lines.append(line))
    before = dict(r.mqtt.stats)      # amqtt hands a new client others' retained statuses too
    try:
        hes.publish(hes.topic(r.device, "down/firmware"), b"?")    # not a topic of ours
        hes.publish(hes.topic(r.device, "down/meter"), b"")         # empty downlink
        hes.publish(hes.topic(r.device, "down/cmd"), b"\xff{")      # not JSON
        assert hes.wait_for(lambda h: any(x.get("id") is None and not x["ok"]
                                          for x in h.replies), BUDGET_S), hes.replies
    finally:
        logging.remove_listener(remove)
    stats = r.mqtt.stats
    assert stats["bad_topics"] == before["bad_topics"] + 1
    assert stats["bad_payloads"] == before["bad_payloads"] + 1
    assert any("unknown topic" in line and "down/firmware" in line for line in lines), lines
    assert any("downlink of 0 bytes" in line for line in lines), lines
    assert r.app.commands.stats["rejected"] == 1
    r.publish(3)                                                   # still delivering
    assert hes.wait_for(lambda h: len(r.mine(h)) == 3, BUDGET_S)
    assert stats["connects"] == 1


def test_retained_status_and_last_will_seen_by_a_fresh_subscriber(broker):
    r = Rig("will", broker).start()
    topic = "qframe/%s/status" % r.device
    try:
        assert watch_status(broker.port, topic)["state"] == "online"
        shimctl.set_network(False)       # the link dies without DISCONNECT and cannot return
        assert _wait_state(broker.port, topic, "offline"), "no last will"
        shimctl.set_network(True)
        assert _wait_state(broker.port, topic, "online"), "no status after reconnecting"
    finally:
        shimctl.set_network(True)
        stopped = r.app.stop()
    assert stopped
    assert _wait_state(broker.port, topic, "offline"), "a clean stop leaves no offline status"


def _wait_state(port, topic, state):
    """A fresh subscriber sees the retained state within BUDGET_S."""
    deadline = time.monotonic() + BUDGET_S
    while time.monotonic() < deadline:
        status = watch_status(port, topic, 1.0)
        if status and status.get("state") == state:
            return True
    return False


def test_records_carry_macs_the_hes_verifies(rig, hes):
    """Issue 20: origin and integrity of the data survive the broker: each record carries
    its MAC (over the queue's epoch and its seq); the HES checks and strips it."""
    before = dict(hes.signer.stats)
    failures = hes.signer.failures()
    r = rig("macs")
    r.publish(10)
    assert hes.wait_for(lambda h: len(r.mine(h)) == 10, BUDGET_S)
    assert r.mine(hes) == r.sent                    # the MAC is not part of the payload
    assert hes.signer.stats["records_verified"] - before["records_verified"] >= 10
    assert hes.signer.failures() == failures
    assert hes.statuses[r.device]["data_kid"] == "k1"
