"""The network watchdog: cellular state on the bus, an escalation ladder, SIM hot-swap.

    NetWatch(app=app)         # dev.json section NETWORK, reachable as app.network

* Boot: waits for the network with `checkNet.wait_network_connected` (up to `boot_timeout_s`, in
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
* `healthy()`: its thread alive and the ladder not exhausted; the hardware watchdog extension
  (qframe/builtins/watchdog.py) feeds the WDT only while this and the rest of the app are
  healthy. `wdt_s` / `wdt_feed_s` are that extension's keys of earlier versions (still read
  by it, with a warning).

NetWatch is QFrame's `NetWork` (the `network` extension every app gets, in network.py) plus
the above: registered as "network", it replaces the built-in (see network.py). QFrame's API:
`wait_network_ready()`, `register_net_callback(cb)` (cb(args) with dataCall's (profile, state)
tuple), `register_sim_callback(cb)` (cb(state) with 1 inserted, 2 removed); as in QFrame,
`from usr.qframe.builtins import network` then `network.register_net_callback(cb)` reaches the
current app's network extension (builtins/network.py).
"""
import utime

from ..core.config import Field
from ..logging import getLogger
from ..threading import Event, Thread
from .network import NetWork

_log = getLogger("network")
SIM_READY = 1


class NetWatch(NetWork):
    config_fields = dict(NetWork.config_fields)   # name, section and base fields: NetWork's
    config_fields.update({
        "check_s": Field(float, 5.0, lo=0.01, hi=3600),
        "radio_after_s": Field(float, 120.0, lo=0, hi=86400),
        "radio_off_s": Field(float, 2.0, lo=0, hi=60),
        "radio_cycles": Field(int, 2, lo=0, hi=100),
        "restart_after_s": Field(float, 900.0, lo=0, hi=604800),
        "power_restart": Field(bool, True),
        "escalate_on_tcp": Field(bool, False),
        "wdt_s": Field(int, 0, lo=0, hi=3600),          # deprecated: WATCHDOG.period_s
        "wdt_feed_s": Field(float, 0.0, lo=0, hi=3600),   # deprecated: WATCHDOG.feed_s
    })

    def __init__(self, name=None, app=None):
        self.down_since = None
        self.exhausted = False
        self._radio_done = 0
        self._tcp_up = None
        self._tcp_down_since = None
        self._stop = Event()
        self._changed = Event()
        self._thread = None
        NetWork.__init__(self, name, app)
        for kind in ("radio_cycles", "power_restarts", "ladder_exhausted"):
            self.stats[kind] = 0

    # ------------------------------------------------------------------ lifecycle
    def load(self):
        self._stop = Event()
        self._stopping = False
        self._install_callbacks()
        for topic in ("tcp.connected", "tcp.disconnected", "mqtt.connected",
                      "mqtt.disconnected"):       # the cloud link, either uplink
            self.subscribe(topic, self._on_tcp)
        self._thread = Thread(self._run, name="network").start()
        if self.config["wdt_s"] and "watchdog" not in self.app.extensions:
            _log.warning("NETWORK.wdt_s is set but nothing feeds a WDT: append "
                         "usr.qframe.builtins.watchdog.Watchdog (section WATCHDOG)")

    def stop(self, timeout=2.0):
        self._stopping = True
        self._stop.set()
        self._changed.set()
        self.unsubscribe_all()
        return self._thread.join(timeout) if self._thread is not None else True

    def status(self):
        report = NetWork.status(self)
        report["exhausted"] = self.exhausted
        report["down_s"] = 0 if self.down_since is None else \
            utime.ticks_diff(utime.ticks_ms(), self.down_since) // 1000
        return report

    def healthy(self):
        return self._thread is not None and self._thread.is_alive() and not self.exhausted

    # ------------------------------------------------------------------ firmware callbacks
    def _on_sim(self, state):
        NetWork._on_sim(self, state)
        self._changed.set()

    def _on_tcp(self, topic, data):
        now = utime.ticks_ms()
        if topic.endswith(".connected"):
            self._tcp_up = True
            self._tcp_down_since = None
        else:
            if self._tcp_up is not False:
                self._tcp_down_since = now
            self._tcp_up = False

    # ------------------------------------------------------------------ state
    def _set_state(self, up, reason):
        if not NetWork._set_state(self, up, reason):
            return False
        if up:
            self.down_since = None
            self._reset_ladder()
        else:
            self.down_since = utime.ticks_ms()
        self._changed.set()
        return True

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
