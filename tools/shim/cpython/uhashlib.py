"""uhashlib on CPython: the firmware's sha256, sha1 and md5 over hashlib (update and digest
only: no hexdigest, as on the module)."""
import hashlib as _hashlib

from shimlib import firmware as _firmware


class _Hash(object):
    _algorithm = None

    def __init__(self, data=None):
        self._hash = _hashlib.new(self._algorithm)
        if data is not None:
            self._hash.update(data)

    def update(self, data):
        self._hash.update(data)

    def digest(self):
        return self._hash.digest()


class sha256(_Hash):
    _algorithm = "sha256"


class sha1(_Hash):
    _algorithm = "sha1"


class md5(_Hash):
    _algorithm = "md5"


_firmware.prune(globals(), "uhashlib")
