"""ucollections on CPython: the standard collections module."""
from collections import *  # noqa: F401,F403
