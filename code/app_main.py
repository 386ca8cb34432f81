"""The meter-module application (/usr/app_main.py): built on import, started by main().

/usr/main.py, qframe's launcher, imports it after the OTA boot check and with the hardware
watchdog armed, then calls main(); an update replaces this module, never the launcher.
"""
from usr.qframe import Application, ConfigError
from usr.qframe.builtins.auth import Auth
from usr.qframe.builtins.ota_update import Ota
from usr.qframe.builtins.uart import Uart
from usr.qframe.logging import getLogger
from usr.qframe.builtins.netwatch import NetWatch
from usr.qframe.builtins.watchdog import Watchdog
from usr.health import Health
from usr.params import ModuleParams
from usr.version import VERSION

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
    Auth(app=app)             # before the uplinks: they run only commands it admits
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


def main():
    """Start the app (the launcher calls it)."""
    app.load(repair_config=True)


if __name__ == "__main__":
    main()
