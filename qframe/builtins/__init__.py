"""Extensions that own I/O and threads (QFrame's `usr.qframe.builtins`).

Each module is imported when an app uses it; the names below load lazily for the same reason.
"""
_LAZY = {"Uart": "uart", "TcpClient": "clients", "TcpServer": "server", "NetWatch": "network",
         "Ota": "ota"}


def __getattr__(name):
    if name == "_lazy_probe":
        return True
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError("module 'usr.qframe.builtins' has no attribute %r" % name)
    module = __import__("usr.qframe.builtins." + where, None, None, [name])
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
