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
