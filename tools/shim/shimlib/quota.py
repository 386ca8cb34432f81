"""The module's flash quota on the host: writes to /usr and /bak count against flash_free.

set_flash_free(n) sets it (None: no quota). CPython: devicefs's builtins.open wraps files opened
for writing in QuotaFile. MicroPython: QuotaVfs (a VfsPosix subclass, mounted on /usr and /bak
by devicefs.install_fs) wraps them. A write that does not fit raises OSError(28) and writes
nothing. Removing a file or reopening it with "w" gives its size back.
"""
from shimlib import core

ENOSPC = 28

if core.IS_MICROPYTHON:
    try:
        import uio as _io
    except ImportError:
        import io as _io
    _Base = _io.IOBase      # MicroPython streams (json.dump, print(file=)) need the protocol
else:
    _Base = object

_mounted = []               # (root, tops) of mount_quota, for set_flash_free to remount


def set_flash_free(n):
    """Bytes left for writes under /usr and /bak (None: no quota)."""
    with core.lock:
        core.state["flash_free"] = None if n is None else max(0, int(n))
        core.state["flash_quota"] = core.state["flash_free"]
    if n is not None and _mounted:
        mount_quota(*_mounted[0])
    core.changed()


def limited():
    """True while a quota is set."""
    return core.state.get("flash_free") is not None


def writes(mode):
    """True if an open() mode writes."""
    for flag in "wax+":
        if flag in mode:
            return True
    return False


def flash_charge(nbytes):
    """Account a write of nbytes; OSError(ENOSPC) (nothing written) if it does not fit."""
    with core.lock:
        free = core.state.get("flash_free")
        if free is None:
            return
        if nbytes > free:
            raise core.oserror(ENOSPC)
        core.state["flash_free"] = free - nbytes


def flash_credit(nbytes):
    """Give back nbytes (a file removed or truncated)."""
    with core.lock:
        free = core.state.get("flash_free")
        if free is not None and nbytes > 0:
            core.state["flash_free"] = free + nbytes


def flash_statvfs(stat):
    """statvfs tuple with the quota applied (1-byte blocks) when a quota is set."""
    free = core.state.get("flash_free")
    if free is None:
        return stat
    total = max(free, core.state.get("flash_quota") or 0)
    return (1, 1, total, free, free) + tuple(stat[5:])


_STREAM_FLUSH = 1
_STREAM_SEEK = 2
_STREAM_CLOSE = 4
_STREAM_GET_FILENO = 10


def _size(data):
    if isinstance(data, str):
        return len(data.encode())
    return len(data)


class QuotaFile(_Base):
    """A file whose writes are charged to the flash quota."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        flash_charge(_size(data))
        return self._f.write(data)

    def read(self, *args):
        return self._f.read(*args)

    def readinto(self, buf, *args):
        return self._f.readinto(buf, *args)

    def readline(self, *args):
        return self._f.readline(*args)

    def readlines(self):
        return self._f.readlines()

    def seek(self, *args):
        return self._f.seek(*args)

    def tell(self):
        return self._f.tell()

    def flush(self):
        return self._f.flush()

    def fileno(self):
        return self._f.fileno()

    def close(self):
        return self._f.close()

    def ioctl(self, request, arg):
        if request == _STREAM_FLUSH:
            self._f.flush()
            return 0
        if request == _STREAM_CLOSE:
            self._f.close()
            return 0
        if request == _STREAM_GET_FILENO:
            return self._f.fileno()
        if request == _STREAM_SEEK:
            return -1
        return -1

    def __iter__(self):
        return self

    def __next__(self):
        line = self._f.readline()
        if not line:
            raise StopIteration
        return line

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


def _credit_truncated(stat_size, mode):
    if "w" in mode:
        try:
            flash_credit(stat_size())
        except OSError:
            pass


def quota_open(host_open, path, mode="r", *args, **kwargs):
    """CPython: open a (host) path for writing under the quota."""
    import os
    _credit_truncated(lambda: os.stat(path).st_size, mode)
    return QuotaFile(host_open(path, mode, *args, **kwargs))


if core.IS_MICROPYTHON:
    from shimlib.hostio import os as uos
    if not hasattr(uos, "VfsPosix"):
        raise ImportError("this MicroPython has no uos.VfsPosix (MICROPY_VFS_POSIX): the shim "
                          "cannot map /usr and /bak into the board root")

    class QuotaVfs(uos.VfsPosix):
        """VfsPosix over a host folder with the flash quota applied."""

        def __init__(self, host_dir):
            super().__init__(host_dir)
            self.host_dir = host_dir

        def open(self, path, mode):
            if not limited() or not writes(mode):
                return super().open(path, mode)
            _credit_truncated(lambda: super(QuotaVfs, self).stat(path)[6], mode)
            return QuotaFile(super().open(path, mode))

        def remove(self, path):
            try:
                size = super().stat(path)[6]
            except OSError:
                size = 0
            super().remove(path)
            flash_credit(size)

        def statvfs(self, path):
            return flash_statvfs(super().statvfs(path))

        def rename(self, old, new):
            # VfsPosix with a root renames new onto itself: go through the host paths
            uos.rename(self.host_dir + old, self.host_dir + new)

    def mount_quota(root, tops):
        """Mount QuotaVfs on each device folder (it passes through while there is no quota)."""
        _mounted[:] = [(root, tops)]
        for top in tops:
            try:
                uos.umount(top)
            except OSError:
                pass
            uos.mount(QuotaVfs(root + top), top)
