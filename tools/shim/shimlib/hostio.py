"""The host's own modules for the shim's internals: sys, os, select, socket.

On MicroPython only the u-names are imported (a QuecPython-like 1.13 build has no `sys`, `os`,
`select` or `socket`), and `usocket` is the built-in: shimlib imports this module before it
puts the shim's socket module (host_socket) in sys.modules['usocket'].
"""
try:
    import usys as sys
except ImportError:
    import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"
if IS_MICROPYTHON:
    import uos as os
    import uselect as select    # before shimlib hides it from device code on E1/E2
    import usocket as socket
else:                       # the host's modules, not the shim's cpython/u*.py
    import os
    import select
    import socket


def print_exception(exc):
    """Print a traceback the way the interpreter does."""
    if IS_MICROPYTHON:
        sys.print_exception(exc)
    else:
        import traceback
        traceback.print_exception(type(exc), exc, exc.__traceback__)


def bound_port(sock):
    """The local port a listening socket got (bind to port 0, listen, then ask). CPython:
    getsockname. MicroPython's sockets have none: the socket's inode (stat of /proc/self/fd/N)
    is looked up in /proc/self/net/tcp, which lists a socket once it listens or connects
    (Linux only: elsewhere OSError)."""
    if hasattr(sock, "getsockname"):
        return sock.getsockname()[1]
    inode = str(os.stat("/proc/self/fd/%d" % sock.fileno())[1])
    with open("/proc/self/net/tcp") as table:
        for line in table:
            words = line.split()
            if len(words) > 9 and words[9] == inode:
                return int(words[1].split(":")[1], 16)
    raise OSError("socket inode %s not in /proc/self/net/tcp" % inode)
