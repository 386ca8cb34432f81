"""The Ota extension in-process: its saved state, its commands, and a manifest handed over by
command refused with the reason on the bus while the app keeps running (no network needed)."""
import ujson

from checks import EVENT_MS, wait_until
from usr.qframe import Application
from usr.qframe.builtins.ota_update import Ota
from usr.qframe.builtins.ota_boot import boot_check, load_state, save_state
from usr.qframe.store.ota_files import OTA_DIR, STATE_PATH, remove_tree
from usr.qframe.codecs.ota_manifest import seal

KEY = b"portable-test-key"


def _app():
    remove_tree(OTA_DIR)
    app = Application("meter-module")
    app.config.merge({"APP": {"workers": 1, "stop_timeout": 2},
                      "OTA": {"keys": {"fleet": "706f727461626c652d746573742d6b6579"},
                              "retry_s": 0, "retries": 0}})
    Ota(app=app, version="1.0.0")
    app.load()
    return app


def _events(app):
    seen = []
    app.bus.subscribe("ota.event", lambda topic, data: seen.append(data))
    return seen


def test_state_survives_a_torn_write():
    remove_tree(OTA_DIR)
    try:
        assert load_state()["phase"] == "idle"
        state = load_state()
        state.update({"phase": "download", "target": "1.1.0"})
        save_state(state)
        assert load_state()["target"] == "1.1.0"
        with open(STATE_PATH + ".tmp", "w") as f:
            f.write(ujson.dumps(state))
        with open(STATE_PATH, "w") as f:
            f.write('{"phase": "downl')                  # cut mid-write
        assert load_state()["phase"] == "download"
        assert boot_check() is False                # nothing to finish in this phase
    finally:
        remove_tree(OTA_DIR)


def test_commands_check_their_arguments_and_report_status():
    app = _app()
    try:
        reply = app.commands.execute({"id": 1, "cmd": "ota", "args": {}})
        assert reply["ok"] is False and "args.url" in reply["error"]
        reply = app.commands.execute({"id": 2, "cmd": "fota", "args": {"url": 5}})
        assert reply["ok"] is False
        status = app.commands.execute({"id": 3, "cmd": "ota_status"})["result"]
        assert status["version"] == "1.0.0" and status["phase"] == "idle"
        assert app.status()["ota"]["phase"] == "idle"
    finally:
        app.stop()


def test_manifest_by_command_refused_with_reason_app_untouched():
    app = _app()
    seen = _events(app)
    try:
        body = b'{"app": "meter-module", "version": "0.9.0", "min_framework": "0.0.1", ' \
               b'"files": []}'
        for text, reason in ((body.decode(), "unsigned"),
                             (seal(body, "fleet", KEY).decode(), "replayed"),
                             (seal(body, "fleet", b"wrong").decode(), "tampered")):
            reply = app.commands.execute({"id": 1, "cmd": "ota", "args": {
                "url": "http://127.0.0.1:9/pkg/", "manifest": text}})
            assert reply["ok"] and reply["result"]["accepted"], reply
            assert wait_until(lambda: any(e.get("reason") == reason for e in seen), EVENT_MS), seen
            assert wait_until(lambda: app.ota.busy is None, EVENT_MS)
        assert app.ota.stats["refused"] == 3 and app.ota.version == "1.0.0"
        assert app.ota.status()["phase"] == "idle" and app.running
    finally:
        app.stop()
        remove_tree(OTA_DIR)


def test_allowed_hosts_refuse_ota_and_fota_elsewhere_counted():
    """OTA.allowed_hosts (issue 20): a signed command still may not point the module at any
    server; empty (the default) allows any host."""
    from usr.qframe.builtins.ota_update import url_host
    assert url_host("http://User@Updates.Example:8080/m.ota") == "updates.example"
    assert url_host("https://[::1]:443/x") == "::1" and url_host("http://h") == "h"
    app = _app()
    try:
        ota = app.extensions["ota"]
        app.config.merge({"OTA": {"allowed_hosts": ["updates.example"]}})
        for name in ("ota", "fota"):
            reply = app.commands.execute({"id": 1, "cmd": name,
                                          "args": {"url": "http://evil.example/x"}})
            assert reply["ok"] is False and "allowed_hosts" in reply["error"], reply
        assert ota.stats["refused_hosts"] == 2 and ota.busy is None
        ota._allowed("http://updates.example:81/d.bin")           # allowed: no error
        assert ota.stats["refused_hosts"] == 2
    finally:
        app.stop()
