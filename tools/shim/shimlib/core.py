"""The shim's state: what the simulated module reports, change notification, and reset().

    state                   dict of what the shim modules report (see DEFAULTS)
    uart_map, gpio          UART port -> host device, GPIO pin -> level
    callbacks               functions device code registered ("datacall", "sim")
    changed()               wake every wait_for() (shim modules call it after a change)
    count(key, n)           add n to a counter in state
    wait_for(pred, ms)      event-driven wait: wakes on every change, re-checks now and then
    track(obj)/untrack(obj) running shim objects (threads, servers): reset() calls _shim_stop()
    reset()                 tracked objects stopped, every value back to its default
"""
import _thread

from shimlib import threads

from shimlib.hostio import IS_MICROPYTHON

DEFAULTS = {
    "outage": False,          # forced by set_network(False)
    "sim": True,              # SIM present
    "sim_det": (0, 0),        # sim.setSimDet(switch, level)
    "modem_fun": 1,           # net.setModemFun
    "registered": True,       # network registration (derived)
    "attaching": False,       # radio on / SIM in: registration pending
    "pdp": True,              # PDP context 1 active (derived)
    "attach_delay_ms": 100,   # radio on / SIM in -> registered
    "csq": 25,
    "dns_fail": False,
    "dns_errno": -202,        # lwIP's EAI_FAIL, as MicroPython lwIP ports raise it
    "flash_free": None,       # None: no quota; else bytes left on /usr + /bak
    "flash_quota": None,      # the n of the last set_flash_free(n)
    "reboots": 0,             # misc.Power.powerRestart(), net.setModemFun(fun, rst=1)
    "reboot_raises": False,   # powerRestart raises SystemExit after recording
    "power_downs": 0,
    "power_on_reason": 1,
    "wdt_feeds": 0,
    "wdt_expired": 0,         # times the hardware watchdog would have reset the module
    "wdt_running": False,
    "socket_resets": 0,       # live sockets aborted (reset_sockets or network loss)
    "datacall_events": 0,
    "sim_events": 0,
    "ntp_syncs": 0,
    "rtc_offset_s": 0,
    "imei": "866000000000001",
    "model": "EC600U-CN",
    "fw_version": "EC600UCNLBR03A01M08_OCPU_QPY",
    "sn": "SHIM00000001",
    "imsi": "460001234567890",
    "iccid": "89860000000000000001",
    "ip": "10.64.0.2",
    "apn": None,              # dataCall.start / setApn arguments
    "dns": ("8.8.8.8", "114.114.114.114"),
    "fota": None,             # fota() records (see fota.py)
    "app_fota": None,         # app_fota records (see app_fota.py)
}

state = {}
uart_map = {}
gpio = {}
callbacks = {"datacall": None, "sim": None}
live_sockets = []             # connected usocket sockets (shimlib.sockets keeps it)

lock = _thread.allocate_lock()
_tracked = []
_waiters = []                 # Events of wait_for() calls


def oserror(code):
    """OSError(code) whose args[0] and errno are code on both interpreters."""
    if IS_MICROPYTHON:
        return OSError(code)
    import os
    return OSError(code, os.strerror(code))


def changed():
    """Wake every wait_for()."""
    with lock:
        waiters = list(_waiters)
    for event in waiters:
        event.set()


def update(**values):
    with lock:
        state.update(values)
    changed()


def count(key, n=1):
    """Add n to a counter in state (thread-safe) and wake waiters."""
    with lock:
        state[key] = state.get(key, 0) + n
    changed()


def set_gpio(pin, level):
    with lock:
        gpio[pin] = level
    changed()


def get_gpio(pin, default=0):
    with lock:
        return gpio.get(pin, default)


def track(obj):
    """Remember a running shim object; reset() calls its _shim_stop()."""
    with lock:
        if obj not in _tracked:
            _tracked.append(obj)


def untrack(obj):
    with lock:
        if obj in _tracked:
            _tracked.remove(obj)


def wait_for(predicate, timeout_ms=2000, recheck_ms=100):
    """True once predicate() is true, False after timeout_ms. Wakes on every shim state
    change (and re-checks at least every recheck_ms for conditions the shim cannot see)."""
    import utime
    event = threads.Event()
    with lock:
        _waiters.append(event)
    try:
        deadline = utime.ticks_add(utime.ticks_ms(), int(timeout_ms))
        while True:
            if predicate():
                return True
            left = threads.ms_left(deadline)
            if left <= 0:
                return bool(predicate())
            event.wait(min(left, recheck_ms))
            event.clear()
    finally:
        with lock:
            _waiters.remove(event)
        event.close()


def reset():
    """Back to defaults: network up, PDP active, SIM in, CSQ 25, no faults; every tracked
    object (UARTs, timers, the callback thread, the control server) stopped."""
    with lock:
        tracked = list(_tracked)
        del _tracked[:]
    for obj in tracked:
        try:
            obj._shim_stop()
        except Exception as exc:
            threads.print_exception(exc)
    with lock:
        state.clear()
        state.update(DEFAULTS)
        uart_map.clear()
        gpio.clear()
        callbacks["datacall"] = callbacks["sim"] = None
        del live_sockets[:]
    changed()


state.update(DEFAULTS)
