"""ujson on CPython: the standard json module."""
from json import *  # noqa: F401,F403

from shimlib import firmware as _firmware  # noqa: E402

_firmware.prune(globals(), "ujson")
