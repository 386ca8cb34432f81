"""The Uart extension's logic over an in-memory port (the pty tests are in tests/host)."""
import _thread
import ubinascii

from checks import raises, wait_until

from usr.qframe import Application, ConfigError, Uart
from usr.qframe.codecs import meter, rfc1662
from usr.qframe.threading import Event


class _FakePort(object):
    """An in-memory UART: `feed()` is what the meter sends, `sent` what the module wrote."""

    def __init__(self):
        self._lock = _thread.allocate_lock()
        self._rx = b""
        self.sent = b""
        self.fail_reads = 0
        self.fail_writes = 0
        self.closed = False

    def feed(self, data):
        with self._lock:
            self._rx += data

    def any(self):
        if self.fail_reads:
            self.fail_reads -= 1
            raise OSError(5)
        with self._lock:
            return len(self._rx)

    def read(self, n):
        with self._lock:
            data, self._rx = self._rx[:n], self._rx[n:]
        return data

    def write(self, data):
        if self.fail_writes:
            self.fail_writes -= 1
            raise OSError(5)
        with self._lock:
            self.sent += bytes(data)
        return len(data)

    def close(self):
        self.closed = True


class _Link(Uart):
    """Uart on fake ports; `open_failures` first opens raise."""

    def __init__(self, app, open_failures=0, open_memory_errors=0):
        self.ports = []
        self.open_failures_left = open_failures
        self.open_memory_errors_left = open_memory_errors
        Uart.__init__(self, app=app)

    def open_port(self):
        if self.open_memory_errors_left:
            self.open_memory_errors_left -= 1
            raise MemoryError("memory allocation failed, allocating 1280 bytes")
        if self.open_failures_left:
            self.open_failures_left -= 1
            raise OSError(2)
        self.ports.append(_FakePort())
        return self.ports[-1]

    @property
    def port(self):
        return self.ports[-1]


def _app(dialect="legacy", workers=2, backlog=64, **uart):
    app = Application("link-test")
    settings = {"dialect": dialect, "poll_ms": 1, "reopen_delay_s": 0.01,
                "idle_flush_ms": 30}
    settings.update(uart)
    app.config.update({"APP": {"workers": workers, "backlog": backlog, "stop_timeout": 2.0,
                               "log_level": "CRITICAL"},
                       "UART": settings})
    return app


def _start(app, **kwargs):
    link = _Link(app, **kwargs)
    app.load()
    assert wait_until(lambda: link.ports and link.is_open)
    return link


def _frames_sent(link, dialect="legacy"):
    return rfc1662.Decoder(dialect).feed(link.port.sent)


def _collect(app, topic):
    got = []
    app.bus.subscribe(topic, lambda _topic, data: got.append(data))
    return got


def test_transparent_from_meter_is_published_in_order_both_dialects():
    for dialect in rfc1662.DIALECTS:
        app = _app(dialect)
        got = _collect(app, "meter.transparent")
        link = _start(app)
        payloads = [b"apdu %d \x7e\x7d\x03" % i for i in range(40)]
        link.port.feed(b"".join(rfc1662.encode(0x2100, 0xBF, p, dialect) for p in payloads))
        assert wait_until(lambda: len(got) == 40)
        assert got == payloads
        app.stop()
        assert link.stats["transparent_in"] == 40 and link.stats["rx_frames"] == 40


def test_hes_data_is_framed_as_transparent_and_written():
    for dialect in rfc1662.DIALECTS:
        app = _app(dialect)
        link = _start(app)
        assert app.bus.publish("hes.data", b"\x7e from HES") == 1
        assert _frames_sent(link, dialect) == [rfc1662.Frame(0x2100, 0xBF, b"\x7e from HES")]
        app.stop()
        assert link.stats["hes_frames"] == 1
        assert app.bus.publish("hes.data", b"after stop") == 0


class _Sharer(object):
    """Another extension sharing the link: takes meter payloads, holds HES bytes."""

    def __init__(self):
        self.taken = []
        self.held = []

    def meter_data(self, payload):
        self.taken.append(payload)
        return True

    def hes_data(self, data):
        self.held.append(data)
        return False


