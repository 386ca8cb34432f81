"""ubinascii on CPython: the standard binascii module."""
from binascii import *  # noqa: F401,F403

from shimlib import firmware as _firmware  # noqa: E402

_firmware.prune(globals(), "ubinascii")
