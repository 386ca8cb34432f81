"""What goes to the device's /usr: the file list that deploy copies and `tools/board.py stage`
lays out on the host (no mpremote needed here: stage runs on any Python)."""
import os
import posixpath

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USR = "/usr"
MAIN_PY = "/usr/main.py"


class DeployError(Exception):
    pass


def _wanted(name):
    return not (name.startswith(".") or name.endswith((".pyc", ".tmp", "~")))


def _walk(base, device_dir):
    found = []
    for folder, dirs, names in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and _wanted(d))
        rel = os.path.relpath(folder, base)
        target = device_dir if rel == "." else posixpath.join(device_dir, *rel.split(os.sep))
        for name in sorted(names):
            if _wanted(name):
                found.append((posixpath.join(target, name), os.path.join(folder, name)))
    return found


def device_files(source=REPO, config=None, app=None, need_config=True):
    """[(device path, local path)] of the device files, sorted by device path: source's
    qframe/, and the files of app (an app folder: its main.py, dev.json, modules) or else of
    source's code/ and dev.json. config (a file) is /usr/dev.json instead; need_config=False:
    no dev.json is needed (the caller provides one)."""
    files = []
    folders = [(os.path.join(source, "qframe"), USR + "/qframe")]
    folders.append((app, USR) if app else (os.path.join(source, "code"), USR))
    for base, device_dir in folders:
        if not os.path.isdir(base):
            raise DeployError("%s: no such folder (%s)" % (base, "the app folder" if app else
                                                           "is --source the repo root?"))
        files.extend(_walk(base, device_dir))
    if app and not any(path == MAIN_PY for path, _ in files):
        raise DeployError("%s has no main.py: an app folder holds main.py (what the module "
                          "runs), dev.json and its modules" % app)
    files = [f for f in files if f[0] != USR + "/dev.json"]
    dev_json = config or os.path.join(app or source, "dev.json")
    if os.path.isfile(dev_json):
        files.append((USR + "/dev.json", dev_json))
    elif need_config:
        raise DeployError("%s: no such file" % dev_json if config else
                          "%s: no dev.json" % (app or source))
    seen = {}
    for device_path, local in files:
        if device_path in seen:
            raise DeployError("%s and %s would both be %s" % (seen[device_path], local,
                                                              device_path))
        seen[device_path] = local
    return sorted(files)


def twin(device_path):
    """foo.py <-> foo.mpy: the other form of a module (a .py shadows a .mpy on import)."""
    stem, ext = posixpath.splitext(device_path)
    return {".py": stem + ".mpy", ".mpy": stem + ".py"}.get(ext)
