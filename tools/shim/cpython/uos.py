"""uos on CPython: os with device paths (/usr, /bak) mapped into the board root."""
import os as _os

from shimlib import quota as _quota
from shimlib.devicefs import host_path as _p

sep = "/"


def listdir(path="."):
    return _os.listdir(_p(path))


def ilistdir(path="."):
    for name in _os.listdir(_p(path)):
        st = _os.stat(_p(path.rstrip("/") + "/" + name))
        yield (name, 0x4000 if _os.path.isdir(_p(path.rstrip("/") + "/" + name)) else 0x8000, st.st_ino, st.st_size)


def stat(path):
    return tuple(_os.stat(_p(path)))


def statvfs(path):
    stat = tuple(_os.statvfs(_p(path)))
    if _p(path) is not path:      # a device path: the shim's flash quota shows here
        return _quota.flash_statvfs(stat)
    return stat


def mkdir(path):
    _os.mkdir(_p(path))


def rmdir(path):
    _os.rmdir(_p(path))


def remove(path):
    host = _p(path)
    size = _os.stat(host).st_size if host is not path else 0
    _os.remove(host)
    _quota.flash_credit(size)


def rename(old, new):
    _os.replace(_p(old), _p(new))


def getcwd():
    return _os.getcwd()


def chdir(path):
    _os.chdir(_p(path))


def urandom(n):
    return _os.urandom(n)


def uname():
    return ("linux", "host", "1.13.0", "qframe-shim", "EC600U-host")

from shimlib import firmware as _firmware  # noqa: E402

_firmware.prune(globals(), "uos")
