"""The OTA extension's watch after an update (builtins/ota_update.py): the new version's trial
(confirmed once `healthy_topic` came and the uplink held `healthy_hold_s`, rolled back when
`health_s` passes first) and the report of the last result to the HES (reported once a link it
went out on stayed up `healthy_hold_s`). Imported only while one of them is pending, and
forgotten with the boot code after, so an idle updater keeps none of it on its heap. Each
function takes the `Ota` extension.
"""
import utime

from ..logging import getLogger
from .ota_boot import result as new_result, roll_back, save_state

_log = getLogger("ota")


def start(ota):
    """At load: start the trial of a version on trial, publish a result not yet reported.
    True while either is pending."""
    if ota.state["phase"] == "trial":
        ota._step("health")
        ota._health_deadline = utime.ticks_add(utime.ticks_ms(),
                                               int(ota.config["health_s"] * 1000))
        topic = ota.config["healthy_topic"]
        ota.subscribe(topic, ota._on_healthy, replay=True)
        tcp = ota._uplink()
        if topic in ("tcp.connected", "mqtt.connected") and tcp is not None and \
                tcp.is_connected():
            on_healthy(ota)                     # it connected before
    report_pending(ota)
    return pending(ota)


def pending(ota):
    """True while a trial runs or a result waits to be reported."""
    result = ota.state.get("result")
    return ota._health_deadline is not None or bool(result and not result.get("reported"))


def tick(ota):
    """Every idle second of the job thread; True while something is still pending."""
    _tick_health(ota)
    _tick_report(ota)
    return pending(ota)


def _tick_health(ota):
    if ota._health_deadline is None or ota.state["phase"] != "trial":
        return
    if _still_healthy(ota):
        _confirm(ota)
        return
    if utime.ticks_diff(utime.ticks_ms(), ota._health_deadline) >= 0:
        ota._health_deadline = None
        text = "no %s held %s s within %s s" % (ota.config["healthy_topic"],
                                                ota.config["healthy_hold_s"],
                                                ota.config["health_s"])
        ota._event("failed", version=ota.state["target"], reason="unhealthy", text=text)
        ota.stats["rolled_back"] += 1
        ota._step("reboot")
        roll_back(ota.state, "unhealthy", text)


def on_healthy(ota):
    """healthy_topic was published."""
    if ota.state["phase"] != "trial" or ota._health_deadline is None:
        return
    if ota._healthy_since is None:
        ota._healthy_since = utime.ticks_ms()
    if ota.config["healthy_hold_s"] <= 0:
        _confirm(ota)


def _still_healthy(ota):
    """The healthy signal came and, if there is an uplink, it has stayed up since."""
    if ota._healthy_since is None:
        return False
    tcp = ota._uplink()
    if tcp is not None and not getattr(tcp, "is_connected", lambda: True)():
        ota._healthy_since = None          # it dropped: wait for the signal again
        return False
    held = utime.ticks_diff(utime.ticks_ms(), ota._healthy_since)
    return held >= ota.config["healthy_hold_s"] * 1000


def _confirm(ota):
    ota._health_deadline = None
    state = ota.state
    state["result"] = new_result(state["target"], True, "ok", "healthy")
    state["phase"], state["boots"], state["target"] = "idle", 0, None
    save_state(state)
    ota.stats["installed"] += 1
    _log.info("OTA: version %s healthy: update confirmed", ota.version)
    report_pending(ota)


def report_pending(ota):
    """Publish the last result; it counts as reported once a link it went out on stayed up
    healthy_hold_s (checked by _tick_report), else it goes again on the next connection."""
    result = ota.state.get("result")
    if not result or result.get("reported"):
        return
    data = dict(result)
    data.pop("reported", None)
    ota.app.bus.publish("ota.event", data)
    tcp = ota._uplink()
    if tcp is None:
        result["reported"] = True       # no uplink to wait for
        save_state(ota.state)
    elif getattr(tcp, "is_connected", lambda: False)():
        ota._reported_at = utime.ticks_ms()


def _tick_report(ota):
    result = ota.state.get("result")
    if ota._reported_at is None or not result or result.get("reported"):
        return
    tcp = ota._uplink()
    if tcp is not None and not tcp.is_connected():
        ota._reported_at = None
        return
    if utime.ticks_diff(utime.ticks_ms(), ota._reported_at) >= \
            ota.config["healthy_hold_s"] * 1000:
        result["reported"] = True
        save_state(ota.state)
