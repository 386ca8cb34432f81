"""QFrame's `usr.qframe.ota`: firmware (`Fota`) and application-file (`AppFota`) upgrades.

    upgrade = Fota(auto_reset=False, progress_callback=print)
    upgrade.upgrade(url) and upgrade.get_result(timeout=600)      # differential firmware
    upgrade.local_upgrade("/usr/fw.bin")                          # -> (ok, code)

    files = AppFota()
    files.download(url, "/usr/main.py") and files.set_update_flag()   # applied at next boot

`FileDecode` unpacks a gzip'd tar of app files (AppFota.download_tar). The firmware modules
(fota, app_fota, request, app_fota_download) are imported when used.
"""
import uos

from .threading import Event

LOCAL_WRITE_FAILED = 1
LOCAL_FLUSH_FAILED = 2
LOCAL_VERIFY_FAILED = 3
_CHUNK = 4096


def http_download(updater, url1, url2=None, callback=None):
    """The firmware's fota httpDownload on every line: keyword-only from mid 2021 (E2, E3);
    positional (url1, url2[, callback]) with both URLs required on early-2021 firmware (E1),
    where a single package gets an empty url2."""
    try:
        return updater.httpDownload(url1=url1, url2=url2, callback=callback)
    except TypeError:           # E1: no keyword arguments
        return updater.httpDownload(url1, url2 or "", callback)


def _firmware_fota(reset_disable):
    import fota
    return fota(reset_disable=reset_disable)    # the firmware's module is the type


class Fota(object):
    """Firmware upgrade; auto_reset=True restarts the module once the package is in."""

    def __init__(self, auto_reset=False, progress_callback=None):
        self.fota = _firmware_fota(int(not auto_reset))
        self._finished = Event()
        self._success = False
        self._progress = progress_callback

    def _download_callback(self, args):
        if args[0] in (0, 1, 2):
            if self._progress:
                self._progress(args[1])
            if args[1] == 100:
                self._success = True
                self._finished.set()
        else:
            self._success = False
            self._finished.set()

    def get_result(self, timeout=None):
        """Wait up to timeout s for an asynchronous upgrade(); True if it succeeded."""
        self._finished.wait(timeout)
        return self._success

    def upgrade(self, url):
        """Download a differential package from url; True if the download started (or, on
        modules that download synchronously, succeeded)."""
        self._finished.clear()
        self._success = False
        return http_download(self.fota, url, None, self._download_callback) == 0

    def mini_upgrade(self, url1, url2):
        """Two-stage (minimal system) upgrade; True once both were downloaded and checked."""
        return http_download(self.fota, url1, url2) == 0

    def local_upgrade(self, path):
        """Upgrade from a package file: (True, 0) or (False, LOCAL_*_FAILED)."""
        size = uos.stat(path)[6]
        done = 0
        with open(path, "rb") as f:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                if self.fota.write(chunk, size) == -1:
                    return False, LOCAL_WRITE_FAILED
                done += len(chunk)
                if self._progress:
                    self._progress(done * 100 // size)
        if self.fota.flush() == -1:
            return False, LOCAL_FLUSH_FAILED
        if self.fota.verify() == -1:
            return False, LOCAL_VERIFY_FAILED
        return True, 0


def _mkdirs(path):
    built = ""
    for part in path.strip("/").split("/"):
        built += "/" + part
        try:
            uos.mkdir(built)
        except OSError:
            pass


class FileDecode(object):
    """Unpacks a .tar.gz of app files into parent_dir; update_file_list lists what it wrote
    ({"file_name", "size"})."""

    def __init__(self, zip_file, parent_dir="/fota/usr/"):
        self.fp = open(zip_file, "rb")
        self.parent_dir = parent_dir
        self.fileData = None
        self.update_file_list = []

    def get_update_files(self):
        return self.update_file_list

    def unzip(self):
        import uzlib
        self.fp.seek(10)                            # skip the gzip header
        self.fileData = uzlib.DecompIO(self.fp, -15)

    @classmethod
    def _ascii_trip(cls, data):
        return data.decode("ascii").rstrip("\0").strip()

    @classmethod
    def file_size(cls, data):
        text = cls._ascii_trip(data)
        return int(text, 8) if text else 0

    @classmethod
    def get_file_name(cls, data):
        return cls._ascii_trip(data)

    def get_data(self):
        return self.fileData.read(512)

    def unpack(self):
        """Write every file of the archive; True on success (the archive is closed)."""
        try:
            while True:
                header = self.get_data()
                if len(header) < 512 or not header.strip(b"\0"):
                    return True
                name = self.get_file_name(header[:100])
                size = self.file_size(header[124:136])
                target = self.parent_dir + name
                if header[156:157] == b"5" or name.endswith("/"):
                    _mkdirs(target)
                    continue
                _mkdirs(target[:target.rfind("/")])
                left = size
                with open(target, "wb") as out:
                    while left > 0:
                        block = self.get_data()
                        if not block:
                            return False
                        out.write(block[:left])
                        left -= len(block)
                self.update_file_list.append({"file_name": name, "size": size})
        except Exception:
            return False
        finally:
            self.fp.close()


class AppFota(object):
    """Upgrade of files under /usr: downloaded now, moved into place at the next boot once
    set_update_flag() was called."""

    def __init__(self):
        import app_fota
        self.fota = app_fota.new()

    def set_update_flag(self):
        self.fota.set_update_flag()

    def download(self, url, file_name):
        return self.fota.download(url, file_name) == 0

    def bulk_download(self, info):
        """info: [{"url": ..., "file_name": ...}]; the firmware's result (failed entries)."""
        return self.fota.bulk_download(info)

    def download_tar(self, url, path="/usr/temp.tar.gz"):
        """Download a .tar.gz of app files and stage them for the next boot; True if done."""
        import request
        from app_fota_download import update_download_stat
        response = request.get(url)
        if response.status_code not in (200, 206):
            return False
        with open(path, "wb") as f:
            for chunk in response.content:
                f.write(chunk)
        from .builtins.ota_boot import updater_dir      # the 2021 firmware's app_fota folder
        staging = updater_dir() + "/usr/"
        _mkdirs(staging)
        archive = FileDecode(path, parent_dir=staging)
        archive.unzip()
        if not archive.unpack():
            return False
        for item in archive.update_file_list:
            update_download_stat("", "/usr/" + item["file_name"], item["size"])
        uos.remove(path)
        return True
