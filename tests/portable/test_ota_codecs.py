"""OTA codecs: HMAC-SHA256 (RFC 4231 vectors), the manifest and its refusals, HTTP heads, and
the boot decisions of protocols/ota_state.py."""
import ubinascii
import ujson

from checks import raises
from usr.qframe.codecs import ed25519, http
from usr.qframe.codecs.hmac256 import Hmac, equal, hmac_sha256
from usr.qframe.codecs.ota_manifest import (Refused, check, decode_body, open_envelope,
                                            parse_version, seal, verify)
from usr.qframe.protocols import ota_state

KEY = b"fleet-key-0123456789"
KEYS = {"fleet": KEY}
SHA = "ab" * 32


def _hex(data):
    return ubinascii.hexlify(data).decode()


def _body(version="1.1.0", **extra):
    body = {"app": "meter-module", "version": version, "min_framework": "0.2.0",
            "files": [{"path": "/usr/app_main.py", "size": 10, "sha256": SHA}],
            "delete": ["/usr/old.py"]}
    for key in extra:
        body[key] = extra[key]
    return ujson.dumps(body).encode()


def _verify(blob, current="1.0.0", framework="0.2.0", device="dev1", failed=()):
    return verify(blob, KEYS, "meter-module", current, framework, device, failed)


def _reason(blob, **kwargs):
    return raises(Refused, _verify, blob, **kwargs).reason


