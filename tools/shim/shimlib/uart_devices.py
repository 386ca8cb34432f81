"""Host devices behind machine.UART: a tty/pty path, socket://host:port, loop://, pyserial URLs.

Each backend offers read_now(n) (what is there now, b'' if nothing; OSError once the device is
gone), write(data), pollable() (an object for select.poll, or None) and close().
    path            CPython: os.open + termios raw, non-blocking. MicroPython: open(path, 'r+b'),
                    termios.setraw, VMIN = VTIME = 0 (reads return what is there); a build
                    without termios (QuecPython-like 1.13) takes the device as configured (the
                    meter sim's pty is raw) and reads octet by octet while poll says one is there.
    socket://h:p    a TCP client, native on both interpreters (a peer for MicroPython tests).
    loop://         CPython: pyserial's loop; MicroPython: a native loopback.
    other URLs      pyserial (CPython only): rfc2217://, spy://, ...
"""
from shimlib import threads
from shimlib.hostio import select, socket

from shimlib.hostio import IS_MICROPYTHON
EIO = 5
EAGAIN = 11
ENODEV = 19
_VMIN = 6
_VTIME = 5
_PARITY = {0: "N", 1: "E", 2: "O"}


def _error(code, message):
    return OSError(code, message)


def _readable_now(obj):
    poller = select.poll()
    poller.register(obj, select.POLLIN)
    return bool(poller.poll(0))


def _hung_up(obj):
    poller = select.poll()
    poller.register(obj, select.POLLIN)
    for _obj, events in poller.poll(0):
        if events & (select.POLLHUP | select.POLLERR):
            return True
    return False


def _wait_writable(obj, timeout_ms):
    poller = select.poll()
    poller.register(obj, select.POLLOUT)
    if not poller.poll(timeout_ms):
        raise _error(110, "UART write timed out (the peer does not read)")


def _speed(termios, baudrate):
    return getattr(termios, "B%d" % baudrate, None)


class _TtyCPython(object):
    def __init__(self, path, baudrate):
        import os
        import termios
        import tty
        self._os = os
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise _error(exc.errno, "UART device %s cannot be opened: %s" % (path, exc.strerror))
        try:
            tty.setraw(self.fd)
            speed = _speed(termios, baudrate)
            if speed is not None:
                attrs = termios.tcgetattr(self.fd)
                attrs[4] = attrs[5] = speed
                termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        except termios.error:
            pass                      # not a terminal (a FIFO, a file): raw bytes anyway

    def read_now(self, n):
        try:
            data = self._os.read(self.fd, n)
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise _error(exc.errno or EIO, "UART device gone: %s" % exc)
        if not data:                  # non-blocking: no data is EAGAIN, b'' is a hang-up
            raise _error(EIO, "UART device hung up (the other end of the pty closed)")
        return data

    def write(self, data):
        view = memoryview(data)
        sent = 0
        while sent < len(view):
            try:
                sent += self._os.write(self.fd, view[sent:])
            except BlockingIOError:
                _wait_writable(self.fd, 2000)
        return sent

    def pollable(self):
        return self.fd

    def close(self):
        self._os.close(self.fd)


class _TtyMicroPython(object):
    def __init__(self, path, baudrate):
        try:
            import termios
        except ImportError:
            termios = None
        self._poll_first = termios is None      # VMIN stays as set: a read could block
        try:
            self.f = open(path, "r+b")
        except OSError as exc:
            raise _error(exc.args[0], "UART device %s cannot be opened (errno %d)"
                         % (path, exc.args[0]))
        if termios is None:
            return
        fd = self.f.fileno()
        try:
            termios.setraw(fd)
            attrs = termios.tcgetattr(fd)
            attrs[6][_VMIN] = 0
            attrs[6][_VTIME] = 0
            speed = _speed(termios, baudrate)
            if speed is not None:
                attrs[4] = attrs[5] = speed
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        except OSError:
            pass                      # not a terminal

    def read_now(self, n):
        data = self._read_polled(n) if self._poll_first else self.f.read(n)
        if data:
            return data
        if _hung_up(self.f):          # VMIN=0 reads return b'' for "nothing" and "hung up"
            raise _error(EIO, "UART device hung up (the other end of the pty closed)")
        return b""

    def _read_polled(self, n):
        """What is there now, without VMIN = 0: read() returns only once n octets came."""
        out = bytearray()
        while len(out) < n and _readable_now(self.f):
            octet = self.f.read(1)
            if not octet:
                break                   # hung up: poll is readable, read returns nothing
            out.extend(octet)
        return bytes(out)

    def write(self, data):
        return self.f.write(data)

    def pollable(self):
        return self.f

    def close(self):
        self.f.close()


