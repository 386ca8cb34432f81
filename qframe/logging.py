"""Logging for device code: levels, console output and a size-bounded rotating file on flash.

    from usr.qframe.logging import getLogger
    log = getLogger(__name__)
    log.info("link up after %d ms", elapsed)

`basicConfig(level=..., path=..., max_bytes=..., backups=...)` sets the process-wide output.
Records are `LEVEL name: message` prefixed with uptime in ms. A failing file (flash full) never
raises into the caller: the record still reaches the console and `dropped_writes` is counted.
"""
import usys
import utime
import uos

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40
CRITICAL = 50
_LEVEL_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR",
                CRITICAL: "CRITICAL"}


class _Output(object):
    """Where records go: the console and, optionally, a rotating file."""

    def __init__(self):
        self.level = INFO
        self.console = True
        self.path = None
        self.max_bytes = 32 * 1024
        self.backups = 1
        self.dropped_writes = 0
        self.listeners = []

    def emit(self, level, line):
        if self.console:
            print(line)
        for listener in self.listeners:
            listener(level, line)
        if self.path:
            self._write_file(line)

    def _write_file(self, line):
        try:
            try:
                size = uos.stat(self.path)[6]
            except OSError:
                size = 0
            if size + len(line) + 1 > self.max_bytes:
                self._rotate()
            with open(self.path, "a") as f:
                f.write(line)
                f.write("\n")
        except OSError:
            self.dropped_writes += 1

    def _rotate(self):
        for index in range(self.backups - 1, -1, -1):
            src = self.path if index == 0 else "%s.%d" % (self.path, index)
            try:
                uos.rename(src, "%s.%d" % (self.path, index + 1))
            except OSError:
                pass
        if self.backups == 0:
            try:
                uos.remove(self.path)
            except OSError:
                pass


_output = _Output()
_loggers = {}


def basicConfig(level=None, path=None, max_bytes=None, backups=None, console=None):
    """Configure every logger's output. path=None keeps the file setting unchanged, "" turns it off."""
    if level is not None:
        _output.level = level
    if path is not None:
        _output.path = path or None
        if path and "/" in path[1:]:
            try:
                uos.mkdir(path[:path.rfind("/")])
            except OSError:
                pass
    if max_bytes is not None:
        _output.max_bytes = max_bytes
    if backups is not None:
        _output.backups = backups
    if console is not None:
        _output.console = console


def add_listener(listener):
    """Call listener(level, line) for every emitted record (tests, live views).

    Returns the object to hand to remove_listener(): it is found by identity, because
    MicroPython 1.13 never finds two bound methods equal.
    """
    _output.listeners.append(listener)
    return listener


def remove_listener(token):
    """Stop calling the listener add_listener() returned as token."""
    listeners = _output.listeners
    for index in range(len(listeners)):
        if listeners[index] is token:
            del listeners[index]
            return


def level_from_name(name):
    """'info' -> INFO; raises ValueError naming the accepted names."""
    for value, label in _LEVEL_NAMES.items():
        if label == str(name).upper():
            return value
    raise ValueError("log level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")


def dropped_writes():
    return _output.dropped_writes


class Logger(object):
    def __init__(self, name):
        self.name = name

    def isEnabledFor(self, level):
        return level >= _output.level

    def log(self, level, msg, *args):
        if level < _output.level:
            return
        if args:
            try:
                msg = msg % args
            except (TypeError, ValueError):
                msg = "%s %r" % (msg, args)
        line = "%d %s %s: %s" % (utime.ticks_ms(), _LEVEL_NAMES.get(level, str(level)),
                                 self.name, msg)
        _output.emit(level, line)

    def debug(self, msg, *args):
        self.log(DEBUG, msg, *args)

    def info(self, msg, *args):
        self.log(INFO, msg, *args)

    def warning(self, msg, *args):
        self.log(WARNING, msg, *args)

    warn = warning

    def error(self, msg, *args):
        self.log(ERROR, msg, *args)

    def critical(self, msg, *args):
        self.log(CRITICAL, msg, *args)

    def exception(self, msg, exc, *args):
        """Log msg at ERROR with the exception's type and message (no sys.exc_info on 1.13)."""
        self.log(ERROR, msg + " (%s: %s)", *(args + (type(exc).__name__, exc)))
        if _output.level <= DEBUG and hasattr(usys, "print_exception"):
            usys.print_exception(exc)


def getLogger(name="app"):
    logger = _loggers.get(name)
    if logger is None:
        logger = _loggers[name] = Logger(name)
    return logger
