"""The authenticated envelope of HES commands and of what the module sends back (codec: no
I/O, no clock). Key checks, derivation and rotation: qframe/codecs/authkeys.py.

A command the HES signs travels as a JSON object wrapping the command's own JSON text:

    {"kid": "k1", "ctr": 1765150000123, "mac": "<64 hex>", "req": "{\"id\": 7, \"cmd\": ...}"}

    mac = HMAC-SHA256(key[kid], "qf1 cmd\\n" dev "\\n" kid "\\n" ctr "\\n" req)

`dev` is the module's identity (REGISTER's "dev": the IMEI on a module), so a command signed
for one module is refused by every other; `ctr` is the HES's counter for that module (above
the last one the module accepted: the HES uses max(last + 1, milliseconds since 1970), so it
needs no state of its own). MACs are over the exact bytes of `req` (no canonicalisation).

What the module signs (a reply, bound to its command's counter) is its JSON object as
encoded once, with the MAC put in front instead of wrapping an escaped copy:

    {"kid":"k1","ctr":<n>,"mac":"<64 hex>", <the object's own fields>}

    mac = HMAC-SHA256(key[kid], "qf1 " label "\\n" dev "\\n" kid "\\n" n "\\n" "{" <fields>)

i.e. over the object exactly as it was encoded ("{" and everything after the mac field).
The first `"mac":"` in the text is the MAC's (inside a JSON string every quote is escaped).
Labels: "res" (a reply, n: its command's counter), "evt" (an event, n: boot << 32 | its
number since that start, so a replayed or reordered event is seen by its n).

A record (bytes, not JSON) carries DATA_MAC_BYTES of

    HMAC-SHA256(key[kid], "qf1 rec\n" dev "\n" kid "\n" (epoch << 32 | seq) "\n" payload)

after its payload: the queue's epoch and the record's seq make each MAC unique, so a record
replayed, moved to another seq or reordered no longer matches (record_mac).
"""
import ubinascii
import uhashlib

from .hmac256 import Hmac, equal, pads

MAX_KID_CHARS = 32
DATA_MAC_BYTES = 16             # a record's MAC, truncated (HMAC-SHA256-128)
MAX_CTR = (1 << 63) - 1


# Commands that change nothing: the only ones AUTH.open_commands may list, and the only ones
# the module runs when it cannot store their counter (a full flash).
READ_ONLY = ("ping", "status", "ota_status", "auth.status", "dlms.read", "dlms.read_many",
             "dlms.profile", "dlms.clock")


class EnvelopeError(ValueError):
    """The body claims to be an envelope but is malformed."""


class Envelope(object):
    """A decoded command envelope: kid, ctr, mac (bytes), text (the command, str)."""

    def __init__(self, kid, ctr, mac, text):
        self.kid = kid
        self.ctr = ctr
        self.mac = mac
        self.text = text


def kid_problem(kid):
    """None if kid can name a key (1..MAX_KID_CHARS letters, digits, "_", "-", "."), else why
    not (a kid is written into signed JSON unescaped)."""
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS:
        return "kid is not a string of 1..%d chars" % MAX_KID_CHARS
    for c in kid:
        if not (c.isalpha() or c.isdigit() or c in "_-.") or ord(c) > 126:
            return "kid has a character other than letters, digits, _ - ."
    return None


def message(label, dev, kid, ctr):
    """The head of every MAC'd message; the signed text follows it."""
    return ("qf1 %s\n%s\n%s\n%d\n" % (label, dev, kid, ctr)).encode()


def command_mac(key, dev, kid, ctr, req):
    h = Hmac(key)
    h.update(message("cmd", dev, kid, ctr))
    h.update(req.encode() if isinstance(req, str) else req)
    return h.digest()


def record_mac(key, dev, kid, epoch, seq, payload):
    """The DATA_MAC_BYTES a record carries after its payload (see the module docstring)."""
    return RecordSigner(key, dev, kid).mac(epoch, seq, payload)


class RecordSigner(object):
    """record_mac for one key, dev and kid, with the HMAC pads and the message's head made
    once: a record then costs two hash objects and their digests, little garbage on a busy
    line (what would otherwise fragment the module's heap)."""

    def __init__(self, key, dev, kid):
        self.key = key
        self._inner, self._outer = pads(key)
        self._head = ("qf1 rec\n%s\n%s\n" % (dev, kid)).encode()

    def mac(self, epoch, seq, payload):
        h = uhashlib.sha256(self._inner)
        h.update(self._head)
        h.update(b"%d\n" % ((epoch << 32) | seq))
        h.update(payload)
        outer = uhashlib.sha256(self._outer)
        outer.update(h.digest())
        return outer.digest()[:DATA_MAC_BYTES]


def seal_json(key, label, dev, kid, ctr, text):
    """text (the JSON object as encoded, str or bytes) signed under key: bytes
    {"kid":..,"ctr":..,"mac":"..", <text's fields>} (see the module docstring)."""
    body = text.encode() if isinstance(text, str) else text
    if len(body) < 3 or body[0] != 0x7B:
        raise ValueError("only a non-empty JSON object can be signed")
    h = Hmac(key)
    h.update(message(label, dev, kid, ctr))
    h.update(body)
    out = bytearray(b'{"kid":"%s","ctr":%d,"mac":"' % (kid.encode(), ctr))
    out.extend(ubinascii.hexlify(h.digest()))
    out.extend(b'",')
    out.extend(memoryview(body)[1:])
    return out


def decode(obj):
    """The Envelope in obj (a decoded JSON value), None if obj is no envelope (no "mac");
    EnvelopeError if it is one but malformed."""
    if not isinstance(obj, dict) or "mac" not in obj:
        return None
    kid = obj.get("kid")
    ctr = obj.get("ctr")
    mac = obj.get("mac")
    text = obj.get("req")
    if kid_problem(kid):
        raise EnvelopeError(kid_problem(kid))
    if not isinstance(ctr, int) or isinstance(ctr, bool) or ctr < 1 or ctr > MAX_CTR:
        raise EnvelopeError("ctr is not an integer in 1..2**63-1")
    if not isinstance(mac, str) or len(mac) != 64:
        raise EnvelopeError("mac is not 64 hex digits")
    try:
        raw = ubinascii.unhexlify(mac)
    except Exception:
        raise EnvelopeError("mac is not 64 hex digits")
    if not isinstance(text, str):
        raise EnvelopeError("req is not a string")
    return Envelope(kid, ctr, raw, text)


def verify_command(envelope, key, dev):
    """True if envelope's MAC is the command MAC under key for dev."""
    return equal(command_mac(key, dev, envelope.kid, envelope.ctr, envelope.text), envelope.mac)
