"""One connected stream socket of an uplink driver, plain TCP or TLS: `Connection`.

    conn = Connection(sock, "host:port", tls, poll_s, send_timeout_s)
    conn.send(data)       # all of it, or OSError (send_timeout_s bounds the whole write)
    conn.recv(size)       # bytes; None: nothing within poll_s; b"": the peer closed
    conn.fail(reason)     # from any thread: the connection is broken (the first reason kept)

Used by both drivers (qframe/builtins/clients.py, mqtt.py) through UplinkDriver.dial/adopt
(qframe/builtins/link.py); a QFrame app sees it as `TcpClient.sock` (write/read/status_code).
"""
import utime

from ..threading import Lock
from .sockets import is_timeout
TLS_RECORD = 16384  # a TLS read takes a whole record, so no decrypted bytes wait unseen


def input_poller(sock):
    """A uselect poll object watching sock for input, or None where the firmware has no
    uselect (lines before September 2021): wait with socket timeouts there."""
    try:
        import uselect
        poller = uselect.poll()
        poller.register(sock, uselect.POLLIN)
    except ImportError:
        return None
    return poller


def _ticks():
    return utime.ticks_ms()


def _since_ms(start):
    return utime.ticks_diff(utime.ticks_ms(), start)



class Connection(object):
    """One connected socket (plain or TLS): whole-buffer send, recv that returns None when
    nothing arrived within `poll_s`.

    Plain TCP: the socket's timeout is `poll_s` and recv/send run concurrently. TLS: a session
    must not be used by two threads at once, so reads and writes share a lock, and the TLS
    socket is used through read/write only (the firmware's has no send/recv/settimeout). Where
    the firmware has uselect (from September 2021) the TLS socket is non-blocking and recv
    polls it without the lock, reading a whole record once bytes are there; before that the
    plain socket's timeout (`poll_s`) bounds each read.
    """

    def __init__(self, sock, peer, tls, poll_s, send_timeout_s):
        self.sock = sock
        self.peer = peer
        self.lock = Lock() if tls else None
        self.poll_ms = int(poll_s * 1000)
        self.send_timeout_ms = int(send_timeout_s * 1000)
        self.alive = True
        self.reason = None
        self.opened = _ticks()
        self._poller = input_poller(sock) if tls else None
        self._write = getattr(sock, "send", None) or sock.write
        self._read = getattr(sock, "recv", None) or sock.read

    def __str__(self):
        return "Connection(%s%s)" % (self.peer, "" if self.alive else ", closed")

    def fail(self, reason):
        """Mark the connection broken (the first reason is kept)."""
        if self.alive:
            self.alive = False
            self.reason = reason

    def send(self, data):
        view = memoryview(data)
        sent = 0
        start = _ticks()
        while sent < len(view):
            if not self.alive:
                raise OSError(104, "connection closed")
            try:
                if self.lock is not None:
                    with self.lock:
                        count = self._write(view[sent:])
                else:
                    count = self._write(view[sent:])
            except OSError as exc:
                if not is_timeout(exc):
                    raise
                count = 0
            sent += count or 0
            if sent < len(view):
                if _since_ms(start) > self.send_timeout_ms:
                    raise OSError(110, "send timed out")
                if not count and self.lock is not None:
                    utime.sleep_ms(1)       # non-blocking TLS: wait for room
        return sent

    def recv(self, size):
        """Bytes received, None if nothing arrived within poll_s, b"" at EOF."""
        if self.lock is not None:
            if self._poller is not None and not self._poller.poll(self.poll_ms):
                return None
            with self.lock:
                try:
                    return self._read(TLS_RECORD)   # None: only part of a record so far
                except OSError as exc:
                    if is_timeout(exc):
                        return None
                    raise
        try:
            return self._read(size)
        except OSError as exc:
            if is_timeout(exc):
                return None
            raise

    # QFrame's TcpSocket-style calls on client.sock (they bypass the flash queue)
    def write(self, data):
        """Send data now; True if all of it was written."""
        try:
            return self.send(data) == len(data)
        except OSError:
            return False

    def read(self, size=1024):
        """Bytes received within poll_s (b"" if none)."""
        return self.recv(size) or b""

    @property
    def status_code(self):
        """4 (established) while alive, 99 once closed (QuecPython's socket state codes)."""
        return 4 if self.alive else 99

    def close(self):
        self.fail("closed")
        try:
            self.sock.close()
        except OSError:
            pass

    disconnect = close
