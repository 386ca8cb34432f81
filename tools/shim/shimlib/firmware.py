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
import gc

from shimlib.hostio import IS_MICROPYTHON, os, sys

if IS_MICROPYTHON:
    import ujson as _json
else:
    import json as _json

LINES = ("E1", "E2", "E3")
DEFAULT = "E1"
_kept = {}


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
    """The whole firmware table's modules ({module: {"names": ..., "classes": ...}}), read from
    the file at each call (tests); the shim itself keeps only the line's index (_index)."""
    with open(_path()) as f:
        return _json.load(f)["modules"]


def _on_line(lines):
    return lines == "all" or LINE in lines


def _words(entries):
    """The names of a table entry that the line has, as " a b c " (small on a module heap)."""
    return " " + " ".join([name for name in entries if _on_line(entries[name])]) + " "


def _index():
    """{module: (module names, {class: method and constant names})} for the modules the line
    has, built once from the table (about 95 KB while parsed on MicroPython, 10 KB kept)."""
    if not _kept:
        modules = table()
        for module in modules:
            spec = modules[module]
            if not _on_line(spec.get("lines", "all")):
                continue
            classes = {}
            for class_name, class_spec in spec.get("classes", {}).items():
                entries = dict(class_spec.get("methods", {}))
                entries.update(class_spec.get("constants", {}))
                classes[class_name] = _words(entries)
            _kept[module] = (_words(spec.get("names", {})), classes)
        modules = None
        gc.collect()
    return _kept


def has_module(module):
    return module in _index()


def has(module, name):
    """True if `module.name` exists on this line (for is_type modules: the type's methods)."""
    entry = _index().get(module)
    return entry is not None and (" %s " % name) in entry[0]


def class_has(module, class_name, name):
    """True if the table's class `class_name` of `module` has method or constant `name`."""
    entry = _index().get(module)
    words = entry[1].get(class_name) if entry is not None else None
    return words is not None and (" %s " % name) in words


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
    for class_name in _index()[module][1]:
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
