"""uselect on CPython: select, with MicroPython's poll (results name the registered objects).

`poll().poll(timeout_ms)` returns [(obj, events)] with the object that was registered (a
socket, a usocket wrapper, a file, an int descriptor), as MicroPython does; CPython's own
poll returns descriptors.
"""
from shimlib import firmware as _firmware

_firmware.require("uselect")      # E3 only: ImportError on E1 and E2

import select as _select
from select import *  # noqa: F401,F403

POLLIN = _select.POLLIN
POLLOUT = _select.POLLOUT
POLLERR = _select.POLLERR
POLLHUP = _select.POLLHUP


def _fd(obj):
    """The descriptor to poll: the firmware's TLS socket has no fileno(), but can be polled."""
    if isinstance(obj, int):
        return obj
    shim_fileno = getattr(obj, "_shim_fileno", None)
    return shim_fileno() if shim_fileno is not None else obj.fileno()


class _Poll(object):
    def __init__(self):
        self._poll = _select.poll()
        self._objects = {}

    def register(self, obj, eventmask=POLLIN | POLLOUT):
        fd = _fd(obj)
        self._objects[fd] = obj
        self._poll.register(fd, eventmask)

    def modify(self, obj, eventmask):
        self._poll.modify(_fd(obj), eventmask)

    def unregister(self, obj):
        fd = _fd(obj)
        self._objects.pop(fd, None)
        self._poll.unregister(fd)

    def poll(self, timeout=-1):
        """[(obj, events)]; timeout in ms, -1 waits forever."""
        events = self._poll.poll(None if timeout is None or timeout < 0 else timeout)
        return [(self._objects.get(fd, fd), ev) for fd, ev in events]

    def ipoll(self, timeout=-1, flags=0):
        return iter(self.poll(timeout))


def poll():
    return _Poll()


_firmware.prune(globals(), "uselect")
