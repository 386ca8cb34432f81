"""machine.UART of the shim against a real peer (socket://), loop:// and missing devices;
machine.Pin and RS-485 direction. (Pty UARTs: tests/host/tooling/test_shim_uart.py.)"""
import _thread

import shimctl
from shimlib import firmware
import machine
from checks import EVENT_MS, listen_on_free_port, raises


def _read_until(uart, n, timeout_ms=2000):
    data = b""
    assert shimctl.wait_for(lambda: uart.any() >= n, timeout_ms), "only %d bytes" % uart.any()
    while len(data) < n:
        data += uart.read(n - len(data))
    return data


def test_uart_to_a_socket_peer_both_ways_with_callback():
    shimctl.reset()
    listener, port = listen_on_free_port(1)
    shimctl.uart_map[2] = "socket://127.0.0.1:%d" % port
    uart = machine.UART(machine.UART.UART2, 9600, 8, 0, 1, 0)
    meter = listener.accept()[0]
    meter.settimeout(5)
    try:
        assert uart.read(10) == b"" and uart.any() == 0
        assert uart.write(b"\x7e\x01frame\x7e") == 8
        got = b""
        while len(got) < 8:
            got += meter.recv(8)
        assert got == b"\x7e\x01frame\x7e"
        events = []
        assert uart.set_callback(lambda args: events.append((list(args), _thread.get_ident()))) == 0
        meter.send(b"reply")
        assert shimctl.wait_for(lambda: events, EVENT_MS)
        assert events[0][0] == [0, 2, 5] and events[0][1] != _thread.get_ident()
        assert uart.any() == 5
        assert uart.read(3) == b"rep" and uart.read(10) == b"ly"
        meter.send(b"more")
        assert _read_until(uart, 4) == b"more"
    finally:
        assert uart.close() == 0
        meter.close()
        listener.close()
    raises(OSError, uart.write, b"x")


def test_peer_hangup_is_an_oserror_on_read():
    shimctl.reset()
    listener, port = listen_on_free_port(1)
    uart = machine.UART("socket://127.0.0.1:%d" % port)
    meter = listener.accept()[0]
    meter.send(b"last")
    meter.close()
    assert _read_until(uart, 4) == b"last"
    raises(OSError, uart.read, 10)
    uart.close()
    listener.close()


def test_loop_url_reads_back_what_was_written():
    shimctl.reset()
    shimctl.uart_map[1] = "loop://"
    uart = machine.UART(machine.UART.UART1, 115200, 8, 0, 1, 0)
    events = []
    uart.set_callback(events.append)
    uart.write(b"echo")
    assert shimctl.wait_for(lambda: events, EVENT_MS)
    assert events[0][1] == 1 and events[0][2] >= 1
    assert _read_until(uart, 4) == b"echo"
    uart.close()


def test_missing_devices_raise_oserror_with_the_reason():
    shimctl.reset()
    exc = raises(OSError, machine.UART, machine.UART.UART2, 115200, 8, 0, 1, 0)
    assert "uart_map" in str(exc)
    shimctl.uart_map[2] = "/dev/pts/no-such-pty"
    exc = raises(OSError, machine.UART, 2, 115200, 8, 0, 1, 0)
    assert "/dev/pts/no-such-pty" in str(exc)
    listener, port = listen_on_free_port(1)
    listener.close()
    raises(OSError, machine.UART, "socket://127.0.0.1:%d" % port)


def test_reset_closes_uarts_and_forgets_the_map():
    shimctl.reset()
    shimctl.uart_map[2] = "loop://"
    uart = machine.UART(2, 115200, 8, 0, 1, 0)
    uart.set_callback(lambda args: None)
    shimctl.reset()
    assert shimctl.uart_map == {}
    raises(OSError, uart.write, b"x")


def test_pins_and_rs485_direction():
    shimctl.reset()
    out = machine.Pin(machine.Pin.GPIO5, machine.Pin.OUT, machine.Pin.PULL_DISABLE, 1)
    assert out.read() == 1 and shimctl.gpio[5] == 1
    assert out.write(0) == 0 and shimctl.gpio[5] == 0
    button = machine.Pin(machine.Pin.GPIO9, machine.Pin.IN, machine.Pin.PULL_PU)
    assert button.read() == 1
    shimctl.set_gpio(9, 0)
    assert button.read() == 0 and button.write(1) == -1
    levels = []
    shimctl.uart_map[2] = "loop://"
    uart = machine.UART(2, 9600, 8, 0, 1, 0)
    if firmware.LINE != "E3":
        assert not hasattr(uart, "control_485")         # E3 only
        uart.close()
        shimctl.reset()
        return
    assert uart.control_485(machine.Pin.GPIO7, 1) == 0
    assert shimctl.gpio[7] == 0
    real_write = uart._dev.write
    uart._dev.write = lambda data: levels.append(shimctl.gpio[7]) or real_write(data)
    uart.write(b"tx")
    assert levels == [1] and shimctl.gpio[7] == 0
    uart.close()
    shimctl.reset()
