"""ussl on CPython: the firmware's `wrap_socket` over the standard ssl module.

    ussl.wrap_socket(sock, *, key=None, cert=None, server_side=False, server_hostname=None,
                     do_handshake=True)

As on the firmware: everything after sock is keyword-only; key/cert are this side's own pair
(PEM text or DER, or a device path); the peer is never verified (no CA, no host name check:
the firmware's mbedTLS runs with verification off); server_hostname only sets SNI. The
returned TLS socket has read/readinto/readline/write/setblocking/close and getpeercert(True)
(the peer's certificate, DER), getsocketsta from E2: no send/recv/settimeout.
"""
import base64 as _base64
import os as _os
import ssl as _ssl
import tempfile as _tempfile

from shimlib import devicefs as _devicefs, firmware as _firmware
import usocket as _usocket


def _as_file(data, kind, paths):
    """A file holding a PEM or DER `kind` ("CERTIFICATE", "PRIVATE KEY"), or the host path
    of a device path (CPython's ssl loads a pair from files only)."""
    if isinstance(data, str) and data.startswith("/") and "\n" not in data:
        return _devicefs.host_path(data)
    if isinstance(data, str):
        data = data.encode()
    data = bytes(data)
    if not data.startswith(b"-----"):
        body = _base64.encodebytes(data).decode()
        data = ("-----BEGIN %s-----\n%s-----END %s-----\n" % (kind, body, kind)).encode()
    fd, path = _tempfile.mkstemp(suffix=".pem")
    with _os.fdopen(fd, "wb") as f:
        f.write(data)
    paths.append(path)
    return path


def wrap_socket(sock, *, key=None, cert=None, server_side=False, server_hostname=None,
                do_handshake=True):
    """A TLS socket over the connected usocket.socket sock (no verification of the peer)."""
    ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_SERVER if server_side else _ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = _ssl.CERT_NONE
    if key is not None and cert is None:
        raise ValueError("key without cert")
    temporary = []
    try:
        if cert is not None:
            certfile = _as_file(cert, "CERTIFICATE", temporary)
            keyfile = _as_file(key, "PRIVATE KEY", temporary) if key is not None else None
            ctx.load_cert_chain(certfile, keyfile)
        try:
            tls = ctx.wrap_socket(sock._raw, server_side=server_side,
                                  do_handshake_on_connect=do_handshake,
                                  server_hostname=None if server_side else server_hostname)
        except _ssl.SSLError as exc:
            raise OSError(-1, "TLS handshake failed: %s" % exc)
        except OSError as exc:
            raise sock._error(exc)
    finally:
        for path in temporary:
            _os.remove(path)
    return _usocket._adopt(sock, tls)


_firmware.prune(globals(), "ussl")
