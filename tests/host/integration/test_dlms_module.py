"""The dlms extension in the app (CPython, in process, real sockets and a real pty): WRAPPER
over TCP to the simulated meter's DLMS server, and HDLC inside the meter link's transparent
frames, arbitrated with the HES's transparent traffic; HES commands, periodic readings, clock
sync, a meter that stops answering, and gurux's client reading the meter through the module."""
import threading
import time

import pytest

from tools.hostrun import board_root
from tools.simulators.ports import server_port

board_root.use_device_code()

import shimctl  # noqa: E402
from tools.simulators import dlms_server  # noqa: E402
from tools.simulators.meter import MeterSim  # noqa: E402
from usr.qframe import Application  # noqa: E402
from usr.qframe.builtins.dlms import Dlms  # noqa: E402
from usr.qframe.builtins.uart import Uart  # noqa: E402
from usr.qframe.codecs import axdr  # noqa: E402

FAST = {"timeout_ms": 500, "interframe_ms": 200, "retries": 1, "command_timeout_s": 10}


class _Topic(object):
    def __init__(self, app, topic):
        self.items = []
        self.cond = threading.Condition()
        app.bus.subscribe(topic, self._on)

    def _on(self, topic, data):
        with self.cond:
            self.items.append(data)
            self.cond.notify_all()

    def wait(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.items):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True


def _cmd(app, name, args=None):
    reply = app.commands.execute({"id": 1, "cmd": name, "args": args})
    assert reply["ok"], reply
    return reply["result"]


@pytest.fixture()
def tcp_app():
    shimctl.reset()
    model = dlms_server.MeterModel(rows=500)
    server = dlms_server.Server(model)
    port = server.listen("wrapper")
    app = Application("dlms-test")
    app.config.update({"APP": {"stop_timeout": 2.0},
                       "DLMS": dict(FAST, transport="tcp", port=port, read_period_s=1,
                                    objects=["1.0.1.8.0.255", "1-0:32.7.0.255", "0.0.1.0.0.255"],
                                    profile_chunk_rows=100, max_pdu=512)})
    ext = Dlms(app=app)
    readings = _Topic(app, "dlms.readings")
    profile = _Topic(app, "dlms.profile")
    app.load()
    yield app, ext, server, readings, profile
    assert app.stop()
    server.stop()
    shimctl.reset()


def test_periodic_readings_published(tcp_app):
    app, ext, server, readings, _ = tcp_app
    assert readings.wait(lambda items: len(items) >= 1)
    first = readings.items[0]["readings"]
    assert first[0] == {"obis": "1.0.1.8.0.255", "class": 3, "attr": 2, "value": 12345,
                        "scaler": -1, "unit": 30, "status": "ok"}
    assert first[1]["unit"] == 35 and first[2]["class"] == 8
    assert ext.stats["cycles"] >= 1 and ext.stats["read_errors"] == 0


def test_hes_commands(tcp_app):
    app, ext, server, _, profile = tcp_app
    assert _cmd(app, "dlms.read", {"obis": "1.0.2.8.0.255"})["value"] == 678
    many = _cmd(app, "dlms.read_many", {"objects": ["1.0.1.8.0.255", "9.9.9.9.9.9"]})
    assert [r["status"] for r in many["readings"]] == ["ok", "object-undefined"]
    assert _cmd(app, "dlms.write", {"obis": "0.0.96.1.1.255", "attr": 2, "value": "hes"})["status"] == "ok"
    assert _cmd(app, "dlms.read", {"obis": "0.0.96.1.1.255"})["value"] == "hes"
    assert _cmd(app, "dlms.action", {"obis": "0.0.96.3.10.255", "class": 70, "method": 1,
                                     "params": 0})["status"] == "ok"
    assert server.model.disconnected
    assert _cmd(app, "dlms.set_clock", {"time": "2031-01-02T03:04:05"})["status"] == "ok"
    assert _cmd(app, "dlms.clock")["value"][:13] == "2031-01-02T03"
    result = _cmd(app, "dlms.profile", {"obis": "1.0.99.1.0.255"})
    assert result["status"] == "ok" and result["count"] == 500 and "rows" not in result
    assert profile.wait(lambda items: items and items[-1]["last"])
    rows = [row for chunk in profile.items for row in chunk["rows"]]
    assert len(rows) == 500 and rows[0] == ["2024-01-01T00:00:00", 100000, 5000]
    assert [c["seq"] for c in profile.items] == list(range(len(profile.items)))
    assert profile.items[0]["columns"][0] == [8, "0.0.1.0.0.255", 2]
    bad = app.commands.execute({"id": 2, "cmd": "dlms.read", "args": {"obis": "x"}})
    assert bad["ok"] and bad["result"]["status"] == "error" and "OBIS" in bad["result"]["error"]


