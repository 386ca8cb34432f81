"""TLS for the cloud link: wrap a connected socket, verify the server by CA and/or a pinned key.

Pinning compares the SHA-256 of the server certificate (DER) with `fingerprint` (hex, colons
and case ignored): `openssl x509 -in server.pem -outform der | sha256sum`. It needs the TLS
socket's `getpeercert(True)`; where the firmware lacks it, a pinned connection is refused rather
than trusted. A CA (`ca_path`, PEM) is handed to `ussl.wrap_socket(cadata=..., cert_reqs=
CERT_REQUIRED)` on firmware whose ussl accepts those arguments; otherwise the wrap fails.
"""
import ubinascii
import uhashlib


class PinError(ValueError):
    """The server certificate does not match the pinned fingerprint (or cannot be checked)."""


def normalise_fingerprint(text):
    return text.replace(":", "").replace(" ", "").lower()


def certificate_fingerprint(der):
    """Lower-case hex SHA-256 of a DER certificate."""
    return ubinascii.hexlify(uhashlib.sha256(der).digest()).decode()


def check_pin(tls_sock, fingerprint):
    getpeercert = getattr(tls_sock, "getpeercert", None)
    if getpeercert is None:
        raise PinError("this ussl cannot show the server certificate: pinning impossible")
    der = getpeercert(True)
    if not der:
        raise PinError("the server sent no certificate")
    seen = certificate_fingerprint(der)
    if seen != normalise_fingerprint(fingerprint):
        raise PinError("server certificate %s... is not the pinned one" % seen[:16])


def wrap(sock, hostname, ca_path="", fingerprint=""):
    """The TLS socket over sock after the handshake and checks; raises OSError/ValueError/PinError."""
    import ussl
    kwargs = {"server_hostname": hostname}
    if ca_path:
        with open(ca_path, "rb") as f:
            kwargs["cadata"] = f.read()
        kwargs["cert_reqs"] = getattr(ussl, "CERT_REQUIRED", 2)
    try:
        tls_sock = ussl.wrap_socket(sock, **kwargs)
    except TypeError as exc:
        raise ValueError("this ussl does not take %s (%s)" % (sorted(kwargs), exc))
    if fingerprint:
        try:
            check_pin(tls_sock, fingerprint)
        except PinError:
            tls_sock.close()
            raise
    return tls_sock
