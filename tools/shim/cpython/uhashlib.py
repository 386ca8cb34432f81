"""uhashlib on CPython: the standard hashlib module."""
from hashlib import *  # noqa: F401,F403
