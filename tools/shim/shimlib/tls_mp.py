"""ussl on MicroPython unix: the firmware's `wrap_socket` over the port's ssl (1.29) or built-in
ussl (1.13). shimlib puts this module into sys.modules['ussl'] (a 1.13 build finds its built-in
ussl before sys.path).

    ussl.wrap_socket(sock, *, key=None, cert=None, server_side=False, server_hostname=None,
                     do_handshake=True)

As on the firmware (see tools/shim/cpython/ussl.py): keyword-only, the peer never verified,
key/cert this side's own pair (PEM text or DER, or a device path; the unix build's mbedTLS
parses DER only, so PEM is converted), a TLS socket with read/write/... and getpeercert(True).
Newer unix builds' TLS socket cannot show the peer's certificate, so a client reads it from
the handshake as it passes (TLS 1.2 sends it in the clear): _Recorder. 1.13's ussl has
getpeercert(True) itself, and no cert_reqs (it never verifies).
"""
import _thread
import uio as _io
import ubinascii as _ubinascii

from shimlib import firmware as _firmware
import usocket as _usocket

_tls = []
_tls_lock = _thread.allocate_lock()


def _stack():
    """(the interpreter's TLS module, whether it is a newer one: verifies unless told not to,
    no getpeercert). Imported at first use: newer ports freeze `ssl`, and a sys.path without
    '.frozen' (the virtual board) has none until then. Under a lock: a second thread would
    see the module half-imported (no SSLContext yet) and take it for an old one for good."""
    with _tls_lock:
        return _first_stack()


def _first_stack():
    if not _tls:
        try:
            import ssl as module        # newer MicroPython
        except ImportError:
            from shimlib.hostio import sys
            del sys.modules["ussl"]     # this module: let the import find 1.13's built-in
            try:
                import ussl as module
            finally:
                sys.modules["ussl"] = _self()
        _tls.append((module, hasattr(module, "SSLContext")))
    return _tls[0]


def _self():
    import shimlib.tls_mp
    return shimlib.tls_mp


def _der(data):
    """DER bytes from PEM or DER input (str or bytes) or a device path."""
    if data is None:
        return None
    if isinstance(data, str) and data.startswith("/") and "\n" not in data:
        with open(data, "rb") as f:
            data = f.read()
    if isinstance(data, str):
        data = data.encode()
    data = bytes(data)
    start = data.find(b"-----BEGIN")
    if start < 0:
        return data
    body_start = data.find(b"\n", start) + 1
    body_end = data.find(b"-----END", body_start)
    return _ubinascii.a2b_base64(data[body_start:body_end].replace(b"\n", b"").replace(b"\r", b""))


_HANDSHAKE = 0x16
_CERTIFICATE = 0x0B
_LIMIT = 32768


def _u24(data, at):
    return (data[at] << 16) | (data[at + 1] << 8) | data[at + 2]


def _first_certificate(records):
    """The first certificate (DER) of the TLS 1.2 Certificate message in `records` (the
    server's first bytes), None while incomplete."""
    handshake = bytearray()
    at = 0
    while at + 5 <= len(records):
        size = (records[at + 3] << 8) | records[at + 4]
        if at + 5 + size > len(records):
            break
        if records[at] == _HANDSHAKE:
            handshake.extend(records[at + 5:at + 5 + size])
        at += 5 + size
    at = 0
    while at + 4 <= len(handshake):
        size = _u24(handshake, at + 1)
        if handshake[at] == _CERTIFICATE and at + 4 + size <= len(handshake) and size >= 6:
            cert = at + 4 + 3
            return bytes(handshake[cert + 3:cert + 3 + _u24(handshake, cert)])
        at += 4 + size
    return None


class _Recorder(_io.IOBase):
    """The host socket as the TLS layer's stream, keeping what the server sends first until
    its certificate went by. Never raises into the TLS code: would-block is None."""

    def __init__(self, raw):
        self._raw = raw
        self._seen = bytearray()
        self.peer = None

    def readinto(self, buf):
        try:
            count = self._raw.readinto(buf)
        except OSError:
            return None
        if count and self.peer is None and len(self._seen) < _LIMIT:
            self._seen.extend(buf[:count])
            self.peer = _first_certificate(self._seen)
        return count

    def write(self, buf):
        try:
            return self._raw.write(buf)
        except OSError:
            return None

    def ioctl(self, request, arg):
        if request == 4:                # MP_STREAM_CLOSE
            self._raw.close()
            return 0
        return -1


def wrap_socket(sock, *, key=None, cert=None, server_side=False, server_hostname=None,
                do_handshake=True):
    """A TLS socket over the connected usocket.socket sock (no verification of the peer)."""
    if key is not None and cert is None:
        raise ValueError("key without cert")
    _ssl, newer = _stack()
    stream = _Recorder(sock._raw) if newer and not server_side else sock._raw
    options = {"cert_reqs": _ssl.CERT_NONE} if newer else {}
    try:
        tls = _ssl.wrap_socket(stream, server_side=server_side, key=_der(key),
                               cert=_der(cert), server_hostname=server_hostname,
                               do_handshake=do_handshake, **options)
    except OSError as exc:
        raise sock._error(exc)
    return _usocket._adopt(sock, tls, raw=sock._raw,
                           peer=stream if stream is not sock._raw else None)


_firmware.prune(globals(), "ussl")
