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

As on the firmware (shimlib/firmware.py prunes the rest): the constants and methods the line
has (no SO_KEEPALIVE, TCP_NODELAY; TCP_KEEPALIVE from E2); setsockopt with an option the
firmware does not implement prints `Warning: lwip.setsockopt() option not implemented` and
returns None. ussl's TLS socket (`_TLSSocket`) has only read, readinto, readline, write,
setblocking, close, getpeercert (and getsocketsta from E2): no send, recv or settimeout.
"""
from shimlib import core as _core, firmware as _firmware, network as _network
from shimlib import notes as _notes, sockets as _sockets
from shimlib.hostio import socket as _socket

_IS_MICROPYTHON = _core.IS_MICROPYTHON

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
SOCK_STREAM = _socket.SOCK_STREAM
SOCK_DGRAM = _socket.SOCK_DGRAM
SOCK_RAW = _socket.SOCK_RAW
IPPROTO_IP = 0
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IP_ADD_MEMBERSHIP = 0x400
SOL_SOCKET = _socket.SOL_SOCKET
SO_REUSEADDR = _socket.SO_REUSEADDR
_SO_KEEPALIVE = getattr(_socket, "SO_KEEPALIVE", 9)
_TCP_KEEPALIVE = 0x7F10        # QuecPython (E2+): keep-alive idle minutes (host: SO_KEEPALIVE)
TCP_KEEPALIVE = _TCP_KEEPALIVE
_OPTIONS = (SO_REUSEADDR, 20) + ((_TCP_KEEPALIVE,) if _firmware.has("usocket", "TCP_KEEPALIVE")
                                 else ())     # what the firmware's setsockopt implements

_EAGAIN = 11
_EBADF = 9
_ENETUNREACH = 101
_ETIMEDOUT = 110
_WILDCARD = ("", "0.0.0.0", "::")
_HOST_PROTOCOLS = (0, IPPROTO_TCP, IPPROTO_UDP)

if _IS_MICROPYTHON:
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
    if not _IS_MICROPYTHON:
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
    if not _IS_MICROPYTHON:
        return (host, port)
    return _socket.getaddrinfo(host or "0.0.0.0", port)[0][-1]


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    """[(family, type, proto, canonname, (ip, port))] with the shim's DNS faults."""
    state = _core.state
    if host not in _WILDCARD:
        if state["dns_fail"] or (not _network.net_ready() and not _is_numeric(host)):
            raise _core.oserror(state["dns_errno"])
    try:
        addrs = _resolve(host or "0.0.0.0", port)
    except OSError:
        raise _core.oserror(state["dns_errno"])
    return [(AF_INET, type or SOCK_STREAM, proto or IPPROTO_TCP, "", addr) for addr in addrs]


_abort_call = []


def _abort_fd(raw):
    """Abort a connected TCP socket (RST to the peer, waiters wake): connect(AF_UNSPEC)."""
    unspec = b"\x00" * 16
    if _IS_MICROPYTHON:
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


class _Stream(_Base):
    """What the firmware's socket and TLS socket share: a host socket (or TLS object) with
    the shim's faults, and the stream methods."""

    def __init__(self, host):
        self._sock = host           # where data goes (a TLS object after ussl)
        self._raw = host            # the host socket: options, fileno, abort
        self._aborted = 0
        self._closed = False
        self._connected = False
        self._listening = False

    # -- faults --------------------------------------------------------------------------

    def _shim_abort(self, errno):
        if self._closed or self._aborted:
            return
        self._aborted = errno
        _abort_fd(self._raw)

    def _check(self):
        if self._closed:
            raise _core.oserror(_EBADF)
        if self._aborted:
            raise _core.oserror(self._aborted)

    def _error(self, exc):
        """The OSError device code should see for a host exception."""
        if self._aborted:
            return _core.oserror(self._aborted)
        if not _IS_MICROPYTHON and isinstance(exc, _socket.timeout):
            return _core.oserror(_ETIMEDOUT)
        if type(exc).__name__.startswith("SSLWant"):     # CPython's non-blocking TLS
            return _core.oserror(_EAGAIN)
        return exc

    def _io(self, fn, *args):
        self._check()
        try:
            result = fn(*args)
        except OSError as exc:
            raise self._error(exc)
        if self._aborted and not result:
            raise _core.oserror(self._aborted)
        return result

    def _recv(self, size):
        if _IS_MICROPYTHON and not hasattr(self._sock, "recv"):
            return self._io(self._sock.read, size)
        return self._io(self._sock.recv, size)

    def _sta(self):
        """TCP state as QuecPython numbers it: 4 established, 1 listen, 0 closed, -1 freed."""
        if self._closed:
            return -1
        if self._aborted:
            return 0
        if self._listening:
            return 1
        return 4 if self._connected else 0

    def _shim_fileno(self):
        return self._raw.fileno()

    # -- stream ----------------------------------------------------------------------------

    def write(self, data):
        if _IS_MICROPYTHON:
            return self._io(self._sock.write, data)
        self._io(self._sock.sendall, data)
        return len(data)

    def read(self, size=None):
        """MicroPython stream read: up to size bytes (all until EOF when None); None if a
        non-blocking socket has nothing."""
        if _IS_MICROPYTHON:
            return self._io(self._sock.read) if size is None else self._io(self._sock.read, size)
        chunks = []
        got = 0
        while size is None or got < size:
            try:
                chunk = self._recv(4096 if size is None else size - got)
            except OSError as exc:
                if chunks and exc.args and exc.args[0] in (_EAGAIN, _ETIMEDOUT):
                    break
                if exc.args and exc.args[0] == _EAGAIN:
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
        if _IS_MICROPYTHON:
            return self._io(self._sock.readline)
        line = b""
        while not line.endswith(b"\n"):
            chunk = self._recv(1)
            if not chunk:
                break
            line += chunk
        return line

    def setblocking(self, flag):
        self._raw.setblocking(flag)

    def close(self):
        if self._closed:
            return
        self._closed = True
        _sockets.unregister(self)
        try:
            self._sock.close()
        finally:
            if self._raw is not self._sock:
                self._raw.close()

    if _IS_MICROPYTHON:
        def ioctl(self, request, arg):
            """MicroPython's stream protocol, so select.poll takes the wrapper (the firmware's
            sockets are C streams and need no such method)."""
            if request == 10:            # MP_STREAM_GET_FILENO
                return self._raw.fileno()
            if request == 4:             # MP_STREAM_CLOSE
                self.close()
                return 0
            return -1

    def __repr__(self):
        return "<%s fd=%s%s>" % (type(self).__name__,
                                 self._raw.fileno() if not self._closed else -1,
                                 " aborted" if self._aborted else "")