def test_a_shared_link_hands_meter_data_to_its_sharer_and_sends_held_hes_bytes_counted():
    app = _app("legacy")
    got = _collect(app, "meter.transparent")
    link = _start(app)
    sharer = _Sharer()
    link.share_link(sharer)
    assert raises(ValueError, link.share_link, _Sharer())      # one sharer at a time
    link.port.feed(rfc1662.encode(0x2100, 0xBF, b"for dlms", "legacy"))
    assert wait_until(lambda: sharer.taken == [b"for dlms"])
    app.bus.publish("hes.data", b"HES waits")
    assert sharer.held == [b"HES waits"] and link.stats["hes_frames"] == 0
    link.release_link(_Sharer())                                 # not the sharer: no effect
    assert link.shared_with is sharer
    link.release_link(sharer)
    assert link.send_hes(b"HES waits") and link.stats["hes_frames"] == 1
    link.port.feed(rfc1662.encode(0x2100, 0xBF, b"for the HES", "legacy"))
    assert wait_until(lambda: got == [b"for the HES"])
    app.stop()
    assert _frames_sent(link, "legacy") == [rfc1662.Frame(0x2100, 0xBF, b"HES waits")]


def test_legacy_vector_on_the_wire():
    app = _app("legacy")
    link = _start(app)
    link.send_transparent(b"hello")
    assert link.port.sent == ubinascii.unhexlify("7eff0300210006bf68656c6c6f37e97e")
    app.stop()


def test_registered_get_is_answered_and_unregistered_gets_an_error():
    app = _app()
    link = _Link(app)
    seen = Event()

    @link.resolver.register(meter.PROTO_PARAMETERS, cmd=meter.CMD_GET, pid=meter.PID_CSQ)
    def _csq(frame):
        seen.set()
        return meter.get_response(meter.PID_CSQ, bytes((17,)))

    app.load()
    assert wait_until(lambda: link.is_open)
    link.port.feed(meter.pack(meter.get_request(meter.PID_CSQ)))
    link.port.feed(meter.pack(meter.get_request(0x8999)))
    assert seen.wait(2)
    assert wait_until(lambda: len(_frames_sent(link)) == 2)
    replies = sorted(f.cmd for f in _frames_sent(link))
    assert replies == [meter.CMD_GET_RESPONSE, meter.CMD_GET_ERROR]
    answer = [f for f in _frames_sent(link) if f.cmd == meter.CMD_GET_RESPONSE][0]
    assert meter.parse_get_response(answer.payload) == (meter.PID_CSQ, b"\x11")
    app.stop()
    assert link.status()["resolver_unhandled"] == 1


def test_handler_exception_is_isolated_and_answered_with_failure():
    app = _app()
    link = _Link(app)

    @link.resolver.register(meter.PROTO_PARAMETERS, cmd=meter.CMD_SET, pid=0x8005)
    def _broken(frame):
        raise RuntimeError("handler bug")

    got = _collect(app, "meter.transparent")
    app.load()
    assert wait_until(lambda: link.is_open)
    link.port.feed(meter.pack(meter.set_request(0x8005, b"x")))
    link.port.feed(meter.pack(meter.transparent(b"still flowing")))
    assert wait_until(lambda: got == [b"still flowing"])
    assert wait_until(lambda: _frames_sent(link))
    reply = _frames_sent(link)[0]
    assert meter.parse_set_response(reply.payload) == (0x8005, meter.ACK_FAILURE)
    app.stop()
    assert link.status()["resolver_handler_errors"] == 1


def test_garbage_and_bad_frames_are_counted_and_the_next_good_frame_kept():
    app = _app()
    got = _collect(app, "meter.transparent")
    link = _start(app)
    good = meter.pack(meter.transparent(b"good"))
    bad_fcs = bytearray(good)
    bad_fcs[-3] ^= 0xFF
    link.port.feed(b"\x00\x01garbage" + bytes(bad_fcs) + good[:5])
    link.port.feed(good[5:])
    assert wait_until(lambda: got == [b"good"])
    status = link.status()
    assert status["decoder_bad_fcs"] == 1 and status["decoder_garbage_bytes"] == 9
    app.stop()


