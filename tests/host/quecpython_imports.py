"""Run a MicroPython script with QuecPython's module names only (run under MicroPython):

    micropython tests/host/quecpython_imports.py SCRIPT ARGS...

`import sys`, `os`, `select`, `socket`, `struct`, `io`, `json`, `time`... raise ImportError (as
on QuecPython and 1.13 builds configured like it: u-names only), and `uos` has no `urandom` or
`getcwd`. Each blocked name is reported once on stderr as `BLOCKED import NAME`.
"""
import builtins
import uos
import usys

# Not `ssl`: tools/shim/shimlib/tls_mp.py wraps the ssl of newer ports (on a 1.13 build, the
# built-in ussl).
BLOCKED = ("sys", "os", "select", "socket", "struct", "io", "json", "time", "binascii", "errno",
           "collections", "hashlib", "random", "re", "zlib")
HIDDEN = ("urandom", "getcwd")
_import = builtins.__import__
_reported = []


def _guard(name, *args):
    relative = len(args) > 3 and args[3] > 0       # `from ..collections import x` is ours
    if name in BLOCKED and not relative:
        if name not in _reported:
            _reported.append(name)
            usys.stderr.write("BLOCKED import %s\n" % name)
        raise ImportError("no module named '%s'" % name)
    return _import(name, *args)


class _Uos(object):
    """uos without the functions QuecPython lacks."""


for _name in dir(uos):
    if _name not in HIDDEN and not _name.startswith("__"):
        setattr(_Uos, _name, getattr(uos, _name))

usys.modules["uos"] = _Uos
builtins.__import__ = _guard
usys.argv.pop(0)
_script = usys.argv[0]
with open(_script) as _f:
    _source = _f.read()
exec(compile(_source, _script, "exec"), {"__name__": "__main__", "__file__": _script})
