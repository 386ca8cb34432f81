"""machine on the host: UART, Pin, Timer, RTC, WDT with QuecPython's signatures.

UART(port, ...) opens shimctl.uart_map[port] (or port itself when it is a path/URL string):
see shimlib/uart_devices.py for the devices. read(n) never blocks (b'' when nothing is there);
any() counts the bytes received; set_callback(fun) calls fun([0, port, size]) from a watcher
thread when data arrives. Pin levels live in shimctl.gpio; WDT feeds and would-be resets in
shimctl.state ("wdt_feeds", "wdt_expired"). Every thread stops on close()/stop() and on
shimctl.reset().
"""
import _thread

import utime
from shimlib import core, dispatch, notes, threads, uart_devices
from shimlib.hostio import select

ENODEV = 19


class UART(object):
    UART0 = 0
    UART1 = 1
    UART2 = 2
    UART3 = 3
    UART4 = 4
    FC_NONE = 0
    FC_HW = 1
    RX_BUFFER = 4096    # the driver's receive buffer; the rest waits in the host device
    READ_STEP = 512     # octets asked of the host device at a time: a read allocates what it
                        # asks for, and the module's driver buffer is not on the app's heap

    def __init__(self, port, baudrate=115200, bytesize=8, parity=0, stop=1, flowctl=0):
        device = port if isinstance(port, str) else core.uart_map.get(port)
        if device is None:
            raise OSError(ENODEV, "UART%s is not mapped to a host device: set "
                                  "shimctl.uart_map[%r] = '/dev/pts/N' or 'socket://host:port'"
                          % (port, port))
        self.port = port
        self.device = device
        self.config = (baudrate, bytesize, parity, stop, flowctl)
        self._dev = uart_devices.open_device(device, baudrate, bytesize, parity, stop)
        self._rx = bytearray()
        self._rx_lock = _thread.allocate_lock()
        self._tx_lock = _thread.allocate_lock()
        self._callback = None
        self._watcher = None
        self._rs485 = None
        self._closed = False
        self._gone = None
        core.track(self)

    def _pull(self, announce=True):
        """Move what the device has into the receive buffer; the number of new bytes. A dead
        device is remembered (self._gone) and raised once the buffer is drained. New bytes are
        announced to the set_callback function on the shim's callback thread (as the driver's
        interrupt would), whichever thread pulled them; the watcher announces its own."""
        got = self._pull_locked()
        if got and announce and self._callback is not None:
            dispatch.fire(self._callback, [0, self.port, len(self._rx)])
        return got

    def _pull_locked(self):
        with self._rx_lock:
            if self._closed or self._gone is not None:
                return 0
            got = 0
            while len(self._rx) < self.RX_BUFFER:
                try:
                    data = self._dev.read_now(min(self.READ_STEP,
                                                  self.RX_BUFFER - len(self._rx)))
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
                core.set_gpio(self._rs485[0], self._rs485[1])
            try:
                return self._dev.write(data)
            finally:
                if self._rs485 is not None:
                    core.set_gpio(self._rs485[0], 1 - self._rs485[1])

    def control_485(self, GPIOn, direction):
        """Drive GPIOn to `direction` while writing, to the other level otherwise."""
        self._rs485 = (GPIOn, 1 if direction else 0)
        core.set_gpio(GPIOn, 1 - self._rs485[1])
        return 0

    def set_callback(self, fun):
        self._callback = fun
        if fun is not None and self._watcher is None and not self._closed:
            self._watcher = threads.Worker(self._watch, "uart%s" % (self.port,)).start()
        return 0

    def _watch(self, worker):
        device = self._dev.pollable()
        poller = select.poll()
        if device is not None:
            poller.register(device, select.POLLIN)
        poller.register(worker.stopping.pollable(), select.POLLIN)
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
                    threads.print_exception(exc)
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
        core.untrack(self)
        return 0

    _shim_stop = close


class Pin(object):
    IN = 0
    OUT = 1
    PULL_DISABLE = 0
    PULL_PU = 1
    PULL_PD = 2

    def __init__(self, GPIOn, direction=0, pullMode=0, level=0):
        self.gpio = GPIOn
        self.direction = direction
        self.pull = pullMode
        if direction == Pin.OUT:
            core.set_gpio(GPIOn, 1 if level else 0)
        elif core.get_gpio(GPIOn, None) is None:
            core.set_gpio(GPIOn, 1 if pullMode == Pin.PULL_PU else 0)

    def read(self):
        return core.get_gpio(self.gpio)

    def write(self, value):
        if self.direction != Pin.OUT:
            return -1
        core.set_gpio(self.gpio, 1 if value else 0)
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

    def start(self, period=1000, mode=1, callback=None):
        self.stop()
        self._ticker = threads.Ticker(period, mode == Timer.PERIODIC,
                                        lambda: callback(self) if callback else None,
                                        "timer%d" % self.id).start()
        core.track(self)
        return 0

    def stop(self):
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.stop()
            core.untrack(self)
        return 0

    _shim_stop = stop


class RTC(object):
    """The module's clock: host time plus an offset that datetime(...) sets."""

    def datetime(self, args=None):
        if args:
            year, month, day, _week, hour, minute, second = tuple(args)[:7]
            target = utime.mktime((year, month, day, hour, minute, second, 0, 0))
            core.state["rtc_offset_s"] = target - utime.time()
            return 0
        t = utime.localtime(utime.time() + core.state["rtc_offset_s"])
        return (t[0], t[1], t[2], (t[6] + 1) % 7, t[3], t[4], t[5], 0)


_watchdog = []


class WDT(object):
    """The hardware watchdog: feed() within period seconds or the shim counts a reset
    ("wdt_expired") - the host keeps running so tests can observe it."""

    def __init__(self, period):
        for old in list(_watchdog):
            old.stop()
        self.period_ms = int(period * 1000)
        self._last = utime.ticks_ms()
        core.state["wdt_running"] = True
        self._worker = threads.Worker(self._watch, "wdt").start()
        _watchdog.append(self)
        core.track(self)

    def _watch(self, worker):
        while True:
            left = self.period_ms - utime.ticks_diff(utime.ticks_ms(), self._last)
            if worker.stopping.wait(max(0, left)):
                return
            if utime.ticks_diff(utime.ticks_ms(), self._last) >= self.period_ms:
                notes.note("shim WDT: not fed for %d ms - the module would reset now"
                           % self.period_ms)
                self._last = utime.ticks_ms()
                core.count("wdt_expired")

    def feed(self):
        self._last = utime.ticks_ms()
        core.count("wdt_feeds")
        return 0

    def stop(self):
        if self in _watchdog:
            _watchdog.remove(self)
            self._worker.stop()
            core.state["wdt_running"] = False
            core.untrack(self)
            core.changed()
        return 0

    _shim_stop = stop