class _TcpClient(object):
    def __init__(self, host, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        try:
            if IS_MICROPYTHON:
                self.sock.connect(socket.getaddrinfo(host, port)[0][-1])
            else:
                self.sock.connect((host, port))
        except OSError as exc:
            self.sock.close()
            raise _error(exc.args[0] if exc.args and isinstance(exc.args[0], int) else EIO,
                         "UART peer socket://%s:%d unreachable: %s" % (host, port, exc))
        self.eof = False

    def read_now(self, n):
        if self.eof:
            raise _error(EIO, "UART peer closed the connection")
        if not _readable_now(self.sock):
            return b""
        data = self.sock.recv(n)
        if not data:
            self.eof = True
            raise _error(EIO, "UART peer closed the connection")
        return data

    def write(self, data):
        self.sock.sendall(data)
        return len(data)

    def pollable(self):
        return self.sock

    def close(self):
        self.sock.close()


class _Loop(object):
    """Native loop:// for MicroPython: what is written comes back."""

    def __init__(self):
        import _thread
        self._lock = _thread.allocate_lock()
        self._buf = bytearray()
        self._ready = threads.Event()

    def read_now(self, n):
        with self._lock:
            data = bytes(self._buf[:n])
            self._buf = self._buf[n:]
            if not self._buf:
                self._ready.clear()
        return data

    def write(self, data):
        with self._lock:
            self._buf.extend(data)
        self._ready.set()
        return len(data)

    def pollable(self):
        return self._ready.pollable()

    def close(self):
        self._ready.close()


class _Pyserial(object):
    def __init__(self, url, baudrate, bytesize, parity, stop):
        try:
            import serial
        except ImportError:
            raise _error(ENODEV, "UART device %s needs pyserial" % url)
        try:
            self.ser = serial.serial_for_url(url, baudrate=baudrate, bytesize=bytesize,
                                             parity=_PARITY.get(parity, "N"), stopbits=stop,
                                             timeout=0, write_timeout=5)
        except (serial.SerialException, ValueError) as exc:
            raise _error(ENODEV, "UART device %s cannot be opened: %s" % (url, exc))
        self._serial = serial

    def read_now(self, n):
        try:
            waiting = self.ser.in_waiting
            return self.ser.read(min(n, waiting)) if waiting else b""
        except self._serial.SerialException as exc:
            raise _error(EIO, "UART device gone: %s" % exc)

    def write(self, data):
        return self.ser.write(data)

    def pollable(self):
        try:
            return self.ser.fileno()
        except Exception:
            return None               # loop://, rfc2217://: the watcher polls in_waiting

    def close(self):
        self.ser.close()


def open_device(device, baudrate=115200, bytesize=8, parity=0, stop=1):
    """A backend for a device path or URL (OSError with the reason if it cannot open)."""
    if device.startswith("socket://"):
        host, port = _split_host_port(device)
        return _TcpClient(host or "127.0.0.1", int(port))
    if "://" in device:
        if IS_MICROPYTHON:
            if device.startswith("loop://"):
                return _Loop()
            raise _error(ENODEV, "UART device %s: only paths, socket:// and loop:// on "
                                 "MicroPython (pyserial URLs need CPython)" % device)
        return _Pyserial(device, baudrate, bytesize, parity, stop)
    if IS_MICROPYTHON:
        return _TtyMicroPython(device, baudrate)
    return _TtyCPython(device, baudrate)


def _split_host_port(device):
    rest = device[len("socket://"):].rstrip("/")
    cut = rest.rfind(":")
    if cut < 0:
        raise _error(ENODEV, "UART device %s: expected socket://host:port" % device)
    return rest[:cut], rest[cut + 1:]
