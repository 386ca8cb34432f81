"""osTimer on the host: QuecPython's OS timer over a stoppable thread (no busy loop).

As on the firmware, `import osTimer` gives the type itself (the module object is replaced in
sys.modules; on MicroPython shimlib does it before device code imports it):
    t = osTimer(); t.start(period_ms, cyclic, callback); t.stop(); t.delete_timer()
callback(arg) runs on the timer's thread; arg is None (QuecPython documents it as unused).
"""
from shimlib import core, threads
from shimlib.hostio import sys


class osTimer(object):
    def __init__(self):
        self._ticker = None

    def start(self, initialTime, cyclialEn, callback):
        self.stop()
        self._ticker = threads.Ticker(initialTime, bool(cyclialEn),
                                        lambda: callback(None), "osTimer").start()
        core.track(self)
        return 0

    def stop(self):
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.stop()
            core.untrack(self)
        return 0

    def delete_timer(self):
        return self.stop()

    _shim_stop = stop


sys.modules[__name__] = osTimer
