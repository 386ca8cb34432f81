"""usocket on the host: real sockets with QuecPython's usocket API and the shim's faults.

Device code imports it as `usocket`: tools/shim/usocket.py on CPython; on MicroPython importing
shimlib puts this module into sys.modules['usocket'] (`import usocket` would otherwise find the
built-in socket module before sys.path).

Faults, from shimlib.network: getaddrinfo raises OSError(state["dns_errno"]) while DNS fails
(any host except the wildcard bind addresses) or, for host names, while the network is down;
connect raises OSError(ENETUNREACH) while the network (or PDP) is down; a network loss aborts
every connected socket (ECONNABORTED), shimctl.reset_sockets() resets them (ECONNRESET): the
peer sees a TCP RST, and a thread blocked in recv/poll wakes up. Addresses are (ip, port) tuples
on both interpreters, as on the module; accept() returns (socket, (ip, port)).
"""
from shimlib import core, network, sockets

from shimlib.hostio import socket as _socket

IS_MICROPYTHON = core.IS_MICROPYTHON

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
SOCK_STREAM = _socket.SOCK_STREAM
SOCK_DGRAM = _socket.SOCK_DGRAM
SOCK_RAW = _socket.SOCK_RAW
IPPROTO_IP = 0
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_TCP_SER = 0x7F01       # QuecPython: a TCP server socket (host: plain TCP)
TCP_CUSTOMIZE_PORT = 0x7F02    # QuecPython: a TCP client bound to a chosen port (host: TCP)
SOL_SOCKET = _socket.SOL_SOCKET
SO_REUSEADDR = _socket.SO_REUSEADDR
SO_KEEPALIVE = getattr(_socket, "SO_KEEPALIVE", 9)
TCP_KEEPALIVE = 0x7F10         # QuecPython: keep-alive interval in minutes (host: SO_KEEPALIVE)

EAGAIN = 11
EBADF = 9
ENETUNREACH = 101
ETIMEDOUT = 110
_WILDCARD = ("", "0.0.0.0", "::")
_HOST_PROTOCOLS = (0, IPPROTO_TCP, IPPROTO_UDP)

if IS_MICROPYTHON:
    import uio
    _Base = uio.IOBase          # so select.poll accepts the wrapper (ioctl GET_FILENO)
else:
    _Base = object


def _is_numeric(host):
    parts = host.split(".")
    if len(parts) != 4:
        return ":" in host
    for part in parts:
        if not part.isdigit() or int(part) > 255:
            return False
    return True


def _resolve(host, port):
    """[(ip, port)] from the host resolver."""
    if not IS_MICROPYTHON:
        seen = []
        for info in _socket.getaddrinfo(host, port, AF_INET, SOCK_STREAM):
            if info[4][0] not in seen:
                seen.append(info[4][0])
        return [(ip, port) for ip in seen]
    return [_from_raw(info[-1]) for info in _socket.getaddrinfo(host, port)[:1]]


def _from_raw(raw):
    """MicroPython's raw sockaddr -> (ip, port)."""
    family, addr, port = _socket.sockaddr(raw)[:3]
    return (_socket.inet_ntop(family, addr), port)


def _to_host(address):
    """(host, port) -> what the host socket's connect/bind take."""
    if not isinstance(address, (tuple, list)):
        return address               # MicroPython raw sockaddr passed through
    host, port = address[0], address[1]
    if not IS_MICROPYTHON:
        return (host, port)
    return _socket.getaddrinfo(host or "0.0.0.0", port)[0][-1]


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    """[(family, type, proto, canonname, (ip, port))] with the shim's DNS faults."""
    state = core.state
    if host not in _WILDCARD:
        if state["dns_fail"] or (not network.net_ready() and not _is_numeric(host)):
            raise core.oserror(state["dns_errno"])
    try:
        addrs = _resolve(host or "0.0.0.0", port)
    except OSError:
        raise core.oserror(state["dns_errno"])
    return [(AF_INET, type or SOCK_STREAM, proto or IPPROTO_TCP, "", addr) for addr in addrs]


_abort_call = []


def _abort_fd(raw):
    """Abort a connected TCP socket (RST to the peer, waiters wake): connect(AF_UNSPEC)."""
    unspec = b"\x00" * 16
    if IS_MICROPYTHON:
        try:
            raw.connect(unspec)
        except OSError:
            pass
        return
    try:
        if not _abort_call:
            import ctypes
            _abort_call.append(ctypes.CDLL(None, use_errno=True).connect)
        _abort_call[0](raw.fileno(), unspec, len(unspec))
    except Exception:
        try:
            raw.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass


