"""Apps written for QuecPython's QFrame run unchanged on qframe, on CPython and MicroPython,
with a QFrame-style dev.json: meter bytes on a real pty reach a plain TCP server and the
server's bytes reach the meter.

- qframe_app/: a raw UART <-> TCP relay (QFrame's demo DTU shape).
- qframe_meter_app/: a meter gateway in the shape of QFrame's electricity-meter solution
  (business module, a resolver registered through app.extensions[...], a Thread per frame,
  logger.warn with several arguments, usys.print_exception on a bad frame).
"""
import json
import os
import pty
import select
import signal
import shutil
import socket
import subprocess
import time
import tty

import pytest

from tools.hostrun import board_root

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # tests/host: helpers, apps
DEADLINE_S = 20


def _read_until(read, wanted, what):
    got = b""
    deadline = time.monotonic() + DEADLINE_S
    while wanted not in got:
        assert time.monotonic() < deadline, "%s: got %r, wanted %r" % (what, got, wanted)
        got += read()
    return got


class _Rig(object):
    """A board root holding an app folder's files, a pty meter and a TCP server."""

    def __init__(self, tmp_path, interpreter, app_dir):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.meter, self.port_side = pty.openpty()
        tty.setraw(self.meter)
        config = {  # QFrame's dev.json keys only, plus a host for the loopback server
            "TCP_SERVER": {"host": "127.0.0.1", "port": self.server.getsockname()[1],
                           "timeout": 5, "keep_alive": 5},
            "UART": {"port": os.ttyname(self.port_side), "baudrate": 115200, "bytesize": 8,
                     "parity": 0, "stopbits": 1, "flowctl": 0},
        }
        root = str(tmp_path / "board")
        board_root.stage(root, config)
        os.remove(os.path.join(root, "usr", "main.py"))
        folder = os.path.join(HERE, app_dir)
        for name in os.listdir(folder):
            if name.endswith(".py"):
                shutil.copy(os.path.join(folder, name), os.path.join(root, "usr", name))
        self.app = subprocess.Popen(board_root.run_command(root, interpreter, 30),
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.server.settimeout(DEADLINE_S)
        self.conn = None
        self.output = ""

    def accept(self):
        self.conn, _ = self.server.accept()
        self.conn.settimeout(0.2)

    def read_server(self):
        try:
            return self.conn.recv(4096)
        except socket.timeout:
            return b""

    def read_meter(self):
        if select.select([self.meter], [], [], 0.2)[0]:
            return os.read(self.meter, 4096)
        return b""

    def meter_until_server(self, data, wanted):
        """Repeat data from the meter until wanted reaches the server (the UART may open
        after the TCP link)."""
        deadline = time.monotonic() + DEADLINE_S
        got = b""
        while wanted not in got:
            assert time.monotonic() < deadline, "meter bytes never reached the server: %r" % got
            os.write(self.meter, data)
            got += self.read_server()

    def close(self):
        self.app.send_signal(signal.SIGINT)
        self.output = self.app.communicate(timeout=30)[0].decode(errors="replace")
        self.server.close()
        if self.conn is not None:
            self.conn.close()
        os.close(self.meter)
        os.close(self.port_side)
        return self.output


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_qframe_meter_gateway_runs_unchanged(tmp_path, interpreter):
    rig = _Rig(tmp_path, interpreter, "qframe_meter_app")
    try:
        rig.accept()
        rig.meter_until_server(b"\x7e\x21\x05hello\x7e", b"hello")
        rig.conn.sendall(b"down")
        _read_until(rig.read_meter, b"\x7e\x21\x04down\x7e", "server bytes at the meter")
        os.write(rig.meter, b"\x7e\x22\x00\x7e")
        _read_until(rig.read_meter, b"\x7e\x22\x04pong\x7e", "the resolver's reply")
        os.write(rig.meter, b"\x7e\x21\x09abc\x7e")
        deadline = time.monotonic() + DEADLINE_S
        while "dropped bad frame" not in rig.output:
            assert time.monotonic() < deadline, rig.output
            rig.output += os.read(rig.app.stdout.fileno(), 65536).decode(errors="replace")
    finally:
        output = rig.output + rig.close()
    assert "GATEWAY loaded: network, framer, uart, client" in output, output
    assert "QFrame API check ok" in output, output
    assert "ValueError: length 9 but 3 octets" in output, output      # usys.print_exception
    assert "Traceback" in output and "framing.py" in output, output
    assert "GATEWAY stopped" in output, output


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_qframe_dtu_relays_raw_bytes_both_ways(tmp_path, interpreter):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    meter, port_side = pty.openpty()
    tty.setraw(meter)
    config = {  # QFrame's dev.json keys only, plus a host for the loopback server
        "TCP_SERVER": {"host": "127.0.0.1", "port": server.getsockname()[1], "timeout": 5,
                       "keep_alive": 5},
        "UART": {"port": os.ttyname(port_side), "baudrate": 115200, "bytesize": 8, "parity": 0,
                 "stopbits": 1, "flowctl": 0},
    }
    root = str(tmp_path / "board")
    board_root.stage(root, config)
    os.remove(os.path.join(root, "usr", "main.py"))
    shutil.copy(os.path.join(HERE, "qframe_app", "main.py"), os.path.join(root, "usr", "main.py"))
    app = subprocess.Popen(board_root.run_command(root, interpreter, 30), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    try:
        server.settimeout(DEADLINE_S)
        conn, _ = server.accept()
        conn.settimeout(0.2)

        def read_server():
            try:
                return conn.recv(4096)
            except socket.timeout:
                return b""

        def read_meter():
            if select.select([meter], [], [], 0.2)[0]:
                return os.read(meter, 4096)
            return b""

        # the UART may open after the TCP link: repeat the meter's bytes until they get through
        deadline = time.monotonic() + DEADLINE_S
        got = b""
        while b"\x7e meter says hi" not in got:
            assert time.monotonic() < deadline, "meter bytes never reached the server: %r" % got
            os.write(meter, b"\x7e meter says hi")
            got += read_server()
        conn.sendall(b"\x00\x7e server says hi")
        _read_until(read_meter, b"\x00\x7e server says hi", "server bytes at the meter")
    finally:
        app.send_signal(signal.SIGINT)
        output = app.communicate(timeout=30)[0].decode(errors="replace")
        server.close()
        os.close(meter)
        os.close(port_side)
    assert "DTU loaded: network, client, uart" in output, output
    assert "Traceback" not in output, output
    assert "DTU stopped" in output, output
