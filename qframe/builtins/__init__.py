"""Extensions that own I/O and threads (QFrame's `usr.qframe.builtins`).

Each module is imported when an app uses it; the names below load lazily for the same reason.
"""
_LAZY = {"Uart": "uart", "TcpClient": "clients", "NetWatch": "network", "Watchdog": "watchdog"}


def __getattr__(name):
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError("module 'usr.qframe.builtins' has no attribute %r" % name)
    module = __import__("usr.qframe.builtins." + where, None, None, [name])
    value = getattr(module, name)
    globals()[name] = value
    return value
