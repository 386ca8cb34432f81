"""The network watchdog: cellular state on the bus, an escalation ladder, SIM hot-swap, a WDT.

    NetWatch(app=app)         # dev.json section NETWORK, reachable as app.network

* Boot: waits for the network with `checkNet.waitNetworkReady` (up to `boot_timeout_s`, in
  short slices so app.stop() is honoured) on its own thread; load() never blocks.
* State: `dataCall.setCallback` events, SIM events and a poll every `check_s` (SIM status and
  the PDP context of `pdp_profile`) become `network.down` / `network.up` (reason string) on the
  bus, published on every change only.
* Escalation while down: wait; after `radio_after_s` turn the radio off and on
  (`net.setModemFun(0)`, `radio_off_s`, `net.setModemFun(1)`), at most `radio_cycles` times,
  `radio_after_s` apart; after `restart_after_s` call `misc.Power.powerRestart()` (if
  `power_restart`), else the ladder is exhausted. Back up: the ladder starts over.
  With `escalate_on_tcp` a cloud link (TCP or MQTT) down for that long counts as down too (PDP
  up but nothing gets through).
* SIM hot-swap (`sim_detect`): `sim.setCallback` -> `sim.changed` (True inserted / False removed);
  a removed SIM is also `network.down`.
* Hardware watchdog (`wdt_s` > 0): `machine.WDT(wdt_s)` fed every `wdt_feed_s` only while the
  app is healthy: app running, the watchdog thread alive, the ladder not exhausted, and every
  extension with a `healthy()` method says True. Otherwise it starves and resets the module.

QFrame compatible: `wait_network_ready()`, `register_net_callback(cb)` (cb(args) with dataCall's
(profile, state) tuple), `register_sim_callback(cb)` (cb(state) with 1 inserted, 2 removed).
"""
import utime

from ..core.config import Field
from ..core.ext import AppExtension
from ..logging import getLogger
from ..threading import Event, Thread, Timer

_log = getLogger("network")
SIM_READY = 1
SIM_INSERTED = 1
SIM_REMOVED = 2
_SLICE_S = 1


