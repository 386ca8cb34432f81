"""Extensions that own I/O and threads (QFrame's `usr.qframe.builtins`).

Each module is imported when an app uses it; the names below load lazily for the same reason.
`network` here is the module usr.qframe.builtins.network (QFrame rebinds the name to its
network extension): its register_net_callback / register_sim_callback / wait_network_ready
reach the current app's `network` extension, so QFrame code using them runs unchanged.
"""
_LAZY = {"Uart": "uart", "TcpClient": "clients", "SmsClient": "sms", "NetWatch": "network",
         "NetWork": "netready"}


def __getattr__(name):
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError("module 'usr.qframe.builtins' has no attribute %r" % name)
    module = __import__("usr.qframe.builtins." + where, None, None, [name])
    value = getattr(module, name)
    globals()[name] = value
    return value
