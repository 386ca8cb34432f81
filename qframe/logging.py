"""Logging for device code: levels, console output and a size-bounded rotating file on flash.

    from usr.qframe.logging import getLogger
    log = getLogger(__name__)
    log.info("link up after %d ms", elapsed)

`basicConfig(level=..., path=..., max_bytes=..., backups=..., stream=..., debug=...)` sets the
process-wide output (QFrame's `BasicConfig.update(level="INFO")` / `.set` / `.get` too).
Records are `LEVEL name: message` prefixed with uptime in ms. A failing file (flash full) never
raises into the caller: the record still reaches the console and `dropped_writes` is counted.

Messages take both styles: `log.info("got %d octets", n)` is %-formatted when the arguments
fit the format exactly; otherwise every argument is printed, separated by spaces, as QFrame's
`log.warn("two", "args")` -> `two args`.
"""
import _thread
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


class Level(object):
    """QFrame's level names (WARN is WARNING)."""
    DEBUG = DEBUG
    INFO = INFO
    WARN = WARNING
    WARNING = WARNING
    ERROR = ERROR
    CRITICAL = CRITICAL


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
        self.stream = None      # None: the console (print)
        self.debug = False      # True: every level is emitted (QFrame's `debug` key)
        self._lock = _thread.allocate_lock()    # one record written at a time, whole

    def enabled(self, level):
        return self.debug or level >= self.level

    def print(self, line):
        """Write line and its newline as one record: print() writes them separately, so
        without the lock two threads' records merge on one line."""
        with self._lock:
            if self.stream is None:
                print(line)
            else:
                print(line, file=self.stream)

    def emit(self, level, line):
        if self.console:
            self.print(line)
        for listener in self.listeners:
            listener(level, line)
        if self.path:
            self._write_file(line)

    def _write_file(self, line):
        with self._lock:
            try:
                try:
                    size = uos.stat(self.path)[6]
                except OSError:
                    size = 0
                if size + len(line) + 1 > self.max_bytes:
                    self._rotate()
                with open(self.path, "a") as f:
                    f.write(line + "\n")
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


def basicConfig(level=None, path=None, max_bytes=None, backups=None, console=None,
                stream=None, debug=None):
    """Configure every logger's output; None keeps a setting. level is a number or a name,
    path "" turns the file off, stream is where console records are printed (a file-like
    object), debug=True emits every level."""
    if level is not None:
        _output.level = level_from_name(level) if isinstance(level, str) else level
    if stream is not None:
        _output.stream = stream
    if debug is not None:
        _output.debug = bool(debug)
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
    """'info' -> INFO ('warn' too); raises ValueError naming the accepted names."""
    label = str(name).upper()
    if label == "WARN":
        return WARNING
    for value in _LEVEL_NAMES:
        if _LEVEL_NAMES[value] == label:
            return value
    raise ValueError("log level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")


getNameLevel = level_from_name     # QFrame's name


def getLevelName(level):
    """INFO -> 'INFO'; ValueError for an unknown level."""
    if level not in _LEVEL_NAMES:
        raise ValueError("unknown level %r" % (level,))
    return _LEVEL_NAMES[level]


class BasicConfig(object):
    """QFrame's settings object: keys `level` (a name), `debug`, `stream` (see basicConfig)."""

    @classmethod
    def getLogger(cls, name):
        return getLogger(name)

    @classmethod
    def update(cls, **kwargs):
        for key in kwargs:
            cls.set(key, kwargs[key])

    @classmethod
    def set(cls, key, value):
        if key not in ("level", "debug", "stream"):
            raise KeyError(key)
        if key == "level":
            basicConfig(level=value)
        else:
            setattr(_output, key, value)

    @classmethod
    def get(cls, key):
        if key not in ("level", "debug", "stream"):
            raise KeyError(key)
        return getattr(_output, key)


def format_message(parts):
    """One message from a log call's arguments (see the module docstring)."""
    msg = parts[0]
    if len(parts) > 1 and isinstance(msg, str) and "%" in msg:
        try:
            return msg % parts[1:]
        except (TypeError, ValueError):
            pass
    if len(parts) == 1:
        return str(msg)
    return " ".join([str(part) for part in parts])


def dropped_writes():
    return _output.dropped_writes


class Logger(object):
    def __init__(self, name):
        self.name = name

    def isEnabledFor(self, level):
        return _output.enabled(level)

    def log(self, level, *message):
        if not message or not _output.enabled(level):
            return
        line = "%d %s %s: %s" % (utime.ticks_ms(), _LEVEL_NAMES.get(level, str(level)),
                                 self.name, format_message(message))
        _output.emit(level, line)

    def output_raw(self, info):
        """Print info as it is, no prefix (QFrame's)."""
        _output.print(info)

    def debug(self, *message):
        self.log(DEBUG, *message)

    def info(self, *message):
        self.log(INFO, *message)

    def warning(self, *message):
        self.log(WARNING, *message)

    warn = warning

    def error(self, *message):
        self.log(ERROR, *message)

    def critical(self, *message):
        self.log(CRITICAL, *message)

    def exception(self, msg, exc, *args):
        """Log msg at ERROR with the exception's type and message (no sys.exc_info on 1.13)."""
        self.log(ERROR, msg + " (%s: %s)", *(args + (type(exc).__name__, exc)))
        if _output.enabled(DEBUG) and hasattr(usys, "print_exception"):
            usys.print_exception(exc)


def getLogger(name="app"):
    logger = _loggers.get(name)
    if logger is None:
        logger = _loggers[name] = Logger(name)
    return logger