def test_meter_stops_answering_then_recovers(tcp_app):
    app, ext, server, _, _ = tcp_app
    server.faults.mute = True
    out = _cmd(app, "dlms.read", {"obis": "1.0.1.8.0.255"})
    assert out["status"] == "error" and "no answer" in out["error"]
    assert ext.stats["job_errors"] >= 1
    server.faults.mute = False
    assert _cmd(app, "dlms.read", {"obis": "1.0.1.8.0.255"})["value"] == 12345


def test_clock_sync_sets_a_drifting_meter():
    shimctl.reset()
    model = dlms_server.MeterModel()
    model.clock_offset = 3600.0
    server = dlms_server.Server(model)
    port = server.listen("wrapper")
    app = Application("dlms-clock")
    app.config.update({"APP": {"stop_timeout": 2.0},
                       "DLMS": dict(FAST, transport="tcp", port=port, clock_sync_s=3600,
                                    clock_max_drift_s=30, client_sap=1, password="12345678")})
    ext = Dlms(app=app)
    app.load()
    try:
        deadline = time.monotonic() + 10
        while ext.stats["clock_sets"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ext.stats["clock_sets"] == 1 and abs(ext.last_drift_s - 3600) < 60
        local = axdr.DateTime(*time.localtime()[:6])
        assert abs(model.now().epoch() - local.epoch()) < 60      # the meter now follows us
        assert app.status()["dlms"]["clock_checks"] == 1
    finally:
        app.stop()
        server.stop()


# --- HDLC inside the meter link, shared with the HES ----------------------------------------

@pytest.fixture()
def linked(tmp_path):
    shimctl.reset()
    session = dlms_server.Server().session("hdlc")
    sim = MeterSim(link=str(tmp_path / "meter.tty"), dlms=session).start()
    app = Application("dlms-link")
    app.config.update({"APP": {"stop_timeout": 2.0, "workers": 3},
                       "UART": {"port": sim.path, "poll_ms": 2, "reopen_delay_s": 0.05},
                       "DLMS": dict(FAST, transport="meter_link", hes_hold_ms=300)})
    Uart(app=app)
    ext = Dlms(app=app)
    uplink = _Topic(app, "meter.transparent")
    app.load()
    deadline = time.monotonic() + 5
    while not app.uart.is_open and time.monotonic() < deadline:
        time.sleep(0.01)
    yield app, ext, sim, session, uplink
    assert app.stop()
    sim.stop()
    shimctl.reset()


def test_meter_link_read(linked):
    app, ext, sim, session, uplink = linked
    out = _cmd(app, "dlms.read", {"obis": "1.0.1.8.0.255"})
    assert out["value"] == 12345 and out["scaler"] == -1
    assert uplink.items == []                      # nothing of the module's leaked to the HES
    assert ext.arbiter.owner is None and ext.arbiter.stats["to_dlms"] >= 4


def test_hes_bytes_wait_in_order_while_module_holds_link(linked):
    app, ext, sim, session, uplink = linked
    session.faults.delay_s = 0.05                  # a slow meter: the association takes a while
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        _cmd(app, "dlms.profile", {"obis": "1.0.99.1.0.255", "entries": 5})))
    worker.start()
    deadline = time.monotonic() + 5
    while ext.arbiter.owner != "dlms" and time.monotonic() < deadline:
        time.sleep(0.002)
    assert ext.arbiter.owner == "dlms"
    hes = [b"\x7e\xa0HES-%d" % i for i in range(3)]   # HES traffic (not valid HDLC: ignored)
    for data in hes:
        app.bus.publish("hes.data", data)
    worker.join(10)
    assert result["status"] == "ok" and result["count"] == 5
    assert ext.arbiter.stats["hes_waited"] == 3 and ext.arbiter.stats["hes_overflow"] == 0
    assert sim.wait_for(lambda: len([p for p in sim.transparent if b"HES-" in p]) == 3)
    got = [p for p in sim.transparent if b"HES-" in p]
    assert got == hes                                # in order, after the module's release
    last_module = max(i for i, p in enumerate(sim.transparent) if b"HES-" not in p)
    first_hes = min(i for i, p in enumerate(sim.transparent) if b"HES-" in p)
    assert first_hes > last_module


