"""The OTA package manifest and its authentication (no I/O).

A package is a folder served over HTTP: `manifest.ota` at its root and every file at its
device path below it (`<package>/usr/main.py`). `manifest.ota` is one header line and the body:

    qframe-ota/1 hmac-sha256 <key id> <body length> <HMAC-SHA256 of the body, 64 hex>\\n
or  qframe-ota/1 ed25519 <key id> <body length> <Ed25519 signature of SHA-256(body), 128 hex>\\n
    {"app": "meter-module", "version": "1.3.0", "min_framework": "0.2.0",
     "files": [{"path": "/usr/main.py", "size": 1234, "sha256": "<64 hex>"}],
     "delete": ["/usr/old.py"], "devices": ["866000000000001"]}

`devices` is optional (absent: the whole fleet the key belongs to). The MAC covers the body
bytes exactly as sent, so no canonical JSON is needed. `verify()` refuses with `Refused`, whose
`reason` is one of REASONS and whose text says what was wrong.
"""
import ubinascii
import uhashlib
import ujson

from .hmac256 import equal, hmac_sha256

MAGIC = "qframe-ota/1"
ALGORITHM = "hmac-sha256"
ED25519 = "ed25519"
_MAC_HEX = {ALGORITHM: 64, ED25519: 128}
MAX_BODY = 32768
MAX_PATH = 120
RESERVED = ("/usr/.ota", "/usr/.updater")      # the updater's own files and folders (prefixes)
LAUNCHER = "/usr/main.py"                       # qframe's launcher: never updated over the air
ENTRY = ("/usr/app_main.py", "/usr/app_main.mpy")   # the app's entry module, the launcher starts

REASONS = ("unsigned", "truncated", "foreign", "tampered", "malformed", "unsafe", "replayed",
           "framework", "failed_before")


class Refused(Exception):
    """A package that must not be installed; `reason` is one of REASONS."""

    def __init__(self, reason, text):
        super().__init__("%s: %s" % (reason, text))
        self.reason = reason
        self.text = text


class Manifest(object):
    """A decoded, authenticated manifest."""

    def __init__(self, body, key_id):
        self.key_id = key_id
        self.app = body["app"]
        self.version = body["version"]
        self.min_framework = body["min_framework"]
        self.files = body["files"]
        self.delete = body.get("delete") or []
        self.devices = body.get("devices")

    def total_size(self):
        return sum(f["size"] for f in self.files)

    def paths(self):
        return [f["path"] for f in self.files]


def parse_version(text):
    """'1.2.10' -> (1, 2, 10); ValueError if it is not dot-separated numbers."""
    if not isinstance(text, str) or not text:
        raise ValueError("a version is a string like 1.2.3")
    parts = []
    for part in text.split("."):
        if not part or not part.isdigit():
            raise ValueError("bad version %r" % text)
        parts.append(int(part))
    return tuple(parts)


def seal(body, key_id, key):
    """The manifest.ota bytes of body (bytes) under key (bytes)."""
    mac = ubinascii.hexlify(hmac_sha256(key, body)).decode()
    return ("%s %s %s %d %s\n" % (MAGIC, ALGORITHM, key_id, len(body), mac)).encode() + body


def open_envelope(blob, keys, public_keys=None):
    """(key id, body bytes) of an authentic manifest.ota; Refused otherwise.
    keys: {key id: HMAC key bytes}; public_keys: {key id: Ed25519 public key bytes}."""
    blob = bytes(blob)
    cut = blob.find(b"\n")
    head = blob[:cut] if cut >= 0 else blob[:200]
    try:
        fields = head.decode().split()
    except Exception:
        fields = []
    if not fields or fields[0] != MAGIC:
        raise Refused("unsigned", "no %s header line" % MAGIC)
    if len(fields) < 5 or _MAC_HEX.get(fields[1]) != len(fields[4]):
        raise Refused("unsigned", "the header carries no %s MAC or %s signature"
                      % (ALGORITHM, ED25519))
    algorithm, key_id, length_text, mac_hex = fields[1], fields[2], fields[3], fields[4]
    if not length_text.isdigit() or int(length_text) > MAX_BODY:
        raise Refused("malformed", "body length %r" % length_text)
    length = int(length_text)
    body = blob[cut + 1:] if cut >= 0 else b""
    if len(body) < length:
        raise Refused("truncated", "manifest body has %d of %d bytes" % (len(body), length))
    if len(body) > length:
        raise Refused("tampered", "%d bytes after the manifest body" % (len(body) - length))
    key = (keys if algorithm == ALGORITHM else (public_keys or {})).get(key_id)
    if key is None:
        raise Refused("foreign", "%s key %r is not one this device holds" % (algorithm, key_id))
    try:
        mac = ubinascii.unhexlify(mac_hex)
    except Exception:
        raise Refused("unsigned", "the MAC is not hex")
    if algorithm == ALGORITHM:
        good = equal(hmac_sha256(key, body), mac)
    else:
        from . import ed25519
        good = ed25519.verify(key, uhashlib.sha256(body).digest(), mac)
    if not good:
        raise Refused("tampered", "the %s does not match the manifest (altered, or another "
                                  "key named %r)" % (algorithm, key_id))
    return key_id, body


