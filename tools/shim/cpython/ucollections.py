"""ucollections on CPython: the standard collections module."""
from collections import *  # noqa: F401,F403

from shimlib import firmware as _firmware  # noqa: E402

_firmware.prune(globals(), "ucollections")
