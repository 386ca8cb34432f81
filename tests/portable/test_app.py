from checks import raises

from usr.qframe import Application, AppExtension, AppExtensionABC, CurrentApp, G
from usr.qframe.threading import Event


class _Recorder(AppExtension):
    """Records lifecycle calls into a shared journal; optionally runs a thread."""

    def __init__(self, name, journal, app=None, fail_load=False, with_thread=False):
        self.journal = journal
        self.fail_load = fail_load
        self.with_thread = with_thread
        self.stop_signal = Event()
        self.thread = None
        AppExtension.__init__(self, name, app)

    def load(self):
        self.journal.append("load " + self.name)
        if self.fail_load:
            raise RuntimeError("boom")
        if self.with_thread:
            self.thread = self.app.spawn(self._run, name=self.name)

    def _run(self):
        self.stop_signal.wait()
        self.journal.append("thread end " + self.name)

    def stop(self, timeout=2.0):
        self.journal.append("stop " + self.name)
        self.stop_signal.set()
        return True


def test_extensions_by_name_and_missing_name():
    app = Application("a")
    ext = _Recorder("meter", [], app)
    assert app.meter is ext
    assert not hasattr(app, "hes")
    raises(AttributeError, getattr, app, "hes")


def test_duplicate_and_clashing_names_rejected():
    app = Application("a")
    _Recorder("meter", [], app)
    raises(ValueError, _Recorder, "meter", [], app)
    raises(ValueError, _Recorder, "config", [], app)
    raises(ValueError, _Recorder, "", [], app)


def test_load_in_order_stop_in_reverse_and_threads_joined():
    journal = []
    app = Application("a")
    first = _Recorder("first", journal, app, with_thread=True)
    _Recorder("second", journal, app)
    third = _Recorder("third", journal, app, with_thread=True)
    app.load()
    assert app.running
    assert journal == ["load first", "load second", "load third"]
    assert first.thread.is_alive() and third.thread.is_alive()
    assert app.stop() is True
    assert not app.running
    stops = [j for j in journal if j.startswith("stop")]
    assert stops == ["stop third", "stop second", "stop first"]
    assert not first.thread.is_alive() and not third.thread.is_alive()
    assert "thread end first" in journal and "thread end third" in journal


def test_stop_reports_a_thread_that_does_not_end():
    app = Application("a")
    app.config.update({"APP": {"stop_timeout": 0.1}})
    app.load()
    never = Event()
    app.spawn(never.wait, name="stubborn")
    assert app.stop() is False
    never.set()


def test_failed_load_stops_loaded_extensions_and_reraises():
    journal = []
    app = Application("a")
    _Recorder("first", journal, app)
    _Recorder("broken", journal, app, fail_load=True)
    _Recorder("never", journal, app)
    raises(RuntimeError, app.load)
    assert journal == ["load first", "load broken", "stop first"]
    assert not app.running
    assert app.stats["load_failures"] == 1


def test_mainloop_is_load_and_load_twice_is_harmless():
    journal = []
    app = Application("a")
    _Recorder("only", journal, app)
    app.mainloop()
    app.load()
    assert journal == ["load only"]
    app.stop()
    assert app.stop() is True


def test_current_app_and_g_follow_the_newest_app():
    first = Application("first")
    assert CurrentApp() is first
    G().set("counter", 1)
    second = Application("second")
    assert CurrentApp() is second
    assert G().get("counter") is None
    assert G().setdefault("counter", 5) == 5
    assert first.g.counter == 1


def test_worker_pool_runs_submitted_calls_and_isolates_failures():
    app = Application("a")
    app.load()
    done = Event()
    results = []

    def _bad():
        raise ValueError("handler bug")

    def _good(value):
        results.append(value)
        done.set()

    assert app.submit(_bad)
    assert app.submit(_good, 42)
    assert done.wait(2)
    assert results == [42]
    app.stop()
    assert app.status()["workers"]["failed"] == 1
    assert app.status()["workers"]["done"] == 1


def test_status_collects_extension_counters():
    app = Application("a")
    ext = _Recorder("meter", [], app)
    ext.stats = {"frames": 3}
    status = app.status()
    assert status["meter"] == {"frames": 3}
    assert "bus" in status and "app" in status


class _QFrameStyle(AppExtensionABC):
    """Written the way QFrame's docs show: sets self.name itself, registers with append_extension."""

    def __init__(self, name, app=None):
        self.name = name
        self.loaded = False
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        app.append_extension(self)

    def load(self):
        self.loaded = True

    def send(self, data):
        CurrentApp().peer.received.append(data)


class _QFramePeer(AppExtensionABC):
    def __init__(self, name, app=None):
        self.name = name
        self.received = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        app.append_extension(self)

    def load(self):
        pass


def test_qframe_style_extensions_run_unchanged():
    app = Application(__name__)
    sender = _QFrameStyle("sender")
    sender.init_app(app)
    _QFramePeer("peer", app)
    app.mainloop()
    assert sender.loaded
    CurrentApp().sender.send(b"abc")
    assert app.peer.received == [b"abc"]
    app.stop()


def test_config_checking_code_is_unloaded_after_load():
    """check_config runs at startup only: its code (core/config_check.py) is not kept."""
    try:
        import usys as sys_
    except ImportError:
        import sys as sys_
    from usr.qframe import core
    from usr.qframe.core.config import Field
    app = Application("checked")
    _Recorder("meter", [], app)
    app.config["APP"] = {"workers": "two"}          # a bad value: repaired, counted
    app.load(repair_config=True)
    try:
        assert app.stats["config_errors"] == 1 and app.config["APP"]["workers"] == 2
        assert "usr.qframe.core.config_check" not in sys_.modules
        assert not hasattr(core, "config_check")
        assert not hasattr(Field, "expected") and not hasattr(Field, "needed")
    finally:
        app.stop()
