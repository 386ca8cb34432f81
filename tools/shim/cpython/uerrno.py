"""uerrno on CPython: the standard errno module."""
from errno import *  # noqa: F401,F403
