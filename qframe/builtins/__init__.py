"""Extensions that own I/O and threads (QFrame's `usr.qframe.builtins`).

Each module is imported when an app uses it; the names below load lazily for the same reason.
`network` here is the module usr.qframe.builtins.network (QFrame rebinds the name to its
network extension): its register_net_callback / register_sim_callback / wait_network_ready
reach the current app's `network` extension, so QFrame code using them runs unchanged.
"""
_LAZY = {"Uart": "uart", "TcpClient": "clients", "SmsClient": "sms", "NetWatch": "network",
         "NetWork": "netready"}
_MODULES = ("uart", "clients", "network", "netready", "sms", "tls")


def __getattr__(name):
    where = _LAZY.get(name)
    if where is None and name not in _MODULES:
        raise AttributeError("module 'usr.qframe.builtins' has no attribute %r" % name)
    module = __import__("usr.qframe.builtins." + (where or name), None, None, [name])
    value = getattr(module, name) if where else module
    globals()[name] = value
    return value
