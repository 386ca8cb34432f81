"""fota on the host: firmware upgrade packages are recorded in shimctl.state["fota"]:
{"file_size", "written", "data" (bytearray), "flushed", "verified", "downloads", ...}.
httpDownload fetches the URL over the shim's network (so faults apply); on success the module
would restart unless reset_disable=1 (then state["reboots"] counts it).
"""
from shimlib import core, dispatch, http_get, notes


def _record(reset_disable):
    record = {"file_size": 0, "written": 0, "data": bytearray(), "flushed": False,
              "verified": None, "downloads": [], "reset_disable": reset_disable}
    core.state["fota"] = record
    return record


class fota(object):
    def __init__(self, reset_disable=0):
        self._record = _record(reset_disable)

    def write(self, bytesData, file_size):
        record = self._record
        record["file_size"] = file_size
        if record["written"] + len(bytesData) > file_size:
            return -1
        record["data"].extend(bytesData)
        record["written"] += len(bytesData)
        core.changed()
        return 0

    def flush(self):
        self._record["flushed"] = True
        return 0

    def verify(self):
        record = self._record
        ok = record["file_size"] > 0 and record["written"] == record["file_size"]
        record["verified"] = ok
        core.changed()
        return 0 if ok else -1

    def httpDownload(self, url1, url2=None, callback=None):
        record = self._record
        data = bytearray()
        try:
            status, _size = http_get.get(url1, data.extend)
            ok = status == 200
        except (OSError, ValueError) as exc:
            notes.note("shim fota: download of %s failed: %r" % (url1, exc))
            ok = False
        record["downloads"].append((url1, ok))
        if ok:
            record["data"] = data
            record["written"] = record["file_size"] = len(data)
            record["verified"] = True
        dispatch.fire(callback, (2, 100) if ok else (-1, 0))
        if ok and not record["reset_disable"]:
            core.count("reboots")
        core.changed()
        return 0 if ok else -1

    def download_cancel(self):
        return 0

    def apn_set(self, fota_apn="", ip_type=0, fota_user="", fota_password=""):
        return 0
