"""uio on CPython: the standard io module."""
from io import *  # noqa: F401,F403

from shimlib import firmware as _firmware  # noqa: E402

_firmware.prune(globals(), "uio")
