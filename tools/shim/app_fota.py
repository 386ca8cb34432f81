"""app_fota on the host: user-file upgrades as the firmware does them.

download(url, file_name) fetches over the shim's network into /usr/.updater<file_name>;
set_update_flag() marks the update; _apply_update() (shimctl.apply_app_fota(), what the firmware
does at boot) moves the files into place. The folder and flag file are app_fota_download's. Recorded in shimctl.state["app_fota"]:
{"downloads": [(url, file_name, ok)], "update_flag": bool, "applied": [paths]}.
"""
import uos as _uos

from shimlib import core as _core, firmware as _firmware, http_get as _http_get, notes as _notes
import app_fota_download as _download
import ql_fs as _ql_fs

_UPDATER_DIR = _download.updater_dir
_FLAG_FILE = _download.update_flag_file


_record = _download._record


class new(object):
    def __init__(self):
        _record()

    def download(self, url, file_name):
        target = _UPDATER_DIR + file_name
        ok = False
        try:
            _ql_fs.mkdirs(_ql_fs.path_dirname(target))
            with open(target, "wb") as f:
                status, _size = _http_get.get(url, f.write)
            ok = status == 200
        except (OSError, ValueError) as exc:
            _notes.note("shim app_fota: download of %s failed: %r" % (url, exc))
        if not ok:
            try:
                _uos.remove(target)
            except OSError:
                pass
        _record()["downloads"].append((url, file_name, ok))
        _core.changed()
        return 0 if ok else -1

    def bulk_download(self, info):
        failed = [item for item in info if self.download(item["url"], item["file_name"]) != 0]
        return failed or None

    def set_update_flag(self):
        _ql_fs.mkdirs(_UPDATER_DIR)
        with open(_FLAG_FILE, "w") as f:
            f.write("1")
        _record()["update_flag"] = True
        _core.changed()


def _files(folder):
    for entry in _uos.ilistdir(folder):
        path = folder + "/" + entry[0]
        if entry[1] == 0x4000:
            for sub in _files(path):
                yield sub
        else:
            yield path


def _apply_update():
    """Move downloaded files into place if the update flag is set; the device paths moved."""
    if not _ql_fs.path_exists(_FLAG_FILE):
        return []
    moved = []
    staged = _UPDATER_DIR + "/usr"
    if _ql_fs.path_exists(staged):
        for path in _files(staged):
            target = path[len(_UPDATER_DIR):]
            _ql_fs.mkdirs(_ql_fs.path_dirname(target))
            try:
                _uos.remove(target)
            except OSError:
                pass
            _uos.rename(path, target)
            moved.append(target)
    _ql_fs.rmdirs(_UPDATER_DIR)
    record = _record()
    record["update_flag"] = False
    record["applied"] = moved
    _core.changed()
    return moved


_firmware.prune(globals(), "app_fota")
