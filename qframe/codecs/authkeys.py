"""Command keys as material (codec: no I/O): which keys may be used, per-device derivation,
rotation wrapping, and the HES's side of the envelope (tests and tools sign with it).

Kept apart from qframe/codecs/cmdauth.py (what every command and reply needs) because the
module uses it only at start (checking the keys it loads, OTA.keys, AUTH.open_commands) and on
`auth.rotate`: the Auth extension releases it once loaded (it leaves the heap).

    key_problem(text)                 None, or why the hex key must not be used (empty, short,
                                      not hex, one byte repeated, published in this repository)
    derive_key(master, dev)           HMAC-SHA256(master, "qf1 device key\\n" dev "\\n\\n0\\n")
    wrap_key / unwrap_key             a rotated key (32 bytes) XOR an HMAC stream under the key
                                      that signs the rotation, bound to dev, kid and nonce
    parse_keyring(data)               the key file's dict -> (keys, current, pending, problems)
    open_commands_problem(names)      None, or why AUTH.open_commands must not list names
    seal_command(key, dev, kid, ctr, req)   the envelope the HES sends (bytes)
    open_json(key, label, dev, body)        a signed reply's (kid, ctr, text) if its MAC holds
"""
import ubinascii
import ujson

from .cmdauth import READ_ONLY, command_mac, message
from .hmac256 import Hmac, equal, hmac_sha256

MIN_KEY_BYTES = 16

# Keys this repository has published (docs, examples, the old dev.json): never accepted.
PUBLISHED_KEYS = (
    "6465762d666c6565742d6b65792d6e6f742d666f722d70726f64756374696f6e",  # "dev-fleet-key-not..."
    "73696d756c61746f722d6f6e6c792d6d61737465722d6b65792d2d2d2d2d2d2d",  # docs' example master
)




def open_commands_problem(names):
    """None if names (AUTH.open_commands) lists only READ_ONLY commands, else why not."""
    if not isinstance(names, list):
        return "a list of command names"
    for name in names:
        if name not in READ_ONLY:
            return "%r changes state or is unknown: only %s may run unsigned" % (
                name, ", ".join(READ_ONLY))
    return None


def parse_keyring(data):
    """(keys {kid: bytes}, current, pending, problems) from the key file's dict; keys that
    must not be used (key_problem) are left out, each with a line in problems."""
    keys = {}
    problems = []
    if not isinstance(data, dict):
        data = {}
    found = data.get("keys") if isinstance(data.get("keys"), dict) else {}
    for kid in found:
        problem = key_problem(found[kid], "key %r" % kid)
        if problem:
            problems.append(problem)
        else:
            keys[kid] = ubinascii.unhexlify(found[kid])
    current = data.get("current") if data.get("current") in keys else None
    pending = data.get("pending") if data.get("pending") in keys else None
    return keys, current, pending, problems


def _hex(data):
    return ubinascii.hexlify(data).decode()


def seal_command(key, dev, kid, ctr, req):
    """The envelope (bytes) of the command text req (str or bytes) signed with key."""
    req = req.decode() if isinstance(req, bytes) else req
    mac = command_mac(key, dev, kid, ctr, req)
    return ujson.dumps({"kid": kid, "ctr": ctr, "mac": _hex(mac), "req": req}).encode()


def derive_key(master, dev):
    """The per-device key: HMAC-SHA256(master, "qf1 device key\\n" + dev ...)."""
    return hmac_sha256(master, message("device key", dev, "", 0))


def _stream(key, dev, kid, ctr):
    return hmac_sha256(key, message("wrap", dev, kid, ctr))


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
    MIN_KEY_BYTES, one byte repeated, or a key published in this repository."""
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
    for byte in raw:
        if byte != raw[0]:
            return None
    return "%s is one byte repeated" % what


def open_json(key, label, dev, body):
    """seal_json's inverse for the receiving side: (kid, ctr, the signed text as bytes) if
    body's MAC is right under key; None if body is not signed or its MAC is wrong."""
    body = bytes(body)
    start = body.find(b'"mac":"')
    if start < 0 or body[start + 71:start + 73] != b'",':
        return None
    head = body[:start]
    signed = b"{" + body[start + 73:]
    try:
        kid = head.split(b'"kid":"')[1].split(b'"')[0].decode()
        ctr = int(head.split(b'"ctr":')[1].split(b",")[0])
        mac = ubinascii.unhexlify(body[start + 7:start + 71])
    except (IndexError, ValueError):
        return None
    h = Hmac(key)
    h.update(message(label, dev, kid, ctr))
    h.update(signed)
    if not equal(h.digest(), mac):
        return None
    return kid, ctr, signed
