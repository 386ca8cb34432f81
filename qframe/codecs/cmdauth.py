"""The authenticated envelope of HES commands and module replies (codec: no I/O, no clock).

A command the HES signs travels as a JSON object wrapping the command's own JSON text:

    {"kid": "k1", "ctr": 1765150000123, "mac": "<64 hex>", "req": "{\"id\": 7, \"cmd\": ...}"}

    mac = HMAC-SHA256(key[kid], "qf1 cmd\\n" dev "\\n" kid "\\n" ctr "\\n" req)

`dev` is the module's identity (REGISTER's "dev": the IMEI on a module), so a command signed
for one module is refused by every other; `ctr` is the HES's counter for that module (above
the last one the module accepted: the HES uses max(last + 1, milliseconds since 1970), so it
needs no state of its own). The reply comes back the same way, bound to the command's counter:

    {"kid": "k1", "ctr": <the command's>, "mac": "<64 hex>", "res": "{\"id\": 7, \"ok\": ...}"}

    mac = HMAC-SHA256(key[kid], "qf1 res\\n" dev "\\n" kid "\\n" ctr "\\n" res)

MACs are over the exact bytes of `req` / `res` (no JSON canonicalisation). Per-device keys
come from a fleet master key: `derive_key(master, dev)`; a rotated key travels wrapped under
the key that signs the rotation (`wrap_key`). `key_problem` says why a key must not be used
(empty, short, not hex, or one of the development keys published in this repository).
"""
import ubinascii
import ujson

from .hmac256 import equal, hmac_sha256

MIN_KEY_BYTES = 16
MAX_KID_CHARS = 32
MAX_CTR = (1 << 63) - 1

# Keys this repository has published (docs, examples, the old dev.json): never accepted.
PUBLISHED_KEYS = (
    "6465762d666c6565742d6b65792d6e6f742d666f722d70726f64756374696f6e",  # "dev-fleet-key-not..."
    "73696d756c61746f722d6f6e6c792d6d61737465722d6b65792d2d2d2d2d2d2d",  # docs' example master
)


class EnvelopeError(ValueError):
    """The body claims to be an envelope but is malformed."""


class Envelope(object):
    """A decoded command or reply envelope: kid, ctr, mac (bytes), text (req or res, str)."""

    def __init__(self, kid, ctr, mac, text):
        self.kid = kid
        self.ctr = ctr
        self.mac = mac
        self.text = text


def _message(label, dev, kid, ctr, text):
    return ("qf1 %s\n%s\n%s\n%d\n" % (label, dev, kid, ctr)).encode() + _bytes(text)


def _bytes(text):
    return text.encode() if isinstance(text, str) else bytes(text)


def command_mac(key, dev, kid, ctr, req):
    return hmac_sha256(key, _message("cmd", dev, kid, ctr, req))


def reply_mac(key, dev, kid, ctr, res):
    return hmac_sha256(key, _message("res", dev, kid, ctr, res))


def _hex(data):
    return ubinascii.hexlify(data).decode()


def seal_command(key, dev, kid, ctr, req):
    """The envelope (bytes) of the command text req (str or bytes) signed with key."""
    req = _bytes(req).decode()
    mac = command_mac(key, dev, kid, ctr, req)
    return ujson.dumps({"kid": kid, "ctr": ctr, "mac": _hex(mac), "req": req}).encode()


def seal_reply(key, dev, kid, ctr, res):
    """The reply envelope (a dict, as the session's protocols take replies) of res (str)."""
    return {"kid": kid, "ctr": ctr, "mac": _hex(reply_mac(key, dev, kid, ctr, res)), "res": res}


def decode(obj, field="req"):
    """The Envelope in obj (a decoded JSON value), None if obj is no envelope (no "mac");
    EnvelopeError if it is one but malformed."""
    if not isinstance(obj, dict) or "mac" not in obj:
        return None
    kid = obj.get("kid")
    ctr = obj.get("ctr")
    mac = obj.get("mac")
    text = obj.get(field)
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS:
        raise EnvelopeError("kid is not a string of 1..%d chars" % MAX_KID_CHARS)
    if not isinstance(ctr, int) or isinstance(ctr, bool) or ctr < 1 or ctr > MAX_CTR:
        raise EnvelopeError("ctr is not an integer in 1..2**63-1")
    if not isinstance(mac, str) or len(mac) != 64:
        raise EnvelopeError("mac is not 64 hex digits")
    try:
        raw = ubinascii.unhexlify(mac)
    except Exception:
        raise EnvelopeError("mac is not 64 hex digits")
    if not isinstance(text, str):
        raise EnvelopeError("%s is not a string" % field)
    return Envelope(kid, ctr, raw, text)


def verify_command(envelope, key, dev):
    """True if envelope's MAC is the command MAC under key for dev."""
    return equal(command_mac(key, dev, envelope.kid, envelope.ctr, envelope.text), envelope.mac)


def verify_reply(envelope, key, dev):
    return equal(reply_mac(key, dev, envelope.kid, envelope.ctr, envelope.text), envelope.mac)


def derive_key(master, dev):
    """The per-device key: HMAC-SHA256(master, "qf1 device key\\n" + dev)."""
    return hmac_sha256(master, _message("device key", dev, "", 0, b""))


def _stream(key, dev, kid, ctr):
    return hmac_sha256(key, _message("wrap", dev, kid, ctr, b""))


def wrap_key(key, dev, kid, ctr, new_key):
    """new_key (32 bytes) encrypted for a rotation command signed with key at ctr (hex)."""
    if len(new_key) != 32:
        raise ValueError("a rotated key is 32 bytes")
    stream = _stream(key, dev, kid, ctr)
    return _hex(bytes(new_key[i] ^ stream[i] for i in range(32)))


def unwrap_key(key, dev, kid, ctr, wrapped):
    """wrap_key's inverse (ValueError if wrapped is not 64 hex digits)."""
    try:
        raw = ubinascii.unhexlify(wrapped)
    except Exception:
        raise ValueError("wrapped key is not hex")
    if len(raw) != 32:
        raise ValueError("wrapped key is not 32 bytes")
    stream = _stream(key, dev, kid, ctr)
    return bytes(raw[i] ^ stream[i] for i in range(32))


def key_problem(text, what="key"):
    """None if text (hex) can be a secret key, else why not: empty, not hex, shorter than
    MIN_KEY_BYTES, or a key published in this repository."""
    if not isinstance(text, str) or not text:
        return "%s is empty" % what
    try:
        raw = ubinascii.unhexlify(text)
    except Exception:
        return "%s is not hex" % what
    if len(raw) < MIN_KEY_BYTES:
        return "%s is %d bytes: at least %d" % (what, len(raw), MIN_KEY_BYTES)
    if text.lower() in PUBLISHED_KEYS:
        return "%s is a development key published in the qframe repository" % what
    first = raw[0]
    same = True
    for byte in raw:
        if byte != first:
            same = False
            break
    if same:
        return "%s is one byte repeated" % what
    return None
