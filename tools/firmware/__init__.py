"""The QuecPython firmware's Python API, per firmware line: a reader for tools/firmware/api.json.

The table says which modules, module attributes, classes and methods the module's firmware has
on each firmware line (E1 early 2021, E2 mid 2021, E3 from September 2021). The gate
(tools/gate/firmware_check.py) checks device code against it; the strict shim exposes only its
names. `line=None` in the functions below means "on every line".

    from tools import firmware
    firmware.has("checkNet", "wait_network_connected")      # True
    firmware.lines_with("usocket", "TCP_KEEPALIVE")         # ('E2', 'E3')
    firmware.instead("osTimer", "delete")                   # 'delete_timer()'

tools/firmware/mp113.json holds the MicroPython 1.13 language facts (see `mp113()`).
"""
import json
import os

LINES = ("E1", "E2", "E3")
HERE = os.path.dirname(os.path.abspath(__file__))
_cache = {}


def _read(name):
    if name not in _cache:
        with open(os.path.join(HERE, name)) as f:
            _cache[name] = json.load(f)
    return _cache[name]


def load():
    """The whole firmware table (a dict; do not modify it)."""
    return _read("api.json")


def mp113():
    """The MicroPython 1.13 facts: {"types": {type: {"missing": {method: instead}}},
    "modules": {module: {"missing": {name: instead}}}, "builtins": {name: instead}}."""
    return _read("mp113.json")


def lines_of(value):
    """A table entry's lines ("all" or a list) as a tuple of line names."""
    if value == "all" or value is None:
        return LINES
    return tuple(line for line in LINES if line in value)


def _on(lines, line):
    return set(LINES) <= set(lines) if line is None else line in lines


def check_line(line):
    """`line` itself when it names a firmware line, else ValueError."""
    if line not in LINES:
        raise ValueError("unknown firmware line %r (one of %s)" % (line, ", ".join(LINES)))
    return line


def module(name):
    """The table's entry for a module (a dict), or None when the table does not list it."""
    return load()["modules"].get(name)


def module_lines(name):
    """The lines on which `import name` works (empty when never)."""
    spec = module(name)
    return lines_of(spec.get("lines", "all")) if spec is not None else ()


def lines_with(module_name, attr):
    """The lines on which `module_name.attr` exists (a tuple, empty when never)."""
    spec = module(module_name)
    if spec is None or attr not in spec.get("names", {}):
        return ()
    present = set(lines_of(spec["names"][attr])) & set(module_lines(module_name))
    return tuple(line for line in LINES if line in present)


def has(module_name, attr=None, line=None):
    """Whether the module (and its attribute `attr`, when given) exists on `line`
    (None: on every line). For an `is_type` module the attributes are the type's."""
    lines = module_lines(module_name) if attr is None else lines_with(module_name, attr)
    return _on(lines, line)


def is_type(module_name):
    """True when `import module_name` gives a type (osTimer, fota): call it to construct."""
    return bool((module(module_name) or {}).get("is_type"))


def _class(module_name, cls):
    return (module(module_name) or {}).get("classes", {}).get(cls)


def class_methods(module_name, cls, line=None):
    """The set of methods instances of `module_name.cls` have on `line` (None: on every line)."""
    spec = _class(module_name, cls) or {}
    return set(name for name, lines in spec.get("methods", {}).items()
               if _on(lines_of(lines), line))


def class_constants(module_name, cls, line=None):
    """The set of class attributes (constants) of `module_name.cls` on `line`."""
    spec = _class(module_name, cls) or {}
    return set(name for name, lines in spec.get("constants", {}).items()
               if _on(lines_of(lines), line))


def method_lines(module_name, cls, method):
    """The lines on which `module_name.cls` has `method` (methods or constants)."""
    spec = _class(module_name, cls) or {}
    for kind in ("methods", "constants"):
        if method in spec.get(kind, {}):
            return lines_of(spec[kind][method])
    return ()


def returns(module_name, attr):
    """The class (a name in the module's `classes`) that calling `module_name.attr` returns."""
    return (module(module_name) or {}).get("returns", {}).get(attr)


def call_spec(module_name, callee):
    """What a call of `callee` ("attr" or "Class.method") accepts, when the table knows:
    {"positional": max count (optional), "keywords": {name: lines} (optional)}."""
    return (module(module_name) or {}).get("calls", {}).get(callee)


def instead(module_name, attr):
    """What to use instead of an absent `module_name.attr` ("Class.method" for methods,
    "import" for the module itself), or None."""
    return (module(module_name) or {}).get("instead", {}).get(attr)


def names(module_name, line=None):
    """The set of module attributes on `line` (None: on every line)."""
    spec = module(module_name) or {}
    return set(name for name in spec.get("names", {}) if has(module_name, name, line))