class socket(_Base):
    """usocket.socket over a host socket."""

    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=IPPROTO_TCP, _host=None):
        if _host is None:
            _host = _socket.socket(af, type, proto if proto in _HOST_PROTOCOLS else 0)
        self._sock = _host          # where data goes (a TLS object after ussl)
        self._raw = _host           # the host socket: options, fileno, abort
        self._aborted = 0
        self._closed = False
        self._connected = False
        self._listening = False
        self.keepalive_min = 0

    # -- faults --------------------------------------------------------------------------

    def _shim_abort(self, errno):
        if self._closed or self._aborted:
            return
        self._aborted = errno
        _abort_fd(self._raw)

    def _check(self):
        if self._closed:
            raise core.oserror(EBADF)
        if self._aborted:
            raise core.oserror(self._aborted)

    def _error(self, exc):
        """The OSError device code should see for a host exception."""
        if self._aborted:
            return core.oserror(self._aborted)
        if not IS_MICROPYTHON and isinstance(exc, _socket.timeout):
            return core.oserror(ETIMEDOUT)
        return exc

    def _io(self, fn, *args):
        self._check()
        try:
            result = fn(*args)
        except OSError as exc:
            raise self._error(exc)
        if self._aborted and not result:
            raise core.oserror(self._aborted)
        return result

    # -- connection ------------------------------------------------------------------------

    def connect(self, address):
        self._check()
        if not network.net_ready():
            raise core.oserror(ENETUNREACH)
        try:
            self._raw.connect(_to_host(address))
        except OSError as exc:
            raise self._error(exc)
        self._connected = True
        sockets.register(self)
        if not network.net_ready():          # the network went down meanwhile
            self._shim_abort(sockets.ECONNABORTED)
            raise core.oserror(sockets.ECONNABORTED)

    def bind(self, address):
        self._check()
        self._raw.bind(_to_host(address))

    def listen(self, backlog=2):
        self._check()
        self._raw.listen(backlog)
        self._listening = True

    def accept(self):
        self._check()
        try:
            host, addr = self._raw.accept()
        except OSError as exc:
            raise self._error(exc)
        conn = socket(_host=host)
        conn._connected = True
        sockets.register(conn)
        return conn, (_from_raw(addr) if IS_MICROPYTHON else addr[:2])

    # -- data ------------------------------------------------------------------------------

    def send(self, data):
        if IS_MICROPYTHON and not hasattr(self._sock, "send"):
            return self._io(self._sock.write, data)
        return self._io(self._sock.send, data)

    def sendall(self, data):
        if IS_MICROPYTHON and not hasattr(self._sock, "sendall"):
            self._io(self._sock.write, data)
        else:
            self._io(self._sock.sendall, data)

    def write(self, data):
        if IS_MICROPYTHON:
            return self._io(self._sock.write, data)
        self._io(self._sock.sendall, data)
        return len(data)

    def recv(self, size):
        if IS_MICROPYTHON and not hasattr(self._sock, "recv"):
            return self._io(self._sock.read, size)
        return self._io(self._sock.recv, size)

    def read(self, size=None):
        """MicroPython stream read: up to size bytes (all until EOF when None); None if a
        non-blocking socket has nothing."""
        if IS_MICROPYTHON:
            return self._io(self._sock.read) if size is None else self._io(self._sock.read, size)
        chunks = []
        got = 0
        while size is None or got < size:
            try:
                chunk = self.recv(4096 if size is None else size - got)
            except OSError as exc:
                if chunks and exc.args and exc.args[0] in (EAGAIN, ETIMEDOUT):
                    break
                if exc.args and exc.args[0] == EAGAIN:
                    return None
                raise
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def readinto(self, buf, nbytes=None):
        data = self.read(len(buf) if nbytes is None else min(nbytes, len(buf)))
        if data is None:
            return None
        buf[:len(data)] = data
        return len(data)

    def readline(self):
        if IS_MICROPYTHON:
            return self._io(self._sock.readline)
        line = b""
        while not line.endswith(b"\n"):
            chunk = self.recv(1)
            if not chunk:
                break
            line += chunk
        return line

    def recvfrom(self, size):
        self._check()
        try:
            data, addr = self._raw.recvfrom(size)
        except OSError as exc:
            raise self._error(exc)
        return data, (_from_raw(addr) if IS_MICROPYTHON else addr[:2])

    def sendto(self, data, address):
        self._check()
        if not network.net_ready():
            raise core.oserror(ENETUNREACH)
        try:
            return self._raw.sendto(data, _to_host(address))
        except OSError as exc:
            raise self._error(exc)

    # -- options ---------------------------------------------------------------------------

    def settimeout(self, timeout):
        self._raw.settimeout(timeout)

    def setblocking(self, flag):
        self._raw.setblocking(flag)

    def setsockopt(self, level, optname, value):
        if optname == TCP_KEEPALIVE:
            self.keepalive_min = value
            self._raw.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1 if value else 0)
            return
        self._raw.setsockopt(level, optname, value)

    def fileno(self):
        return self._raw.fileno()

    def makefile(self, mode="rb", buffering=0):
        return self

    def getsocketsta(self):
        """TCP state as QuecPython numbers it: 4 established, 1 listen, 0 closed, -1 freed."""
        if self._closed:
            return -1
        if self._aborted:
            return 0
        if self._listening:
            return 1
        return 4 if self._connected else 0

    def ioctl(self, request, arg):
        """MicroPython stream protocol: lets select.poll use the host socket's descriptor."""
        if request == 10:            # MP_STREAM_GET_FILENO
            return self._raw.fileno()
        if request == 4:             # MP_STREAM_CLOSE
            self.close()
            return 0
        return -1

    def close(self):
        if self._closed:
            return
        self._closed = True
        sockets.unregister(self)
        try:
            self._sock.close()
        finally:
            if self._raw is not self._sock:
                self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<usocket fd=%s%s>" % (self._raw.fileno() if not self._closed else -1,
                                      " aborted" if self._aborted else "")


def _adopt(plain, tls, raw=None):
    """A socket wrapper for a TLS object made from `plain` (ussl): same faults, same fd."""
    wrapped = socket(_host=raw if raw is not None else tls)
    wrapped._sock = tls
    wrapped._connected = plain._connected
    wrapped.keepalive_min = plain.keepalive_min
    if hasattr(tls, "getpeercert"):          # only where the TLS stack can show it
        wrapped.getpeercert = tls.getpeercert
    plain._closed = True           # its host socket now belongs to the TLS wrapper
    sockets.unregister(plain)
    if wrapped._connected:
        sockets.register(wrapped)
    return wrapped
