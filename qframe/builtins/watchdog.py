"""The hardware watchdog: `machine.WDT`, fed only while the whole app is healthy.

    Watchdog(app=app)         # dev.json section WATCHDOG, reachable as app.watchdog

`period_s` > 0 starts `machine.WDT(period_s)`; an osTimer every `feed_s` (0: period_s / 3)
feeds it when the app is healthy, otherwise the WDT starves and resets the module. Healthy:
* the app is running;
* the worker pool is alive: all its threads run, and a probe submitted to it ran within
  `stuck_s` (a pool whose every worker is blocked, or whose backlog never drains, is stuck);
* the heap is not exhausted: no extension out of memory for longer than APP.memory_exhausted_s
  (core/heap.py);
* every extension with a `healthy()` method says True (NetWatch: its thread alive and the
  escalation ladder not exhausted; TcpClient: its link thread alive and beating).
Each starved feed is counted (`starved`) and the first of a spell logged with its cause.

Append it last, so every other extension is loaded when the first feed checks them. dev.json
files of earlier versions set the WDT in NETWORK (`wdt_s`, `wdt_feed_s`): they still work when
WATCHDOG.period_s is 0, with a warning to move them.
"""
import utime

from ..core.config import Field
from ..core.ext import AppExtension
from ..logging import getLogger
from ..threading import Timer

_log = getLogger("watchdog")


class Watchdog(AppExtension):
    name = "watchdog"
    config_section = "WATCHDOG"
    config_fields = {
        "period_s": Field(int, 0, lo=0, hi=3600),
        "feed_s": Field(float, 0.0, lo=0, hi=3600),
        "stuck_s": Field(float, 60.0, lo=0.01, hi=3600),
    }

    def __init__(self, name=None, app=None):
        self.stats = {"feeds": 0, "starved": 0, "pool_probes": 0, "api_errors": 0}
        self.period_s = 0
        self.cause = None         # why the app is not healthy (None: healthy)
        self._wdt = None
        self._feeder = None
        self._probe_at = None     # ticks_ms a pending pool probe was first submitted
        self._probe_queued = False
        AppExtension.__init__(self, name, app)

    def load(self):
        period, feed = self._settings()
        self.period_s = period
        if not period:
            return
        try:
            from machine import WDT
            self._wdt = WDT(period)
        except Exception as exc:
            self.stats["api_errors"] += 1
            _log.exception("machine.WDT(%d) failed: no hardware watchdog", exc, period)
            return
        self._feeder = Timer(int((feed or period / 3.0) * 1000), self._feed).start()
        _log.info("hardware watchdog: %d s, fed every %.1f s while the app is healthy",
                  period, feed or period / 3.0)

    def _settings(self):
        """(period_s, feed_s) from WATCHDOG, or from NETWORK's keys of earlier versions."""
        cfg = self.config
        if cfg["period_s"]:
            return cfg["period_s"], cfg["feed_s"]
        old = self.app.config.get("NETWORK") or {}
        if old.get("wdt_s"):
            _log.warning("NETWORK.wdt_s / wdt_feed_s are deprecated: the watchdog uses them now; "
                         "move them to WATCHDOG.period_s / feed_s")
            return int(old["wdt_s"]), old.get("wdt_feed_s") or 0.0
        return 0, 0.0

    def stop(self, timeout=2.0):
        if self._feeder is not None:
            self._feeder.stop()
            self._feeder = None
        if self._wdt is not None:
            try:
                self._wdt.stop()
            except Exception as exc:
                self.stats["api_errors"] += 1
                _log.exception("WDT.stop failed", exc)
            self._wdt = None
        return True

    def status(self):
        report = dict(self.stats)
        report["period_s"] = self.period_s
        report["cause"] = self.cause
        return report

    # ------------------------------------------------------------------ health
    def check(self):
        """Why the app is not healthy now, or None if it is (see the module docstring)."""
        app = self.app
        if not app.running:
            return "app not running"
        pool = app.business_threads_pool
        if pool.dead():
            return "worker pool: %d of %d threads died" % (pool.dead(), len(pool._threads))
        stuck = self._probe_pool(pool)
        if stuck:
            return stuck
        short = app.heap.exhausted()
        if short:
            return "heap exhausted (%s out of memory for %d s)" % (short, app.heap.exhausted_s)
        for ext in app.extensions.values():
            healthy = getattr(ext, "healthy", None)
            if healthy is not None and ext is not self and not healthy():
                return "extension %s not healthy" % ext.name
        return None

    def _probe_pool(self, pool):
        """Submit a no-op to the pool unless one is pending; stuck if one waits over stuck_s
        (a probe the full backlog refused is submitted again at the next check)."""
        now = utime.ticks_ms()
        since = self._probe_at
        if since is None:
            since = self._probe_at = now
            self._probe_queued = False
        if not self._probe_queued:
            self._probe_queued = pool.submit(self._probe_ran)
            self.stats["pool_probes"] += 1
        waited = utime.ticks_diff(now, since)
        if waited >= self.config["stuck_s"] * 1000:
            return "worker pool stuck: a probe has waited %d ms" % waited
        return None

    def _probe_ran(self):
        self._probe_at = None

    def _feed(self):
        wdt = self._wdt
        if wdt is None:
            return
        cause = self.check()
        if cause is None and self.cause is not None:
            _log.info("app healthy again: feeding the watchdog")
        elif cause is not None and self.cause is None:
            _log.critical("app unhealthy (%s): not feeding the watchdog", cause)
        self.cause = cause
        if cause is None:
            wdt.feed()
            self.stats["feeds"] += 1
        else:
            self.stats["starved"] += 1
