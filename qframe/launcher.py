"""The layer below the app: what /usr/main.py runs before the app's own imports.

    from usr.qframe.launcher import launch
    launch("usr.app_main", __name__ == "__main__")      # the whole of /usr/main.py

/usr/main.py is this call and nothing else; OTA updates never replace it (the manifest check
refuses them), so whatever a new version does, this code runs first at every boot:

1. `boot_check()` finishes or undoes an update (builtins/ota_boot.py); on trial it counts the
   boot on flash before the app runs, and rolls back once `trial_boots` are used up;
2. the hardware watchdog is armed (`machine.WDT(OTA.boot_wdt_s)`, read from dev.json): an app
   that hangs in its imports or in load() is reset, and the boot counts;
3. the entry module is imported and started (its `main()`, else `CurrentApp().load()`); if that
   raises (an import error, a missing module, an exception in load()) on a version on trial,
   the previous version is staged back and the module restarts at once;
4. after load the watchdog is handed over: to the app's own `Watchdog` if it has one; on trial
   it is fed while the app runs and until the update is confirmed, then stopped.

With start False (tools that only build the app, e.g. check-config) the entry is imported and
nothing else happens.
"""
import ujson

from .builtins.ota_boot import boot_check, load_state, on_trial, roll_back

CONFIG_PATH = "/usr/dev.json"
BOOT_WDT_S = 120            # the default of OTA.boot_wdt_s


def launch(entry, start=True, config_path=CONFIG_PATH):
    """Boot the app whose entry module is `entry` (a dotted name); see the module docstring.
    Returns the entry module (None when the module restarts or rolls back)."""
    if not start:
        import usys
        usys.modules.pop(entry, None)            # a tool building the app again: afresh
        return _import(entry)
    if boot_check():
        return None
    from .logging import getLogger
    log = getLogger("boot")
    period_s = boot_wdt_s(config_path)
    wdt = _arm_watchdog(period_s, log)
    try:
        module = _import(entry)
        run = getattr(module, "main", None)
        if run is not None:
            run()
        else:
            from . import CurrentApp
            CurrentApp().load()
    except Exception as exc:
        state = load_state()
        if state["phase"] != "trial":
            _stop(wdt)
            raise                   # no version to go back to: as without a launcher
        log.exception("version %s failed to start", exc, state["target"])
        roll_back(state, "crashed", "%s: %s" % (type(exc).__name__, exc))
        return None
    _hand_over(wdt, period_s, log)
    return module


def _import(entry):
    import usys
    __import__(entry)
    return usys.modules[entry]      # what __import__ returns differs between ports


def boot_wdt_s(config_path=CONFIG_PATH):
    """OTA.boot_wdt_s from the config file (the default if it is absent or not a number;
    0 turns the boot watchdog off)."""
    try:
        with open(config_path) as f:
            value = ujson.load(f)["OTA"]["boot_wdt_s"]
    except Exception:
        return BOOT_WDT_S
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3600:
        return BOOT_WDT_S
    return int(value)


def _arm_watchdog(period_s, log):
    if not period_s:
        return None
    try:
        from machine import WDT
        return WDT(period_s)
    except Exception as exc:        # no WDT on this platform (RDA, Qualcomm)
        log.exception("machine.WDT(%d) failed: no boot watchdog", exc, period_s)
        return None


def _stop(wdt):
    if wdt is not None:
        try:
            wdt.stop()
        except Exception:
            pass


def _hand_over(wdt, period_s, log):
    """The app is loaded: leave the WDT to the app's own watchdog, or feed it through the
    trial (while the app runs), or stop it."""
    if wdt is None:
        return
    from . import CurrentApp
    try:
        app = CurrentApp()
    except RuntimeError:
        app = None
    own = app.extensions.get("watchdog") if app is not None else None
    if own is not None and getattr(own, "period_s", 0):
        return                      # the app's Watchdog re-armed the hardware: it feeds
    if app is None or not on_trial():
        _stop(wdt)
        return
    from .threading import Timer

    def feed():
        if not app.running:
            return                  # starve: the module resets, the boot counts
        if on_trial():
            wdt.feed()
        else:
            timer.stop()
            _stop(wdt)
            log.info("update confirmed: boot watchdog stopped")

    timer = Timer(max(100, period_s * 1000 // 3), feed).start()
