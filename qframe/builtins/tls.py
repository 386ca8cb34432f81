"""TLS for the cloud link: wrap a connected socket, verify the server by pinning its certificate.

The module's ussl (every 2021 firmware line) never verifies the server against a CA: its
mbedTLS runs with verification off and wrap_socket takes no CA. What it can do is show the
server's certificate after the handshake (`getpeercert(True)`, DER), so the server is checked
by pinning: the SHA-256 of that DER must be one of `fingerprints` (hex, colons, case and
spaces ignored; several separated by commas, so a certificate can be rotated):
`openssl x509 -in server.pem -outform der | sha256sum`. A TLS socket is used through
read/write only (no send/recv/settimeout on the firmware's).
"""
import ubinascii
import uhashlib


class PinError(ValueError):
    """The server certificate does not match a pinned fingerprint (or cannot be checked)."""


def normalise_fingerprint(text):
    return text.replace(":", "").replace(" ", "").lower()


def pins(text):
    """The set of pinned fingerprints in a config value ("fp1, fp2")."""
    return [normalise_fingerprint(part) for part in text.split(",") if part.strip()]


def certificate_fingerprint(der):
    """Lower-case hex SHA-256 of a DER certificate."""
    return ubinascii.hexlify(uhashlib.sha256(der).digest()).decode()


def check_pin(tls_sock, fingerprints):
    """PinError unless the server's certificate is one of fingerprints (a config value)."""
    if tls_sock is None:
        raise PinError("no TLS socket to read the server certificate from")
    der = tls_sock.getpeercert(True)
    if not der:
        raise PinError("the server sent no certificate")
    seen = certificate_fingerprint(der)
    if seen not in pins(fingerprints):
        raise PinError("server certificate %s... is not a pinned one" % seen[:16])


def wrap(sock, hostname, fingerprints=""):
    """The TLS socket over sock after the handshake and the pin check (none when
    fingerprints is empty: tls_verify "none"); raises OSError/ValueError/PinError."""
    import ussl
    tls_sock = ussl.wrap_socket(sock, server_hostname=hostname)
    if fingerprints:
        try:
            check_pin(tls_sock, fingerprints)
        except PinError:
            tls_sock.close()
            raise
    return tls_sock
