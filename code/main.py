"""The meter-module application: /usr/main.py on the module, started by the firmware."""
from usr.qframe import Application, ConfigError
from usr.qframe.logging import getLogger
from usr.health import Health

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
    return app


app = create_app()

if __name__ == "__main__":
    app.load(repair_config=True)
