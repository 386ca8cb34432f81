"""osTimer on the host: QuecPython's OS timer over a stoppable thread (no busy loop).

    t = osTimer.osTimer(); t.start(period_ms, cyclic, callback); t.stop(); t.delete()
callback(arg) runs on the timer's thread; arg is None (QuecPython documents it as unused).
"""
from shimlib import core, threads


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

    def delete(self):
        return self.stop()

    _shim_stop = stop
