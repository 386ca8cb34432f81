"""qframe: the application framework for the meter's cellular module (`usr.qframe`).

`import usr.qframe` loads the core only (Application, extensions' base, config, bus,
threading, logging). QFrame's package-level names for the built-in extensions (`Uart`,
`TcpClient`) and ours (`NetWatch`, `Resolver`) load on first use, so an app pays the heap of
the extensions it touches and no more.
"""
from .core import Application, AppExtension, AppExtensionABC, ConfigError, CurrentApp, Field, G

__version__ = "0.2.0"

_LAZY = {
    "Uart": "builtins.uart",
    "TcpClient": "builtins.clients",
    "NetWatch": "builtins.network",
    "Resolver": "protocols.resolver",
    "Ota": "builtins.ota",
}


def __getattr__(name):
    """PEP 562 hook: import the module behind a lazy name on first use."""
    if name == "_lazy_probe":
        return True
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError("module 'usr.qframe' has no attribute %r" % name)
    module = __import__("usr.qframe." + where, None, None, [name])
    value = getattr(module, name)
    globals()[name] = value
    return value


def _module_getattr_works():
    try:
        import usys
        return getattr(usys.modules[__name__], "_lazy_probe", None) is True
    except Exception:
        return False


if not _module_getattr_works():     # a firmware built without PEP 562: load them now
    for _name in _LAZY:
        __getattr__(_name)
