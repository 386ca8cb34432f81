"""machine on the host: UART, Pin, Timer, RTC, WDT with QuecPython's signatures.

UART(port, ...) opens shimctl.uart_map[port] (or port itself when it is a path/URL string):
see shimlib/uart_devices.py for the devices. read(n) never blocks (b'' when nothing is there);
any() counts the bytes received; set_callback(fun) calls fun([0, port, size]) from a watcher
thread when data arrives. Pin levels live in shimctl.gpio; WDT feeds and would-be resets in
shimctl.state ("wdt_feeds", "wdt_expired"). Every thread stops on close()/stop() and on
shimctl.reset().
"""
from shimlib import firmware as _firmware
import _thread as _thread_mod

import utime as _utime
from shimlib import core as _core, dispatch as _dispatch, notes as _notes  # noqa: I100
from shimlib import threads as _threads, uart_devices as _uart_devices
from shimlib.hostio import select as _select

_ENODEV = 19


class UART(object):
    UART0 = 0
    UART1 = 1
    UART2 = 2
    UART3 = 3
    UART4 = 4
    FC_NONE = 0
    FC_HW = 1
    _RX_BUFFER = 4096    # the driver's receive buffer; the rest waits in the host device
    _READ_STEP = 512     # octets asked of the host device at a time: a read allocates what it
                        # asks for, and the module's driver buffer is not on the app's heap

    def __init__(self, port, baudrate=115200, bits=8, parity=0, stop=1, flow=0):  # firmware's names
        device = port if isinstance(port, str) else _core.uart_map.get(port)
        if device is None:
            raise OSError(_ENODEV, "UART%s is not mapped to a host device: set "
                                  "shimctl.uart_map[%r] = '/dev/pts/N' or 'socket://host:port'"
                          % (port, port))
        self.port = port
        self.device = device
        self.config = (baudrate, bits, parity, stop, flow)
        self._dev = _uart_devices.open_device(device, baudrate, bits, parity, stop)
        self._rx = bytearray()
        self._rx_lock = _thread_mod.allocate_lock()
        self._tx_lock = _thread_mod.allocate_lock()
        self._callback = None
        self._watcher = None
        self._rs485 = None
        self._closed = False
        self._gone = None
        _core.track(self)

    def _pull(self, announce=True):
        """Move what the device has into the receive buffer; the number of new bytes. A dead
        device is remembered (self._gone) and raised once the buffer is drained. New bytes are
        announced to the set_callback function on the shim's callback thread (as the driver's
        interrupt would), whichever thread pulled them; the watcher announces its own."""
        got = self._pull_locked()
        if got and announce and self._callback is not None:
            _dispatch.fire(self._callback, [0, self.port, len(self._rx)])
        return got

    def _pull_locked(self):
        with self._rx_lock:
            if self._closed or self._gone is not None:
                return 0
            got = 0
            while len(self._rx) < self._RX_BUFFER:
                try:
                    data = self._dev.read_now(min(self._READ_STEP,
                                                  self._RX_BUFFER - len(self._rx)))
                except OSError as exc:
                    self._gone = exc
                    return got
                if not data:
                    return got
                self._rx.extend(data)
                got += len(data)
            return got

    def _check_gone(self):
        if not self._rx and self._gone is not None:
            raise self._gone

    def any(self):
        self._pull()
        self._check_gone()
        return len(self._rx)

    def read(self, nbytes=4096):
        self._pull()
        with self._rx_lock:
            self._check_gone()
            data = bytes(self._rx[:nbytes])
            self._rx = self._rx[nbytes:]
        return data

    def write(self, data):
        if self._closed:
            raise OSError(9, "UART%s is closed" % (self.port,))
        if isinstance(data, str):
            data = data.encode()
        with self._tx_lock:
            if self._rs485 is not None:
                _core.set_gpio(self._rs485[0], self._rs485[1])
            try:
                return self._dev.write(data)
            finally:
                if self._rs485 is not None:
                    _core.set_gpio(self._rs485[0], 1 - self._rs485[1])

    def control_485(self, GPIOn, direction):
        """Drive GPIOn to `direction` while writing, to the other level otherwise."""
        self._rs485 = (GPIOn, 1 if direction else 0)
        _core.set_gpio(GPIOn, 1 - self._rs485[1])
        return 0

    def set_callback(self, fun):
        self._callback = fun
        if fun is not None and self._watcher is None and not self._closed:
            self._watcher = _threads.Worker(self._watch, "uart%s" % (self.port,)).start()
        return 0

    def _watch(self, worker):
        device = self._dev.pollable()
        poller = _select.poll()
        if device is not None:
            poller.register(device, _select.POLLIN)
        poller.register(worker.stopping.pollable(), _select.POLLIN)
        while not worker.stopping.is_set():
            if device is None:
                worker.stopping.wait(10)          # no descriptor (pyserial loop://): poll
            else:
                poller.poll(-1)
            if worker.stopping.is_set():
                return
            got = self._pull(announce=False)
            callback = self._callback
            if got and callback is not None:
                try:
                    callback([0, self.port, len(self._rx)])
                except Exception as exc:
                    _threads.print_exception(exc)
            if self._gone is not None:
                return                             # device gone: the app finds out on read
            if not got and device is not None:
                worker.stopping.wait(5)            # data taken by read() meanwhile: no spin

    def close(self):
        if self._closed:
            return 0
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
        with self._rx_lock:
            self._closed = True
            self._dev.close()
        _core.untrack(self)
        return 0

    _shim_stop = close


