"""uzlib on CPython: the standard zlib module."""
from zlib import *  # noqa: F401,F403
