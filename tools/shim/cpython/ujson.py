"""ujson on CPython: the standard json module."""
from json import *  # noqa: F401,F403
