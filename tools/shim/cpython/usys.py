"""usys on CPython: the standard sys module."""
from sys import *  # noqa: F401,F403
