"""The OTA updater's files on flash: its folder, the saved state, and the copy, move and hash
helpers it stages updates with (qframe/builtins/ota_update.py, ota_download.py and ota_boot.py use them).

    /usr/.ota/state.json      the saved phase (written to .tmp and renamed: a power cut leaves
                              the old or the new copy)
    /usr/.ota/manifest.ota    the authenticated manifest of the update in progress
    /usr/.ota/new/<path>      downloads (<path>.part while incomplete)
    /usr/.ota/prev/<path>     the previous version's copies of what the update replaces
"""
import ubinascii
import uhashlib
import ujson
import uos

OTA_DIR = "/usr/.ota"
STATE_PATH = OTA_DIR + "/state.json"
MANIFEST_PATH = OTA_DIR + "/manifest.ota"
NEW_DIR = OTA_DIR + "/new"
PREV_DIR = OTA_DIR + "/prev"

def exists(path):
    try:
        uos.stat(path)
        return True
    except OSError:
        return False


def size(path):
    try:
        return uos.stat(path)[6]
    except OSError:
        return -1


def makedirs(folder):
    path = ""
    for part in folder.split("/"):
        if not part:
            continue
        path += "/" + part
        if not exists(path):
            try:
                uos.mkdir(path)
            except OSError:
                pass


def parent(path):
    return path[:path.rfind("/")]


def remove(path):
    try:
        uos.remove(path)
        return True
    except OSError:
        return False


def remove_tree(path):
    try:
        entries = list(uos.ilistdir(path))
    except OSError:
        remove(path)
        return
    for entry in entries:
        child = path + "/" + entry[0]
        if entry[1] == 0x4000:
            remove_tree(child)
        else:
            remove(child)
    try:
        uos.rmdir(path)
    except OSError:
        pass


def chunks(path, chunk=2048):
    """The file's bytes, chunk by chunk."""
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            if not data:
                return
            yield data


def copy(src, dst):
    makedirs(parent(dst))
    tmp = dst + ".tmp"
    with open(tmp, "wb") as fout:
        for data in chunks(src):
            fout.write(data)
    replace(tmp, dst)


def replace(src, dst):
    """Rename src onto dst (removing dst first where rename does not replace)."""
    try:
        uos.rename(src, dst)
    except OSError:
        remove(dst)
        uos.rename(src, dst)


def move(src, dst):
    """Rename, or copy and remove where src and dst are on different mounts."""
    makedirs(parent(dst))
    try:
        replace(src, dst)
    except OSError:
        copy(src, dst)
        remove(src)


def file_sha256(path):
    """Lower-case hex SHA-256 of a file, or None if it cannot be read."""
    try:
        h = uhashlib.sha256()
        for data in chunks(path):
            h.update(data)
        return ubinascii.hexlify(h.digest()).decode()
    except OSError:
        return None


def free_bytes(path="/usr"):
    """Bytes free on the flash holding path, or None if the firmware cannot say."""
    try:
        st = uos.statvfs(path)
        return st[0] * st[4]
    except (OSError, AttributeError):
        return None


def read_state():
    """The saved state dict, or None (the .tmp copy if the main one is torn)."""
    for path in (STATE_PATH, STATE_PATH + ".tmp"):
        try:
            with open(path) as f:
                state = ujson.load(f)
            if isinstance(state, dict):
                return state
        except (OSError, ValueError):
            pass
    return None


def write_state(state):
    """Write the state so that a power cut leaves the old or the new copy."""
    makedirs(OTA_DIR)
    tmp = STATE_PATH + ".tmp"
    with open(tmp, "w") as f:
        f.write(ujson.dumps(state))
    replace(tmp, STATE_PATH)
