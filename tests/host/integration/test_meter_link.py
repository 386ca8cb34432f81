"""The app's meter link against the simulated meter over a real pty.

In-process on CPython (the app's counters are inspected directly) and as a separate
MicroPython process booted by the host runner (tools/board.py; a loopback stands in for the HES,
the app's counters are read from its health lines).
"""
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from interrupt import interrupt
from tools.hostrun import board_root, hes_loopback  # noqa: E402
from tools.simulators.meter import MeterSim  # noqa: E402

import shimctl  # noqa: E402
from usr.qframe import Application  # noqa: E402
from usr.qframe.codecs import meter, rfc1662  # noqa: E402
from usr.qframe.builtins.uart import Uart  # noqa: E402
from usr.params import ModuleParams  # noqa: E402

TIMEOUT = 5.0
UART_TEST = {"poll_ms": 2, "reopen_delay_s": 0.05, "idle_flush_ms": 300,
             "write_timeout_s": 1.0}


def _uart_config(sim, dialect):
    settings = dict(UART_TEST, port=sim.path, dialect=dialect)
    return settings


class _Running(object):
    """An in-process app (params + uart) wired to a MeterSim; collects meter.transparent."""

    def __init__(self, tmp_path, dialect, register=None, uart=None):
        shimctl.reset()
        self.sim = MeterSim(dialect, link=str(tmp_path / "meter.tty")).start()
        self.app = Application("link-test")
        self.app.config.update({
            "APP": {"stop_timeout": 2.0, "log_level": "INFO"},
            "UART": dict(_uart_config(self.sim, dialect), **(uart or {})),
            "METER": {"serial": "SIM-SERIAL", "device_name": "sim-module", "store": ""}})
        ModuleParams(app=self.app)
        self.uart = Uart(app=self.app)
        if register is not None:
            register(self.uart.resolver)
        self.uplink = []
        self._arrived = threading.Condition()
        self.app.bus.subscribe("meter.transparent", self._on_transparent)
        self.app.load()
        assert self.wait(lambda: self.uart.is_open)

    def _on_transparent(self, topic, data):
        with self._arrived:
            self.uplink.append(data)
            self._arrived.notify_all()

    def wait(self, predicate, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._arrived.wait(min(remaining, 0.01))
        return True

    def close(self):
        ok = self.app.stop()
        self.sim.stop()
        shimctl.reset()
        return ok


@pytest.fixture(params=rfc1662.DIALECTS)
def running(request, tmp_path):
    link = _Running(tmp_path, request.param)
    yield link
    assert link.close() is True


def test_transparent_data_both_ways(running):
    sim = running.sim
    sim.send_transparent(b"\x7e meter -> HES \x7d")
    assert running.wait(lambda: running.uplink == [b"\x7e meter -> HES \x7d"])
    assert running.app.bus.publish("hes.data", b"HES -> meter \x03") == 1
    assert sim.wait_for(lambda: sim.transparent == [b"HES -> meter \x03"], TIMEOUT)
    status = running.uart.status()
    assert status["transparent_in"] == 1 and status["hes_frames"] == 1


def test_module_parameters_are_answered(running):
    sim = running.sim
    shimctl.set_csq(19)
    answer = sim.request(meter.get_request(0x8003), TIMEOUT)
    assert answer.message() == meter.get_response(0x8003, bytes((19,)))
    answer = sim.request(meter.get_request(0x8002), TIMEOUT)
    assert answer.message() == meter.get_response(0x8002, b"\x00")
    running.app.bus.publish("tcp.connected", "hes")
    answer = sim.request(meter.get_request(0x8002), TIMEOUT)
    assert answer.message() == meter.get_response(0x8002, b"\x03")
    answer = sim.request(meter.get_request(0x8005), TIMEOUT)
    assert answer.message() == meter.get_response(0x8005, b"SIM-SERIAL")
    answer = sim.request(meter.get_request(0x8007), TIMEOUT)
    assert answer.message() == meter.get_response(0x8007, b"sim-module")


def test_sets_are_acknowledged(running):
    sim = running.sim
    typed = meter.typed_value(0x0001, meter.TAG_VISIBLE_STRING, "MTR-77")
    answer = sim.request(meter.set_request(0x8005, typed), TIMEOUT)
    assert answer.message() == meter.set_response(0x8005, meter.ACK_SUCCESS)
    answer = sim.request(meter.get_request(0x8005), TIMEOUT)
    assert answer.message() == meter.get_response(0x8005, b"MTR-77")
    answer = sim.request(meter.set_request(0x8005, b"\x00\x01"), TIMEOUT)
    assert answer.message() == meter.set_response(0x8005, meter.ACK_FAILURE)
    answer = sim.request(meter.set_request(0x8003, b"\x05"), TIMEOUT)
    assert answer.message() == meter.set_response(0x8003, meter.ACK_FAILURE)


def test_unregistered_ids_are_answered_or_logged(running):
    sim = running.sim
    answer = sim.request(meter.get_request(0x8999), TIMEOUT)
    assert answer.message() == meter.get_error(0x8999)
    answer = sim.request(meter.set_request(0x8999, b"\x01"), TIMEOUT)
    assert answer.message() == meter.set_response(0x8999, meter.ACK_FAILURE)
    answer = sim.request(meter.event(0x3010, b"\x01"), TIMEOUT)
    assert answer.message() == meter.event_response(meter.ACK_FAILURE)
    sim.send(meter.get_response(0x2801, b"\x01"))          # an answer nobody asked for
    sim.send(meter.transparent(b"marker"))
    assert running.wait(lambda: running.uplink == [b"marker"])
    status = running.uart.status()
    assert status["resolver_unhandled"] == 4
    assert status["resolver_failure_responses"] == 3


def test_faults_are_counted_and_good_frames_survive(running):
    sim = running.sim
    expected = []

    def good(text):
        expected.append(text)
        return meter.transparent(text)

    sim.garbage()
    sim.send(good(b"after garbage"))
    sim.send_split(good(b"split \x7e\x7d in pieces" * 4), pieces=5, gap_s=0.01)
    sim.send_joined([good(b"joined 1"), good(b"joined 2"), good(b"joined 3")])
    sim.send_joined([good(b"shared 1"), good(b"shared 2")], shared_flag=True)
    sim.send_corrupt(meter.transparent(b"bad fcs"), "fcs")
    sim.send(good(b"after bad fcs"))
    sim.send_corrupt(meter.transparent(b"bad length"), "length")
    sim.send(good(b"after bad length"))
    sim.send_corrupt(meter.transparent(b"truncated"), "truncate")
    sim.send(good(b"after truncated"))
    assert running.wait(lambda: len(running.uplink) >= len(expected))
    sim.send_corrupt(good(b"closing flag lost"), "flag")      # recovered after the idle gap
    assert running.wait(lambda: len(running.uplink) == len(expected))
    sim.send(good(b"last"))
    assert running.wait(lambda: len(running.uplink) == len(expected))
    assert running.uplink == expected
    status = running.uart.status()
    assert status["decoder_garbage_bytes"] >= 11
    assert status["decoder_bad_fcs"] == 1
    assert status["decoder_bad_length"] == 2
    assert status["decoder_missing_flag"] == 1
    assert status["idle_flushes"] >= 1


def _raising(resolver):
    @resolver.register(meter.PROTO_PARAMETERS, cmd=meter.CMD_GET, pid=0x8010)
    def _bug(frame):
        raise RuntimeError("handler bug")


def test_handler_exceptions_are_isolated(tmp_path):
    running = _Running(tmp_path, rfc1662.LEGACY, register=_raising)
    try:
        sim = running.sim
        answer = sim.request(meter.get_request(0x8010), TIMEOUT)
        assert answer.message() == meter.get_error(0x8010)
        sim.send_transparent(b"still alive")
        assert running.wait(lambda: running.uplink == [b"still alive"])
        assert sim.request(meter.get_request(0x8005), TIMEOUT).message() == \
            meter.get_response(0x8005, b"SIM-SERIAL")
        assert running.uart.status()["resolver_handler_errors"] == 1
    finally:
        assert running.close() is True


def test_uart_reopens_after_the_device_disappears_and_returns(tmp_path):
    running = _Running(tmp_path, rfc1662.LEGACY)
    try:
        sim, uart = running.sim, running.uart
        sim.unplug()
        # A hung-up pty reads as empty on the host shim: the failed write reveals it (a
        # shim that reports the hang-up on read gets there first: the write is then dropped).
        assert running.app.bus.publish("hes.data", b"while unplugged") == 1
        assert uart.stats["hes_dropped"] == 1
        assert uart.stats["io_errors"] + uart.stats["tx_errors"] >= 1
        assert running.wait(lambda: uart.stats["open_failures"] >= 1)
        assert not uart.is_open
        sim.replug()
        assert running.wait(lambda: uart.stats["reopens"] == 1 and uart.is_open)
        sim.send_transparent(b"back again")
        assert running.wait(lambda: running.uplink == [b"back again"])
        running.app.bus.publish("hes.data", b"to the new pty")
        assert sim.wait_for(lambda: sim.transparent == [b"to the new pty"], TIMEOUT)
    finally:
        assert running.close() is True


def test_rs485_direction_is_handed_to_the_uart(tmp_path):
    running = _Running(tmp_path, rfc1662.LEGACY, uart={"rs485_pin": 12, "rs485_tx_level": 0})
    try:
        assert shimctl.gpio.get(12) == 1                  # receiving: the other level
        running.app.bus.publish("hes.data", b"over RS-485")
        sim = running.sim
        assert sim.wait_for(lambda: sim.transparent == [b"over RS-485"], TIMEOUT)
        assert shimctl.gpio.get(12) == 1
    finally:
        assert running.close() is True


# -- the same app under MicroPython, booted by the host runner (tools/board.py) -------------

class _Booted(object):
    """The app in a subprocess (loopback board); stdout lines collected by a thread."""

    def __init__(self, tmp_path, interpreter, dialect, health_s=0.2):
        self.sim = MeterSim(dialect, link=str(tmp_path / "meter.tty")).start()
        config = {"APP": {"stop_timeout": 2.0, "log_level": "INFO"},
                  "HEALTH": {"interval_s": health_s},
                  "UART": _uart_config(self.sim, dialect),
                  "METER": {"serial": "MP-SERIAL", "device_name": "mp-module", "store": ""}}
        root = hes_loopback.stage(str(tmp_path / "board"), config)
        self.proc = subprocess.Popen(board_root.run_command(root, interpreter),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines = []
        self._cond = threading.Condition()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def wait_line(self, pattern, timeout=15.0):
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in reversed(self.lines):
                    if regex.search(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    raise AssertionError("%r not seen in:\n%s" % (pattern, "".join(self.lines)))
                self._cond.wait(remaining)

    def stop(self):
        if self.proc.poll() is None:
            interrupt(self.proc)
        try:
            self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.sim.stop()
        return "".join(self.lines)


def _counter(line, name):
    found = re.search(r"\b%s=(\d+)" % re.escape(name), line)
    return int(found.group(1)) if found else 0


@pytest.mark.parametrize("dialect", rfc1662.DIALECTS)
def test_micropython_app_exchanges_frames_with_the_meter(tmp_path, dialect):
    booted = _Booted(tmp_path, "micropython", dialect)
    try:
        booted.wait_line(r"INFO uart: UART .* open")
        sim = booted.sim
        sim.send_transparent(b"ping \x7e")
        assert sim.wait_for(lambda: b"echo:ping \x7e" in sim.transparent, 10)
        answer = sim.request(meter.get_request(0x8003), 10)
        csq = meter.parse_get_response(answer.payload)
        assert csq[0] == 0x8003 and (0 <= csq[1][0] <= 31 or csq[1][0] == 99)
        assert sim.request(meter.get_request(0x8005), 10).message() == \
            meter.get_response(0x8005, b"MP-SERIAL")
        assert sim.request(meter.get_request(0x8007), 10).message() == \
            meter.get_response(0x8007, b"mp-module")
        state = meter.parse_get_response(sim.request(meter.get_request(0x8002), 10).payload)
        assert state in ((0x8002, b"\x00"), (0x8002, b"\x02"))    # starting / network up
        typed = meter.typed_value(0, meter.TAG_VISIBLE_STRING, "NEW-SN")
        assert sim.request(meter.set_request(0x8005, typed), 10).message() == \
            meter.set_response(0x8005, meter.ACK_SUCCESS)
        assert sim.request(meter.get_request(0x8999), 10).message() == meter.get_error(0x8999)
        sim.garbage()
        sim.send_corrupt(meter.transparent(b"bad"), "fcs")
        sim.send_split(meter.transparent(b"split"), pieces=4, gap_s=0.01)
        sim.send_joined([meter.transparent(b"j1"), meter.transparent(b"j2")])
        assert sim.wait_for(lambda: sim.transparent[-3:] == [b"echo:split", b"echo:j1",
                                                              b"echo:j2"], 10)
        line = booted.wait_line(r"uart\.decoder_bad_fcs=1\b.*uart\.transparent_in=4\b")
        assert _counter(line, "uart.decoder_garbage_bytes") >= 11
        assert _counter(line, "uart.resolver_failure_responses") == 1
        assert _counter(line, "loopback.echoed") == 4
    finally:
        output = booted.stop()
    assert booted.proc.returncode == 0, output
    assert "meter-module stopped" in output and "some threads still running" not in output
    assert "Traceback" not in output


def test_board_runner_with_the_real_main_answers_the_meter(tmp_path):
    """`tools/board.py run --interpreter micropython --config cfg.json --duration N`, unchanged
    main.py: the meter's GETs are answered and its transparent data taken by the cloud link."""
    sim = MeterSim(rfc1662.LEGACY, link=str(tmp_path / "meter.tty")).start()
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({
        "APP": {"stop_timeout": 2.0}, "HEALTH": {"interval_s": 0.2},
        "UART": _uart_config(sim, rfc1662.LEGACY),
        "METER": {"serial": "RUNNER-SN", "device_name": "runner", "store": ""}}))
    proc = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "tools", "board.py"), "run", "--root",
         str(tmp_path / "board"), "--interpreter", "micropython", "--config", str(config),
         "--duration", "4"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 15          # until the app is up: ask again
        while sim.request(meter.get_request(0x8005), 0.5) is None:
            assert time.monotonic() < deadline and proc.poll() is None
        assert sim.request(meter.get_request(0x8007), 5).message() == \
            meter.get_response(0x8007, b"runner")
        sim.send_transparent(b"reading for the HES")
        output = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
        sim.stop()
    assert proc.returncode == 0, output
    assert sim.responses[0].message() == meter.get_response(0x8005, b"RUNNER-SN")
    status = [line for line in output.splitlines() if "INFO health: status" in line][-1]
    assert _counter(status, "uart.transparent_in") == 1
    assert _counter(status, "uart.transparent_unheard") == 0
    assert "meter-module stopped" in output and "Traceback" not in output
