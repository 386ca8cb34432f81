"""Which QuecPython firmware line the shim stands in for, and what that line has.

    QFRAME_FIRMWARE=E1|E2|E3     (environment; default E1, the line with the fewest names)
    LINE                          the chosen line
    has(module, name)             the line's `module` has `name` (tools/firmware/api.json)

E1 is early 2021, E2 mid 2021, E3 from September 2021 (uselect, uerrno); the table of what each
line has is tools/firmware/api.json, shared with the gate (tools/firmware/__init__.py).
"""
from shimlib.hostio import os, sys

LINES = ("E1", "E2", "E3")
DEFAULT = "E1"


def _chosen():
    getenv = getattr(os, "getenv", None)
    line = (getenv("QFRAME_FIRMWARE") if getenv else None) or DEFAULT
    if line not in LINES:
        raise ValueError("QFRAME_FIRMWARE=%s: use one of %s" % (line, ", ".join(LINES)))
    return line


LINE = _chosen()
