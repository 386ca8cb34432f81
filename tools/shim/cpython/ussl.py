"""ussl on CPython: `wrap_socket` over the standard ssl module, returning a usocket wrapper.

Takes MicroPython 1.13's arguments (server_side, keyfile, certfile, cert_reqs, ca_certs,
server_hostname, do_handshake), newer MicroPython's (key, cert, cadata) and QuecPython's
(cert, key as PEM text). Paths may be device paths (/usr/...). With CERT_REQUIRED and a
server_hostname the host name is checked, as mbedTLS does.
"""
import os
import ssl as _ssl
import tempfile

from shimlib import devicefs
import usocket

CERT_NONE = 0
CERT_OPTIONAL = 1
CERT_REQUIRED = 2
_VERIFY = {CERT_NONE: _ssl.CERT_NONE, CERT_OPTIONAL: _ssl.CERT_OPTIONAL,
           CERT_REQUIRED: _ssl.CERT_REQUIRED}


def _as_file(data, paths):
    """A temporary file holding PEM/DER data (CPython's ssl loads chains from files)."""
    if isinstance(data, str):
        data = data.encode()
    fd, path = tempfile.mkstemp(suffix=".pem")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    paths.append(path)
    return path


def _cadata(data):
    if isinstance(data, (bytes, bytearray)) and bytes(data[:10]).startswith(b"-----"):
        return bytes(data).decode()
    return data if isinstance(data, str) else bytes(data)


def wrap_socket(sock, server_side=False, keyfile=None, certfile=None, cert_reqs=CERT_NONE,
                ca_certs=None, server_hostname=None, do_handshake=True, cert=None, key=None,
                cadata=None):
    """A TLS usocket.socket over the connected usocket.socket sock."""
    ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_SERVER if server_side else _ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = bool(cert_reqs == CERT_REQUIRED and server_hostname and not server_side)
    ctx.verify_mode = _VERIFY.get(cert_reqs, _ssl.CERT_NONE)
    temporary = []
    try:
        certfile = devicefs.host_path(certfile) if certfile else None
        keyfile = devicefs.host_path(keyfile) if keyfile else None
        if cert is not None:
            certfile = _as_file(cert, temporary)
        if key is not None:
            keyfile = _as_file(key, temporary)
        if certfile:
            ctx.load_cert_chain(certfile, keyfile)
        if ca_certs:
            ctx.load_verify_locations(cafile=devicefs.host_path(ca_certs))
        if cadata is not None:
            ctx.load_verify_locations(cadata=_cadata(cadata))
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
            os.remove(path)
    return usocket._adopt(sock, tls)
