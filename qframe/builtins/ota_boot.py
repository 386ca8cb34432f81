"""What the OTA updater does before the app starts, and its hooks into the firmware.

    RESTARTING = boot_check()        # first thing in main.py

boot_check() reads the saved phase, looks at what is on flash and finishes or undoes an update
as protocols/ota_state.py decides: enter the trial, set the app_fota flag again, stage the
backup and restart, or finish a rollback. The firmware hooks (updater folder, update flag,
restart) live here too, so the extension (ota.py) and the boot path share them.
"""
import ujson

from ..logging import getLogger
from ..protocols import ota_state
from ..store import ota_files as files

_log = getLogger("ota")

DEFAULT_UPDATER = "/usr/.updater"


def updater_dir():
    """The firmware's app_fota updater folder (a mount of its own on newer firmware)."""
    try:
        import app_fota_download
    except ImportError:
        return DEFAULT_UPDATER
    return getattr(app_fota_download, "updater_dir", DEFAULT_UPDATER)


def note_staged(path, size):
    """Tell the firmware's app_fota about a file placed in the updater folder (its
    download.stat list, which the firmware reads at boot); the host shim needs no list."""
    try:
        import app_fota_download
    except ImportError:
        return
    app_fota_download.update_download_stat("", path, size)


def set_update_flag():
    import app_fota
    app_fota.new().set_update_flag()


def restart():
    """Restart the module (never returns on the module; the host shim records it)."""
    import misc
    misc.Power.powerRestart()


def fresh_state():
    return {"phase": "idle", "target": None, "prev": None, "url": None, "backup": [],
            "boots": 0, "trial_boots": 2, "failed": [], "result": None}


def load_state():
    """The saved state (a fresh one if there is none or its phase is unknown)."""
    state = files.read_state()
    fresh = fresh_state()
    if state is None or state.get("phase") not in ota_state.PHASES:
        return fresh
    for key in fresh:
        state.setdefault(key, fresh[key])
    return state


save_state = files.write_state


def manifest_body():
    """The saved manifest's body (authenticated when it was saved), decoded; None if absent."""
    try:
        with open(files.MANIFEST_PATH, "rb") as f:
            blob = f.read()
        return ujson.loads(blob[blob.find(b"\n") + 1:])
    except (OSError, ValueError):
        return None


def target_on_usr(body):
    for item in body["files"]:
        if files.size(item["path"]) != item["size"] or files.file_sha256(item["path"]) != item["sha256"]:
            return False
    return True


def staged_complete(body, updater):
    flag = files.exists(updater + "/update.flag")
    for item in body["files"]:
        staged = updater + item["path"]
        if files.exists(staged):
            if files.file_sha256(staged) != item["sha256"]:
                return False
        elif not flag or files.file_sha256(item["path"]) != item["sha256"]:
            return False
    return True


def prev_on_usr(backup):
    for entry in backup:
        if entry["sha256"] is not None and files.file_sha256(entry["path"]) != entry["sha256"]:
            return False
    return True


def stage_backup(state, updater):
    """Stage the backed-up previous version in the updater folder and set the flag."""
    for entry in state["backup"]:
        if entry["sha256"] is not None and files.file_sha256(entry["path"]) != entry["sha256"]:
            files.copy(files.PREV_DIR + entry["path"], updater + entry["path"])
            note_staged(entry["path"], files.size(files.PREV_DIR + entry["path"]))
    set_update_flag()


def on_trial():
    """True while the running version is an update on trial (not yet confirmed healthy)."""
    return load_state()["phase"] == "trial"


def roll_back(state, reason, text):
    """Give up on the version on trial: record why (once), stage the backed-up previous
    version for app_fota, set the flag and restart the module."""
    if state["phase"] != "rollback":
        state["phase"] = "rollback"
        state["result"] = result(state["target"], False, reason, text)
        save_state(state)
    _log.warning("OTA: rolling back from %s to %s (%s)", state["target"], state["prev"], text)
    updater = updater_dir()
    files.remove_tree(updater)
    stage_backup(state, updater)
    restart()


def boot_check():
    """Run first in main.py, before the app is built: finish or undo an update as the saved
    phase says (protocols/ota_state.py). True if it restarted the module (on the module it does
    not return then; on the host the runner starts it again): do not start the app."""
    try:
        state = load_state()
        if state["phase"] not in ("activating", "trial", "rollback"):
            return False
        body = manifest_body()
        updater = updater_dir()
        action = ota_state.boot_action(
            state["phase"], state["boots"], state["trial_boots"],
            body is not None and target_on_usr(body),
            body is not None and staged_complete(body, updater),
            prev_on_usr(state["backup"]))
        return boot_act(state, body, updater, action)
    except Exception as exc:       # the app must start even if the updater's state is odd
        _log.exception("OTA boot check failed", exc)
        return False


def boot_act(state, body, updater, action):
    if action == ota_state.START_TRIAL:
        for path in body.get("delete") or []:
            files.remove(path)
        files.remove_tree(updater)
        state["phase"], state["boots"] = "trial", 1
        save_state(state)
        _log.info("OTA: version %s installed, on trial", state["target"])
        return False
    if action == ota_state.COUNT_BOOT:
        state["boots"] += 1
        save_state(state)
        return False
    if action == ota_state.REFLAG:
        set_update_flag()
        _log.warning("OTA: staged update %s was not applied: flag set again", state["target"])
        restart()
        return True
    if action == ota_state.ROLLBACK:
        if state["phase"] == "trial":
            why = "not healthy within %d boot(s)" % state["trial_boots"]
        else:
            why = "the update was not applied whole"
        roll_back(state, "unhealthy", why)
        return True
    if action == ota_state.ROLLED_BACK:
        for entry in state["backup"]:
            if entry["sha256"] is None:
                files.remove(entry["path"])
        files.remove_tree(updater)
        if state["target"] not in state["failed"]:
            state["failed"].append(state["target"])
        outcome = state["result"] or result(state["target"], False, "unhealthy", "")
        outcome["event"] = "rolled_back"
        outcome["running"] = state["prev"]
        state["result"] = outcome
        state["phase"], state["target"], state["boots"] = "idle", None, 0
        save_state(state)
        _log.warning("OTA: back on %s; %s marked failed", state["prev"], outcome["version"])
        return False
    return False


def result(version, ok, reason, text):
    return {"event": "installed" if ok else "failed", "version": version, "ok": ok,
            "reason": reason, "text": text, "reported": False}
