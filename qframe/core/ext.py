"""The base of every application extension (QFrame's `AppExtensionABC` name is kept)."""
from ..logging import getLogger


class AppExtension(object):
    """A pluggable part of the app, reachable as `app.<name>` once `init_app(app)` ran.

    Subclasses may set:
      config_section  the dev.json section they read (e.g. "UART"), or None
      config_fields   {key: Field} with defaults, checked by `app.load()`
      app_minimums    {APP key: (least value, why)} the extension needs (e.g. workers)
    and override load() (start work; must not block), stop() (end it; join threads within
    the given timeout) and status() (counters). QFrame-style subclasses that only set
    `self.name` in their own __init__ work too.
    """

    config_section = None
    config_fields = {}
    app_minimums = {}
    _own_log = None

    def __init__(self, name=None, app=None):
        if name is not None:
            self.name = name
        self.app = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        """Register with app; `app.<name>` then returns this extension."""
        self.app = app
        app.append_extension(self)

    @property
    def config(self):
        """This extension's resolved config section (defaults filled in by app.load())."""
        if self.config_section is None:
            return {}
        return self.app.config.get(self.config_section) or {}

    @property
    def log(self):
        """The extension's logger, named as it is registered: Uart("meter") logs as `meter`,
        TcpClient("client") as `client` (a subclass may assign its own)."""
        own = self._own_log
        return own if own is not None else getLogger(self.name)

    @log.setter
    def log(self, logger):
        self._own_log = logger

    def subscribe(self, topic, callback, replay=False):
        """Subscribe callback on the app's bus and keep the handle for unsubscribe_all()."""
        handle = self.app.bus.subscribe(topic, callback, replay)
        handles = getattr(self, "_subscriptions", None)
        if handles is None:
            handles = self._subscriptions = []
        handles.append(handle)
        return handle

    def unsubscribe_all(self):
        """End every subscription made through subscribe() (call it from stop())."""
        for handle in getattr(self, "_subscriptions", None) or ():
            handle.cancel()
        self._subscriptions = []

    def out_of_memory(self, exc=None):
        """A MemoryError hit this extension: counted (stats["memory_errors"]), logged once per
        spell, garbage collected; returns the seconds to back off (see core/heap.py)."""
        stats = getattr(self, "stats", None)
        if stats is not None:
            stats["memory_errors"] = stats.get("memory_errors", 0) + 1
        return self.app.heap.out_of_memory(self.name, exc)

    def memory_recovered(self):
        """The work that ran out of memory succeeded again."""
        self.app.heap.recovered(self.name)

    def load(self):
        """Start the extension's work. Called in registration order by app.load()."""

    def stop(self, timeout=2.0):
        """Stop the extension's work, joining its threads within timeout seconds."""
        return True

    def status(self):
        """Counters and state for the app's status report."""
        return dict(getattr(self, "stats", {}))


AppExtensionABC = AppExtension
