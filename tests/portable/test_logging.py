import uos

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
        logging.basicConfig(console=False)
        logging.getLogger("unit").info("needs two %d %d", 1)
    finally:
        logging._output.listeners = []
        _reset()
    assert "needs two %d %d" in lines[0]


def test_file_rotates_and_stays_bounded():
    path = "/usr/log_rotate_test.log"
    _cleanup(path)
    logging.basicConfig(path=path, max_bytes=400, backups=1, console=False)
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
    logging.basicConfig(path="/usr/no_such_dir/x/app.log", console=False)
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
