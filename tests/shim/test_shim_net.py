"""The shim's cellular state: dataCall/sim/net/checkNet follow shimctl, callbacks on a thread."""
import _thread

import utime
import shimctl
import checkNet
import dataCall
import net
import sim
from checks import EVENT_MS, host_addr, raises


def _recorder():
    calls = []

    def record(args):
        calls.append((args, _thread.get_ident()))
    return calls, record


def test_defaults_after_reset():
    shimctl.reset()
    assert checkNet.wait_network_connected(1) == (3, 1)
    assert net.csqQueryPoll() == 25
    assert sim.getStatus() == 1
    assert net.getModemFun() == 1
    assert net.getState()[1][0] == 1
    info = dataCall.getInfo(1, 0)
    assert info[0] == 1 and info[1] == 0 and info[2][0] == 1 and info[2][2] == shimctl.state["ip"]


def test_network_down_and_up_fire_datacall_callbacks_on_another_thread():
    shimctl.reset()
    calls, record = _recorder()
    dataCall.setCallback(record)
    shimctl.set_network(False)
    assert shimctl.wait_for(lambda: len(calls) == 1, EVENT_MS)
    assert dataCall.getInfo(1, 0) == (1, 0, [0, 0, "0.0.0.0", "0.0.0.0", "0.0.0.0"])
    shimctl.set_network(True)
    assert shimctl.wait_for(lambda: len(calls) == 2, EVENT_MS)
    assert [c[0] for c in calls] == [(1, 0), (1, 1)]
    assert calls[0][1] != _thread.get_ident()
    shimctl.reset()


def test_checknet_reports_the_failing_stage_after_its_timeout():
    shimctl.reset()
    shimctl.set_network(False)
    start = utime.ticks_ms()
    assert checkNet.wait_network_connected(1) == (2, 0)
    assert utime.ticks_diff(utime.ticks_ms(), start) >= 900
    shimctl.set_sim(False)
    assert shimctl.net_stage() == (1, 0)
    shimctl.reset()


def test_checknet_refuses_a_timeout_the_firmware_refuses():
    shimctl.reset()
    assert raises(OSError, checkNet.wait_network_connected, 0)
    assert raises(OSError, checkNet.wait_network_connected, 3601)
    assert not hasattr(checkNet, "waitNetworkReady")


def test_checknet_returns_as_soon_as_the_network_comes_back():
    shimctl.reset()
    shimctl.set_network(False)
    _thread.start_new_thread(_later, (150, shimctl.set_network, True))
    start = utime.ticks_ms()
    assert checkNet.wait_network_connected(10) == (3, 1)
    assert utime.ticks_diff(utime.ticks_ms(), start) < 3000
    shimctl.reset()


def _later(delay_ms, fn, arg):
    utime.sleep_ms(delay_ms)
    fn(arg)


def test_radio_off_drops_the_network_and_radio_on_attaches_after_the_delay():
    shimctl.reset()
    shimctl.state["attach_delay_ms"] = 100
    calls, record = _recorder()
    dataCall.setCallback(record)
    assert net.setModemFun(0) == 0
    assert net.getModemFun() == 0 and net.csqQueryPoll() == 99
    assert shimctl.net_stage() == (2, 0)
    assert net.setModemFun(1) == 0
    assert net.getState()[1][0] == 2          # searching
    assert checkNet.wait_network_connected(5) == (3, 1)
    assert shimctl.wait_for(lambda: len(calls) == 2, EVENT_MS)
    assert [c[0] for c in calls] == [(1, 0), (1, 1)]
    shimctl.reset()


def test_radio_on_stays_down_while_an_outage_is_forced():
    shimctl.reset()
    shimctl.state["attach_delay_ms"] = 10
    shimctl.set_network(False)
    net.setModemFun(0)
    net.setModemFun(1)
    assert not shimctl.wait_for(lambda: shimctl.net_stage() == (3, 1), 300)
    shimctl.set_network(True)
    assert checkNet.wait_network_connected(1) == (3, 1)
    shimctl.reset()


def test_sim_hot_swap_callbacks_need_detection_enabled():
    shimctl.reset()
    shimctl.state["attach_delay_ms"] = 20
    calls, record = _recorder()
    sim.setCallback(record)
    shimctl.set_sim(False)
    assert sim.getStatus() == 0 and sim.getImsi() == -1 and sim.getIccid() == -1
    assert shimctl.net_stage() == (1, 0)
    shimctl.set_sim(True)
    assert checkNet.wait_network_connected(2) == (3, 1)
    assert calls == []
    assert sim.setSimDet(1, 0) == 0 and sim.getSimDet() == (1, 0)
    shimctl.set_sim(False)
    shimctl.set_sim(True)
    assert shimctl.wait_for(lambda: len(calls) == 2, EVENT_MS)
    assert [c[0] for c in calls] == [2, 1]
    assert calls[0][1] != _thread.get_ident()
    assert sim.getImsi() == shimctl.state["imsi"]
    shimctl.reset()