def test_gurux_reads_the_meter_through_the_module(linked):
    """The HES's gurux client, its frames as hes.data and the meter's replies from
    meter.transparent: the transparent path the utility uses today, while the module's own
    client is idle."""
    from gurux_dlms import GXByteBuffer, GXReplyData
    from gurux_dlms.objects import GXDLMSRegister
    from gurux_peer import client as gurux_client
    app, ext, sim, session, uplink = linked
    c = gurux_client()

    def exchange(frame):
        reply = GXReplyData()
        start = len(uplink.items)
        app.bus.publish("hes.data", bytes(frame))
        buf = GXByteBuffer()
        seen = start
        deadline = time.monotonic() + 5
        while not c.getData(buf, reply, None):
            assert uplink.wait(lambda items: len(items) > seen, deadline - time.monotonic())
            buf.set(uplink.items[seen])
            seen += 1
        return reply
    c.parseUAResponse(exchange(c.snrmRequest()).data)
    c.parseAareResponse(exchange(c.aarqRequest()[0]).data)
    reg = GXDLMSRegister("1.0.1.8.0.255")
    c.updateValue(reg, 3, exchange(c.read(reg, 3)[0]).value)
    c.updateValue(reg, 2, exchange(c.read(reg, 2)[0]).value)
    assert reg.value == 1234.5
    exchange(c.disconnectRequest())
    assert ext.arbiter.stats["hes_passed"] >= 5


def test_gurux_over_tcp_through_the_module(tmp_path):
    """TCP -> module -> meter link -> meter and back: gurux's client (the HES side) connects
    to the module's transparent TCP port (server role, raw protocol), reads a register, the
    clock and load-profile rows; then the module's own client reads over the same link."""
    from gurux_dlms.objects import GXDLMSClock, GXDLMSProfileGeneric, GXDLMSRegister
    from gurux_peer import GuruxSession
    from usr.qframe.builtins.clients import TcpClient
    shimctl.reset()
    port = server_port()                 # the module listens on it
    session = dlms_server.Server().session("hdlc")
    sim = MeterSim(link=str(tmp_path / "meter.tty"), dlms=session).start()
    app = Application("dlms-tcp-path")
    app.config.update({"APP": {"stop_timeout": 3.0, "workers": 3},
                       "UART": {"port": sim.path, "poll_ms": 2, "reopen_delay_s": 0.05},
                       "TCP_SERVER": {"role": "server", "port": port, "protocol": "raw",
                                      "queue_path": str(tmp_path / "queue"), "poll_s": 0.05,
                                      "heartbeat_s": 0},
                       "DLMS": dict(FAST, transport="meter_link", hes_hold_ms=1000)})
    Uart(app=app)
    TcpClient(app=app)
    ext = Dlms(app=app)
    app.load()
    try:
        deadline = time.monotonic() + 5
        gx = None
        while gx is None and time.monotonic() < deadline:
            try:
                gx = GuruxSession("127.0.0.1", port, "hdlc")
            except OSError:
                time.sleep(0.05)
        gx.open()
        reg = GXDLMSRegister("1.0.1.8.0.255")
        gx.read(reg, 3)
        gx.read(reg, 2)
        assert reg.value == 1234.5
        clock = GXDLMSClock("0.0.1.0.0.255")
        gx.read(clock, 2)
        assert clock.time.value.year >= 2024
        pg = GXDLMSProfileGeneric(dlms_server.PROFILE)
        gx.read(pg, 3)
        gx.rows_by_entry(pg, 1, 10)
        assert [row[2] for row in pg.buffer] == list(range(5000, 5010))
        gx.close()
        # the module's job waits until the HES's hold on the link (1 s) has expired
        assert _cmd(app, "dlms.read", {"obis": "1.0.2.8.0.255"})["value"] == 678
        assert ext.arbiter.stats["dlms_deferred"] >= 1
        assert ext.arbiter.stats["to_dlms"] >= 4 and ext.arbiter.stats["hes_overflow"] == 0
    finally:
        assert app.stop()
        sim.stop()
        shimctl.reset()


