"""The `network` extension every Application gets (QFrame's built-in `NetWork`).

load() hooks the firmware's data-call and SIM hot-swap callbacks, then blocks until the
network is ready (`checkNet.wait_network_connected`, every 2021 firmware line) so the extensions registered after it load
with the network up, as in QFrame; unlike QFrame it gives up after NETWORK.boot_timeout_s
(logged, counted) instead of blocking forever. Data-call changes become `network.up` /
`network.down` on the bus and reach the callbacks registered with register_net_callback(cb)
(cb(args), args = (profile, state, ...)); SIM events reach register_sim_callback(cb)
(cb(state): 1 inserted, 2 removed).

Recovery (radio off/on, module restart) is not done here: register `NetWatch(app=app)` from
`usr.qframe.builtins.netwatch`; an extension registered as "network" replaces this one (it
loads where it was registered and adopts the callbacks registered here).

This is QFrame's module `usr.qframe.builtins.network`: its `network`, `wait_network_ready`,
`register_net_callback` and `register_sim_callback` reach the current app's `network` extension.
"""
import utime

from ..core.config import Field
from ..core.ext import AppExtension
from ..logging import getLogger

_log = getLogger("network")
SIM_INSERTED = 1
SIM_REMOVED = 2
_SLICE_S = 1


class NetWork(AppExtension):
    name = "network"
    config_section = "NETWORK"
    config_fields = {
        "boot_timeout_s": Field(int, 60, lo=1, hi=3600),
        "pdp_profile": Field(int, 1, lo=1, hi=7),
        "sim_detect": Field(bool, True),
        "sim_insert_level": Field(int, 0, lo=0, hi=1),
    }

    def __init__(self, name=None, app=None):
        self.stats = {"down_events": 0, "up_events": 0, "datacall_events": 0,
                      "sim_removed": 0, "sim_inserted": 0, "api_errors": 0,
                      "callback_errors": 0, "boot_wait_failed": 0}
        self.up = False
        self.sim_present = True
        self.reason = "starting"
        self._net_callbacks = []
        self._sim_callbacks = []
        self._stopping = False
        self._logged_errors = []
        AppExtension.__init__(self, name, app)

    # ------------------------------------------------------------------ QFrame's API
    def wait_network_ready(self, timeout_s=None):
        """Block until the network is ready (True) or timeout_s (default
        NETWORK.boot_timeout_s) passes or the app stops (False)."""
        import checkNet
        if timeout_s is None:
            timeout_s = self.config.get("boot_timeout_s", 60)
        deadline = utime.ticks_add(utime.ticks_ms(), int(timeout_s * 1000))
        while not self._stopping:
            remaining = utime.ticks_diff(deadline, utime.ticks_ms())
            if remaining <= 0:
                return False
            try:        # the firmware raises OSError for a timeout outside 1..3600 s
                stage, state = checkNet.wait_network_connected(
                    max(1, min(_SLICE_S, remaining // 1000)))
            except OSError as exc:
                self._api_error("checkNet.wait_network_connected", exc)
                utime.sleep_ms(_SLICE_S * 1000)
                continue
            if stage == 3 and state == 1:
                return True
        return False

    def register_net_callback(self, callback):
        """Call callback(args) on every data-call event; returns callback (a decorator)."""
        self._net_callbacks.append(callback)
        return callback

    def register_sim_callback(self, callback):
        """Call callback(state) on every SIM event; returns callback (a decorator)."""
        self._sim_callbacks.append(callback)
        return callback

    def is_up(self):
        return self.up

    def take_over(self, other):
        """Adopt the callbacks registered on the extension this one replaces."""
        self._net_callbacks.extend(other._net_callbacks)
        self._sim_callbacks.extend(other._sim_callbacks)

    # ------------------------------------------------------------------ lifecycle
    def load(self):
        self._stopping = False
        self._install_callbacks()
        if self.wait_network_ready():
            self._set_state(True, "network ready at boot")
        elif not self._stopping:
            self.stats["boot_wait_failed"] += 1
            _log.warning("network not ready %d s after boot: loading on",
                         self.config["boot_timeout_s"])

    def stop(self, timeout=2.0):
        self._stopping = True
        return True

    def status(self):
        report = dict(self.stats)
        report["up"] = self.up
        report["reason"] = self.reason
        report["sim_present"] = self.sim_present
        return report

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
        """dataCall callback (firmware thread): args = (profile, state, ...)."""
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
        self._call_all(self._sim_callbacks, state)

    def _set_state(self, up, reason):
        """Record and publish a change of state (network.up / network.down)."""
        if up == self.up:
            return False
        self.up = up
        self.reason = reason
        if up:
            self.stats["up_events"] += 1
            _log.info("network up: %s", reason)
            self.app.bus.publish("network.up", reason)
        else:
            self.stats["down_events"] += 1
            _log.warning("network down: %s", reason)
            self.app.bus.publish("network.down", reason)
        return True

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


# ---------------------------------------------------------------------- QFrame's module API
# QFrame's `usr.qframe.builtins.network` is the built-in extension itself; here it is this
# module, whose functions (and `network`) reach the current app's network extension.
# `NetWatch` is found here too (its home is netwatch.py; this path was its home before).
def _current():
    from ..globals import CurrentApp
    return CurrentApp().network


def __getattr__(name):
    if name == "network":
        try:
            return _current()
        except RuntimeError as exc:
            raise AttributeError(str(exc))
    if name == "NetWatch":
        from .netwatch import NetWatch
        return NetWatch
    raise AttributeError("module 'usr.qframe.builtins.network' has no attribute %r" % name)


def wait_network_ready(timeout_s=None):
    return _current().wait_network_ready(timeout_s)


def register_net_callback(callback):
    return _current().register_net_callback(callback)


def register_sim_callback(callback):
    return _current().register_sim_callback(callback)
