"""log on the host: QuecPython's log module printing to stdout (or set_output's stream).

    log.basicConfig(level=log.INFO); logger = log.getLogger("name"); logger.info("text")
"""
from shimlib import firmware as _firmware
import utime as _utime

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40
CRITICAL = 50
_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR", CRITICAL: "CRITICAL"}
_config = {"level": INFO, "out": None}


def basicConfig(level=INFO, filename=None, stream=None, format=None):
    _config["level"] = level


def set_output(out):
    """A stream (usys.stdout) or a machine.UART to write log lines to."""
    _config["out"] = out


def getLogger(name="root"):
    return Logger(name)


def _emit(name, level, msg):
    if level < _config["level"]:
        return
    t = _utime.localtime()
    line = "%04d-%02d-%02d %02d:%02d:%02d [%s] %s: %s" % (t[0], t[1], t[2], t[3], t[4], t[5],
                                                        name, _NAMES.get(level, level), msg)
    out = _config["out"]
    if out is None:
        print(line)
    else:
        out.write(line + "\r\n" if hasattr(out, "any") else line + "\n")


class Logger(object):
    def __init__(self, name):
        self.name = name

    def debug(self, msg, *args):
        _emit(self.name, DEBUG, msg % args if args else msg)

    def info(self, msg, *args):
        _emit(self.name, INFO, msg % args if args else msg)

    def warning(self, msg, *args):
        _emit(self.name, WARNING, msg % args if args else msg)

    def error(self, msg, *args):
        _emit(self.name, ERROR, msg % args if args else msg)

    def critical(self, msg, *args):
        _emit(self.name, CRITICAL, msg % args if args else msg)


_firmware.prune(globals(), "log")
