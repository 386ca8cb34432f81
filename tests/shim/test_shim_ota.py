"""fota and app_fota of the shim: packages recorded, downloads over the shim's network from a
real HTTP peer made here, app_fota's update applied as the firmware does at boot."""

import shimctl
import fota
from shimlib import firmware
import app_fota
import app_fota_download
import ql_fs
from checks import EVENT_MS, captured, raises
from http_peer import http_peer

def _http_server(bodies):
    """Serve one HTTP/1.0 reply per entry of bodies ((status, body)); return the port."""
    def reply(status, body):
        head = b"HTTP/1.0 %d X\r\nContent-Length: %d\r\n\r\n" % (status, len(body))
        return lambda conn: conn.send(head + body)
    return http_peer([reply(status, body) for status, body in bodies])


def _download(updater, url, callback=None):
    """httpDownload as the chosen firmware line takes it."""
    if firmware.LINE == "E1":
        return updater.httpDownload(url, "", callback)
    return updater.httpDownload(url1=url, callback=callback)


def test_fota_is_the_type_and_download_takes_this_lines_arguments():
    shimctl.reset()
    assert not hasattr(fota, "fota") and not hasattr(fota(), "apn_set")
    url = "http://127.0.0.1:1/fw.bin"
    if firmware.LINE == "E1":
        assert raises(TypeError, fota().httpDownload, url1=url)
        assert fota().httpDownload(url) == -1                  # both URLs are required
    else:
        assert raises(TypeError, fota().httpDownload, url, url)
    shimctl.reset()


def test_fota_write_flush_verify():
    shimctl.reset()
    upgrade = fota(reset_disable=1)
    assert upgrade.write(b"abc", 6) == 0 and upgrade.write(b"def", 6) == 0
    assert upgrade.flush() == 0 and upgrade.verify() == 0
    record = shimctl.state["fota"]
    assert record["data"] == bytearray(b"abcdef") and record["verified"] is True
    assert upgrade.write(b"x", 6) == -1
    short = fota()
    short.write(b"ab", 4)
    assert short.verify() == -1


def test_fota_http_download_and_restart():
    shimctl.reset()
    port = _http_server([(200, b"FIRMWARE" * 100), (404, b"nope")])
    events = []
    assert _download(fota(), "http://127.0.0.1:%d/fw.bin" % port, events.append) == 0
    assert shimctl.state["fota"]["written"] == 800 and shimctl.state["reboots"] == 1
    assert shimctl.wait_for(lambda: events == [(2, 100)], EVENT_MS)
    assert _download(fota(), "http://127.0.0.1:%d/missing" % port) == -1
    shimctl.set_network(False)
    assert _download(fota(), "http://hes.example.com/fw.bin") == -1
    shimctl.reset()


def test_app_fota_download_flag_and_apply():
    shimctl.reset()
    target = "/usr/_shim_ota_test/handlers.py"
    if ql_fs.path_exists("/usr/_shim_ota_test"):
        ql_fs.rmdirs("/usr/_shim_ota_test")
    port = _http_server([(200, b"VERSION = 2\n"), (500, b"")])
    updater = app_fota.new()
    url = "http://127.0.0.1:%d/handlers.py" % port
    assert updater.download(url, target) == 0
    assert ql_fs.path_exists(app_fota_download.updater_dir + target) and not ql_fs.path_exists(target)
    failed = updater.bulk_download([{"url": url, "file_name": "/usr/_shim_ota_test/x.py"}])
    assert failed == [{"url": url, "file_name": "/usr/_shim_ota_test/x.py"}]
    assert shimctl.apply_app_fota() == []            # no flag yet
    updater.set_update_flag()
    assert shimctl.state["app_fota"]["update_flag"] is True
    assert shimctl.apply_app_fota() == [target]
    with open(target) as f:
        assert f.read() == "VERSION = 2\n"
    assert not ql_fs.path_exists(app_fota_download.updater_dir)
    ql_fs.rmdirs("/usr/_shim_ota_test")
    shimctl.reset()


def test_app_fota_download_fails_on_flash_full_and_leaves_nothing():
    shimctl.reset()
    port = _http_server([(200, b"x" * 5000)])
    shimctl.set_flash_free(1000)
    with captured() as out:
        assert app_fota.new().download("http://127.0.0.1:%d/big" % port, "/usr/_big.bin") == -1
    assert out.has("shim app_fota: download of http://127.0.0.1:%d/big failed" % port)
    assert not ql_fs.path_exists(app_fota_download.updater_dir + "/usr/_big.bin")
    shimctl.reset()
    if ql_fs.path_exists(app_fota_download.updater_dir):
        ql_fs.rmdirs(app_fota_download.updater_dir)
