"""The dlms extension's logic over an in-memory meter (both interpreters): commands,
periodic readings, streamed profile chunks, clock sync, a meter that stops answering, and the
meter-link transport arbitrated with the HES. The socket/pty runs are in tests/host."""
from checks import EVENT_MS, raises, wait_until
from dlms_peer import ScriptedMeter

from usr.qframe import Application
from usr.qframe.builtins.dlms import Dlms
from usr.qframe.core.config import ConfigError
from usr.qframe.core.ext import AppExtension
from usr.qframe.codecs import axdr, cosem, xdlms
from usr.qframe.protocols.commands import commands_of

ENERGY = cosem.obis("1.0.1.8.0.255")
PROFILE = cosem.obis("1.0.99.1.0.255")
FAST = {"timeout_ms": 50, "interframe_ms": 20, "retries": 1, "command_timeout_s": 5}


def _replies(rows=7):
    profile_rows = [(axdr.DateTime(2024, 1, 1, 0, i, 0).encode(), i) for i in range(rows)]
    return {
        xdlms.get(3, ENERGY, 2): xdlms.get_response(axdr.encode(axdr.Typed(axdr.DOUBLE_LONG_UNSIGNED, 99))),
        xdlms.get(3, ENERGY, 3): xdlms.get_response(axdr.encode((axdr.Typed(axdr.INTEGER, -1),
                                                                axdr.Typed(axdr.ENUM, 30)))),
        xdlms.get(8, cosem.CLOCK_OBIS, 2): xdlms.get_response(axdr.encode(
            axdr.DateTime(2020, 1, 1, 0, 0, 0, 0, None, 0))),
        xdlms.get(7, PROFILE, 3): xdlms.get_response(axdr.encode([(8, cosem.CLOCK_OBIS, 2, 0),
                                                                  (3, ENERGY, 2, 0)])),
        xdlms.get(7, PROFILE, 2): xdlms.get_response(axdr.encode(profile_rows)),
    }


class _MemPort(object):
    """The meter behind an in-memory port (optionally silent)."""

    def __init__(self, meter):
        self.meter = meter
        self.pending = b""
        self.silent = False

    def send(self, data):
        reply = self.meter.feed(data)
        if not self.silent:
            self.pending += reply

    def recv(self, timeout_ms):
        data, self.pending = self.pending, b""
        return data or None

    def close(self):
        pass


class _Dlms(Dlms):
    def __init__(self, app, port):
        self.mem = port
        Dlms.__init__(self, app=app)

    def _open_port(self):
        if self.config["transport"] == "meter_link":
            return Dlms._open_port(self)
        self.mem.meter.rx.reset()
        self.mem.meter.ns = self.mem.meter.nr = 0
        return self.mem


class _FakeUart(AppExtension):
    """The meter link as the dlms extension sees it: send_transparent and the sharing API."""
    name = "uart"

    def __init__(self, app, meter):
        self.meter = meter
        self.shared_with = None
        self.hes_sent = []
        self.sent = []
        AppExtension.__init__(self, app=app)

    def send_transparent(self, data):
        self.sent.append(data)
        if data[:1] == b"\x7e" and data[1:2] != b"H":
            if self.sent[-1][3:4] == b"\x21" and data[5:6] == b"\x93":
                self.meter.rx.reset()
                self.meter.ns = self.meter.nr = 0
            reply = self.meter.feed(data)
            if reply and not self.shared_with.meter_data(reply):
                raise AssertionError("a reply for the module went elsewhere")
        return True

    def share_link(self, owner):
        self.shared_with = owner

    def release_link(self, owner):
        if self.shared_with is owner:
            self.shared_with = None

    def send_hes(self, data):
        self.hes_sent.append(data)
        return self.send_transparent(data)


def _app(dlms_config, meter=None, uart=False):
    app = Application("dlms-portable")
    app.config.update({"APP": {"stop_timeout": 2.0}, "DLMS": dict(FAST, **dlms_config)})
    meter = meter or ScriptedMeter(_replies())
    if uart:
        _FakeUart(app, meter)
        ext = Dlms(app=app)
    else:
        ext = _Dlms(app, _MemPort(meter))
    return app, ext


def _cmd(app, name, args=None):
    reply = commands_of(app).execute({"id": 1, "cmd": name, "args": args})
    assert reply["ok"], reply
    return reply["result"]


def test_commands_read_clock_profile():
    app, ext = _app({"transport": "uart", "profile_chunk_rows": 3})
    chunks = []
    app.bus.subscribe("dlms.profile", lambda topic, data: chunks.append(data))
    app.load()
    try:
        assert _cmd(app, "dlms.read", {"obis": "1-0:1.8.0.255"}) == {
            "obis": "1.0.1.8.0.255", "class": 3, "attr": 2, "value": 99, "scaler": -1,
            "unit": 30, "status": "ok"}
        assert _cmd(app, "dlms.clock")["value"] == "2020-01-01T00:00:00"
        out = _cmd(app, "dlms.profile", {"obis": "1.0.99.1.0.255"})
        assert out["status"] == "ok" and out["count"] == 7
        assert [len(c["rows"]) for c in chunks] == [3, 3, 1] and chunks[-1]["last"]
        assert chunks[0]["rows"][1] == ["2024-01-01T00:01:00", 1]
        assert chunks[0]["columns"] == [[8, "0.0.1.0.0.255", 2], [3, "1.0.1.8.0.255", 2]]
        assert ext.stats["profile_rows"] == 7 and ext.stats["job_errors"] == 0
    finally:
        assert app.stop()


