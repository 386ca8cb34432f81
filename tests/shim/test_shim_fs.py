"""ql_fs and the flash quota of the shim (writes under /usr and /bak, statvfs)."""
import uos
import ujson

import shimctl
import ql_fs
from checks import raises

DIR = "/usr/_shim_fs_test"
ENOSPC = 28


def _clean():
    shimctl.reset()
    if ql_fs.path_exists(DIR):
        ql_fs.rmdirs(DIR)


def test_ql_fs_helpers():
    _clean()
    ql_fs.mkdirs(DIR + "/a/b")
    assert ql_fs.path_exists(DIR + "/a/b") and not ql_fs.path_exists(DIR + "/nope")
    assert ql_fs.touch(DIR + "/a/b/conf.json", {"x": [1, 2]}) == 0
    assert ql_fs.read_json(DIR + "/a/b/conf.json") == {"x": [1, 2]}
    with open(DIR + "/a/plain.txt", "w") as f:
        f.write("not json")
    assert ql_fs.read_json(DIR + "/a/plain.txt") == "not json"
    assert ql_fs.read_json(DIR + "/missing.json") is None
    assert ql_fs.file_copy(DIR + "/copy.json", DIR + "/a/b/conf.json") is True
    assert ql_fs.read_json(DIR + "/copy.json") == {"x": [1, 2]}
    size = ql_fs.path_getsize(DIR + "/copy.json")
    assert size == len(ujson.dumps({"x": [1, 2]}))
    assert ql_fs.path_getsize(DIR) == 2 * size + len("not json")
    assert ql_fs.path_dirname(DIR + "/a/b/conf.json") == DIR + "/a/b"
    ql_fs.rmdirs(DIR)
    assert not ql_fs.path_exists(DIR)


def test_flash_quota_raises_enospc_and_nothing_is_written():
    _clean()
    ql_fs.mkdirs(DIR)
    shimctl.set_flash_free(10)
    with open(DIR + "/log.bin", "wb") as f:
        assert f.write(b"12345678") == 8
        exc = raises(OSError, f.write, b"abc")
        assert exc.args[0] == ENOSPC
        f.write(b"90")
    assert shimctl.state["flash_free"] == 0
    assert ql_fs.path_getsize(DIR + "/log.bin") == 10
    raises(OSError, _append, DIR + "/log.bin", b"x")
    assert ql_fs.touch(DIR + "/more.json", {"k": 1}) == -1
    shimctl.set_flash_free(None)
    _append(DIR + "/log.bin", b"x" * 100)
    _clean()


def _append(path, data):
    with open(path, "ab") as f:
        f.write(data)


def test_statvfs_shows_the_quota_and_removal_gives_space_back():
    _clean()
    ql_fs.mkdirs(DIR)
    shimctl.set_flash_free(1000)
    stat = uos.statvfs("/usr")
    assert stat[0] * stat[3] == 1000
    with open(DIR + "/a.txt", "w") as f:
        f.write("x" * 300)
    stat = uos.statvfs("/usr")
    assert stat[0] * stat[3] == 700 and stat[0] * stat[2] == 1000
    with open(DIR + "/a.txt", "w") as f:       # truncation gives the old size back
        f.write("y" * 100)
    assert shimctl.state["flash_free"] == 900
    uos.remove(DIR + "/a.txt")
    assert shimctl.state["flash_free"] == 1000
    shimctl.set_flash_free(None)
    assert uos.statvfs("/usr")[3] > 0
    _clean()


def test_reads_and_text_streams_work_under_the_quota():
    _clean()
    ql_fs.mkdirs(DIR)
    shimctl.set_flash_free(100000)
    with open(DIR + "/doc.json", "w") as f:
        ujson.dump({"a": 1, "b": "two"}, f)
    with open(DIR + "/lines.txt", "w") as f:
        f.write("one\ntwo\n")
    with open(DIR + "/lines.txt") as f:
        assert [line for line in f] == ["one\n", "two\n"]
    with open(DIR + "/doc.json") as f:
        assert ujson.load(f) == {"a": 1, "b": "two"}
    uos.rename(DIR + "/doc.json", DIR + "/renamed.json")
    assert ql_fs.read_json(DIR + "/renamed.json") == {"a": 1, "b": "two"}
    assert shimctl.state["flash_free"] < 100000
    _clean()


def test_bak_is_a_device_folder_too():
    _clean()
    shimctl.set_flash_free(3)
    path = "/bak/_shim_fs_test.bin"
    exc = raises(OSError, _append, path, b"1234")
    assert exc.args[0] == ENOSPC
    shimctl.set_flash_free(None)
    if ql_fs.path_exists(path):
        uos.remove(path)
    _clean()
