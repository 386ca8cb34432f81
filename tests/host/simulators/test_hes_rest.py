"""The simulated HES's REST API (tools/simulators/hes_rest.py) with a real HTTP client
(urllib) against the real app (tools/simulators/system.py) with a DLMS meter behind it
(tools/simulators/dlms_server.py), over the TCP uplink and over MQTT through a real broker."""
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest

from tools.simulators import dlms_server, hes_dashboard
from tools.simulators.hes import HesSim
from tools.simulators.hes_wire import REGISTER, frame
from tools.simulators.system import System

FAST_DLMS = {"timeout_ms": 1000, "interframe_ms": 200, "retries": 1, "command_timeout_s": 10}
WAIT_S = 30
TOKEN = "rest-test-token"


def _call(url, body=None, method=None, token=TOKEN, headers=None):
    """(HTTP status, JSON body) of one request (with the token unless token is None)."""
    data = None if body is None else (body if isinstance(body, bytes) else
                                      json.dumps(body).encode())
    sent = {"Content-Type": "application/json"}
    if token is not None:
        sent["Authorization"] = "Bearer " + token
    sent.update(headers or {})
    request = urllib.request.Request(url, data, sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=WAIT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(params=["tcp", "mqtt"])
def rig(request, tmp_path):
    """(system, API base URL): the app on the given uplink, the meter's DLMS server behind it,
    the dashboard's server on a free port."""
    meter = dlms_server.Server(dlms_server.MeterModel(rows=10))
    system = dashboard = None
    try:
        port = meter.listen("wrapper")
        system = System(root=str(tmp_path / "board"), uplink=request.param, extra_config={
            "DLMS": dict(FAST_DLMS, transport="tcp", port=port)})
        dashboard = hes_dashboard.Dashboard(system.hes, port=0, token=TOKEN).start()
        system.start()
        yield system, dashboard, dashboard.url.rstrip("/")
    finally:
        if system is not None:
            system.stop()
        if dashboard is not None:
            dashboard.stop()
        meter.stop()


def test_modules_status_commands_and_a_dlms_read_through_the_module(rig):
    system, dashboard, base = rig
    dev = system.device_id

    # the dashboard learns of the module from the HES's events, a moment after it registered
    deadline = time.monotonic() + WAIT_S
    while True:
        status, body = _call(base + "/modules")
        if status != 200 or body["modules"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status == 200 and [row["dev"] for row in body["modules"]] == [dev], body
    status, body = _call(base + "/modules/" + dev)
    assert status == 200 and body["module"]["state"] == "up", body

    status, body = _call(base + "/modules/%s/status" % dev)
    assert status == 200 and body["reply"]["ok"], body
    assert "dlms" in body["reply"]["result"]                 # the app's own status dict

    status, body = _call(base + "/modules/%s/commands" % dev, {"cmd": "ping"})
    assert (status, body["reply"]["result"]) == (200, "pong"), body

    # the meter's energy register (class 3), read by the module's dlms extension
    status, body = _call(base + "/modules/%s/dlms/1.0.1.8.0.255" % dev)
    assert status == 200, body
    reading = body["reply"]["result"]
    assert (reading["obis"], reading["class"], reading["status"]) == ("1.0.1.8.0.255", 3, "ok"), \
        reading
    assert reading["value"] == 12345, reading              # MeterModel's register
    status, body = _call(base + "/modules/%s/dlms/1-0:1.8.0.255?attr=3" % dev)
    assert status == 200 and body["reply"]["result"]["attr"] == 3, body


def test_errors_are_clear_4xx_and_5xx(rig):
    system, dashboard, base = rig
    dev = system.device_id
    commands = base + "/modules/%s/commands" % dev

    assert _call(base + "/modules/nobody")[0] == 404
    assert _call(base + "/modules/nobody/commands", {"cmd": "ping"})[0] == 404
    status, body = _call(commands, b"{not json", "POST")
    assert status == 400 and "not JSON" in body["error"]
    status, body = _call(commands, {"args": 1})
    assert status == 400 and '"cmd"' in body["error"]
    assert _call(commands, {"cmd": "ping", "timeout_s": -1})[0] == 400
    status, body = _call(base + "/modules/%s/dlms/kwh" % dev)
    assert status == 400 and "OBIS" in body["error"]
    assert _call(base + "/modules/%s/dlms/1.0.1.8.0.255?attr=x" % dev)[0] == 400

    # the module answers, ok false: 502 with its reply
    status, body = _call(commands, {"cmd": "no.such.command"})
    assert status == 502 and body["reply"]["ok"] is False, body
    # an object the meter does not have: the module's reading says what the meter answered
    status, body = _call(base + "/modules/%s/dlms/1.2.3.4.5.6" % dev)
    assert status == 200 and body["reply"]["result"]["status"] == "object-undefined", body

    # the module goes away: 409, and the list shows it down
    system.app.stop()
    assert dashboard.fleet.wait_for(lambda f: f.module(dev)["state"] == "down", WAIT_S)
    assert _call(base + "/modules/" + dev)[1]["module"]["state"] == "down"
    status, body = _call(commands, {"cmd": "ping"})
    assert status == 409 and "not connected" in body["error"]


def test_a_command_without_reply_times_out_with_504(rig):
    system, dashboard, base = rig
    dev = system.device_id
    # the app is paused (SIGSTOP): connected as far as the HES knows, but it cannot answer
    os.killpg(system.app.proc.pid, signal.SIGSTOP)
    try:
        status, body = _call(base + "/modules/%s/commands" % dev,
                             {"cmd": "ping", "timeout_s": 0.5})
    finally:
        os.killpg(system.app.proc.pid, signal.SIGCONT)
    assert status == 504 and "no reply" in body["error"], body


def test_commands_need_the_token_and_the_same_origin():
    """No token, a wrong one, another page's Origin, another Host name: refused before the
    HES sends anything (the module gets no command)."""
    hes = HesSim().start()
    dashboard = hes_dashboard.Dashboard(hes, port=0).start()     # a random token
    sock = socket.create_connection(("127.0.0.1", hes.port))
    try:
        sock.sendall(frame(REGISTER, b'{"dev": "m1", "epoch": 1}'))
        assert dashboard.fleet.wait_for(lambda f: f.module("m1") is not None, WAIT_S)
        base = dashboard.url.rstrip("/")
        commands = base + "/modules/m1/commands"
        assert len(dashboard.token) >= 16
        assert _call(commands, {"cmd": "ping"}, token=None)[0] == 401
        assert _call(commands, {"cmd": "ping"}, token="guess")[0] == 401
        assert _call(base + "/modules/m1/status", token=None)[0] == 401
        assert _call(base + "/modules", token=None)[0] == 401
        status, body = _call(commands, {"cmd": "ping"}, token=dashboard.token,
                             headers={"Origin": "http://evil.example"})
        assert status == 403 and "same origin" in body["error"], body
        status, body = _call(commands, {"cmd": "ping"}, token=dashboard.token,
                             headers={"Host": "evil.example:%d" % dashboard.port})
        assert status == 403 and "Host" in body["error"], body
        assert hes.stats["commands"] == 0                       # nothing reached a module
        assert dashboard.refused == {"token": 4, "origin": 1, "host": 1}
        # the right token from the same origin: through (the fake module never answers)
        status, body = _call(commands, {"cmd": "ping", "timeout_s": 0.2},
                             token=dashboard.token, headers={"Origin": base})
        assert status == 504 and hes.stats["commands"] == 1, body
    finally:
        sock.close()
        dashboard.stop()
        hes.stop()
