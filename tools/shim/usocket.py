"""usocket on the host (CPython): the shim's sockets, shimlib/host_socket.py (already pruned
to the firmware line's names).

On MicroPython importing shimlib (every shim module does) makes host_socket itself `usocket`.
"""
from shimlib.host_socket import *  # noqa: F401,F403
from shimlib.host_socket import _adopt  # noqa: F401  (ussl wraps TLS objects with it)