def decode_body(body, key_id=""):
    """Manifest from authenticated body bytes; Refused('malformed') if a field is wrong."""
    try:
        data = ujson.loads(body)
    except Exception:
        raise Refused("malformed", "the manifest is not JSON")
    if not isinstance(data, dict):
        raise Refused("malformed", "the manifest is not a JSON object")
    for name in ("app", "version", "min_framework"):
        if not isinstance(data.get(name), str):
            raise Refused("malformed", "%s is missing or not a string" % name)
        if name != "app":
            try:
                parse_version(data[name])
            except ValueError as exc:
                raise Refused("malformed", "%s: %s" % (name, exc))
    files = data.get("files")
    if not isinstance(files, list):
        raise Refused("malformed", "files is not a list")
    seen = {}
    for item in files:
        if not isinstance(item, dict):
            raise Refused("malformed", "a files entry is not an object")
        path = item.get("path")
        _check_path(path)
        if path in seen:
            raise Refused("malformed", "%s listed twice" % path)
        seen[path] = True
        size, digest = item.get("size"), item.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise Refused("malformed", "%s: size is not a byte count" % path)
        if not isinstance(digest, str) or len(digest) != 64:
            raise Refused("malformed", "%s: sha256 is not 64 hex digits" % path)
    delete = data.get("delete") or []
    if not isinstance(delete, list):
        raise Refused("malformed", "delete is not a list")
    for path in delete:
        _check_path(path)
        if path in seen:
            raise Refused("malformed", "%s is both installed and deleted" % path)
        if path in ENTRY and not (ENTRY[0] in seen or ENTRY[1] in seen):
            raise Refused("unsafe", "deleting %s leaves the launcher no app to start" % path)
    devices = data.get("devices")
    if devices is not None and not isinstance(devices, list):
        raise Refused("malformed", "devices is not a list")
    return Manifest(data, key_id)


def _check_path(path):
    """Refused('malformed') for a path that is not one; Refused('unsafe') for one the update
    must not touch: outside /usr, the updater's own files, the launcher."""
    if not isinstance(path, str) or len(path) > MAX_PATH:
        raise Refused("malformed", "path %r is not a file path" % (path,))
    if not path.startswith("/usr/"):
        raise Refused("unsafe", "path %r is outside /usr" % path)
    for part in path[5:].split("/"):
        if part in ("", ".", ".."):
            raise Refused("unsafe", "path %r has an empty, . or .. part" % path)
    for prefix in RESERVED:
        if path.startswith(prefix):
            raise Refused("unsafe", "path %r is the updater's own (%s*)" % (path, prefix))
    if path == LAUNCHER:
        raise Refused("unsafe", "%s is qframe's launcher: never replaced or deleted over the "
                      "air" % path)


def check(manifest, app, current, framework, device="", failed=()):
    """Refused unless manifest suits this device: its app, newer than current, a framework at
    least min_framework, addressed to device (if it lists devices), not a version that failed."""
    if manifest.app != app:
        raise Refused("foreign", "package is for app %r, this is %r" % (manifest.app, app))
    if manifest.devices is not None and device not in manifest.devices:
        raise Refused("foreign", "package is not addressed to device %r" % device)
    if parse_version(manifest.version) <= parse_version(current):
        raise Refused("replayed", "version %s is not newer than the running %s"
                      % (manifest.version, current))
    if parse_version(manifest.min_framework) > parse_version(framework):
        raise Refused("framework", "needs framework %s, this is %s"
                      % (manifest.min_framework, framework))
    if manifest.version in failed:
        raise Refused("failed_before", "version %s failed its health check here before"
                      % manifest.version)


def verify(blob, keys, app, current, framework, device="", failed=(), public_keys=None):
    """The Manifest of an authentic package meant for this device; Refused otherwise."""
    key_id, body = open_envelope(blob, keys, public_keys)
    manifest = decode_body(body, key_id)
    check(manifest, app, current, framework, device, failed)
    return manifest
