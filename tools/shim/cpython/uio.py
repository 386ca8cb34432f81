"""uio on CPython: the standard io module."""
from io import *  # noqa: F401,F403