class NetWatch(AppExtension):
    name = "network"
    config_section = "NETWORK"
    config_fields = {
        "boot_timeout_s": Field(int, 60, lo=1, hi=3600),
        "check_s": Field(float, 5.0, lo=0.01, hi=3600),
        "pdp_profile": Field(int, 1, lo=1, hi=7),
        "radio_after_s": Field(float, 120.0, lo=0, hi=86400),
        "radio_off_s": Field(float, 2.0, lo=0, hi=60),
        "radio_cycles": Field(int, 2, lo=0, hi=100),
        "restart_after_s": Field(float, 900.0, lo=0, hi=604800),
        "power_restart": Field(bool, True),
        "escalate_on_tcp": Field(bool, False),
        "sim_detect": Field(bool, True),
        "sim_insert_level": Field(int, 0, lo=0, hi=1),
        "wdt_s": Field(int, 0, lo=0, hi=3600),
        "wdt_feed_s": Field(float, 0.0, lo=0, hi=3600),
    }

    def __init__(self, name=None, app=None):
        self.stats = {"down_events": 0, "up_events": 0, "datacall_events": 0, "sim_removed": 0,
                      "sim_inserted": 0, "radio_cycles": 0, "power_restarts": 0,
                      "ladder_exhausted": 0, "wdt_feeds": 0, "wdt_starved": 0,
                      "api_errors": 0, "callback_errors": 0, "boot_wait_failed": 0}
        self.up = False
        self.sim_present = True
        self.reason = "starting"
        self.down_since = None
        self.exhausted = False
        self._radio_done = 0
        self._tcp_up = None
        self._tcp_down_since = None
        self._net_callbacks = []
        self._sim_callbacks = []
        self._stop = Event()
        self._changed = Event()
        self._thread = None
        self._wdt = None
        self._feeder = None
        self._starving = False
        self._logged_errors = []
        AppExtension.__init__(self, name, app)

    # ------------------------------------------------------------------ QFrame compatible API
    def wait_network_ready(self, timeout_s=None):
        """Block until the network is ready (True) or timeout_s passes / the app stops (False)."""
        import checkNet
        timeout_s = self.config["boot_timeout_s"] if timeout_s is None else timeout_s
        deadline = utime.ticks_add(utime.ticks_ms(), int(timeout_s * 1000))
        while not self._stop.is_set():
            remaining = utime.ticks_diff(deadline, utime.ticks_ms())
            if remaining <= 0:
                return False
            try:
                stage, state = checkNet.waitNetworkReady(max(1, min(_SLICE_S, remaining // 1000)))
            except Exception as exc:
                self._api_error("checkNet.waitNetworkReady", exc)
                self._stop.wait(_SLICE_S)
                continue
            if stage == 3 and state == 1:
                return True
        return False

    def register_net_callback(self, callback):
        self._net_callbacks.append(callback)

    def register_sim_callback(self, callback):
        self._sim_callbacks.append(callback)

    def is_up(self):
        return self.up

    # ------------------------------------------------------------------ lifecycle
    def load(self):
        self._stop = Event()
        self._install_callbacks()
        for topic in ("tcp.connected", "tcp.disconnected", "mqtt.connected",
                      "mqtt.disconnected"):       # the cloud link, either uplink
            self.subscribe(topic, self._on_tcp)
        self._thread = Thread(self._run, name="network").start()
        cfg = self.config
        if cfg["wdt_s"]:
            self._start_wdt(cfg["wdt_s"], cfg["wdt_feed_s"] or cfg["wdt_s"] / 3.0)

    def stop(self, timeout=2.0):
        self._stop.set()
        self._changed.set()
        if self._feeder is not None:
            self._feeder.stop()
            self._feeder = None
        if self._wdt is not None:
            try:
                self._wdt.stop()
            except Exception as exc:
                self._api_error("WDT.stop", exc)
            self._wdt = None
        self.unsubscribe_all()
        return self._thread.join(timeout) if self._thread is not None else True

    def status(self):
        report = dict(self.stats)
        report["up"] = self.up
        report["reason"] = self.reason
        report["sim_present"] = self.sim_present
        report["exhausted"] = self.exhausted
        report["down_s"] = 0 if self.down_since is None else \
            utime.ticks_diff(utime.ticks_ms(), self.down_since) // 1000
        return report

    def healthy(self):
        return self._thread is not None and self._thread.is_alive() and not self.exhausted

    # ------------------------------------------------------------------ firmware callbacks
    def _install_callbacks(self):
        cfg = self.config
        try:
            import dataCall
            dataCall.setCallback(self._on_datacall)
        except Exception as exc:
            self._api_error("dataCall.setCallback", exc)
        if cfg["sim_detect"]:
            try:
                import sim
                if sim.setSimDet(1, cfg["sim_insert_level"]) != 0:
                    _log.warning("sim.setSimDet failed: SIM hot-swap events may not come")
                sim.setCallback(self._on_sim)
            except Exception as exc:
                self._api_error("sim hot-swap set-up", exc)

    def _on_datacall(self, args):
        """dataCall callback (firmware thread): args = (profile, state)."""
        self.stats["datacall_events"] += 1
        try:
            profile, state = args[0], args[1]
        except (TypeError, IndexError):
            profile, state = self.config["pdp_profile"], 0
        if profile == self.config["pdp_profile"]:
            if state == 1:
                self._set_state(True, "PDP context %d active" % profile)
            else:
                self._set_state(False, "PDP context %d deactivated" % profile)
        self._call_all(self._net_callbacks, args)

    def _on_sim(self, state):
        """sim callback (firmware thread): 1 inserted, 2 removed."""
        present = state == SIM_INSERTED
        if state == SIM_REMOVED:
            self.stats["sim_removed"] += 1
        elif present:
            self.stats["sim_inserted"] += 1
        if present != self.sim_present:
            self.sim_present = present
            _log.warning("SIM %s", "inserted" if present else "removed")
            self.app.bus.publish("sim.changed", present)
        if not present:
            self._set_state(False, "SIM removed")
        self._changed.set()
        self._call_all(self._sim_callbacks, state)

    def _on_tcp(self, topic, data):
        now = utime.ticks_ms()
        if topic.endswith(".connected"):
            self._tcp_up = True
            self._tcp_down_since = None
        else:
            if self._tcp_up is not False:
                self._tcp_down_since = now
            self._tcp_up = False

    def _call_all(self, callbacks, arg):
        for callback in list(callbacks):
            try:
                callback(arg)
            except Exception as exc:
                self.stats["callback_errors"] += 1
                _log.exception("network callback failed", exc)

    def _api_error(self, what, exc):
        """Count every failure of a firmware call; log the first of each kind only."""
        self.stats["api_errors"] += 1
        if what not in self._logged_errors:
            self._logged_errors.append(what)
            _log.exception("%s failed (further failures only counted)", exc, what)

    # ------------------------------------------------------------------ state
    def _set_state(self, up, reason):
        if up == self.up:
            return
        self.up = up
        self.reason = reason
        if up:
            self.stats["up_events"] += 1
            self.down_since = None
            self._reset_ladder()
            _log.info("network up: %s", reason)
            self.app.bus.publish("network.up", reason)
        else:
            self.stats["down_events"] += 1
            self.down_since = utime.ticks_ms()
            _log.warning("network down: %s", reason)
            self.app.bus.publish("network.down", reason)
        self._changed.set()

    def _reset_ladder(self):
        self._radio_done = 0
        if self.exhausted:
            _log.info("network back: escalation ladder reset")
        self.exhausted = False

    def _probe(self):
        """(up, reason) from the SIM status and the PDP context."""
        try:
            import sim
            if sim.getStatus() != SIM_READY:
                return False, "SIM not ready"
        except Exception as exc:
            self._api_error("sim.getStatus", exc)
        try:
            import dataCall
            info = dataCall.getInfo(self.config["pdp_profile"], 0)
            if info == -1 or not info[2][0]:
                return False, "PDP context %d not active" % self.config["pdp_profile"]
        except Exception as exc:
            self._api_error("dataCall.getInfo", exc)
            return False, "dataCall.getInfo failed"
        return True, "PDP context %d active" % self.config["pdp_profile"]

    def _run(self):
        cfg = self.config
        if self.wait_network_ready(cfg["boot_timeout_s"]):
            self._set_state(True, "network ready at boot")
        elif not self._stop.is_set() and not self.up:
            self.stats["boot_wait_failed"] += 1
            self.stats["down_events"] += 1
            self.down_since = utime.ticks_ms()
            self.reason = "not ready %d s after boot" % cfg["boot_timeout_s"]
            _log.warning("network %s", self.reason)
            self.app.bus.publish("network.down", self.reason)
        while not self._stop.is_set():
            self._changed.clear()
            up, reason = self._probe()
            self._set_state(up, reason)
            self._escalate()
            self._changed.wait(cfg["check_s"])

    # ------------------------------------------------------------------ escalation ladder
    def _down_ms(self):
        """How long the link has been unusable (network down, or TCP down if configured)."""
        now = utime.ticks_ms()
        if self.down_since is not None:
            return utime.ticks_diff(now, self.down_since)
        if self.config["escalate_on_tcp"] and self._tcp_down_since is not None:
            return utime.ticks_diff(now, self._tcp_down_since)
        return None

    def _escalate(self):
        cfg = self.config
        down_ms = self._down_ms()
        if down_ms is None:
            if self._radio_done or self.exhausted:
                self._reset_ladder()
            return
        if self.exhausted:
            return
        if cfg["restart_after_s"] and down_ms >= cfg["restart_after_s"] * 1000:
            self._last_resort(down_ms)
            return
        step_ms = cfg["radio_after_s"] * 1000
        if step_ms and self._radio_done < cfg["radio_cycles"] and \
                down_ms >= step_ms * (self._radio_done + 1):
            self._radio_cycle(down_ms)

    def _radio_cycle(self, down_ms):
        self._radio_done += 1
        self.stats["radio_cycles"] += 1
        _log.warning("network down for %d s: radio off/on (%d of %d)", down_ms // 1000,
                     self._radio_done, self.config["radio_cycles"])
        try:
            import net
            net.setModemFun(0)
            self._stop.wait(self.config["radio_off_s"])
            net.setModemFun(1)
        except Exception as exc:
            self._api_error("net.setModemFun", exc)

    def _last_resort(self, down_ms):
        self.exhausted = True
        if self.config["power_restart"]:
            self.stats["power_restarts"] += 1
            _log.critical("network down for %d s: restarting the module", down_ms // 1000)
            try:
                from misc import Power
                Power.powerRestart()
            except Exception as exc:
                self._api_error("misc.Power.powerRestart", exc)
        else:
            self.stats["ladder_exhausted"] += 1
            _log.critical("network down for %d s: escalation ladder exhausted", down_ms // 1000)

    # ------------------------------------------------------------------ hardware watchdog
    def _start_wdt(self, period_s, feed_s):
        try:
            from machine import WDT
            self._wdt = WDT(period_s)
        except Exception as exc:
            self._api_error("machine.WDT", exc)
            return
        self._feeder = Timer(int(feed_s * 1000), self._feed).start()

    def app_healthy(self):
        """The WDT's definition of healthy (see the module docstring)."""
        if not self.app.running or not self.healthy():
            return False
        for ext in self.app.extensions:
            check = getattr(ext, "healthy", None)
            if check is not None and ext is not self and not check():
                return False
        return True

    def _feed(self):
        wdt = self._wdt
        if wdt is None:
            return
        if self.app_healthy():
            wdt.feed()
            self.stats["wdt_feeds"] += 1
            if self._starving:
                self._starving = False
                _log.info("app healthy again: feeding the watchdog")
        else:
            self.stats["wdt_starved"] += 1
            if not self._starving:
                self._starving = True
                _log.critical("app unhealthy: not feeding the watchdog")
