"""qframe: the application framework for the meter's cellular module (`usr.qframe`).

`import usr.qframe` loads the core only (Application, extensions' base, config, bus,
threading, logging). QFrame's package-level names for the built-in extensions (`Uart`,
`TcpClient`) and ours (`NetWatch`, `Resolver`) load on first use, so an app pays the heap of
the extensions it touches and no more.
"""
_namespace = globals     # before `.globals` (QFrame's module name) shadows the builtin here
from .core import Application, AppExtension, AppExtensionABC, ConfigError, CurrentApp, Field, G

__version__ = "0.2.0"

_LAZY = {
    "Uart": "builtins.uart",
    "TcpClient": "builtins.clients",
    "SmsClient": "builtins.sms",
    "NetWatch": "builtins.network",
    "Resolver": "protocols.resolver",
}
# Submodules `from usr.qframe import <name>` imports (MicroPython does not fall back to
# importing a submodule when a package's __getattr__ raises).
_MODULES = ("builtins", "codecs", "protocols", "store", "datetime", "led", "ota", "qsocket",
            "serial", "sync")


def __getattr__(name):
    """PEP 562 hook: import the module behind a lazy name on first use."""
    where = _LAZY.get(name)
    if where is None and name not in _MODULES:
        raise AttributeError("module 'usr.qframe' has no attribute %r" % name)
    module = __import__("usr.qframe." + (where or name), None, None, [name])
    value = getattr(module, name) if where else module
    _namespace()[name] = value
    return value
