"""fota on the host: firmware upgrade packages are recorded in shimctl.state["fota"]:
{"file_size", "written", "data" (bytearray), "flushed", "verified", "downloads", ...}.

As on the firmware, `import fota` gives the type itself: `f = fota()`. The firmware ignores
fota()'s arguments; the shim keeps reset_disable= only to decide whether a successful
httpDownload counts a restart (state["reboots"]). httpDownload's signature depends on the
firmware line (shimlib.firmware): E1 takes (url1, url2[, callback]) positionally, both URLs
required (one URL: -1), and no keywords; E2 and E3 take keywords only
(url1=, url2=, callback=). It fetches url1 over the shim's network (so faults apply).
"""
from shimlib import core, dispatch, firmware, http_get, notes
from shimlib.hostio import sys


def _record(reset_disable):
    record = {"file_size": 0, "written": 0, "data": bytearray(), "flushed": False,
              "verified": None, "downloads": [], "reset_disable": reset_disable}
    core.state["fota"] = record
    return record


def _download_args(args, kwargs):
    """(url1, url2, callback) as this line's httpDownload takes them; TypeError otherwise."""
    if firmware.LINE == "E1":
        if kwargs:
            raise TypeError("function doesn't take keyword arguments")
        if len(args) < 2 or len(args) > 3:
            return None
        return args[0], args[1], args[2] if len(args) == 3 else None
    if args:
        raise TypeError("function takes 1 positional arguments but %d were given"
                        % (len(args) + 1))
    for key in kwargs:
        if key not in ("url1", "url2", "callback"):
            raise TypeError("unexpected keyword argument '%s'" % key)
    return kwargs.get("url1"), kwargs.get("url2"), kwargs.get("callback")


class fota(object):
    def __init__(self, *args, **kwargs):
        self._record = _record(kwargs.get("reset_disable", 0))

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

    def httpDownload(self, *args, **kwargs):
        parsed = _download_args(args, kwargs)
        if parsed is None or not parsed[0]:
            return -1
        url1, _url2, callback = parsed
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


sys.modules[__name__] = fota
