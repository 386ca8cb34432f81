"""app_fota on the host: user-file upgrades as the firmware does them.

download(url, file_name) fetches over the shim's network into /usr/.updater<file_name>;
set_update_flag() marks the update; apply_update() (shimctl.apply_app_fota(), what the firmware
does at boot) moves the files into place. Recorded in shimctl.state["app_fota"]:
{"downloads": [(url, file_name, ok)], "update_flag": bool, "applied": [paths]}.
"""
import uos

from shimlib import core, http_get, notes
import ql_fs

UPDATER_DIR = "/usr/.updater"
FLAG_FILE = UPDATER_DIR + "/update.flag"


def _record():
    if core.state["app_fota"] is None:
        core.state["app_fota"] = {"downloads": [], "update_flag": False, "applied": []}
    return core.state["app_fota"]


class new(object):
    def __init__(self):
        _record()

    def download(self, url, file_name):
        target = UPDATER_DIR + file_name
        ok = False
        try:
            ql_fs.mkdirs(ql_fs.path_dirname(target))
            with open(target, "wb") as f:
                status, _size = http_get.get(url, f.write)
            ok = status == 200
        except (OSError, ValueError) as exc:
            notes.note("shim app_fota: download of %s failed: %r" % (url, exc))
        if not ok:
            try:
                uos.remove(target)
            except OSError:
                pass
        _record()["downloads"].append((url, file_name, ok))
        core.changed()
        return 0 if ok else -1

    def bulk_download(self, info):
        failed = [item for item in info if self.download(item["url"], item["file_name"]) != 0]
        return failed or None

    def set_update_flag(self):
        ql_fs.mkdirs(UPDATER_DIR)
        with open(FLAG_FILE, "w") as f:
            f.write("1")
        _record()["update_flag"] = True
        core.changed()


def _files(folder):
    for entry in uos.ilistdir(folder):
        path = folder + "/" + entry[0]
        if entry[1] == 0x4000:
            for sub in _files(path):
                yield sub
        else:
            yield path


def apply_update():
    """Move downloaded files into place if the update flag is set; the device paths moved."""
    if not ql_fs.path_exists(FLAG_FILE):
        return []
    moved = []
    staged = UPDATER_DIR + "/usr"
    if ql_fs.path_exists(staged):
        for path in _files(staged):
            target = path[len(UPDATER_DIR):]
            ql_fs.mkdirs(ql_fs.path_dirname(target))
            try:
                uos.remove(target)
            except OSError:
                pass
            uos.rename(path, target)
            moved.append(target)
    ql_fs.rmdirs(UPDATER_DIR)
    record = _record()
    record["update_flag"] = False
    record["applied"] = moved
    core.changed()
    return moved
