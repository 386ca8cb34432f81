"""The shim's machine.UART over real ptys (CPython in-process and a MicroPython subprocess),
pyserial's loop://, and the shim control server driven from another process."""
import os
import pty
import select
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tools.hostrun import board_root
from tools.simulators.ports import server_port
import shimctl
import machine

REPO = board_root.REPO
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")
TIMEOUT = 5.0


@pytest.fixture(autouse=True)
def _clean_shim():
    shimctl.reset()
    yield
    shimctl.reset()


@pytest.fixture
def pty_pair():
    master, slave = pty.openpty()
    path = os.ttyname(slave)         # the shim opens the slave by its path, as a device;
    yield master, path               # ours stays open (unread) so the master never sees EIO
    os.close(master)
    os.close(slave)


def _read_master(master, n, timeout=TIMEOUT):
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < n:
        ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        data += os.read(master, n - len(data))
    return data


def test_cpython_uart_over_a_pty_both_ways(pty_pair):
    master, path = pty_pair
    shimctl.uart_map[2] = path
    uart = machine.UART(machine.UART.UART2, 115200, 8, 0, 1, 0)
    arrived = threading.Event()
    events = []
    uart.set_callback(lambda args: (events.append(list(args)), arrived.set()))
    try:
        frame = b"\x7e\x00 to meter \xff\x7e"
        assert uart.write(frame) == len(frame)
        assert _read_master(master, len(frame)) == frame
        os.write(master, b"\x00\x01\x02from meter")
        assert arrived.wait(TIMEOUT)
        assert events[0][:2] == [0, 2] and events[0][2] >= 1
        assert shimctl.wait_for(lambda: uart.any() == 13, 2000), uart.any()
        assert uart.read(100) == b"\x00\x01\x02from meter"
        assert uart.read(10) == b""
    finally:
        uart.close()


def test_cpython_uart_raises_once_the_pty_is_gone():
    master, slave = pty.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    uart = machine.UART(path, 9600, 8, 0, 1, 0)
    os.write(master, b"bye")
    assert shimctl.wait_for(lambda: uart.any() == 3, 2000)
    os.close(master)
    assert uart.read(10) == b"bye"
    with pytest.raises(OSError):
        for _ in range(100):
            uart.read(10)
            time.sleep(0.01)
    uart.close()


MP_ECHO = textwrap.dedent("""
    import sys
    sys.path[:0] = [{root!r}, {shim!r}, {shim_mp!r}]
    import shimctl
    shimctl.install_fs({root!r})
    import machine
    shimctl.uart_map[2] = {path!r}
    uart = machine.UART(machine.UART.UART2, 115200, 8, 0, 1, 0)
    calls = []
    uart.set_callback(calls.append)
    uart.write(b"ready\\n")
    got = b""
    while not got.endswith(b"quit"):
        shimctl.wait_for(lambda: uart.any() > 0, 5000)
        data = uart.read(64)
        if not data:
            break
        got += data
        uart.write(b"echo:" + data)
    shimctl.wait_for(lambda: calls, 20000)     # announced on the shim's callback thread
    print("callbacks", len(calls), calls[0][:2] if calls else None)
    uart.close()
    shimctl.reset()
""")


@pytest.mark.skipif(not os.path.exists(MICROPYTHON), reason="micropython not installed")
def test_micropython_uart_over_a_pty(pty_pair):
    master, path = pty_pair
    script = MP_ECHO.format(root=board_root.DEFAULT_ROOT, shim=os.path.join(REPO, "tools", "shim"),
                            shim_mp=os.path.join(REPO, "tools", "shim", "micropython"),
                            path=path)
    proc = subprocess.Popen([MICROPYTHON, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        assert _read_master(master, 6) == b"ready\n"
        os.write(master, b"ping")
        assert _read_master(master, 9) == b"echo:ping"
        os.write(master, b"quit")
        assert _read_master(master, 9) == b"echo:quit"
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out.decode()
    assert b"callbacks" in out and b"[0, 2]" in out, out.decode()


def test_pyserial_loop_url():
    uart = machine.UART("loop://", 9600, 8, 0, 1, 0)
    events = []
    uart.set_callback(events.append)
    try:
        uart.write(b"looped")
        assert shimctl.wait_for(lambda: events, 2000)
        assert shimctl.wait_for(lambda: uart.any() == 6, 2000)
        assert uart.read(6) == b"looped"
    finally:
        uart.close()
    assert not uart._watcher


def test_control_server_driven_by_the_cli():
    port = shimctl.serve_control(0)
    cli = [sys.executable, os.path.join(REPO, "tools", "shim", "shimctl.py"), str(port)]
    out = subprocess.run(cli + ["network", "down"], capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert out.returncode == 0 and out.stdout.strip() == "ok"
    assert not shimctl.net_ready()
    out = subprocess.run(cli + ["csq", "3"], capture_output=True, text=True, timeout=TIMEOUT)
    assert shimctl.state["csq"] == 3
    out = subprocess.run(cli + ["status"], capture_output=True, text=True, timeout=TIMEOUT)
    assert '"csq": 3' in out.stdout and '"registered": false' in out.stdout
    out = subprocess.run(cli + ["sim", "sideways"], capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert out.returncode == 1 and out.stdout.startswith("error")


MP_APP = textwrap.dedent("""
    import sys
    sys.path[:0] = [{root!r}, {shim!r}, {shim_mp!r}]
    import shimctl
    shimctl.install_fs({root!r})
    import dataCall, checkNet
    events = []
    dataCall.setCallback(events.append)
    shimctl.serve_control({port})
    shimctl.wait_for(lambda: len(events) == 2, 10000)
    print("events", events, shimctl.net_stage())
    shimctl.reset()
""")


@pytest.mark.skipif(not os.path.exists(MICROPYTHON), reason="micropython not installed")
def test_control_server_in_a_micropython_app():
    port = server_port()
    script = MP_APP.format(root=board_root.DEFAULT_ROOT, shim=os.path.join(REPO, "tools", "shim"),
                           shim_mp=os.path.join(REPO, "tools", "shim", "micropython"), port=port)
    proc = subprocess.Popen([MICROPYTHON, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                assert shimctl.shimctl_client(port, "network down") == "ok"
                break
            except OSError:
                assert time.monotonic() < deadline, "the MicroPython app never served"
                time.sleep(0.05)
        assert shimctl.shimctl_client(port, "status")["registered"] is False
        assert shimctl.shimctl_client(port, "network up") == "ok"
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"events [(1, 0), (1, 1)] (3, 1)" in out, out.decode()
