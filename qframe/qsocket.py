"""QFrame's `usr.qframe.qsocket`: a TCP (or UDP) socket that resolves, connects and reads
with a timeout.

    sock = TcpSocket("hes.example.com", 8080, timeout=5, keep_alive=5)
    sock.connect()
    sock.write(b"...")              # True once every byte went out
    data = sock.read(1024)          # raises TcpSocket.TimeoutError after `timeout` s idle

keep_alive is QuecPython's TCP keep-alive interval in minutes. status_code is the firmware's
socket state (4 established; 99 no socket).
"""
import usocket

from .builtins.sockets import is_timeout, open_socket

STATE_ESTABLISHED = 4
STATE_NO_SOCKET = 99


class TcpSocket(object):
    socket_type = usocket.SOCK_STREAM

    class TimeoutError(Exception):
        pass

    def __init__(self, host, port, timeout=None, keep_alive=None):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.keep_alive = keep_alive
        self._sock = None

    def __str__(self):
        return '%s(host="%s",port=%s)' % (type(self).__name__, self.host, self.port)

    @property
    def sock(self):
        if self._sock is None:
            raise ValueError("socket not connected")
        return self._sock

    def connect(self):
        """Resolve host and connect (raises OSError on failure)."""
        timeout = self.timeout if self.timeout and self.timeout > 0 else None
        sock = open_socket(self.host, self.port, timeout, self.socket_type)
        if self.keep_alive and self.keep_alive > 0 and hasattr(usocket, "TCP_KEEPALIVE"):
            try:
                sock.setsockopt(usocket.SOL_SOCKET, usocket.TCP_KEEPALIVE, self.keep_alive)
            except Exception:
                sock.close()
                raise
        self._sock = sock

    def disconnect(self):
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def write(self, data):
        """Send all of data; True once sent (QFrame's counts one send() call only)."""
        sock = self.sock
        view = memoryview(data)
        sent = 0
        while sent < len(data):
            count = sock.send(view[sent:])
            if not count:
                return False
            sent += count
        return True

    def read(self, size=1024):
        """Up to size bytes (b'' once the peer closed); TcpSocket.TimeoutError on timeout."""
        try:
            return self.sock.recv(size)
        except OSError as exc:
            if is_timeout(exc):
                raise self.TimeoutError(str(self))
            raise

    @property
    def status_code(self):
        if self._sock is None:
            return STATE_NO_SOCKET
        state = getattr(self._sock, "getsocketsta", None)
        return state() if state is not None else STATE_ESTABLISHED


class UdpSocket(TcpSocket):
    """A connected UDP socket; status_code is 99 after a failed write, 98 after a failed
    read (QFrame's codes), else 0."""
    socket_type = usocket.SOCK_DGRAM

    def __init__(self, *args, **kwargs):
        TcpSocket.__init__(self, *args, **kwargs)
        self._status = 0

    @property
    def status_code(self):
        return self._status

    def write(self, data):
        try:
            return TcpSocket.write(self, data)
        except Exception:
            self._status = 99
            raise

    def read(self, size=1024):
        try:
            return TcpSocket.read(self, size)
        except self.TimeoutError:
            raise
        except Exception:
            self._status = 98
            raise
