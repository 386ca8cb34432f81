"""QFrame's `usr.qframe.globals`: the current app and its globals as context variables.

    CurrentApp()          # the Application created last (QFrame: CurrentApp.get())
    G().counter = 1       # that app's scratch space (QFrame: G.get())

Each ContextVar holds its own value (QFrame keeps every variable in one class-level dict).
"""


class ContextVar(object):
    """One value set by the framework and read anywhere; calling it is get()."""

    def __init__(self, ident, error_msg=None):
        self.ident = ident
        self.error_msg = error_msg or "%r is not set in the current context" % (ident,)
        self._value = None
        self._set = False

    def set(self, value):
        self._value = value
        self._set = True

    def get(self):
        """The value; RuntimeError if it was never set."""
        if not self._set:
            raise RuntimeError(self.error_msg)
        return self._value

    def __call__(self):
        return self.get()


class AppGlobals(object):
    """Per-app scratch space returned by G(): plain attributes plus get/set/setdefault."""

    def get(self, name, default=None):
        return getattr(self, name, default)

    def set(self, name, value):
        setattr(self, name, value)

    def setdefault(self, name, value):
        if not hasattr(self, name):
            setattr(self, name, value)
        return getattr(self, name)


_AppCtxGlobals = AppGlobals     # QFrame's name

_NO_APP = "working outside of an application context: no Application has been created"
CurrentApp = ContextVar("Application", _NO_APP)
G = ContextVar("_AppCtxGlobals", _NO_APP)
