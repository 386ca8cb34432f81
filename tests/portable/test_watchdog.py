"""The hardware watchdog extension: feeds the shim's machine.WDT only while the app is healthy."""
import shimctl

from usr.qframe import Application, AppExtension
from usr.qframe.builtins.watchdog import Watchdog
from usr.qframe.threading import Event


class _Part(AppExtension):
    """An extension whose healthy() the test decides."""
    name = "part"

    def __init__(self, app):
        self.ok = True
        AppExtension.__init__(self, app=app)

    def healthy(self):
        return self.ok


def _app(watchdog, network=None, log_level="CRITICAL"):
    app = Application("wd")
    app.config.merge({"APP": {"workers": 2, "stop_timeout": 1.0, "log_level": log_level},
                      "WATCHDOG": watchdog})
    if network is not None:
        app.config.merge({"NETWORK": network})
    part = _Part(app)
    Watchdog(app=app)
    return app, part


def _feeds():
    return shimctl.state["wdt_feeds"]


def test_fed_while_healthy_starved_while_an_extension_is_not():
    app, part = _app({"period_s": 2, "feed_s": 0.02})
    app.load()
    try:
        wd = app.watchdog
        assert shimctl.state["wdt_running"]
        first = _feeds()
        assert shimctl.wait_for(lambda: _feeds() >= first + 3)
        part.ok = False
        assert shimctl.wait_for(lambda: wd.stats["starved"] >= 2)
        assert wd.cause == "extension part not healthy"
        starved_at = _feeds()
        assert shimctl.wait_for(lambda: wd.stats["starved"] >= 5)
        assert _feeds() == starved_at
        part.ok = True
        assert shimctl.wait_for(lambda: _feeds() > starved_at)
        assert wd.cause is None
    finally:
        app.stop()
    assert not shimctl.state["wdt_running"]


def test_a_stuck_worker_pool_starves_the_watchdog():
    app, _part = _app({"period_s": 2, "feed_s": 0.02, "stuck_s": 0.1})
    app.load()
    release = Event()
    try:
        wd = app.watchdog
        assert shimctl.wait_for(lambda: wd.stats["feeds"] >= 2)
        for _ in range(app.workers.size):
            app.submit(release.wait)          # every worker blocked
        assert shimctl.wait_for(lambda: wd.stats["starved"] >= 1)
        assert wd.cause.startswith("worker pool stuck")
        release.set()
        fed = wd.stats["feeds"]
        assert shimctl.wait_for(lambda: wd.stats["feeds"] > fed)
        assert wd.cause is None
    finally:
        release.set()
        app.stop()


def test_off_by_default_and_stopped_app_is_not_healthy():
    app, _part = _app({})
    app.load()
    assert app.watchdog.period_s == 0 and app.watchdog._wdt is None
    assert app.watchdog.check() is None
    app.stop()
    assert app.watchdog.check() == "app not running"


def test_network_keys_of_earlier_versions_are_read_with_a_warning():
    from usr.qframe import logging
    lines = []
    token = logging.add_listener(lambda level, line: lines.append(line))
    app, _part = _app({}, network={"wdt_s": 3, "wdt_feed_s": 0.02}, log_level="WARNING")
    try:
        app.load()
        assert app.watchdog.period_s == 3
        first = _feeds()
        assert shimctl.wait_for(lambda: _feeds() >= first + 2)
    finally:
        logging.remove_listener(token)
        app.stop()
    assert [line for line in lines if "move them to WATCHDOG.period_s" in line]
