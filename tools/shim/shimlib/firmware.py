"""Which QuecPython firmware line the shim stands in for, and what that line has.

    QFRAME_FIRMWARE=E1|E2|E3     (environment; default E1, the line with the fewest names)
    LINE                          the chosen line
    has(module, name)             the line's `module` has `name` (tools/firmware/api.json)
    has_module(module)            `import module` works on the line
    prune(globals(), module)      end of a shim module: drop what the line lacks
    prune_class(cls, module, name)  the same for a class the table lists under `name`
    require(module)               ImportError unless the line has the module
    hide_builtin(module)          MicroPython: the same for a module the interpreter builds in

E1 is early 2021, E2 mid 2021, E3 from September 2021 (uselect, uerrno); the table of what each
line has is tools/firmware/api.json, shared with the gate (tools/firmware/__init__.py). A shim
module keeps its helpers under `_` names: prune() drops every other name the table lacks.
"""
from shimlib.hostio import IS_MICROPYTHON, os, sys

if IS_MICROPYTHON:
    import ujson as _json
else:
    import json as _json

LINES = ("E1", "E2", "E3")
DEFAULT = "E1"
_table = []


def _chosen():
    getenv = getattr(os, "getenv", None)
    line = (getenv("QFRAME_FIRMWARE") if getenv else None) or DEFAULT
    if line not in LINES:
        raise ValueError("QFRAME_FIRMWARE=%s: use one of %s" % (line, ", ".join(LINES)))
    return line


LINE = _chosen()


def _path():
    """tools/firmware/api.json, found from this file (tools/shim/shimlib/firmware.py)."""
    parts = __file__.replace("\\", "/").split("/")
    return "/".join(parts[:-3] + ["firmware", "api.json"])


def table():
    """The firmware table's modules: {module: {"names": ..., "classes": ..., ...}}."""
    if not _table:
        with open(_path()) as f:
            _table.append(_json.load(f)["modules"])
    return _table[0]


def _on_line(lines):
    return lines == "all" or LINE in lines


def has_module(module):
    spec = table().get(module)
    return spec is not None and _on_line(spec.get("lines", "all"))


def has(module, name):
    """True if `module.name` exists on this line (for is_type modules: the type's methods)."""
    if not has_module(module):
        return False
    lines = table()[module].get("names", {}).get(name)
    return lines is not None and _on_line(lines)


def class_has(module, class_name, name):
    """True if the table's class `class_name` of `module` has method or constant `name`."""
    spec = table()[module].get("classes", {}).get(class_name)
    if spec is None:
        return False
    lines = spec.get("methods", {}).get(name, spec.get("constants", {}).get(name))
    return lines is not None and _on_line(lines)


def require(module):
    """ImportError unless `import module` works on this line (for a shim module's top)."""
    if not has_module(module):
        raise ImportError("no module named '%s' on firmware line %s" % (module, LINE))


class Absent(object):
    """What `import name` gives on MicroPython when the line lacks a module the interpreter
    has built in: any attribute raises ImportError (device code keeps the import and the
    first use inside its `try: ... except ImportError`)."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        raise ImportError("no module named '%s' on firmware line %s" % (self._name, LINE))


def hide_builtin(module):
    """On MicroPython: unless the line has `module`, `import module` gives an Absent stand-in
    instead of the interpreter's built-in (found before sys.path, so no file can shadow it)."""
    if has_module(module) or module in sys.modules:
        return
    try:
        __import__(module)
    except ImportError:
        return                  # the interpreter has none either
    sys.modules[module] = Absent(module)


def _own_names(cls):
    names = getattr(cls, "__dict__", None)
    return list(names) if names is not None else dir(cls)


def prune_class(cls, module, class_name, keep=()):
    """Delete the public attributes of `cls` that the table's class lacks on this line (but
    `keep`: interpreter hooks such as MicroPython's stream `ioctl`)."""
    for name in _own_names(cls):
        if not name.startswith("_") and name not in keep and \
                not class_has(module, class_name, name):
            delattr(cls, name)
    return cls


def prune(namespace, module, classes=None, keep=()):
    """Delete from a shim module's globals every public name the line's `module` lacks, and
    prune the table's classes: those found in namespace under their table name, and those
    given in `classes` ({table class name: class}, for types no attribute names)."""
    for name in list(namespace):
        if not name.startswith("_") and not has(module, name):
            del namespace[name]
    found = dict(classes or {})
    for class_name in table()[module].get("classes", {}):
        if class_name in namespace and isinstance(namespace[class_name], type):
            found.setdefault(class_name, namespace[class_name])
    for class_name, cls in found.items():
        prune_class(cls, module, class_name, keep)


def prune_type(cls, module):
    """For modules the firmware registers as a type (osTimer, fota): the type's public
    attributes are the module's names."""
    for name in _own_names(cls):
        if not name.startswith("_") and not has(module, name):
            delattr(cls, name)
    return cls
