"""A small app for tests/host/integration/test_ota.py and tests/host/soak/test_ota_kill.py, started by qframe's launcher (code/main.py): the Ota
extension alone, its events on stdout.

/usr/kill_at names a step (ota.step), or "import VERSION" / "load VERSION" (as that version's
app module is imported / as its load() starts), at which the app prints KILLME and waits to be
killed (a power cut); /usr/trigger holds a manifest URL and /usr/fota a firmware URL, sent once as HES
commands through the command registry; /usr/flash_free sets the shim's flash quota.
usr.version's HEALTHY says whether this version reports healthy and FAIL how it fails:
"import" (an import error), "load" (load() raises), "hang" (load() never returns), "stop" (the
app stops after load at every boot: a crash loop).
"""
import ujson
import utime
import uos
from usr.qframe import AppExtension, Application
from usr.qframe.builtins.ota_update import Ota
from usr.version import VERSION, HEALTHY

try:
    from usr.version import FAIL
except ImportError:
    FAIL = ""


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _kill_point(name):
    if name == KILL_AT:
        print("KILLME", name)
        while True:
            utime.sleep_ms(1000)


KILL_AT = _read("/usr/kill_at")
_kill_point("import " + VERSION)
if FAIL == "import":
    import usr.no_such_module  # noqa: F401


class Broken(AppExtension):
    """Fails in load() as FAIL says."""
    name = "broken"

    def load(self):
        print("LOADING", VERSION, FAIL)
        _kill_point("load " + VERSION)
        if FAIL == "load":
            raise ValueError("bad config in this version")
        while FAIL == "hang":
            utime.sleep_ms(50)


app = Application("meter-module")
app.config.from_json("/usr/dev.json")
Ota(app=app, version=VERSION)
Broken(app=app)


def _on_step(topic, name):
    print("STEP", name)
    _kill_point(name)


def _on_event(topic, data):
    print("EVENT", ujson.dumps(data))


app.bus.subscribe("ota.step", _on_step)
app.bus.subscribe("ota.event", _on_event)

free = _read("/usr/flash_free")
if free:
    import shimctl
    shimctl.set_flash_free(int(free))


def main():
    app.load()
    print("RUNNING", VERSION)
    if FAIL == "stop":
        app.stop()                  # a crash after load, before the health report
        return
    if HEALTHY:
        app.bus.publish("app.healthy", True)
    for name, cmd in (("/usr/trigger", "ota"), ("/usr/fota", "fota")):
        url = _read(name)
        if url:
            uos.remove(name)
            reply = app.commands.execute({"id": 1, "cmd": cmd, "args": {"url": url}})
            print("REPLY", ujson.dumps(reply))
