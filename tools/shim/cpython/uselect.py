"""uselect on CPython: the standard select module."""
from select import *  # noqa: F401,F403
