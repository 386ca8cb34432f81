"""The Application mediator: config, extensions in load order, lifecycle, bus, worker pool."""
from .bus import EventBus
from .config import Config, ConfigError, Field
from ..logging import getLogger, basicConfig, level_from_name
from .. import threading as threads

_log = getLogger("app")
_current = [None]

APP_FIELDS = {
    "workers": Field(int, 2, lo=1, hi=16),
    "backlog": Field(int, 64, lo=1, hi=4096),
    "stop_timeout": Field(float, 3.0, lo=0.1, hi=60),
    "log_level": Field(str, "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    "log_file": Field(str, "", optional=True),
    "log_max_bytes": Field(int, 32768, lo=1024),
    "log_backups": Field(int, 1, lo=0, hi=9),
    "uplink": Field(str, "tcp", choices=("tcp", "mqtt")),   # which cloud link an app starts
}


class AppGlobals(object):
    """Per-app scratch space returned by G() (QFrame's app-context globals)."""

    def get(self, name, default=None):
        return getattr(self, name, default)

    def set(self, name, value):
        setattr(self, name, value)

    def setdefault(self, name, value):
        if not hasattr(self, name):
            setattr(self, name, value)
        return getattr(self, name)


def CurrentApp():
    """The most recently created Application (QFrame's CurrentApp)."""
    app = _current[0]
    if app is None:
        raise RuntimeError("no Application has been created")
    return app


def G():
    """The current app's globals object (QFrame's G)."""
    return CurrentApp().g


class Application(object):
    """The mediator every extension registers with.

    init_app (extensions register) -> load() (config checked, extensions loaded in order;
    QFrame's mainloop() is the same) -> stop() (extensions stopped in reverse order, their
    threads and the worker pool joined within APP.stop_timeout).
    """

    def __init__(self, name="app"):
        self.name = name
        self.config = Config()
        self.extensions = []
        self.bus = EventBus()
        self.g = AppGlobals()
        self.workers = None
        self.running = False
        self.stats = {"config_errors": 0, "load_failures": 0}
        self._threads = []
        _current[0] = self

    def __getattr__(self, name):
        # Only reached when normal lookup fails: extensions by name.
        if name != "extensions":
            for ext in self.extensions:
                if ext.name == name:
                    return ext
        raise AttributeError("app has no extension %r" % name)

    def append_extension(self, ext):
        """Register ext under ext.name (QFrame's name for it)."""
        name = getattr(ext, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError("an extension needs a non-empty string name")
        for other in self.extensions:
            if other.name == name:
                raise ValueError("extension %r is already registered" % name)
        if hasattr(self, name):
            raise ValueError("extension name %r clashes with an Application attribute" % name)
        if getattr(ext, "app", None) is None:
            ext.app = self
        self.extensions.append(ext)

    def check_config(self, repair=False):
        """Fill defaults and check APP and every extension's section.

        Raises ConfigError listing every problem; with repair=True logs and counts each
        problem, uses the defaults instead, and returns the list.
        """
        errors = self.config.resolve("APP", APP_FIELDS, repair)
        for ext in self.extensions:
            section = getattr(ext, "config_section", None)
            if section:
                errors.extend(self.config.resolve(section, getattr(ext, "config_fields", {}),
                                                  repair))
        if errors and not repair:
            raise ConfigError(errors)
        for error in errors:
            self.stats["config_errors"] += 1
            _log.error("config %s: using the default", ConfigError([error]))
        return errors

    def load(self, repair_config=False):
        """Check config, then load every extension in registration order.

        If one fails to load, those already loaded are stopped and the error re-raised.
        """
        if self.running:
            return
        self.check_config(repair_config)
        settings = self.config["APP"]
        basicConfig(level=level_from_name(settings["log_level"]), path=settings["log_file"] or "",
                    max_bytes=settings["log_max_bytes"], backups=settings["log_backups"])
        self.workers = threads.WorkerPool(settings["workers"], settings["backlog"],
                                          name=self.name + "-worker").start()
        self.running = True
        loaded = []
        for ext in self.extensions:
            load = getattr(ext, "load", None)
            try:
                if load is not None:
                    load()
            except Exception as exc:
                self.stats["load_failures"] += 1
                _log.exception("extension %s failed to load", exc, ext.name)
                self._stop_extensions(loaded)
                self.running = False
                self.workers.stop(settings["stop_timeout"])
                raise
            loaded.append(ext)
        _log.info("%s loaded: %s", self.name, ", ".join(e.name for e in self.extensions))

    mainloop = load

    def submit(self, fn, *args):
        """Run fn(*args) on the app's worker pool; False if the backlog is full."""
        if self.workers is None:
            raise RuntimeError("app not loaded")
        return self.workers.submit(fn, *args)

    def spawn(self, target, args=(), name="thread"):
        """Start a thread the app joins on stop(); target must return once app.running is False
        or its owner's stop signal is set."""
        thread = threads.Thread(target, args, name).start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        return thread

    def _stop_extensions(self, exts):
        timeout = self.config.get("APP", {}).get("stop_timeout", 3.0)
        ok = True
        for index in range(len(exts) - 1, -1, -1):
            ext = exts[index]
            stop = getattr(ext, "stop", None)
            if stop is None:
                continue
            try:
                if stop(timeout) is False:
                    ok = False
                    _log.warning("extension %s did not stop within %s s", ext.name, timeout)
            except Exception as exc:
                ok = False
                _log.exception("extension %s failed to stop", exc, ext.name)
        return ok

    def stop(self):
        """Stop extensions in reverse order, then the worker pool and app threads.

        Returns True if everything ended within the configured bound.
        """
        if not self.running:
            return True
        self.running = False
        timeout = self.config["APP"]["stop_timeout"]
        ok = self._stop_extensions(self.extensions)
        ok = self.workers.stop(timeout) and ok
        for thread in self._threads:
            if not thread.join(timeout):
                ok = False
                _log.warning("thread %s did not end within %s s", thread.name, timeout)
        self._threads = []
        _log.info("%s stopped%s", self.name, "" if ok else " (some threads still running)")
        return ok

    def status(self):
        """A snapshot of every counter: app, bus, workers and each extension."""
        report = {"app": dict(self.stats), "running": self.running, "bus": dict(self.bus.stats)}
        if self.workers is not None:
            report["workers"] = dict(self.workers.stats)
        for ext in self.extensions:
            status = getattr(ext, "status", None)
            report[ext.name] = status() if status is not None else {}
        return report

