"""An app written for QuecPython's QFrame (tests/host/qframe_app/main.py, a QFrame-style dev.json)
runs unchanged on qframe, on CPython and MicroPython: meter bytes on a real pty reach a plain
TCP server and the server's bytes reach the meter, raw, both ways."""
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

from tools.hostrun import board

HERE = os.path.dirname(os.path.abspath(__file__))
DEADLINE_S = 20


def _read_until(read, wanted, what):
    got = b""
    deadline = time.monotonic() + DEADLINE_S
    while wanted not in got:
        assert time.monotonic() < deadline, "%s: got %r, wanted %r" % (what, got, wanted)
        got += read()
    return got


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
    board.stage(root, config)
    os.remove(os.path.join(root, "usr", "main.py"))
    shutil.copy(os.path.join(HERE, "qframe_app", "main.py"), os.path.join(root, "usr", "main.py"))
    app = subprocess.Popen(board.run_command(root, interpreter, 30), stdout=subprocess.PIPE,
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
    assert "DTU loaded: client, uart" in output, output
    assert "Traceback" not in output, output
    assert "DTU stopped" in output, output
