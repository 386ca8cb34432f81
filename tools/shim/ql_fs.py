"""ql_fs on the host: QuecPython's file helpers over uos/open (device paths map into the board
root; the flash quota applies). Paths without a leading '/' are taken from the root, as on the
module."""
from shimlib import firmware as _firmware
import uos as _uos
import ujson as _ujson

_DIR = 0x4000


def _abs(path):
    return path if path.startswith("/") else "/" + path


def path_exists(file_path):
    try:
        _uos.stat(_abs(file_path))
        return True
    except OSError:
        return False


def path_dirname(file_path):
    path = _abs(file_path).rstrip("/")
    cut = path.rfind("/")
    return path[:cut] if cut > 0 else "/"


def _is_dir(path):
    return _uos.stat(path)[0] & _DIR == _DIR


def mkdirs(dir_path):
    path = ""
    for part in _abs(dir_path).split("/"):
        if not part:
            continue
        path += "/" + part
        if not path_exists(path):
            _uos.mkdir(path)


def rmdirs(dir_path):
    path = _abs(dir_path).rstrip("/")
    for entry in list(_uos.ilistdir(path)):
        child = path + "/" + entry[0]
        if entry[1] == _DIR:
            rmdirs(child)
        else:
            _uos.remove(child)
    _uos.rmdir(path)


def path_getsize(file_path):
    path = _abs(file_path).rstrip("/")
    if not _is_dir(path):
        return _uos.stat(path)[6]
    return sum(path_getsize(path + "/" + entry[0]) for entry in _uos.ilistdir(path))


def touch(file, data):
    """Write data (a dict) as JSON to file, creating folders; 0, or -1 on failure."""
    try:
        mkdirs(path_dirname(file))
        with open(_abs(file), "w") as f:
            _ujson.dump(data, f)
        return 0
    except (OSError, TypeError, ValueError):
        return -1


def read_json(file):
    """The JSON content of file, its text if it is not JSON, None if it cannot be read."""
    try:
        with open(_abs(file)) as f:
            text = f.read()
    except OSError:
        return None
    try:
        return _ujson.loads(text)
    except ValueError:
        return text


def file_copy(dst, src):
    """Copy src to dst (note QuecPython's argument order); True."""
    with open(_abs(src), "rb") as fin:
        with open(_abs(dst), "wb") as fout:
            while True:
                chunk = fin.read(4096)
                if not chunk:
                    break
                fout.write(chunk)
    return True


_firmware.prune(globals(), "ql_fs")
