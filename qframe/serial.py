"""QFrame's `usr.qframe.serial`: a UART port with a blocking read that can time out.

    port = Serial(port=2, baudrate=115200, bytesize=8, parity=0, stopbits=1, flowctl=0)
    port.open()
    port.write(b"...")
    data = port.read(1024, timeout=0.5)     # raises Serial.TimeoutError when nothing came

port is the UART number (QuecPython's machine.UART.UART<n>); on the host also a device path.
rs485_config = {"gpio_num": n, "direction": level} lets the UART drive an RS-485 direction
pin (level while sending). read() polls (1 ms growing to 10 ms): `_thread` locks have no
timeout on MicroPython 1.13, and a read blocked on a closed port raises instead of hanging.
"""
import utime

from .threading import POLL_MAX_MS, Lock


class Serial(object):

    class TimeoutError(Exception):
        pass

    def __init__(self, port=2, baudrate=115200, bytesize=8, parity=0, stopbits=1, flowctl=0,
                 rs485_config=None):
        self.port = port
        self.baudrate = baudrate
        self.bytesize = bytesize
        self.parity = parity
        self.stopbits = stopbits
        self.flowctl = flowctl
        self.rs485_config = rs485_config
        self._uart = None
        self._write_lock = Lock()

    def __repr__(self):
        return "<UART%s,%s,%s,%s,%s,%s,%s>" % (self.port, self.baudrate, self.bytesize,
                                               self.parity, self.stopbits, self.flowctl,
                                               self.rs485_config)

    @property
    def uart(self):
        """The open machine.UART (TypeError while closed, as QFrame's)."""
        if self._uart is None:
            raise TypeError("uart not open")
        return self._uart

    def open(self):
        from machine import UART
        port = self.port
        if isinstance(port, int):
            port = getattr(UART, "UART%d" % port, port)
        uart = UART(port, self.baudrate, self.bytesize, self.parity, self.stopbits,
                    self.flowctl)
        config = self.rs485_config
        if isinstance(config, dict):
            if not hasattr(uart, "control_485"):    # E3 firmware (September 2021) on
                uart.close()
                raise ValueError("rs485_config: this firmware's UART has no control_485")
            try:
                from machine import Pin
                gpio = getattr(Pin, "GPIO%d" % config["gpio_num"], config["gpio_num"])
                uart.control_485(gpio, config["direction"])
            except Exception:
                uart.close()
                raise
        self._uart = uart
        return self

    def close(self):
        uart, self._uart = self._uart, None
        if uart is not None:
            uart.close()

    def any(self):
        return self.uart.any()

    def write(self, data):
        with self._write_lock:
            return self.uart.write(data)

    def read(self, size, timeout=None):
        """Up to size bytes once some are there; waits up to timeout s (None: until data
        comes or the port is closed), then raises Serial.TimeoutError."""
        deadline = None if timeout is None else utime.ticks_add(utime.ticks_ms(),
                                                                int(timeout * 1000))
        pause = 1
        while True:
            uart = self.uart
            count = uart.any()
            if count:
                return uart.read(min(size, count))
            if deadline is not None and utime.ticks_diff(deadline, utime.ticks_ms()) <= 0:
                raise self.TimeoutError("serial read timeout")
            utime.sleep_ms(pause)
            pause = min(pause * 2, POLL_MAX_MS)
