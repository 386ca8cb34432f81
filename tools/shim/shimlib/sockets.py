"""The connected usocket sockets the shim knows, so network faults can abort them."""
from shimlib import core

ECONNRESET = 104
ECONNABORTED = 103


def register(sock):
    with core.lock:
        if sock not in core.live_sockets:
            core.live_sockets.append(sock)


def unregister(sock):
    with core.lock:
        if sock in core.live_sockets:
            core.live_sockets.remove(sock)


def live():
    with core.lock:
        return list(core.live_sockets)


def abort_all(errno):
    """Abort every live socket with errno (the peer sees a TCP RST); how many there were."""
    with core.lock:
        socks = list(core.live_sockets)
        del core.live_sockets[:]
    for sock in socks:
        sock._shim_abort(errno)
    if socks:
        core.count("socket_resets", len(socks))
    return len(socks)


def reset_sockets():
    """TCP reset of every live socket: the peer sees a RST, the app ECONNRESET."""
    return abort_all(ECONNRESET)
