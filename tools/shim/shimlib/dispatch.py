"""The shim's callback thread: callbacks (dataCall, sim, fota, UART) run here, as the firmware
runs them on a thread of its own, never in the caller's stack."""
from shimlib import core, threads

_dispatcher = None


class _Dispatcher(object):
    def __init__(self):
        self.stopped = False        # set by reset: a late fire() starts a new dispatcher
        self.calls = []
        self.pending = threads.Event()
        self.worker = threads.Worker(self._loop, "shim-callbacks").start()

    def put(self, fn, args):
        with core.lock:
            self.calls.append((fn, args))
        self.pending.set()

    def _loop(self, worker):
        while True:
            self.pending.wait()
            if worker.stopping.is_set():
                return
            self.pending.clear()
            while not worker.stopping.is_set():
                with core.lock:
                    if not self.calls:
                        break
                    fn, args = self.calls.pop(0)
                try:
                    fn(*args)
                except Exception as exc:
                    threads.print_exception(exc)
                core.changed()

    def _shim_stop(self):
        self.stopped = True
        self.worker.stopping.set()
        self.pending.set()
        if self.worker.stop():
            self.pending.close()


def fire(fn, *args):
    """Run fn(*args) on the shim's callback thread (started on first use, stopped by reset)."""
    global _dispatcher
    if fn is None:
        return
    with core.lock:
        # a dispatcher being stopped (its thread can outlive reset() on a loaded machine)
        # would drop the call: start a new one
        if _dispatcher is None or _dispatcher.stopped or not _dispatcher.worker.running:
            _dispatcher = _Dispatcher()
            start = _dispatcher
        else:
            start = None
        dispatcher = _dispatcher
    if start is not None:
        core.track(start)
    dispatcher.put(fn, args)
