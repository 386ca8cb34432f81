import uos
import usys
import utime

from usr.qframe import logging


def _cleanup(path):
    for name in (path, path + ".1", path + ".2"):
        try:
            uos.remove(name)
        except OSError:
            pass


def _reset():
    logging.basicConfig(level=logging.INFO, path="", console=True, max_bytes=32768, backups=1)


def test_levels_filter_and_listeners_see_records():
    lines = []

    def _listen(level, line):
        lines.append((level, line))

    logging.add_listener(_listen)
    try:
        logging.basicConfig(level=logging.WARNING, console=False)
        log = logging.getLogger("unit")
        log.info("hidden %d", 1)
        log.warning("shown %d", 2)
        log.exception("failed", ValueError("bad"))
    finally:
        logging.remove_listener(_listen)
        _reset()
    assert len(lines) == 2
    assert lines[0][0] == logging.WARNING and lines[0][1].endswith("WARNING unit: shown 2")
    assert lines[1][1].endswith("ERROR unit: failed (ValueError: bad)")
    assert logging.getLogger("unit") is log


def test_bad_format_args_do_not_raise():
    lines = []
    logging.add_listener(lambda level, line: lines.append(line))
    try:
        logging.basicConfig(level=logging.INFO, console=False)
        logging.getLogger("unit").info("needs two %d %d", 1)
    finally:
        logging._output.listeners = []
        _reset()
    assert "needs two %d %d" in lines[0]


def test_file_rotates_and_stays_bounded():
    path = "/usr/log_rotate_test.log"
    _cleanup(path)
    logging.basicConfig(level=logging.INFO, path=path, max_bytes=400, backups=1, console=False)
    try:
        log = logging.getLogger("rot")
        for index in range(40):
            log.info("record number %03d with some padding", index)
        assert uos.stat(path)[6] <= 400
        assert uos.stat(path + ".1")[6] <= 400
        raises_missing = False
        try:
            uos.stat(path + ".2")
        except OSError:
            raises_missing = True
        assert raises_missing
        with open(path) as f:
            assert "record number 039" in f.read()
    finally:
        _reset()
        _cleanup(path)


def test_unwritable_file_counts_dropped_writes_and_never_raises():
    before = logging.dropped_writes()
    logging.basicConfig(level=logging.INFO, path="/usr/no_such_dir/x/app.log", console=False)
    try:
        logging.getLogger("drop").error("still fine")
    finally:
        _reset()
    assert logging.dropped_writes() == before + 1


def test_level_names():
    assert logging.level_from_name("debug") == logging.DEBUG
    try:
        logging.level_from_name("loud")
        assert False
    except ValueError as exc:
        assert "DEBUG" in str(exc)


class _YieldingConsole(object):
    """A console that lets other threads run between writes, as a slow UART console does."""

    def __init__(self, path):
        self.file = open(path, "w")

    def write(self, text):
        self.file.write(text)
        utime.sleep_ms(0)
        return len(text)

    def close(self):
        self.file.close()


def _console(path):
    # MicroPython's print(file=) takes only real streams; its file writes release the GIL.
    if usys.implementation.name == "micropython":
        return open(path, "w")
    return _YieldingConsole(path)


def test_records_from_many_threads_stay_whole_lines():
    import _thread
    from usr.qframe.threading import Event
    path = "/usr/log_threads_test.log"
    console = "/usr/log_threads_console.txt"
    _cleanup(path)
    threads, per_thread = 8, 60
    done = []
    finished = Event()
    stream = _console(console)
    logging.basicConfig(level=logging.INFO, path=path, max_bytes=1 << 20, console=True,
                        stream=stream)

    def _spam(index):
        log = logging.getLogger("t%d" % index)
        for n in range(per_thread):
            log.info("record %d of thread %d ends here", n, index)
        done.append(index)
        if len(done) == threads:
            finished.set()

    try:
        for index in range(threads):
            _thread.start_new_thread(_spam, (index,))
        assert finished.wait(30)
    finally:
        _reset()
        logging._output.stream = None       # the console again (basicConfig keeps a stream)
        stream.close()
    for name in (path, console):
        with open(name) as f:
            lines = f.read().split("\n")
        uos.remove(name)
        assert lines[-1] == ""
        lines = lines[:-1]
        # other tests' leftover threads may log meanwhile: every line is still one record
        mine = [line for line in lines if " of thread " in line]
        assert len(mine) == threads * per_thread, (name, len(mine))
        for line in lines:
            assert line and line.count(" ends here") <= 1, (name, line)
        for line in mine:
            assert line.count(" INFO ") == 1 and line.endswith(" ends here"), (name, line)
