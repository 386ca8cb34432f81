"""The meter-module application: /usr/main.py on the module, started by the firmware."""
from usr.qframe.builtins.ota import Ota, boot_check

RESTARTING = boot_check()     # first: finish or undo an update before the app is built

from usr.qframe import Application, ConfigError  # noqa: E402
from usr.qframe.builtins.uart import Uart  # noqa: E402
from usr.qframe.logging import getLogger  # noqa: E402
from usr.qframe.builtins.network import NetWatch  # noqa: E402
from usr.qframe.builtins.watchdog import Watchdog  # noqa: E402
from usr.health import Health  # noqa: E402
from usr.params import ModuleParams  # noqa: E402
from usr.version import VERSION  # noqa: E402

CONFIG_PATH = "/usr/dev.json"
_log = getLogger("main")


def create_app(name="meter-module", config_path=CONFIG_PATH):
    """Build the app: config from dev.json (defaults if it is unreadable), then extensions."""
    app = Application(name)
    try:
        app.config.from_json(config_path)
    except ConfigError as exc:
        app.stats["config_errors"] += 1
        _log.error("%s: running on defaults", exc)
    Health(app=app)
    NetWatch(app=app)         # cloud link first: the uplink queue is ready before meter frames
    if app.config.get("APP", {}).get("uplink") == "mqtt":
        from usr.qframe.builtins.mqtt import MqttClient
        MqttClient(app=app)   # dev.json MQTT section
    else:
        from usr.qframe.builtins.clients import TcpClient
        TcpClient(app=app)    # dev.json TCP_SERVER section
    ModuleParams(app=app)     # before the link: its handlers are in place when frames arrive
    Uart(app=app)
    if "DLMS" in app.config:  # DLMS-lite only when dev.json configures it (its code is heap)
        from usr.qframe.builtins.dlms import Dlms
        Dlms(app=app)
    Ota(app=app, version=VERSION)
    Watchdog(app=app)         # last: the first feed checks every other extension
    return app


app = create_app()

if __name__ == "__main__" and not RESTARTING:
    app.load(repair_config=True)
