"""app_fota_download on the host: the firmware's names for app_fota's updater folder and files.

updater_dir is where app_fota stages files (/usr/.updater/usr/...); update_download_stat()
records a file placed there in shimctl.state["app_fota"]["stat"] (the firmware keeps the list
in download_stat_file, which it reads at boot; the shim moves whatever is staged).
"""
from shimlib import core as _core, firmware as _firmware

updater_dir = "/usr/.updater"
update_flag_file = updater_dir + "/update.flag"
download_stat_file = updater_dir + "/download.stat"


def _record():
    if _core.state["app_fota"] is None:
        _core.state["app_fota"] = {"downloads": [], "update_flag": False, "applied": []}
    return _core.state["app_fota"]


def update_download_stat(url, file_name, total_size):
    _record().setdefault("stat", []).append((url, file_name, total_size))
    _core.changed()


def get_download_stat():
    return list(_record().get("stat", []))


_firmware.prune(globals(), "app_fota_download")