def test_periodic_readings_and_status():
    app, ext = _app({"transport": "uart", "read_period_s": 1, "objects": ["1.0.1.8.0.255"]})
    got = []
    app.bus.subscribe("dlms.readings", lambda topic, data: got.append(data))
    app.load()
    try:
        assert wait_until(lambda: got, EVENT_MS)
        assert got[0]["readings"][0]["value"] == 99
        status = app.status()["dlms"]
        assert status["cycles"] >= 1 and status["reads"] >= 1 and status["assoc_ok"] >= 3
    finally:
        app.stop()


def test_clock_sync_sets_the_meter():
    replies = _replies()
    meter = ScriptedMeter(replies)
    app, ext = _app({"transport": "uart", "clock_sync_s": 3600, "clock_max_drift_s": 5}, meter)
    captured = []
    orig = meter._answer

    def answer(apdu):
        if apdu[:2] == b"\xc1\x01":
            captured.append(apdu)
            return xdlms.set_response()
        return orig(apdu)
    meter._answer = answer
    app.load()
    try:
        assert wait_until(lambda: ext.stats["clock_sets"] == 1, EVENT_MS)
        assert ext.last_drift_s < -3600                    # the meter was years behind
        req = xdlms.parse_request(captured[0])
        assert req.items[0][:3] == (8, cosem.CLOCK_OBIS, 2) and len(req.value) == 12
    finally:
        app.stop()


def test_silent_meter_is_an_error_then_recovers():
    app, ext = _app({"transport": "uart"})
    app.load()
    try:
        ext.mem.silent = True
        out = _cmd(app, "dlms.read", {"obis": "1.0.1.8.0.255"})
        assert out["status"] == "error" and "no answer" in out["error"]
        ext.mem.silent = False
        assert _cmd(app, "dlms.read", {"obis": "1.0.1.8.0.255"})["value"] == 99
        assert ext.stats["job_errors"] == 1
    finally:
        app.stop()


def test_meter_link_transport_with_waiting_hes_bytes():
    app, ext = _app({"transport": "meter_link", "hes_hold_ms": 0}, uart=True)
    app.load()
    try:
        uart = app.uart
        assert uart.shared_with is ext
        from usr.qframe.builtins import dlms_job           # the job code (imported on use)
        original = dlms_job._work

        def work(ext_, client, kind, args):                 # HES bytes arrive mid-job
            assert ext.hes_data(b"HES-1") is False and ext.hes_data(b"HES-2") is False
            return original(ext_, client, kind, args)
        dlms_job._work = work
        try:
            assert _cmd(app, "dlms.read", {"obis": "1.0.1.8.0.255"})["value"] == 99
        finally:
            dlms_job._work = original
        assert uart.sent[-2:] == [b"HES-1", b"HES-2"]       # after the module's DISC, in order
        assert uart.hes_sent == [b"HES-1", b"HES-2"] and ext.arbiter.owner == "hes"
    finally:
        app.stop()
    assert uart.shared_with is None


def test_bad_config():
    app, ext = _app({"transport": "serial"})
    raises(ConfigError, app.load)
    app, ext = _app({"transport": "uart", "objects": ["1.2.3"]})
    raises(ValueError, app.load)


def _wrapper_meter(listener, replies, served):
    """One WRAPPER connection on a host socket: AARE, replies[apdu], RLRE."""
    from usr.qframe.codecs import acse, wrapper
    conn = listener.accept()[0]
    conn.settimeout(5)
    rx = wrapper.Receiver()
    try:
        while True:
            data = conn.recv(512)
            if not data:
                break
            for packet in rx.feed(data):
                apdu = packet.apdu
                if apdu[0] == acse.AARQ:
                    reply = acse.aare(0, 0, acse.CONFORMANCE, 512)
                elif apdu[0] == acse.RLRQ:
                    reply = acse.rlre()
                else:
                    reply = replies.get(apdu, xdlms.get_response(error=4))   # not listed
                conn.send(wrapper.encode(1, 16, reply))
                served.append(apdu[0])
    except OSError:
        pass
    finally:
        conn.close()


def test_wrapper_over_a_real_socket():
    import _thread
    from checks import listen_on_free_port
    import shimctl
    shimctl.reset()
    listener, port = listen_on_free_port()
    served = []
    _thread.start_new_thread(_wrapper_meter, (listener, _replies(), served))
    app = Application("dlms-wrapper")
    app.config.update({"APP": {"stop_timeout": 2.0},
                       "DLMS": dict(FAST, transport="tcp", port=port, timeout_ms=2000)})
    Dlms(app=app)
    app.load()
    try:
        out = _cmd(app, "dlms.read", {"obis": "1.0.1.8.0.255"})
        assert out["value"] == 99 and out["unit"] == 30
        assert wait_until(lambda: len(served) == 5)          # AARQ, object list, GET x2, RLRQ
        assert served[0] == 0x60 and served[-1] == 0x62
    finally:
        app.stop()
        listener.close()
