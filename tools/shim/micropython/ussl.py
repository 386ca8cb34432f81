"""ussl on MicroPython unix: `wrap_socket` over the port's ssl/tls, returning a usocket wrapper.

Takes MicroPython 1.13's arguments (server_side, keyfile, certfile, cert_reqs, ca_certs,
server_hostname, do_handshake), newer MicroPython's (key, cert, cadata) and QuecPython's
(cert, key as PEM text). The unix build's mbedTLS parses DER only, so PEM input is converted
(the first certificate or key of a PEM text).
"""
import ssl as _ssl
import ubinascii

import usocket

CERT_NONE = _ssl.CERT_NONE
CERT_OPTIONAL = _ssl.CERT_OPTIONAL
CERT_REQUIRED = _ssl.CERT_REQUIRED


def _der(data):
    """DER bytes from PEM or DER input (str or bytes)."""
    if data is None:
        return None
    if isinstance(data, str):
        data = data.encode()
    data = bytes(data)
    start = data.find(b"-----BEGIN")
    if start < 0:
        return data
    body_start = data.find(b"\n", start) + 1
    body_end = data.find(b"-----END", body_start)
    return ubinascii.a2b_base64(data[body_start:body_end].replace(b"\n", b"").replace(b"\r", b""))


def _read(path):
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


def wrap_socket(sock, server_side=False, keyfile=None, certfile=None, cert_reqs=CERT_NONE,
                ca_certs=None, server_hostname=None, do_handshake=True, cert=None, key=None,
                cadata=None):
    """A TLS usocket.socket over the connected usocket.socket sock."""
    key = _der(key if key is not None else _read(keyfile))
    cert = _der(cert if cert is not None else _read(certfile))
    cadata = _der(cadata if cadata is not None else _read(ca_certs))
    try:
        tls = _ssl.wrap_socket(sock._raw, server_side=server_side, key=key, cert=cert,
                               cert_reqs=cert_reqs, cadata=cadata,
                               server_hostname=server_hostname, do_handshake=do_handshake)
    except OSError as exc:
        raise sock._error(exc)
    return usocket._adopt(sock, tls, raw=sock._raw)