class Pin(object):
    IN = 0
    OUT = 1
    PULL_DISABLE = 0
    PULL_PU = 1
    PULL_PD = 2

    def __init__(self, GPIOn, dir=0, pull=0, value=0):      # the firmware's keyword names
        self.gpio = GPIOn
        self.direction = dir
        self.pull = pull
        if dir == Pin.OUT:
            _core.set_gpio(GPIOn, 1 if value else 0)
        elif _core.get_gpio(GPIOn, None) is None:
            _core.set_gpio(GPIOn, 1 if pull == Pin.PULL_PU else 0)

    def read(self):
        return _core.get_gpio(self.gpio)

    def write(self, value):
        if self.direction != Pin.OUT:
            return -1
        _core.set_gpio(self.gpio, 1 if value else 0)
        return 0

    def set_dir(self, value):
        self.direction = value
        return 0

    def get_dir(self):
        return self.direction


for _n in range(1, 48):
    setattr(Pin, "GPIO%d" % _n, _n)


class Timer(object):
    Timer0 = 0
    Timer1 = 1
    Timer2 = 2
    Timer3 = 3
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, Timern=0):
        self.id = Timern
        self._ticker = None

    def start(self, *, period=1000, mode=1, callback=None):     # keyword-only, as firmware
        self.stop()
        self._ticker = _threads.Ticker(period, mode == Timer.PERIODIC,
                                        lambda: callback(self) if callback else None,
                                        "timer%d" % self.id).start()
        _core.track(self)
        return 0

    def stop(self):
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.stop()
            _core.untrack(self)
        return 0

    _shim_stop = stop


class RTC(object):
    """The module's clock: host time plus an offset that datetime(...) sets."""

    def datetime(self, args=None):
        if args:
            year, month, day, _week, hour, minute, second = tuple(args)[:7]
            target = _utime.mktime((year, month, day, hour, minute, second, 0, 0))
            _core.state["rtc_offset_s"] = target - _utime.time()
            return 0
        t = _utime.localtime(_utime.time() + _core.state["rtc_offset_s"])
        return (t[0], t[1], t[2], (t[6] + 1) % 7, t[3], t[4], t[5], 0)


_watchdog = []


class WDT(object):
    """The hardware watchdog: feed() within period seconds or the shim counts a reset
    ("wdt_expired") - the host keeps running so tests can observe it."""

    def __init__(self, period):
        for old in list(_watchdog):
            old.stop()
        self.period_ms = int(period * 1000)
        self._last = _utime.ticks_ms()
        _core.state["wdt_running"] = True
        self._worker = _threads.Worker(self._watch, "wdt").start()
        _watchdog.append(self)
        _core.track(self)

    def _watch(self, worker):
        while True:
            left = self.period_ms - _utime.ticks_diff(_utime.ticks_ms(), self._last)
            if worker.stopping.wait(max(0, left)):
                return
            if _utime.ticks_diff(_utime.ticks_ms(), self._last) >= self.period_ms:
                _notes.note("shim WDT: not fed for %d ms - the module would reset now"
                           % self.period_ms)
                self._last = _utime.ticks_ms()
                _core.count("wdt_expired")

    def feed(self):
        self._last = _utime.ticks_ms()
        _core.count("wdt_feeds")
        return 0

    def stop(self):
        if self in _watchdog:
            _watchdog.remove(self)
            self._worker.stop()
            _core.state["wdt_running"] = False
            _core.untrack(self)
            _core.changed()
        return 0

    _shim_stop = stop


_firmware.prune(globals(), "machine")
