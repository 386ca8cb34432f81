"""Recovery from each fault class the shim injects, within a budget computed from the config,
and the network watchdog: bus events, escalation ladder, SIM hot-swap, hardware watchdog."""
import time

import pytest

pytest.importorskip("usocket", reason="needs the QuecPython shim (tools/shim)")
pytest.importorskip("checkNet", reason="needs the QuecPython shim (tools/shim)")

import shimctl  # noqa: E402
from cloud_helpers import CloudRig, budget  # noqa: E402
from usr.qframe.builtins.link import MAX_WAIT_S  # noqa: E402

RECOVERY = {}   # fault class -> seconds from the fault's end to the first new payload stored


@pytest.fixture
def rig(request):
    shimctl.reset()
    rigs = []

    def make(**kwargs):
        kwargs.setdefault("with_network", True)
        r = CloudRig(request.node.name[5:25], **kwargs)
        rigs.append(r)
        return r

    yield make
    for r in rigs:
        assert r.close(), "app did not stop within its bound"
    shimctl.reset()


def _recover(r, name, limit):
    """Publish now; the payloads must be stored by the HES within limit seconds."""
    started = time.monotonic()
    r.publish(5)
    assert r.wait_delivered(limit), "%s: not recovered within %.2f s" % (name, limit)
    RECOVERY[name] = time.monotonic() - started
    print("recovery %-14s %.3f s (budget %.2f s)" % (name, RECOVERY[name], limit))
    r.check_exact()


def _connect_budget(r):
    return r.tcp_config["connect_timeout"] + r.tcp_config["backoff_base_s"]


def test_network_down_pauses_the_link_and_up_resumes_it(rig):
    r = rig().start()
    r.publish(5)
    assert r.wait_delivered(3)
    shimctl.set_network(False)
    assert r.wait(lambda: r.topics("network.down"), budget(r.net_config["check_s"]))
    assert r.wait(lambda: r.tcp.state == "waiting for network", 2)
    r.publish(10)                                         # stored while down
    time.sleep(0.3)
    assert len(r.tcp.queue) >= 10                         # plus any whose ack was cut off
    shimctl.set_network(True)
    assert r.wait(lambda: r.topics("network.up")[1:], budget(r.net_config["check_s"]))
    _recover(r, "network", budget(r.net_config["check_s"], _connect_budget(r)))
    assert r.app.network.stats["down_events"] == 1 and r.tcp.stats["net_pauses"] == 1


def test_pdp_deactivation(rig):
    r = rig().start()
    shimctl.set_pdp(False)
    assert r.wait(lambda: r.topics("network.down"), budget(r.net_config["check_s"]))
    assert "PDP" in r.topics("network.down")[0][2]
    r.publish(3)
    shimctl.set_pdp(True)
    _recover(r, "pdp", budget(r.net_config["check_s"], _connect_budget(r)))


def test_sim_out_and_in(rig):
    r = rig().start()
    shimctl.set_sim(False)
    assert r.wait(lambda: r.topics("sim.changed"), 2)
    assert r.topics("sim.changed")[0][2] is False
    assert r.wait(lambda: r.topics("network.down"), budget(r.net_config["check_s"]))
    r.publish(3)
    shimctl.set_sim(True)
    assert r.wait(lambda: len(r.topics("sim.changed")) == 2, 2)
    assert r.topics("sim.changed")[1][2] is True
    attach_s = shimctl.state["attach_delay_ms"] / 1000.0
    _recover(r, "sim", budget(attach_s, r.net_config["check_s"], _connect_budget(r)))
    assert r.app.network.stats["sim_removed"] == 1 and r.app.network.stats["sim_inserted"] == 1


def test_dns_failure(rig):
    r = rig().start()
    shimctl.set_dns_fail(True)
    r.hes.drop_clients()
    assert r.wait(lambda: r.tcp.stats["dns_failures"] >= 2, budget(r.tcp_config["backoff_cap_s"]))
    r.publish(3)
    shimctl.set_dns_fail(False)
    _recover(r, "dns", budget(r.tcp_config["backoff_cap_s"], r.tcp_config["connect_timeout"]))


def test_tcp_reset_by_the_module_side(rig):
    r = rig().start()
    time.sleep(r.tcp_config["stable_s"])
    assert shimctl.reset_sockets() >= 1
    _recover(r, "tcp_reset", budget(_connect_budget(r)))


def test_server_down_for_a_while(rig):
    r = rig().start()
    r.hes.stop()
    r.publish(5)
    time.sleep(2 * r.tcp_config["backoff_cap_s"])
    r.hes.start()
    _recover(r, "server_down", budget(r.tcp_config["backoff_cap_s"], _connect_budget(r)))


def test_flash_full_keeps_data_in_ram_and_never_crashes(rig):
    r = rig().start()
    r.hes.stop()                                       # so that records must be kept
    shimctl.set_flash_free(0)
    r.publish(10)
    queue = r.tcp.queue
    assert queue.stats["flash_full"] >= 1 and queue.status()["ram_records"] == 10
    r.hes.start()
    _recover(r, "flash_full", budget(r.tcp_config["backoff_cap_s"], _connect_budget(r)))
    shimctl.set_flash_free(None)
    r.publish(2)
    assert r.wait_delivered(3)
    r.check_exact()
    assert r.app.status()["running"]


