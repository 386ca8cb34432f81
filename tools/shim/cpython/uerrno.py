"""uerrno on CPython: the standard errno module."""
from shimlib import firmware as _firmware

_firmware.require("uerrno")      # E3 only: ImportError on E1 and E2

from errno import *  # noqa: F401,F403


_firmware.prune(globals(), "uerrno")
