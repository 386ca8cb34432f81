"""The head-end's side of command authentication (host code, CPython's hmac): sign commands
for a module, check its signed replies, and provision a module's key file.

The format is qframe/codecs/cmdauth.py's (written again here with the standard library, so the
simulators check the module's implementation instead of sharing it):

    signer = HesSigner(master)                 # per-device keys derived from a fleet master
    body = signer.seal(dev, '{"id": 1, "cmd": "ping"}')   # the COMMAND body / MQTT payload
    reply, how = signer.open_reply(dev, body)  # body: the RESPONSE's bytes; how: "verified",
                                               # "unsigned" or "bad" (reply None when bad)
    payload = signer.open_record(dev, kid, epoch, seq, body)   # None: a bad MAC
    event = signer.open_event(dev, body)       # the EVENT's dict; None: bad MAC or replayed
    signer.failures()                          # what did not verify (make sim: must be 0)
    write_key_file(folder, dev, key)           # folder/keys.0 (AUTH.keys_path on the host)

What the module sends is checked too (qframe/codecs/cmdauth.py): a record carries
MAC_BYTES after its payload, over the queue's epoch and its seq (kid: the "data_kid" of its
REGISTER / MQTT status; none there: counted records_unsigned, not a failure); an
event is signed JSON whose n (boot << 32 | number) must grow (else events_replayed).

Counters: max(last + 1, milliseconds since 1970) per device, so a restarted HES (or several
HES processes sharing a master) still counts upwards without keeping state.

`SIM_MASTER` is this process's simulator-only master key: random per process, never written
anywhere but the simulated module's board root (`make sim` provisions it there).
"""
import hashlib
import hmac
import json
import os
import re
import threading
import time

KID = "k1"
SIM_MASTER = os.urandom(32)
MAC_BYTES = 16
FAILURES = ("replies_bad", "records_bad", "events_bad", "events_replayed")


def _message(label, dev, kid, ctr, text):
    if isinstance(text, str):
        text = text.encode()
    return ("qf1 %s\n%s\n%s\n%d\n" % (label, dev, kid, ctr)).encode() + bytes(text)


def derive_key(master, dev):
    return hmac.new(master, _message("device key", dev, "", 0, b""), hashlib.sha256).digest()


def command_body(key, dev, kid, ctr, req):
    mac = hmac.new(key, _message("cmd", dev, kid, ctr, req), hashlib.sha256).hexdigest()
    return json.dumps({"kid": kid, "ctr": ctr, "mac": mac, "req": req}).encode()


def wrap_key(key, dev, kid, nonce, new_key):
    stream = hmac.new(key, _message("wrap", dev, kid, nonce, b""), hashlib.sha256).digest()
    return bytes(a ^ b for a, b in zip(new_key, stream)).hex()


class HesSigner(object):
    """Signs for any module of a fleet (keys derived from master), or with fixed keys
    ({dev: key}); unknown devices get unsigned commands."""

    def __init__(self, master=None, keys=None, kid=KID):
        self.master = master
        self.keys = dict(keys or {})
        self.kid = kid
        self.stats = {"signed": 0, "replies_verified": 0, "replies_unsigned": 0,
                      "replies_bad": 0, "records_verified": 0, "records_bad": 0,
                      "records_unsigned": 0, "events_verified": 0, "events_unsigned": 0,
                      "events_bad": 0, "events_replayed": 0, "events_duplicate": 0}
        self._ctr = {}
        self._event_n = {}
        self._lock = threading.Lock()

    def key_for(self, dev):
        if dev in self.keys:
            return self.keys[dev]
        if self.master is not None and dev:
            return derive_key(self.master, dev)
        return None

    def next_ctr(self, dev):
        with self._lock:
            ctr = max(self._ctr.get(dev, 0) + 1, int(time.time() * 1000))
            self._ctr[dev] = ctr
            return ctr

    def seal(self, dev, req):
        """The body to send dev for the command text req (unsigned when dev has no key)."""
        key = self.key_for(dev)
        if key is None:
            return req.encode() if isinstance(req, str) else bytes(req)
        self.stats["signed"] += 1
        req = req.decode() if isinstance(req, bytes) else req
        return command_body(key, dev, self.kid, self.next_ctr(dev), req)

    def open_reply(self, dev, body, count=True):
        """(the reply dict, "verified" | "unsigned" | "bad"); a bad one's reply is None.
        body: the reply's bytes as they came; count: False for a second look at the same
        reply (not counted again)."""
        reply, how = self._open(dev, body)
        if count:
            self.stats["replies_" + how] += 1
        return reply, how

    def _open(self, dev, body):
        try:
            obj = json.loads(body)
        except (TypeError, ValueError):
            return None, "bad"
        if not isinstance(obj, dict) or "mac" not in obj:
            return obj, "unsigned"
        opened = open_signed(self.key_for(dev), "res", dev, body)
        if opened is None:
            return None, "bad"
        reply = json.loads(opened[2])
        return reply, "verified"


    def open_record(self, dev, kid, epoch, seq, body):
        """The record's payload if its MAC (the last MAC_BYTES of body) is right, else None;
        kid None: the module signs no records (body is the payload; counted when it should)."""
        key = self.key_for(dev)
        if kid is None:
            if key is not None:
                self._count("records_unsigned")
            return bytes(body)
        payload, mac = bytes(body[:-MAC_BYTES]), bytes(body[-MAC_BYTES:])
        message = _message("rec", dev, kid, (int(epoch) << 32) | int(seq), payload)
        good = key is not None and len(body) >= MAC_BYTES and hmac.compare_digest(
            hmac.new(key, message, hashlib.sha256).digest()[:MAC_BYTES], mac)
        self._count("records_verified" if good else "records_bad")
        return payload if good else None

    def open_event(self, dev, body):
        """The event's dict ({"event", "data"}) if it is unsigned or verifies with an n above
        the last one from dev; None (counted) if its MAC is bad or its n is not new (the
        same n: a duplicate, not a failure; a lower one: replayed or reordered)."""
        try:
            obj = json.loads(body)
        except (TypeError, ValueError):
            obj = None
        if not isinstance(obj, dict) or "mac" not in obj:
            self._count("events_unsigned")
            return obj
        opened = open_signed(self.key_for(dev), "evt", dev, body)
        if opened is None:
            self._count("events_bad")
            return None
        with self._lock:
            last = self._event_n.get(dev, 0)
            self._event_n[dev] = max(last, opened[1])
        if opened[1] <= last:       # the same n again: a QoS 1 redelivery; lower: replayed
            self._count("events_duplicate" if opened[1] == last else "events_replayed")
            return None
        self._count("events_verified")
        return json.loads(opened[2])

    def failures(self):
        """How many things the modules sent did not verify (FAILURES' counters)."""
        return sum(self.stats[name] for name in FAILURES)

    def _count(self, name):
        with self._lock:
            self.stats[name] += 1


