"""Updates cannot wedge: the Ota extension against a real HTTP server on loopback that sends
hostile replies (bytes that are not text, a cut body, an endless head, a stall, a drip) and
against a base URL nobody answers; every case ends counted and reported, the phase idle (or
resumable within its budget), the app running."""
import ubinascii
import uhashlib
import ujson
import utime

from checks import EVENT_MS, closed_port, wait_until
from http_peer import http_peer
from usr.qframe import Application
from usr.qframe.builtins.ota_update import Ota
from usr.qframe.codecs.ota_manifest import seal
from usr.qframe.store.ota_files import OTA_DIR, remove_tree

KEY = b"portable-test-key"
DATA = b"A = 2\n"


def _app(**ota):
    config = {"keys": {"fleet": ubinascii.hexlify(KEY).decode()}, "retry_s": 0, "retries": 0,
              "http_timeout_s": 0.5, "download_s": 5}
    config.update(ota)
    app = Application("meter-module")
    app.config.merge({"APP": {"workers": 1, "stop_timeout": 2}, "OTA": config})
    Ota(app=app, version="1.0.0")
    seen = []
    app.bus.subscribe("ota.event", lambda topic, data: seen.append(data))
    app.load()
    return app, seen


def _manifest(version="1.1.0"):
    digest = ubinascii.hexlify(uhashlib.sha256(DATA).digest()).decode()
    body = {"app": "meter-module", "version": version, "min_framework": "0.0.1",
            "files": [{"path": "/usr/_hostile/a.py", "size": len(DATA), "sha256": digest}]}
    return seal(ujson.dumps(body).encode(), "fleet", KEY).decode()


def _server(reply, connections=1):
    """Answer `connections` requests with reply(conn) (after reading the request head)."""
    return "http://127.0.0.1:%d/pkg/manifest.ota" % http_peer([reply] * connections)


def _sends(data):
    return lambda conn: conn.send(data)


def _stall(conn):
    utime.sleep_ms(1500)                    # longer than http_timeout_s: nothing comes


def _drip(conn):
    for byte in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"a" * 400:
        conn.send(bytes([byte]))
        utime.sleep_ms(20)


def _failure(seen):
    found = [e for e in seen if e.get("event") in ("failed", "refused")]
    return found[-1] if found else None


def _settled(app, seen):
    assert wait_until(lambda: _failure(seen) is not None and app.ota.busy is None, EVENT_MS), seen
    return _failure(seen)


def test_hostile_replies_end_in_a_counted_failure_and_the_app_runs():
    remove_tree(OTA_DIR)
    cases = [(_sends(b"HTTP/1.0 200 OK\r\nX-Name: \xff\xfe\xc3\r\n\r\n"), "download", "not text"),
             (_sends(b"HTTP/1.0 2\xff0 OK\r\n\r\n"), "download", "not text"),
             (_sends(b"HTTP/1.0 200 OK\r\nContent-Length: 900\r\n\r\nqframe"), "download", "cut"),
             (_sends(b"HTTP/1.0 200 OK\r\nX-Big: " + b"b" * 6000 + b"\r\n\r\n"), "download",
              "over 4096"),
             (_sends(b"\x00\x01garbage\r\n\r\n"), "download", "status line"),
             (_stall, "download", ""),
             (_drip, "deadline", "within")]
    for reply, reason, text in cases:
        app, seen = _app(download_s=1)
        try:
            app.ota.update(_server(reply))
            event = _settled(app, seen)
            assert event["reason"] == reason and text in event["text"], (event, text)
            assert app.ota.state["phase"] == "idle" and app.running
            assert app.ota.stats["failed"] + app.ota.stats["refused"] >= 1
        finally:
            app.stop()
    remove_tree(OTA_DIR)


def test_unreachable_base_url_is_superseded_then_abandoned_after_its_resumes():
    """A real manifest whose files' base nobody answers: resumable, a newer authentic `ota`
    supersedes it, and a download cut at every boot is abandoned after OTA.resumes boots."""
    remove_tree(OTA_DIR)
    dead = "http://127.0.0.1:%d/pkg/" % closed_port()
    app, seen = _app(resumes=1)
    try:
        for version in ("1.1.0", "1.2.0"):
            reply = app.commands.execute({"id": 1, "cmd": "ota", "args": {
                "url": dead, "manifest": _manifest(version)}})
            assert reply["result"]["accepted"], reply           # never `busy` for good
            assert wait_until(lambda: any(e.get("resumable") and e.get("version") == version
                                          for e in seen) and app.ota.busy is None, 8000), seen
            assert app.ota.state["phase"] == "download" and app.ota.state["target"] == version
        superseded = [e for e in seen if e.get("reason") == "superseded"]
        assert superseded and superseded[0]["version"] == "1.1.0"
        assert app.ota.stats["superseded"] == 1
    finally:
        app.stop()
    for boot in (1, 2):                     # the module restarts with the download cut
        app, seen = _app(resumes=1)
        try:
            if boot == 1:
                assert app.ota.stats["resumed"] == 1
                assert wait_until(lambda: any(e.get("resumable") for e in seen), EVENT_MS), seen
            else:
                event = _settled(app, seen)
                assert event["reason"] == "abandoned" and app.ota.stats["abandoned"] == 1
                assert app.ota.state["phase"] == "idle" and app.ota.status()["abandoned"] == 1
        finally:
            app.stop()
    remove_tree(OTA_DIR)