def test_frame_without_closing_flag_is_delivered_after_the_idle_gap():
    app = _app()
    got = _collect(app, "meter.transparent")
    link = _start(app)
    link.port.feed(meter.pack(meter.transparent(b"tail"))[:-1])
    assert wait_until(lambda: got == [b"tail"])
    assert link.stats["idle_flushes"] >= 1
    assert link.status()["decoder_missing_flag"] == 1
    app.stop()


def test_read_error_reopens_and_open_failures_are_retried():
    app = _app()
    got = _collect(app, "meter.transparent")
    link = _start(app, open_failures=2)
    assert link.stats["open_failures"] == 2 and link.stats["reopens"] == 0
    first = link.port
    first.fail_reads = 1
    assert wait_until(lambda: len(link.ports) == 2 and link.is_open)
    assert first.closed
    assert link.stats["io_errors"] == 1 and link.stats["reopens"] == 1
    link.port.feed(meter.pack(meter.transparent(b"after reopen")))
    assert wait_until(lambda: got == [b"after reopen"])
    app.stop()


def test_write_error_is_counted_and_the_port_reopened():
    app = _app()
    link = _start(app)
    link.port.fail_writes = 1
    assert link.send_transparent(b"lost") is False
    assert link.stats["tx_errors"] == 1
    assert wait_until(lambda: len(link.ports) == 2 and link.is_open)
    assert link.send_transparent(b"sent") is True
    assert _frames_sent(link) == [rfc1662.Frame(0x2100, 0xBF, b"sent")]
    app.stop()


def test_full_pool_drops_parameter_frames_but_holds_transparent_ones():
    app = _app(workers=2, backlog=1, inbox_bytes=4)    # the link's minimum of workers
    release = Event()
    got = _collect(app, "meter.transparent")
    link = _Link(app)
    blocked = []

    @link.resolver.register(meter.PROTO_PARAMETERS, cmd=meter.CMD_EVENT)
    def _slow(frame):
        blocked.append(frame)
        release.wait(5)
        return meter.event_response()

    app.load()
    assert wait_until(lambda: link.is_open)
    link.port.feed(meter.pack(meter.event(0x3005, b"1")))   # occupies one worker
    assert wait_until(lambda: len(blocked) == 1)
    link.port.feed(meter.pack(meter.event(0x3005, b"2")))   # and the other
    assert wait_until(lambda: len(blocked) == 2)
    link.port.feed(meter.pack(meter.event(0x3005, b"3")))   # waits in the backlog
    link.port.feed(meter.pack(meter.event(0x3005, b"4")))   # pool full: dropped
    assert wait_until(lambda: link.stats["dispatch_dropped"] == 1)
    payloads = [b"t%d" % i for i in range(6)]
    link.port.feed(b"".join(meter.pack(meter.transparent(p)) for p in payloads))
    assert wait_until(lambda: link.stats["rx_backpressure"] >= 1)
    assert got == []
    release.set()
    assert wait_until(lambda: got == payloads)
    app.stop()
    assert link.stats["transparent_abandoned"] == 0
    assert app.status()["workers"]["rejected"] >= 1


def test_stop_drains_accepted_transparent_frames():
    app = _app(workers=2)
    got = _collect(app, "meter.transparent")
    link = _start(app)
    payloads = [b"p%d" % i for i in range(20)]
    link.port.feed(b"".join(meter.pack(meter.transparent(p)) for p in payloads))
    assert wait_until(lambda: link.stats["rx_frames"] == 20)
    assert app.stop() is True
    assert got == payloads
    assert link.ports[-1].closed


def test_unheard_transparent_is_counted():
    app = _app()
    link = _start(app)
    link.port.feed(meter.pack(meter.transparent(b"nobody listens")))
    assert wait_until(lambda: link.stats["transparent_unheard"] == 1)
    app.stop()


def test_a_registered_transparent_handler_replaces_the_default():
    app = _app()
    link = _Link(app)
    mine = []
    link.resolver.register(meter.PROTO_TRANSPARENT)(lambda frame: mine.append(frame.payload))
    got = _collect(app, "meter.transparent")
    app.load()
    assert wait_until(lambda: link.is_open)
    link.port.feed(meter.pack(meter.transparent(b"custom")))
    assert wait_until(lambda: mine == [b"custom"])
    app.stop()
    assert got == []


