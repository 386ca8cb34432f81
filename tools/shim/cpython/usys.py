"""usys on CPython: the standard sys module plus MicroPython's print_exception."""
from sys import *  # noqa: F401,F403
import sys as _sys
import traceback as _traceback


def print_exception(exc, file=None):
    """Print exc and its traceback, as MicroPython's usys.print_exception (to stdout)."""
    _traceback.print_exception(type(exc), exc, exc.__traceback__,
                               file=_sys.stdout if file is None else file)

from shimlib import firmware as _firmware  # noqa: E402

_firmware.prune(globals(), "usys")