def test_hmac_rfc4231_vectors():
    assert _hex(hmac_sha256(b"\x0b" * 20, b"Hi There")) == (
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    assert _hex(hmac_sha256(b"Jefe", b"what do ya want for nothing?")) == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    long_key = b"\xaa" * 131            # longer than a block: hashed first
    assert _hex(hmac_sha256(long_key, b"Test Using Larger Than Block-Size Key - Hash Key First")
                ) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


def test_hmac_incremental_and_equal():
    h = Hmac(KEY)
    h.update(b"ab")
    h.update(b"cd")
    assert h.digest() == hmac_sha256(KEY, b"abcd")
    assert equal(b"abc", b"abc") and not equal(b"abc", b"abd") and not equal(b"ab", b"abc")


def test_authentic_manifest_decodes():
    manifest = _verify(seal(_body(), "fleet", KEY))
    assert manifest.version == "1.1.0" and manifest.key_id == "fleet"
    assert manifest.paths() == ["/usr/app_main.py"] and manifest.delete == ["/usr/old.py"]
    assert manifest.total_size() == 10


def test_unsigned_manifest_refused():
    assert _reason(_body()) == "unsigned"
    assert _reason(b"qframe-ota/1 none fleet 10 -\n" + _body()) == "unsigned"


def test_tampered_manifest_refused():
    blob = bytearray(seal(_body(), "fleet", KEY))
    blob[bytes(blob).find(b"1.1.0")] = ord("9")          # version 9.1.0, same length
    assert _reason(bytes(blob)) == "tampered"
    assert _reason(seal(_body(), "fleet", KEY) + b" ") == "tampered"


def test_truncated_manifest_refused():
    blob = seal(_body(), "fleet", KEY)
    exc = raises(Refused, _verify, blob[:-7])
    assert exc.reason == "truncated" and "of" in exc.text


def test_foreign_key_app_and_device_refused():
    assert _reason(seal(_body(), "other-fleet", KEY)) == "foreign"
    assert _reason(seal(_body(), "fleet", b"another key with the same id")) == "tampered"
    assert _reason(seal(_body(app="water-meter"), "fleet", KEY)) == "foreign"
    assert _reason(seal(_body(devices=["dev2"]), "fleet", KEY)) == "foreign"
    assert _verify(seal(_body(devices=["dev1"]), "fleet", KEY)).devices == ["dev1"]


def test_replayed_or_older_version_refused():
    blob = seal(_body("1.1.0"), "fleet", KEY)
    assert _reason(blob, current="1.1.0") == "replayed"
    assert _reason(blob, current="1.10.0") == "replayed"    # numeric, not text order
    assert _verify(seal(_body("1.10.0"), "fleet", KEY), current="1.9.9").version == "1.10.0"


def test_framework_and_failed_versions_refused():
    assert _reason(seal(_body(min_framework="9.0.0"), "fleet", KEY)) == "framework"
    assert _reason(seal(_body(), "fleet", KEY), failed=["1.1.0"]) == "failed_before"


def test_malformed_bodies_refused():
    bad = [b"[1]", b"not json", _body(version="1.x"),
           _body(files=[{"path": "/usr/a.py", "size": -1, "sha256": SHA}]),
           _body(files=[{"path": "/usr/a.py", "size": 1, "sha256": "12"}]),
           _body(files=[{"path": 5, "size": 1, "sha256": SHA}]),
           _body(delete=["/usr/app_main.py"])]
    for body in bad:
        assert _reason(seal(body, "fleet", KEY)) == "malformed", body


def _file(path):
    return {"path": path, "size": 1, "sha256": SHA}


def test_signed_packages_that_would_break_the_module_refused_as_unsafe():
    """Correctly signed, still refused: the updater's files, the launcher, the app's entry,
    anything outside /usr."""
    unsafe = [_body(files=[_file("/usr/../etc/x")]), _body(files=[_file("/usr/.ota")]),
              _body(files=[_file("/usr/.ota/state.json")]), _body(files=[_file("/usr/.otax")]),
              _body(files=[_file("/usr/.updater")]), _body(files=[_file("/usr/.updater/x")]),
              _body(files=[_file("/bak/a.py")]), _body(files=[_file("/etc/passwd")]),
              _body(files=[_file("/usr/main.py")]), _body(delete=["/usr/main.py"]),
              _body(delete=["/usr/.ota/state.json"]),
              _body(files=[_file("/usr/x.py")], delete=["/usr/app_main.py"]),
              _body(files=[_file("/usr/x.py")], delete=["/usr/app_main.mpy"])]
    for body in unsafe:
        exc = raises(Refused, _verify, seal(body, "fleet", KEY))
        assert exc.reason == "unsafe" and exc.text, body
    # the entry replaced by its other form is fine
    assert _verify(seal(_body(files=[_file("/usr/app_main.py")],
                              delete=["/usr/app_main.mpy"]), "fleet", KEY)).version == "1.1.0"


def test_envelope_and_checks_separately():
    key_id, body = open_envelope(seal(_body(), "fleet", KEY), KEYS)
    manifest = decode_body(body, key_id)
    check(manifest, "meter-module", "1.0.0", "0.2.0")
    assert parse_version("1.2.10") == (1, 2, 10)
    raises(ValueError, parse_version, "1..2")


def test_http_request_and_reply_heads():
    assert http.split_url("http://h:8080/p/manifest.ota") == ("http", "h", 8080,
                                                               "/p/manifest.ota")
    assert http.split_url("https://h") == ("https", "h", 443, "/")
    raises(http.HttpError, http.split_url, "ftp://h/x")
    raises(http.HttpError, http.split_url, "http://h:x/")
    assert http.join_url("http://h/p/manifest.ota", "/usr/a.py") == "http://h/p/usr/a.py"
    request = http.get_request("h", "/x", 100)
    assert b"GET /x HTTP/1.0\r\n" in request and b"Range: bytes=100-\r\n" in request
    assert b"Range" not in http.get_request("h", "/x")
    status, headers = http.parse_head([b"HTTP/1.0 206 Partial\r\n",
                                       b"Content-Range: bytes 100-199/200\r\n",
                                       b"Content-Length: 100\r\n"])
    assert status == 206 and http.content_length(headers) == 100
    assert http.content_range(headers) == (100, 200)
    raises(http.HttpError, http.parse_head, [b"SSH-2.0\r\n"])
    raises(http.HttpError, http.content_range, {})


def test_boot_decisions():
    act = ota_state.boot_action
    assert act("idle", 0, 2, False, False, True) == ota_state.RUN
    assert act("download", 0, 2, False, False, True) == ota_state.RUN
    assert act("activating", 0, 2, True, False, False) == ota_state.START_TRIAL
    assert act("activating", 0, 2, False, True, True) == ota_state.REFLAG
    assert act("activating", 0, 2, False, False, True) == ota_state.ROLLBACK
    assert act("trial", 1, 2, True, False, False) == ota_state.COUNT_BOOT
    assert act("trial", 2, 2, True, False, False) == ota_state.ROLLBACK
    assert act("rollback", 2, 2, True, False, False) == ota_state.ROLLBACK
    assert act("rollback", 2, 2, False, False, True) == ota_state.ROLLED_BACK


def _unhex(text):
    return ubinascii.unhexlify(text)


RFC_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC_SIGNATURE = ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
                 "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


def test_ed25519_rfc8032_vector_and_tampering():
    public, signature = _unhex(RFC_PUBLIC), _unhex(RFC_SIGNATURE)
    assert ed25519.verify(public, b"", signature)
    assert not ed25519.verify(public, b"x", signature)
    flipped = bytearray(signature)
    flipped[40] ^= 1
    assert not ed25519.verify(public, b"", bytes(flipped))
    assert not ed25519.verify(public, b"", signature[:63])
    assert _hex(ed25519.sha512(b"abc"))[:16] == "ddaf35a193617aba"


def test_ed25519_field_arithmetic_is_right_where_1_13_long_division_is_not():
    # MicroPython 1.13 (QuecPython) divides some big ints wrongly (micropython#6777): this
    # inverse of 121666 mod P came out wrong through pow(x, P - 2, P) and through `%`.
    p, q = ed25519.P, ed25519.L
    assert ed25519._mod_p(ed25519._pow_p(121666, p - 2) * 121666) == 1
    square = 57896044618658097711785492504343953926634992332820255360587882276284375399373 ** 2
    assert ed25519._mod_p(square) == 710709794044715577148176856111143302638298612171776
    assert ed25519._mod_p((1 << 48) * p + 7) == 7 and ed25519._mod_p(p - 1) == p - 1
    assert ed25519._mod_l(((1 << 256) - 1) * q + 5) == 5 and ed25519._mod_l(q) == 0
    assert ed25519._mod_l((1 << 512) - 1) < q
    # the constants written out: -121665/121666, sqrt(-1), y = 4/5 of the base point
    assert ed25519._mod_p(ed25519.D * 121666 + 121665) == 0
    assert ed25519._mod_p(ed25519.SQRT_M1 * ed25519.SQRT_M1) == p - 1
    assert ed25519._mod_p(ed25519.BASE[1] * 5) == 4


_ED_BODY = (b'{"app": "meter-module", "version": "1.1.0", "min_framework": "0.2.0", '
            b'"files": []}')
# tools/ota/package.py's seal_ed25519(_ED_BODY, "release", RFC 8032 test-1 seed)
_ED_SIGNATURE = ("9f11f93312591b4f0f771e26b0a1289e81358398b654e4a36781a70e4eba2163"
                 "a72b1a62a0af6e3be67c612bdab8b1f6d883c16db3d8432b3ecd04e840eb970d")


def _ed_blob(body):
    return ("qframe-ota/1 ed25519 release %d %s\n" % (len(body), _ED_SIGNATURE)).encode() + body


def test_ed25519_signed_manifest():
    public_keys = {"release": _unhex(RFC_PUBLIC)}
    key_id, body = open_envelope(_ed_blob(_ED_BODY), {}, public_keys)
    assert key_id == "release" and body == _ED_BODY
    assert verify(_ed_blob(_ED_BODY), {}, "meter-module", "1.0.0", "0.2.0",
                  public_keys=public_keys).version == "1.1.0"
    assert raises(Refused, open_envelope, _ed_blob(_ED_BODY), {"release": KEY}, {}
                  ).reason == "foreign"                # an HMAC key of that name does not do
    changed = _ED_BODY.replace(b"1.1.0", b"9.1.0")
    assert raises(Refused, open_envelope, _ed_blob(changed), {}, public_keys
                  ).reason == "tampered"