def test_readings_reach_the_hes_as_events(tmp_path):
    """The periodic readings and the profile rows go up the cloud link as EVENT frames."""
    from tools.simulators.hes import HesSim
    from usr.qframe.builtins.clients import TcpClient
    shimctl.reset()
    hes = HesSim().start()
    server = dlms_server.Server()
    port = server.listen("wrapper")
    app = Application("dlms-uplink")
    app.config.update({"APP": {"stop_timeout": 3.0},
                       "TCP_SERVER": {"host": "127.0.0.1", "port": hes.port, "protocol": "ack",
                                      "queue_path": str(tmp_path / "queue"),
                                      "heartbeat_s": 0, "poll_s": 0.05},
                       "DLMS": dict(FAST, transport="tcp", port=port, read_period_s=3600,
                                    objects=["1.0.1.8.0.255"], profile_chunk_rows=100)})
    TcpClient(app=app)
    Dlms(app=app)
    try:
        app.load()
        assert hes.wait_for(lambda h: h.client_count() >= 1, 5)
        # the first periodic cycle may run before the link is up: ask again through a command
        assert _cmd(app, "dlms.profile", {"obis": "1.0.99.1.0.255", "entries": 250})["count"] == 250
        assert hes.wait_for(lambda h: sum(1 for e in h.events if e["event"] == "dlms.profile") == 3, 5)
        chunks = [e["data"] for e in hes.events if e["event"] == "dlms.profile"]
        assert [len(c["rows"]) for c in chunks] == [100, 100, 50] and chunks[-1]["last"]
        app.bus.publish("dlms.readings", {"readings": [{"obis": "1.0.1.8.0.255", "value": 1}],
                                          "status": "ok"})
        assert hes.wait_for(lambda h: any(e["event"] == "dlms.readings" for e in h.events), 5)
    finally:
        assert app.stop()
        server.stop()
        hes.stop()
        shimctl.reset()


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_the_app_reads_its_meter_when_dev_json_has_dlms(tmp_path, interpreter):
    """code/main.py adds the dlms extension when dev.json has a DLMS section: the real app,
    booted by the host runner on each interpreter, reads the meter over WRAPPER; it runs until
    its health report counts a read (not for a fixed time), then stops on Ctrl-C."""
    import re

    from tools.simulators.condwait import wait_on
    from tools.simulators.system import AppProcess
    with dlms_server.Server() as server:
        port = server.listen("wrapper")
        config = {"APP": {"log_level": "INFO", "log_file": "", "stop_timeout": 5.0},
                  "HEALTH": {"interval_s": 0.5},
                  "DLMS": dict(FAST, transport="tcp", port=port, read_period_s=1,
                               objects=["1.0.1.8.0.255"])}
        app = AppProcess(str(tmp_path / "board"), config, interpreter).start()
        try:
            read = wait_on(app.cond, lambda: any(re.search(r"dlms\.reads=[1-9]", line)
                                                 for line in app.lines), 60)
        finally:
            code = app.stop()
    out = "\n".join(app.lines)
    assert read, out
    assert code == 0, out
    assert "meter-module loaded: health, auth, network, tcp, params, uart, dlms, ota, watchdog" in out, out
    assert "Traceback" not in out, out
    assert "dlms.read_errors" not in out and "dlms.job_errors" not in out, out
