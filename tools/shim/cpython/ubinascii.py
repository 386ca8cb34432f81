"""ubinascii on CPython: the standard binascii module."""
from binascii import *  # noqa: F401,F403