def test_pdp_alone_and_datacall_activate():
    shimctl.reset()
    calls, record = _recorder()
    dataCall.setCallback(record)
    shimctl.set_pdp(False)
    assert shimctl.net_stage() == (3, 0)
    assert net.getState()[1][0] == 1
    assert dataCall.start(1, 0, "cmnet", "", "", 0) == 0
    assert shimctl.net_stage() == (3, 1)
    shimctl.set_pdp(False)
    shimctl.set_network(False)
    assert dataCall.start(1, 0, "cmnet", "", "", 0) == -1
    assert shimctl.wait_for(lambda: len(calls) == 3, EVENT_MS)
    assert [c[0][1] for c in calls] == [0, 1, 0]
    shimctl.reset()


def test_csq_values_pass_through():
    shimctl.reset()
    shimctl.set_csq(12)
    assert net.csqQueryPoll() == 12
    shimctl.set_csq(-1)
    assert net.csqQueryPoll() == -1
    shimctl.reset()
    assert net.csqQueryPoll() == 25


def test_wait_for_times_out_and_sees_changes_made_by_other_threads():
    shimctl.reset()
    start = utime.ticks_ms()
    assert shimctl.wait_for(lambda: False, 100) is False
    assert utime.ticks_diff(utime.ticks_ms(), start) >= 90
    _thread.start_new_thread(_later, (50, shimctl.set_csq, 7))
    assert shimctl.wait_for(lambda: net.csqQueryPoll() == 7, EVENT_MS)
    shimctl.reset()


def test_reset_forgets_callbacks_and_faults():
    shimctl.reset()
    calls, record = _recorder()
    dataCall.setCallback(record)
    shimctl.set_dns_fail(True)
    shimctl.set_network(False)
    assert shimctl.wait_for(lambda: len(calls) == 1, EVENT_MS)
    shimctl.reset()
    assert shimctl.state["dns_fail"] is False
    assert shimctl.net_stage() == (3, 1)
    shimctl.set_network(False)
    done = []
    shimctl.fire(done.append, True)       # callbacks run in order: any dataCall one runs first
    assert shimctl.wait_for(lambda: done, EVENT_MS)
    assert len(calls) == 1
    shimctl.reset()


def test_control_commands():
    shimctl.reset()
    assert shimctl.command("network down") == "ok"
    assert shimctl.net_stage() == (2, 0)
    assert shimctl.command("network up") == "ok"
    assert shimctl.command("csq 9") == "ok" and net.csqQueryPoll() == 9
    assert shimctl.command("sim out") == "ok" and sim.getStatus() == 0
    assert shimctl.command("dns fail on") == "ok" and shimctl.state["dns_fail"]
    assert shimctl.command("flash free 100") == "ok" and shimctl.state["flash_free"] == 100
    assert shimctl.command("flash free none") == "ok" and shimctl.state["flash_free"] is None
    assert shimctl.command("reset_sockets") == "ok 0"
    assert shimctl.command("bogus").startswith("error")
    assert shimctl.command("csq x").startswith("error")
    assert '"csq": 9' in shimctl.command("status")
    shimctl.reset()


def test_control_server_from_a_client():
    shimctl.reset()
    port = _serve()
    from shimlib.hostio import socket                     # the host's socket module
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)      # a client that stays
    held.settimeout(5)
    held.connect(host_addr(port))
    try:
        held.send(b"csq 30\npdp down\n")
        assert _lines(held, 2) == [b"ok", b"ok"]
        assert net.csqQueryPoll() == 30 and shimctl.net_stage() == (3, 0)
        assert shimctl.shimctl_client(port, "network down") == "ok"
        assert shimctl.wait_for(lambda: not shimctl.net_ready(), EVENT_MS)
        assert shimctl.shimctl_client(port, "csq 4") == "ok"
        status = shimctl.shimctl_client(port, "status")
        assert status["csq"] == 4 and status["registered"] is False
        assert shimctl.shimctl_client(port, "nonsense").startswith("error")
        held.send(b"network up\n")
        assert _lines(held, 1) == [b"ok"]
        assert shimctl.net_stage() == (3, 1)
    finally:
        held.close()
        shimctl.reset()          # stops the server thread
    raises(OSError, shimctl.shimctl_client, port, "status")    # nobody listens any more


def _lines(sock, n):
    data = b""
    while data.count(b"\n") < n:
        chunk = sock.recv(256)
        assert chunk, "server closed"
        data += chunk
    return data.split(b"\n")[:n]


def _serve():
    return shimctl.serve_control(0)
