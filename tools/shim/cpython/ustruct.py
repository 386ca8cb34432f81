"""ustruct on CPython: the standard struct module."""
from struct import *  # noqa: F401,F403

from shimlib import firmware as _firmware  # noqa: E402

_firmware.prune(globals(), "ustruct")
