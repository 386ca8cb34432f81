"""The Application mediator: config, extensions in load order, lifecycle, bus, worker pool."""
from .bus import EventBus
from .config import Config, ConfigError, Field, USR_FLASH_BYTES
from .heap import HeapWatch
from .lazy import forget
from ..collections import OrderedDict as _OrderedDict
from ..globals import AppGlobals, CurrentApp, G
from ..logging import getLogger, basicConfig, level_from_name
from .. import threading as threads

_log = getLogger("app")

LOG_FLASH_BYTES = USR_FLASH_BYTES // 8     # the log file and its backups together, at most

APP_FIELDS = {
    "workers": Field(int, 2, lo=1, hi=16),
    "backlog": Field(int, 64, lo=1, hi=4096),
    "stop_timeout": Field(float, 3.0, lo=0.1, hi=60),
    "log_level": Field(str, "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    "log_file": Field(str, "", optional=True),
    "log_max_bytes": Field(int, 32768, lo=1024, hi=LOG_FLASH_BYTES),
    "log_backups": Field(int, 1, lo=0, hi=9),
    "uplink": Field(str, "tcp", choices=("tcp", "mqtt")),   # which cloud link an app starts
    "memory_backoff_s": Field(float, 0.5, lo=0.01, hi=60),
    "memory_exhausted_s": Field(float, 300.0, lo=0.01, hi=86400),
    "heap_trace": Field(bool, False),
}


class Extensions(_OrderedDict):
    """app.extensions: name -> extension in registration order (iterating yields the names,
    as QFrame's OrderedDict does)."""


class Application(object):
    """The mediator every extension registers with.

    Application(name) (makes it CurrentApp(), adds the built-in `network` extension) ->
    init_app (extensions register, in load order) -> load() (config checked, extensions loaded
    in order; QFrame's mainloop() is the same) -> stop() (extensions stopped in reverse order,
    their threads and the worker pool joined within APP.stop_timeout).

    `extensions` maps name -> extension in registration order (`'uart' in app.extensions`,
    `.values()`, `.items()`, `app.extensions[name] = obj`); each is also `app.<name>`.
    `business_threads_pool` (`submit`) works from the start: its threads start on the first
    call; load() applies APP.workers and APP.backlog.
    """

    def __init__(self, name="app"):
        self.name = name
        self.config = Config()
        self.extensions = Extensions()
        self.bus = EventBus()
        self.heap = HeapWatch(self.bus)
        self.heap.snapshot("imports")     # what main.py imported (and the interpreter holds)
        self.g = AppGlobals()
        self.business_threads_pool = self._new_pool()
        self.running = False
        self.stats = {"config_errors": 0, "config_unknown": 0, "load_failures": 0}
        self.config_defaults = []    # [(section, {key: default})]: sections dev.json lacks
        self._threads = []
        CurrentApp.set(self)
        G.set(self.g)
        from ..builtins.network import NetWork
        self._builtin_network = NetWork(app=self)

    def _new_pool(self):
        pool = threads.ThreadPoolExecutor(APP_FIELDS["workers"].default, False,
                                          APP_FIELDS["backlog"].default, self.name + "-worker")
        pool.heap = self.heap
        return pool

    def __getattr__(self, name):
        # Only reached when normal lookup fails: extensions by name.
        if name != "extensions" and name in self.extensions:
            return self.extensions[name]
        raise AttributeError("app has no extension %r" % name)

    def append_extension(self, ext):
        """Register ext under ext.name (QFrame's name for it). An extension named like the
        built-in `network` replaces it (and adopts its registered callbacks)."""
        name = getattr(ext, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError("an extension needs a non-empty string name")
        if name in self.extensions:
            builtin = self._builtin_network
            if builtin is None or self.extensions[name] is not builtin:
                raise ValueError("extension %r is already registered" % name)
            if hasattr(ext, "take_over"):
                ext.take_over(builtin)
            del self.extensions[name]       # the replacement loads where it was registered
            self._builtin_network = None
        elif hasattr(self, name):
            raise ValueError("extension name %r clashes with an Application attribute" % name)
        if getattr(ext, "app", None) is None:
            ext.app = self
        self.extensions[name] = ext

    def check_config(self, repair=False):
        """Fill defaults and check APP and every extension's section.

        Raises ConfigError listing every problem; with repair=True logs and counts each
        problem, uses the defaults instead, and returns the list. The checking code
        (core/config_check.py) is unloaded again after: it runs at startup only.
        """
        from . import config_check
        try:
            return config_check.check_app(self, repair)
        finally:
            forget(__name__[:__name__.rfind(".")] + ".config_check")

    def declared_config(self):
        """{section: {key: Field}}: APP's fields and every extension's (a section shared by
        extensions has the union of their keys)."""
        declared = {"APP": APP_FIELDS}
        for ext in self.extensions.values():
            section = getattr(ext, "config_section", None)
            if section:
                merged = dict(declared.get(section, {}))
                merged.update(getattr(ext, "config_fields", {}))
                declared[section] = merged
        return declared

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
        if self.business_threads_pool.stopped:
            self.business_threads_pool = self._new_pool()
        self.business_threads_pool.resize(settings["workers"], settings["backlog"])
        self.heap.backoff_s = settings["memory_backoff_s"]
        self.heap.exhausted_s = settings["memory_exhausted_s"]
        self.running = True
        loaded = []
        for name, ext in self.extensions.items():
            load = getattr(ext, "load", None)
            try:
                if load is not None:
                    load()
            except Exception as exc:
                self.stats["load_failures"] += 1
                _log.exception("extension %s failed to load", exc, name)
                self._stop_extensions(loaded)
                self.running = False
                self._stop_pool(settings["stop_timeout"])
                raise
            loaded.append((name, ext))
        _log.info("%s loaded: %s", self.name, ", ".join(self.extensions.keys()))
        if settings["heap_trace"]:
            self.heap.start_trace()

    mainloop = load

    def submit(self, *args, **kwargs):
        """Run a call on the app's worker pool, never blocking (see ThreadPoolExecutor):
        submit(fn, *args) -> False if the backlog is full; QFrame's submit(target=fn,
        args=(...)) / submit(Task) -> the task's result. After stop() calls are rejected."""
        return self.business_threads_pool.submit(*args, **kwargs)

    def _stop_pool(self, timeout):
        return self.business_threads_pool.stop(timeout)

    def spawn(self, target, args=(), name="thread", stop_event=None):
        """Start a thread the app joins on stop(); target must return once app.running is False
        or its stop signal (stop_event, which the thread's stop() sets) is set."""
        thread = threads.Thread(target, args, name=name, stop_event=stop_event).start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        return thread

    def _stop_extensions(self, loaded):
        """Stop the (name, extension) pairs of loaded in reverse order."""
        timeout = self.config.get("APP", {}).get("stop_timeout", 3.0)
        ok = True
        for index in range(len(loaded) - 1, -1, -1):
            name, ext = loaded[index]
            stop = getattr(ext, "stop", None)
            if stop is None:
                continue
            try:
                if stop(timeout) is False:
                    ok = False
                    _log.warning("extension %s did not stop within %s s", name, timeout)
            except Exception as exc:
                ok = False
                _log.exception("extension %s failed to stop", exc, name)
        return ok

    def stop(self):
        """Stop extensions in reverse order, then the worker pool and app threads.

        Returns True if everything ended within the configured bound.
        """
        if not self.running:
            return True
        self.running = False
        timeout = self.config["APP"]["stop_timeout"]
        ok = self._stop_extensions(self.extensions.items())
        ok = self._stop_pool(timeout) and ok
        for thread in self._threads:
            if not thread.join(timeout):
                ok = False
                _log.warning("thread %s did not end within %s s", thread.name, timeout)
        self._threads = []
        _log.info("%s stopped%s", self.name, "" if ok else " (some threads still running)")
        return ok

    def status(self):
        """A snapshot of every counter: app, bus, workers, the command registry (once an
        uplink created `app.commands`) and each extension."""
        report = {"app": dict(self.stats), "running": self.running, "bus": dict(self.bus.stats)}
        report["heap"] = self.heap.status()
        report["workers"] = dict(self.business_threads_pool.stats)
        commands = getattr(self, "commands", None)
        if commands is not None:
            report["commands"] = dict(commands.stats)
        for name, ext in self.extensions.items():
            status = getattr(ext, "status", None)
            report[name] = status() if status is not None else {}
        return report

