"""QFrame's TcpClient API on qframe's cloud link (raw mode, QFrame's dev.json keys only): a
subclass overriding recv_callback, send() returning True/False, sock, connect/disconnect."""
import socket
import threading

import pytest

pytest.importorskip("usocket", reason="needs the QuecPython shim (tools/shim)")

from cloud_helpers import QUEUE_ROOT, clear_queue  # noqa: E402
from tools.simulators.condwait import wait_on  # noqa: E402
from usr.qframe import Application, TcpClient  # noqa: E402


class BusinessClient(TcpClient):
    """As QuecPython's electricity-meter solution writes it."""

    def __init__(self, name, app=None):
        self.received = []
        self.cond = threading.Condition()
        super().__init__(name, app)

    def recv_callback(self, data):
        with self.cond:
            self.received.append(bytes(data))
            self.cond.notify_all()


class PlainServer(object):
    """A bare TCP server on loopback: what a HES that speaks raw bytes looks like."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(2)
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]

    def accept(self):
        conn, _ = self.sock.accept()
        conn.settimeout(5)
        return conn


def _read(conn, wanted):
    got = b""
    while len(got) < len(wanted):
        chunk = conn.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


def test_a_qframe_business_client_runs_unchanged():
    server = PlainServer()
    clear_queue("qframeapi")
    app = Application("DTU")
    app.config.update({"TCP_SERVER": {"host": "127.0.0.1", "port": server.port, "timeout": 5,
                                      "keep_alive": 5},
                       "APP": {"stop_timeout": 2.0, "log_level": "WARNING"}})
    app.config.merge({"TCP_SERVER": {"queue_path": QUEUE_ROOT + "/qframeapi",
                                     "backoff_base_s": 0.05, "backoff_cap_s": 0.2,
                                     "poll_s": 0.05}})
    client = BusinessClient("client")
    client.init_app(app)
    assert app.client is client
    app.mainloop()
    try:
        conn = server.accept()
        assert client.send(b"meter says hi") is True
        assert _read(conn, b"meter says hi") == b"meter says hi"
        conn.sendall(b"\x7e hes says hi")
        assert wait_on(client.cond, lambda: b"".join(client.received) == b"\x7e hes says hi", 5)
        assert client.sock.write(b"direct") is True          # QFrame's TcpSocket.write
        assert _read(conn, b"direct") == b"direct"
        assert "127.0.0.1" in str(client) and str(server.port) in str(client)

        assert client.disconnect() is True
        assert conn.recv(10) == b""                           # the server sees the close
        with pytest.raises(ValueError):
            client.sock
        assert client.send(b"queued while down") is True      # kept on flash meanwhile
        assert client.connect() is True
        again = server.accept()
        assert _read(again, b"queued while down") == b"queued while down"
        assert client.sock.status_code == 4
    finally:
        assert app.stop()
        server.sock.close()
