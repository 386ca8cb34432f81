"""QFrame's `usr.qframe.led`: an LED on a GPIO that can blink in the background.

    led = Led(12)                # machine.Pin.GPIO12, output, off
    led.blink(100, 900, 5)       # 5 x (100 ms on, 900 ms off), returns at once
    led.stop()                   # ends a blink (QFrame's blink thread never ends)
"""
from .threading import Event, Lock, Thread


class Led(object):
    def __init__(self, GPIOn):
        from machine import Pin
        self._pin = Pin(getattr(Pin, "GPIO%d" % GPIOn, GPIOn), Pin.OUT, Pin.PULL_PD, 0)
        self._lock = Lock()
        self._thread = None
        self._stop = Event()

    def on(self):
        self._pin.write(1)

    def off(self):
        self._pin.write(0)

    def blink(self, on_remaining, off_remaining, count):
        """Blink count times (on_remaining ms on, off_remaining ms off), replacing a blink
        in progress."""
        with self._lock:
            self.stop()
            self._stop = Event()
            self._thread = Thread(self._blink, (on_remaining, off_remaining, count, self._stop),
                                  name="led").start()

    def stop(self, timeout=2.0):
        """End a blink in progress (the LED is left off); True once it ended."""
        self._stop.set()
        thread = self._thread
        return thread.join(timeout) if thread is not None else True

    def _blink(self, on_ms, off_ms, count, stop):
        for _ in range(count):
            if stop.is_set():
                break
            self.on()
            stop.wait(on_ms / 1000.0)
            self.off()
            if stop.wait(off_ms / 1000.0):
                break
        self.off()
