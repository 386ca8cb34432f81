"""Sockets for the extensions: open one, tell a timeout from a failure.

    sock = open_socket("meter.local", 4059, 3.0)  # a connected TCP socket; the timeout stays
    try:
        data = sock.recv(2048)
    except OSError as exc:
        if not is_timeout(exc):
            raise

open_socket resolves with `usocket.getaddrinfo` (a name that does not resolve raises
ResolveError, an OSError, so a caller can count DNS failures apart), makes a socket of the
address's family and the `kind` asked (SOCK_STREAM, or SOCK_DGRAM), sets the timeout (None: leave it blocking), lets `prepare(sock)` set
options, connects, and closes the socket when anything fails. Small on purpose: the DLMS
client, the OTA download, QFrame's qsocket and the uplinks share it without loading each
other.
"""
import usocket

_TIMEOUT_ERRNOS = (11, 110, 116)        # EAGAIN, ETIMEDOUT, and 116 on QuecPython


class ResolveError(OSError):
    """The host name did not resolve."""


def is_timeout(exc):
    """A timeout or would-block error (the operation may simply be tried again)."""
    if exc.args and exc.args[0] in _TIMEOUT_ERRNOS:
        return True
    if type(exc).__name__ in ("SSLWantReadError", "SSLWantWriteError"):
        return True
    return "timed out" in str(exc)


def resolve(host, port):
    """(family, address) of host:port; ResolveError when it does not resolve."""
    try:
        info = usocket.getaddrinfo(host, port)
    except OSError as exc:
        raise ResolveError("cannot resolve %s: %s" % (host, exc))
    if not info:
        raise ResolveError("cannot resolve %s" % host)
    return info[0][0], info[0][-1]


def open_socket(host, port, timeout_s=None, kind=usocket.SOCK_STREAM, prepare=None):
    """A socket connected to host:port (OSError on failure, the socket closed)."""
    family, address = resolve(host, port)
    sock = usocket.socket(family, kind)
    try:
        if timeout_s is not None:
            sock.settimeout(timeout_s)
        if prepare is not None:
            prepare(sock)
        sock.connect(address)
    except Exception:
        sock.close()
        raise
    return sock