def open_signed(key, label, dev, body):
    """(kid, ctr, the signed JSON bytes) of a body the module signed (qframe/codecs/cmdauth.py
    seal_json: '{"kid":..,"ctr":..,"mac":"<hex>",' then the object's own fields, the MAC over
    '{' + those fields), or None if it is not signed that way or the MAC is wrong."""
    body = bytes(body)
    at = body.find(b'"mac":"')
    if key is None or at < 0 or body[at + 71:at + 73] != b'",':
        return None
    head = json.loads(body[:at].rstrip(b",") + b"}")
    signed = b"{" + body[at + 73:]
    try:
        kid, ctr = str(head["kid"]), int(head["ctr"])
        mac = bytes.fromhex(body[at + 7:at + 71].decode())
    except (KeyError, TypeError, ValueError):
        return None
    good = hmac.new(key, _message(label, dev, kid, ctr, signed), hashlib.sha256).digest()
    if not hmac.compare_digest(good, mac):
        return None
    return kid, ctr, signed


def published_keys():
    """The keys qframe/codecs/authkeys.py lists as published (read from its source)."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(repo, "qframe", "codecs", "authkeys.py")) as f:
        text = f.read()
    block = text[text.index("PUBLISHED_KEYS = ("):]
    block = block[:block.index("\n)")]
    return re.findall(r'"([0-9a-f]{64})"', block)


def published_key_problem(text):
    """qframe/codecs/authkeys.key_problem on the host: why text (hex) must not be a key."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return "the key is not hex"
    if not raw:
        return "the key is empty"
    if len(raw) < 16:
        return "the key is %d bytes: at least 16" % len(raw)
    if text.lower() in published_keys():
        return "the key is a development key published in the qframe repository"
    if len(set(raw)) == 1:
        return "the key is one byte repeated"
    return None


def key_file_line(generation, value):
    body = "%d %s" % (generation, json.dumps(value))
    return body + " " + hashlib.sha256(body.encode()).hexdigest() + "\n"


def write_key_file(path, dev, key, kid=KID):
    """Provision a module's key: path/keys.0 (path: the host folder of AUTH.keys_path) in
    qframe/store/authstore.py's format (the other slot removed: this one is the newest)."""
    os.makedirs(path, exist_ok=True)
    value = {"dev": dev, "keys": {kid: key.hex()}, "current": kid, "pending": None,
             "pins": []}
    with open(os.path.join(path, "keys.0"), "w") as f:
        f.write(key_file_line(1, value))
    try:
        os.remove(os.path.join(path, "keys.1"))
    except FileNotFoundError:
        pass
    return path


def provision_sim(path, dev, master=None):
    """The simulated module's key (derived from SIM_MASTER) installed in path (the host
    folder of AUTH.keys_path)."""
    return write_key_file(path, dev, derive_key(master or SIM_MASTER, dev))