def test_boot_without_network_waits_then_connects(rig):
    shimctl.set_network(False)
    r = rig(network={"boot_timeout_s": 1})
    r.start(connected=False)
    assert r.wait(lambda: r.topics("network.down"), budget(1))
    assert r.app.network.stats["boot_wait_failed"] == 1
    assert r.hes.client_count() == 0
    r.publish(2)
    shimctl.set_network(True)
    _recover(r, "boot", budget(r.net_config["check_s"], _connect_budget(r)))


def test_escalation_ladder_radio_cycles_then_restart(rig):
    r = rig(network={"radio_after_s": 0.3, "radio_off_s": 0.05, "radio_cycles": 2,
                     "restart_after_s": 1.2, "check_s": 0.05})
    r.start()
    shimctl.set_network(False)
    net = r.app.network
    assert r.wait(lambda: net.stats["radio_cycles"] == 2, budget(0.6))
    assert r.wait(lambda: shimctl.state["reboots"] == 1, budget(1.2))
    assert net.stats["power_restarts"] == 1 and net.exhausted
    time.sleep(0.2)
    assert net.stats["radio_cycles"] == 2 and shimctl.state["reboots"] == 1   # no repeats
    shimctl.set_network(True)
    assert r.wait(lambda: not net.exhausted, budget(0.05))
    _recover(r, "ladder", budget(_connect_budget(r)))


def test_ladder_without_power_restart_is_exhausted_and_starves_the_watchdog(rig):
    r = rig(network={"radio_after_s": 0, "restart_after_s": 0.3, "power_restart": False,
                     "check_s": 0.05}, watchdog={"period_s": 1, "feed_s": 0.05})
    r.start()
    assert shimctl.wait_for(lambda: shimctl.state["wdt_feeds"] >= 3, 2000)
    shimctl.set_network(False)
    net, wd = r.app.network, r.app.watchdog
    assert r.wait(lambda: net.stats["ladder_exhausted"] == 1, budget(0.3))
    assert r.wait(lambda: wd.stats["starved"] >= 3, 2)
    assert wd.cause == "extension network not healthy"
    feeds = shimctl.state["wdt_feeds"]
    time.sleep(0.3)
    assert shimctl.state["wdt_feeds"] == feeds
    shimctl.set_network(True)
    assert shimctl.wait_for(lambda: shimctl.state["wdt_feeds"] > feeds, 2000)
    assert shimctl.state["reboots"] == 0


def test_watchdog_starves_when_a_link_thread_dies(rig):
    r = rig(watchdog={"period_s": 2, "feed_s": 0.05})
    r.start()
    wd = r.app.watchdog
    assert r.wait(lambda: wd.stats["feeds"] >= 2, 2)
    assert wd.check() is None
    r.tcp._stopping = True                     # the link thread ends as if it had died
    r.tcp._wake.set()
    assert r.wait(lambda: not r.tcp._thread.is_alive(), 3)
    assert r.wait(lambda: wd.stats["starved"] >= 2, 2)
    assert wd.check() == "extension tcp not healthy"
    r.tcp._stopping = False


def test_network_wdt_keys_of_earlier_versions_still_feed_the_watchdog(rig):
    from usr.qframe import logging
    lines = []
    token = logging.add_listener(lambda level, line: lines.append(line))
    try:
        r = rig(network={"wdt_s": 1, "wdt_feed_s": 0.05}, watchdog={}).start()
    finally:
        logging.remove_listener(token)
    assert r.app.watchdog.period_s == 1
    assert [line for line in lines if "NETWORK.wdt_s / wdt_feed_s are deprecated" in line]
    assert shimctl.wait_for(lambda: shimctl.state["wdt_feeds"] >= 3, 2000)


def test_qframe_callbacks_and_wait_network_ready(rig):
    r = rig().start()
    net_args, sim_args = [], []
    r.app.network.register_net_callback(net_args.append)
    r.app.network.register_sim_callback(sim_args.append)
    assert r.app.network.wait_network_ready(1)
    shimctl.set_pdp(False)
    shimctl.set_sim(False)
    assert r.wait(lambda: net_args and sim_args, 2)
    assert tuple(net_args[0]) == (1, 0) and sim_args == [2]
    shimctl.set_sim(True)
    assert r.wait(lambda: sim_args == [2, 1], 2)


def test_a_missed_network_up_does_not_hold_the_link_offline(rig):
    """A network.up the link never heard (delivery ends at a subscriber that runs out of
    memory): while it waits for the network it asks the network watchdog itself."""
    r = rig().start()
    r.app.bus.publish("network.down", "a down the network watchdog itself never saw")
    assert r.tcp.stats["net_pauses"] == 1           # the link dropped and waits for the network
    r.publish(3)
    assert r.wait_delivered(budget(MAX_WAIT_S, _connect_budget(r))), r.tcp.state
    r.check_exact()
