"""What the OTA updater does at boot, before the app: rollback of a trial version that used its
boots, and the end of a rollback, with files on the shim's flash and its app_fota."""
import ubinascii
import uhashlib
import ujson

import shimctl
from usr.qframe.builtins.ota_boot import boot_check, load_state, save_state
from usr.qframe.store import ota_files as files

DIR = "/usr/_ota_boot_t"
OLD = b"A = 1\n"
NEW = b"A = 2\n"


def _sha(data):
    return ubinascii.hexlify(uhashlib.sha256(data).digest()).decode()


def _write(path, data):
    files.makedirs(files.parent(path))
    with open(path, "wb") as f:
        f.write(data)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _trial(boots, phase="trial", result=None):
    """/usr holds v1.1.0 (a.py changed, added.py new) on trial; v1.0.0's a.py backed up."""
    shimctl.reset()
    files.remove_tree(DIR)
    files.remove_tree(files.OTA_DIR)
    files.remove_tree("/usr/.updater")
    _write(DIR + "/a.py", NEW)
    _write(DIR + "/added.py", b"B = 1\n")
    _write(files.PREV_DIR + DIR + "/a.py", OLD)
    body = {"app": "meter-module", "version": "1.1.0", "delete": [],
            "files": [{"path": DIR + "/a.py", "size": len(NEW), "sha256": _sha(NEW)},
                      {"path": DIR + "/added.py", "size": 6, "sha256": _sha(b"B = 1\n")}]}
    _write(files.MANIFEST_PATH, b"qframe-ota/1 test\n" + ujson.dumps(body).encode())
    state = load_state()
    state.update({"phase": phase, "target": "1.1.0", "prev": "1.0.0", "boots": boots,
                  "trial_boots": 2, "result": result,
                  "backup": [{"path": DIR + "/a.py", "sha256": _sha(OLD)},
                             {"path": DIR + "/added.py", "sha256": None}]})
    save_state(state)


def _clean():
    files.remove_tree(DIR)
    files.remove_tree(files.OTA_DIR)
    files.remove_tree("/usr/.updater")
    shimctl.reset()


def test_trial_past_its_boots_is_rolled_back_and_marked_failed():
    _trial(boots=2)
    try:
        assert boot_check() is True                      # restarted: the app must not start
        state = load_state()
        assert state["phase"] == "rollback" and shimctl.state["reboots"] == 1
        assert state["result"]["reason"] == "unhealthy" and state["result"]["ok"] is False
        assert shimctl.apply_app_fota() == [DIR + "/a.py"]    # the firmware, at boot
        assert _read(DIR + "/a.py") == OLD
        assert boot_check() is False                     # back on 1.0.0: the app starts
        state = load_state()
        assert state["phase"] == "idle" and state["failed"] == ["1.1.0"]
        assert state["result"]["event"] == "rolled_back" and state["result"]["running"] == "1.0.0"
        assert not files.exists(DIR + "/added.py")
    finally:
        _clean()


def test_rollback_finished_without_a_saved_result_still_reports_one():
    _trial(boots=0, phase="rollback")
    _write(DIR + "/a.py", OLD)                           # the firmware already put it back
    try:
        assert boot_check() is False
        state = load_state()
        assert state["phase"] == "idle" and state["failed"] == ["1.1.0"]
        assert state["result"]["event"] == "rolled_back" and state["result"]["version"] == "1.1.0"
    finally:
        _clean()


def test_trial_with_boots_left_counts_this_one():
    _trial(boots=1)
    try:
        assert boot_check() is False
        assert load_state()["boots"] == 2 and load_state()["phase"] == "trial"
    finally:
        _clean()
