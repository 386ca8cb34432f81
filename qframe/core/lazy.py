"""Names a package loads on first use: its module-level __getattr__ (PEP 562).

    __getattr__ = lazy_names(__name__, {"Uart": "builtins.uart", "NetWatch": "builtins.netwatch"})
    load_without_pep562(__name__, ("Uart",))

An attribute in the table is imported from its submodule; any other name is tried as a
submodule of the package, because MicroPython does not fall back to importing a submodule
(`from usr.qframe import serial`) once a package has a __getattr__. Firmware built without
PEP 562 support never calls the hook: load_without_pep562 notices and imports the names QFrame
apps expect at once (the others are then imported from their modules, e.g.
`from usr.qframe.builtins.netwatch import NetWatch`, as qframe's own code does).
"""
import usys


def lazy_names(package, table):
    def getattr_(name):
        if name == "_lazy_probe":
            return True
        if name.startswith("__"):
            raise AttributeError(name)
        where = table.get(name)
        try:
            module = __import__(package + "." + (where or name), None, None, [name])
        except ImportError:
            if where is not None:
                raise
            raise AttributeError("module '%s' has no attribute '%s'" % (package, name))
        value = getattr(module, name) if where else module
        setattr(usys.modules[package], name, value)
        return value
    return getattr_


def load_without_pep562(package, names):
    """On firmware whose modules ignore __getattr__, import names now."""
    module = usys.modules[package]
    if getattr(module, "_lazy_probe", None) is not True:
        hook = module.__getattr__
        for name in names:
            hook(name)


def forget(name):
    """Unload module `name` (a dotted name) once its job is done, e.g. startup-only code:
    removed from usys.modules and from its package, so that its code is garbage once nothing
    else holds one of its functions or classes. The next import loads it again."""
    usys.modules.pop(name, None)
    cut = name.rfind(".")
    parent = usys.modules.get(name[:cut]) if cut > 0 else None
    if parent is not None:
        try:
            delattr(parent, name[cut + 1:])
        except (AttributeError, KeyError):      # 1.13 raises KeyError for a missing one
            pass
