"""Flash quota of the host shim: writes to /usr and /bak count against shimctl's flash_free.

CPython: shimctl's patched builtins.open wraps files opened for writing in QuotaFile.
MicroPython: set_flash_free() mounts QuotaVfs (a VfsPosix subclass) on /usr and /bak; its
open() wraps files opened for writing. A write that does not fit raises OSError(28) and
writes nothing. Removing a file or reopening it with "w" gives its size back.
"""
import sys

import shimctl

IS_MICROPYTHON = sys.implementation.name == "micropython"

if IS_MICROPYTHON:
    import io
    _Base = io.IOBase       # MicroPython streams (json.dump, print(file=)) need the protocol
else:
    _Base = object

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
        shimctl.flash_charge(_size(data))
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
            shimctl.flash_credit(stat_size())
        except OSError:
            pass


def quota_open(host_open, path, mode="r", *args, **kwargs):
    """CPython: open a (host) path for writing under the quota."""
    import os
    _credit_truncated(lambda: os.stat(path).st_size, mode)
    return QuotaFile(host_open(path, mode, *args, **kwargs))


if IS_MICROPYTHON:
    import uos

    class QuotaVfs(uos.VfsPosix):
        """VfsPosix over a host folder with the flash quota applied."""

        def __init__(self, host_dir):
            super().__init__(host_dir)
            self.host_dir = host_dir

        def open(self, path, mode):
            if shimctl.state.get("flash_free") is None or not shimctl._writes(mode):
                return super().open(path, mode)
            _credit_truncated(lambda: super(QuotaVfs, self).stat(path)[6], mode)
            return QuotaFile(super().open(path, mode))

        def remove(self, path):
            try:
                size = super().stat(path)[6]
            except OSError:
                size = 0
            super().remove(path)
            shimctl.flash_credit(size)

        def statvfs(self, path):
            return shimctl.flash_statvfs(super().statvfs(path))

        def rename(self, old, new):
            # VfsPosix with a root renames new onto itself: go through the host paths
            uos.rename(self.host_dir + old, self.host_dir + new)

    def mount_quota(root, tops):
        """Mount QuotaVfs on each device folder (it passes through while there is no quota)."""
        for top in tops:
            try:
                uos.umount(top)
            except OSError:
                pass
            uos.mount(QuotaVfs(root + top), top)