class socket(_Stream):
    """usocket.socket over a host socket."""

    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=IPPROTO_TCP, _host=None):
        if _host is None:
            _host = _socket.socket(af, type, proto if proto in _HOST_PROTOCOLS else 0)
        _Stream.__init__(self, _host)
        self._keepalive_min = 0

    # -- connection ------------------------------------------------------------------------

    def connect(self, address):
        self._check()
        if not _network.net_ready():
            raise _core.oserror(_ENETUNREACH)
        try:
            self._raw.connect(_to_host(address))
        except OSError as exc:
            raise self._error(exc)
        self._connected = True
        _sockets.register(self)
        if not _network.net_ready():          # the network went down meanwhile
            self._shim_abort(_sockets.ECONNABORTED)
            raise _core.oserror(_sockets.ECONNABORTED)

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
        _sockets.register(conn)
        return conn, (_from_raw(addr) if _IS_MICROPYTHON else addr[:2])

    # -- data ------------------------------------------------------------------------------

    def send(self, data):
        if _IS_MICROPYTHON and not hasattr(self._sock, "send"):
            return self._io(self._sock.write, data)
        return self._io(self._sock.send, data)

    def sendall(self, data):
        if _IS_MICROPYTHON and not hasattr(self._sock, "sendall"):
            self._io(self._sock.write, data)
        else:
            self._io(self._sock.sendall, data)

    def recv(self, size):
        return self._recv(size)

    def recvfrom(self, size):
        self._check()
        try:
            data, addr = self._raw.recvfrom(size)
        except OSError as exc:
            raise self._error(exc)
        return data, (_from_raw(addr) if _IS_MICROPYTHON else addr[:2])

    def sendto(self, data, address):
        self._check()
        if not _network.net_ready():
            raise _core.oserror(_ENETUNREACH)
        try:
            return self._raw.sendto(data, _to_host(address))
        except OSError as exc:
            raise self._error(exc)

    # -- options ---------------------------------------------------------------------------

    def settimeout(self, timeout):
        self._raw.settimeout(timeout)

    def setsockopt(self, level, optname, value):
        """SO_REUSEADDR, TCP_KEEPALIVE (E2+, idle minutes) and 20 (events callback) as the
        firmware implements them; any other option prints the firmware's warning."""
        if optname not in _OPTIONS:
            _notes.note("Warning: lwip.setsockopt() option not implemented")
            return None
        if optname == _TCP_KEEPALIVE:
            self._keepalive_min = value
            self._raw.setsockopt(SOL_SOCKET, _SO_KEEPALIVE, 1 if value else 0)
        elif optname == SO_REUSEADDR:
            self._raw.setsockopt(SOL_SOCKET, SO_REUSEADDR, value)
        return None

    def fileno(self):
        return self._raw.fileno()

    def makefile(self, mode="rb", buffering=0):
        return self

    def getsocketsta(self):
        return self._sta()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _TLSSocket(_Stream):
    """What ussl.wrap_socket returns: the firmware's TLS socket (table class SSLSocket)."""

    _peer = None

    def getpeercert(self, binary_form=False):
        """The server's certificate as DER bytes (binary_form=True), None if it sent none."""
        self._check()
        if not binary_form:
            raise ValueError("the firmware returns the certificate as DER only: "
                             "getpeercert(True)")
        if self._peer is not None:           # a TLS stack that cannot show it (ussl.py)
            return self._peer.peer
        return self._sock.getpeercert(True)

    def getsocketsta(self):
        return self._sta()


def _adopt(plain, tls, raw=None, peer=None):
    """The TLS socket over a TLS object made from `plain` (ussl): same faults, same fd.
    `peer.peer` is the server's certificate where the TLS object cannot show it."""
    wrapped = _TLSSocket(raw if raw is not None else tls)
    wrapped._sock = tls
    wrapped._peer = peer
    wrapped._connected = plain._connected
    plain._closed = True           # its host socket now belongs to the TLS wrapper, and its
    plain._raw = wrapped._raw      # settimeout applies to the TLS reads, as on the firmware
    _sockets.unregister(plain)
    if wrapped._connected:
        _sockets.register(wrapped)
    return wrapped


_firmware.prune(globals(), "usocket", keep=("ioctl",))
_firmware.prune_class(_TLSSocket, "ussl", "SSLSocket", keep=("ioctl",))
