"""Health reporter: logs the app's counters every HEALTH.interval_s and publishes them on the
bus as topic "health" (the cloud link may forward them to the HES)."""
from usr.qframe import AppExtension, Field
from usr.qframe.logging import getLogger
from usr.qframe.threading import Timer

_log = getLogger("health")


class Health(AppExtension):
    name = "health"
    config_section = "HEALTH"
    config_fields = {"interval_s": Field(float, 60.0, lo=0.05, hi=86400)}

    def __init__(self, name=None, app=None):
        self.stats = {"reports": 0}
        self._timer = None
        AppExtension.__init__(self, name, app)

    def load(self):
        self._timer = Timer(int(self.config["interval_s"] * 1000), self.report).start()

    def report(self):
        status = self.app.status()
        self.stats["reports"] += 1
        _log.info("status %s", _summary(status))
        self.app.bus.publish("health", status)

    def stop(self, timeout=2.0):
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        return True


def _summary(status):
    """One line of the non-zero counters, in a stable order."""
    parts = []
    for section in sorted(status):
        value = status[section]
        if isinstance(value, dict):
            for key in sorted(value):
                if isinstance(value[key], int) and not isinstance(value[key], bool) and value[key]:
                    parts.append("%s.%s=%d" % (section, key, value[key]))
    return " ".join(parts) or "all counters zero"