class _RawLink(_Link):
    """QFrame style: recv_callback gets the raw bytes read."""

    def __init__(self, app):
        self.raw = []
        _Link.__init__(self, app)

    def recv_callback(self, data):
        self.raw.append(data)
        self.write(b"echo:" + data)


def test_qframe_style_recv_callback_and_raw_write():
    app = _app()
    link = _RawLink(app)
    app.load()
    assert wait_until(lambda: link.is_open)
    link.port.feed(b"AT\r\n")
    assert wait_until(lambda: link.port.sent == b"echo:AT\r\n")
    assert b"".join(link.raw) == b"AT\r\n"
    app.stop()


def test_recv_callback_exception_is_counted_and_reading_goes_on():
    app = _app()
    link = _RawLink(app)
    link.recv_callback = None   # calling None raises TypeError inside the reader
    app.load()
    assert wait_until(lambda: link.is_open)
    link.port.feed(b"x")
    assert wait_until(lambda: link.stats["callback_errors"] == 1)
    assert link.is_open
    app.stop()


def test_write_while_closed_is_counted():
    app = _app()
    link = _Link(app, open_failures=1000)
    app.load()
    assert link.write(b"abc") is False
    assert link.stats["tx_dropped"] == 1
    assert app.stop() is True


def test_bad_config_names_the_key():
    app = _app(dialect="ppp")
    _Link(app)
    error = raises(ConfigError, app.load)
    assert "UART.dialect" in str(error)
    app = _app(port=1.5)
    _Link(app)
    assert "UART.port" in str(raises(ConfigError, app.load))


def test_defaults_fill_the_uart_section():
    app = Application("defaults")
    _Link(app, open_failures=1000)
    app.config.update({"APP": {"log_level": "CRITICAL"}})
    app.load()
    cfg = app.config["UART"]
    assert cfg["port"] == 2 and cfg["baudrate"] == 115200 and cfg["dialect"] == "legacy"
    assert cfg["rs485_pin"] is None and cfg["max_frame"] == 2048
    assert app.stop() is True


class _Rs485Port(_FakePort):
    """A port without control_485: records the direction pin's level during each write."""

    def __init__(self):
        _FakePort.__init__(self)
        self.levels = []

    def write(self, data):
        import shimctl
        self.levels.append(shimctl.gpio.get(7))
        return _FakePort.write(self, data)


class _Rs485Link(_Link):
    def open_port(self):
        self.ports.append(_Rs485Port())
        return self.ports[-1]


def test_rs485_direction_pin_is_driven_around_writes_when_the_uart_cannot():
    import shimctl
    app = _app(rs485_pin=7, rs485_tx_level=1, baudrate=921600)
    link = _Rs485Link(app)
    app.load()
    assert wait_until(lambda: link.is_open)
    assert shimctl.gpio.get(7) == 0
    assert link.send_transparent(b"over RS-485")
    assert link.port.levels == [1]
    assert shimctl.gpio.get(7) == 0
    app.stop()


def test_an_open_out_of_memory_is_logged_once_counted_and_backed_off_then_recovers():
    import utime
    from usr.qframe import logging
    app = _app()
    app.config["APP"].update({"log_level": "INFO", "memory_backoff_s": 0.05})
    lines = []
    token = logging.add_listener(lambda level, line: lines.append(line))
    started = utime.ticks_ms()
    try:
        link = _start(app, open_memory_errors=3)
        waited_ms = utime.ticks_diff(utime.ticks_ms(), started)
        status = link.status()
    finally:
        logging.remove_listener(token)
        app.stop()
    assert status["memory_errors"] == 3 and status["open_failures"] == 3
    assert app.heap.stats["memory_errors"] == 3
    # backed off 0.05 + 0.1 + 0.2 s, not the 0.01 s reopen delay of other failures
    assert waited_ms >= 340, waited_ms
    assert len([line for line in lines if "out of memory" in line]) == 1, lines
    assert len([line for line in lines if "cannot open UART" in line]) == 0, lines
    assert len([line for line in lines if "uart: memory available again" in line]) == 1, lines
    assert app.status()["heap"]["short_of_memory"] == []
