"""Start a board root's /usr/main.py as the module's firmware would (CPython or MicroPython).

    <interpreter> tools/hostrun/boot.py ROOT SHIM_PATHS [DURATION_S [CONTROL_PORT]]

SHIM_PATHS is an os.pathsep-joined list. /usr is mapped into ROOT/usr; after main.py returns
(QFrame's mainloop() returns once extensions are loaded) the process lives until the app stops,
DURATION_S passes, or Ctrl-C, and then stops the app, joining its threads.
As the firmware does at boot, a flagged app_fota update is applied before main.py runs. A
module restart (misc.Power.powerRestart(), e.g. by the OTA updater) stops the app and ends the
process with REBOOT_EXIT: `tools/board.py run` then boots it again. CONTROL_PORT (not 0)
starts the shim's control server on that port before main.py (the system simulation injects
faults through it), whatever app main.py is. The shim's machine.WDT is
hardware here too: when it expires the process ends at once, whatever the app is doing (CPython:
REBOOT_EXIT; MicroPython, which cannot end itself from a thread: killed by SIGUSR1), and the
runner boots it again.
"""
REBOOT_EXIT = 3
try:
    import usys as sys      # QuecPython-like MicroPython builds have no `sys`
except ImportError:
    import sys


def _boot(root, shim_paths, duration_s, control_port):
    try:        # CPython: Ctrl-C stops the app even when started from a job that ignores SIGINT
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)
    except ImportError:
        pass
    shims = shim_paths.split(":")
    shims.reverse()                     # no reversed() on QuecPython's 1.13
    for path in shims:
        sys.path.insert(0, path)
    sys.path.insert(0, root)
    import shimctl
    shimctl.install_fs(root)
    # Built into the firmware, so loaded before main.py runs: imported here, no app thread
    # meets a shim module half-initialised by another thread (MicroPython: "can't import name").
    import machine, osTimer, usocket, net, checkNet, dataCall, sim, modem, misc  # noqa: F401,E401
    for name in ("app_fota", "fota", "ql_fs", "ussl", "uselect", "uerrno"):   # when the line
        try:                                                                  # has them
            __import__(name)
        except ImportError:
            pass
    if control_port:
        shimctl.serve_control(control_port)
    _pin_app_heap()
    shimctl.apply_app_fota()
    _watch_hardware_watchdog(shimctl)
    reboots = shimctl.state["reboots"]
    main_globals = {"__name__": "__main__", "__file__": "/usr/main.py"}
    with open("/usr/main.py") as f:
        source = f.read()
    app = None
    restarted = False
    try:                                # Ctrl-C at any moment, from main.py's first line on
        exec(compile(source, "/usr/main.py", "exec"), main_globals)
        if shimctl.state["reboots"] != reboots:
            sys.exit(REBOOT_EXIT)       # main.py restarted the module before the app started
        from usr.qframe import CurrentApp
        import utime
        app = CurrentApp()
        start = utime.ticks_ms()
        while app.running:
            if shimctl.state["reboots"] != reboots:
                restarted = True
                break
            if duration_s and utime.ticks_diff(utime.ticks_ms(), start) >= duration_s * 1000:
                break
            utime.sleep_ms(50)
    except KeyboardInterrupt:
        if app is None:                 # while main.py starts the app: stop what started
            _stop_current_app()
            return
    crashed = not app.running and shimctl.state["wdt_running"]
    app.stop()
    if restarted:
        sys.exit(REBOOT_EXIT)
    if crashed and shimctl.state["wdt_running"]:
        print("hostrun: the app stopped with the watchdog armed: it resets the module")
        while True:                     # the watch thread ends the process
            utime.sleep_ms(100)


_shim_room = []


def _pin_app_heap():
    """$QFRAME_APP_HEAPSIZE (board_root.APP_HEAPSIZE_ENV): hold what the shim left of its room so
    that the app starts with exactly that much heap free, as on the module."""
    if sys.implementation.name != "micropython":
        return                              # CPython has no fixed heap to share
    import gc
    import uos
    wanted = uos.getenv("QFRAME_APP_HEAPSIZE")
    if not wanted:
        return
    wanted = wanted.strip().upper()
    scale = 1024 if wanted.endswith("K") else 1024 * 1024 if wanted.endswith("M") else 1
    wanted = int(wanted.rstrip("KM")) * scale
    gc.collect()
    room = gc.mem_free() - wanted - 64      # the bytearray's own header and block rounding
    if room < 0:
        print("hostrun: the shim left %d bytes, less than QFRAME_APP_HEAPSIZE" % gc.mem_free())
        return
    _shim_room.append(bytearray(room))
    gc.collect()
    print("hostrun: app heap %d bytes free (shim stand-ins %d bytes, held apart)"
          % (gc.mem_free(), gc.mem_alloc() - room))


def _stop_current_app():
    from usr.qframe import CurrentApp
    try:
        app = CurrentApp()
    except Exception:                   # main.py had not created it yet
        return
    app.stop()


def _watch_hardware_watchdog(shimctl):
    import _thread
    import utime

    def watch():
        while not shimctl.state["wdt_expired"]:
            utime.sleep_ms(20)
        print("hostrun: the hardware watchdog expired: the module resets")
        _hard_reset()

    _thread.start_new_thread(watch, ())


def _hard_reset():
    try:
        import os
        sys.stdout.flush()
        os._exit(REBOOT_EXIT)
    except AttributeError:          # MicroPython: no _exit
        import uos
        uos.system("kill -USR1 $PPID")


_boot(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0,
      int(sys.argv[4]) if len(sys.argv) > 4 else 0)
