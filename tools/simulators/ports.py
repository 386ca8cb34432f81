"""Ports for servers started in another process, which cannot bind port 0 and say which port
they got (mosquitto, the app's shim control server).

A port picked by binding port 0 comes from the kernel's ephemeral range: between the pick and
the server's own bind, an outgoing connection may take it as its local port, or another test
worker may pick it too, and the server then fails to listen, or a check connects to someone
else's server. `server_port()` picks below the ephemeral range, from a block of its own per
pytest-xdist worker, so neither can happen within one test run.
"""
import os
import socket

_BLOCK = 2000          # ports per worker
_next = [None]


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _block_start():
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")      # gw0, gw1, ... under xdist
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    blocks = max(1, (_ephemeral_low() - 12000) // _BLOCK)
    return 12000 + (index % blocks) * _BLOCK


def server_port():
    """A free 127.0.0.1 port below the ephemeral range, in this worker's block."""
    start = _block_start()
    if _next[0] is None:
        _next[0] = os.getpid() % _BLOCK        # runs one after another start apart
    for _ in range(_BLOCK):
        port = start + _next[0]
        _next[0] = (_next[0] + 1) % _BLOCK
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise OSError("no free port in %d..%d" % (start, start + _BLOCK - 1))
