"""QFrame's `SmsClient`: received text messages to `recv_callback(phone, msg, length)`.

    class Inbox(SmsClient):
        def recv_callback(self, phone, msg, length): ...

    Inbox("sms", app)      # start() (or app.load()) hooks the firmware's SMS callback

The firmware's callback only queues the message index; a thread reads each message
(`sms.searchTextMsg`) and calls recv_callback. Other `sms` functions are reachable on the
extension (`app.sms.sendTextMsg(...)`). stop() ends the thread (QFrame's never ends).
"""
from ..core.ext import AppExtension
from ..logging import getLogger
from ..threading import Queue, QueueClosed, QueueFull, Thread

_log = getLogger("sms")


class SmsClient(AppExtension):
    name = "sms"

    def __init__(self, name=None, app=None):
        self.stats = {"received": 0, "read_failures": 0, "callback_errors": 0, "dropped": 0}
        self._queue = None
        self._thread = None
        AppExtension.__init__(self, name, app)

    def __getattr__(self, name):
        import sms
        return getattr(sms, name)

    def load(self):
        self.start()

    def start(self):
        """Hook the firmware's SMS callback and start the reader thread."""
        import sms
        if self._thread is not None and self._thread.is_running():
            return
        self._queue = Queue(32)
        sms.setCallback(self._on_sms)
        self._thread = Thread(self._read_loop, name="sms").start()

    def stop(self, timeout=2.0):
        if self._queue is not None:
            self._queue.close()
        return self._thread.join(timeout) if self._thread is not None else True

    def _on_sms(self, args):
        """Firmware callback: args = (sim id, message index, storage)."""
        try:
            self._queue.put(args, False)
        except (QueueFull, QueueClosed):
            self.stats["dropped"] += 1

    def _read_loop(self):
        import sms
        while True:
            try:
                args = self._queue.get()
            except QueueClosed:
                return
            try:
                data = sms.searchTextMsg(args[1])
            except Exception as exc:
                self.stats["read_failures"] += 1
                _log.exception("reading SMS %r failed", exc, args)
                continue
            if data == -1:
                self.stats["read_failures"] += 1
                _log.warning("reading SMS %r failed", args)
                continue
            self.stats["received"] += 1
            try:
                self.recv_callback(*data)
            except Exception as exc:
                self.stats["callback_errors"] += 1
                _log.exception("SMS recv_callback failed", exc)

    def recv_callback(self, phone, msg, length):
        raise NotImplementedError("override recv_callback(phone, msg, length)")
