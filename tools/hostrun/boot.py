"""Start a board root's /usr/main.py as the module's firmware would (CPython or MicroPython).

    <interpreter> tools/hostrun/boot.py ROOT SHIM_PATHS [DURATION_S]

SHIM_PATHS is an os.pathsep-joined list. /usr is mapped into ROOT/usr; after main.py returns
(QFrame's mainloop() returns once extensions are loaded) the process lives until the app stops,
DURATION_S passes, or Ctrl-C, and then stops the app, joining its threads.
"""
try:
    import usys as sys      # QuecPython-like MicroPython builds have no `sys`
except ImportError:
    import sys


def _boot(root, shim_paths, duration_s):
    for path in reversed(shim_paths.split(":")):
        sys.path.insert(0, path)
    sys.path.insert(0, root)
    import shimctl
    shimctl.install_fs(root)
    main_globals = {"__name__": "__main__", "__file__": "/usr/main.py"}
    with open("/usr/main.py") as f:
        source = f.read()
    exec(compile(source, "/usr/main.py", "exec"), main_globals)
    from usr.qframe import CurrentApp
    import utime
    app = CurrentApp()
    start = utime.ticks_ms()
    try:
        while app.running:
            if duration_s and utime.ticks_diff(utime.ticks_ms(), start) >= duration_s * 1000:
                break
            utime.sleep_ms(50)
    except KeyboardInterrupt:
        pass
    app.stop()


_boot(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0)
