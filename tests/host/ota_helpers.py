"""The OTA tests' rig (tests/host/integration/test_ota.py, tests/host/soak/test_ota_kill.py): app
sources of a given version, installed in a board root, and `Board`, the app in a subprocess."""
import json
import os
import shutil
import signal
import subprocess

from tools.device.deploy import REPO, device_files
from tools.hostrun import board_root

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = b"test-fleet-key-0123456789abcdef"
STEPS = ["download", "verify", "backup", "stage", "flag", "reboot", "first_boot", "health"]


def _config(health_s=20.0, trial_boots=2, **extra):
    ota = {"keys": {"fleet": KEY.hex()}, "health_s": health_s, "healthy_topic": "app.healthy",
           "trial_boots": trial_boots, "healthy_hold_s": 0, "retry_s": 0.05, "retries": 5,
           "http_timeout_s": 5, "reserve_bytes": 0, "boot_wdt_s": 2}
    ota.update(extra)
    return {"APP": {"workers": 1, "log_level": "INFO", "stop_timeout": 3}, "OTA": ota}


def _source(tmp_path, version, healthy=True, extra=None, name="src", fail=""):
    """A source tree: the repo's qframe/, its launcher and the test app as code/, a dev.json;
    fail: how this version fails (tests/host/ota_app/app_main.py)."""
    src = tmp_path / (name + version + fail)
    shutil.copytree(os.path.join(REPO, "qframe"), src / "qframe",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (src / "code").mkdir()
    shutil.copy(os.path.join(REPO, "code", "main.py"), src / "code" / "main.py")
    shutil.copy(os.path.join(HERE, "ota_app", "app_main.py"), src / "code" / "app_main.py")
    (src / "code" / "version.py").write_text('VERSION = "%s"\nHEALTHY = %s\nFAIL = "%s"\n'
                                             % (version, healthy, fail))
    for rel, text in (extra or {}).items():
        (src / "code" / rel).write_text(text)
    (src / "dev.json").write_text(json.dumps(_config()))
    return str(src)


def _install(src, root, config):
    """Deploy src into the board root as plain copies (the update replaces them)."""
    for dev, local in device_files(src):
        target = os.path.join(root, dev.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(local, target)
    with open(os.path.join(root, "usr", "dev.json"), "w") as f:
        json.dump(config, f)


def event(name, version=None):
    """A boot() end: the app printed ota.event `name` (about `version`, if given)."""
    def seen(line):
        if not line.startswith("EVENT "):
            return False
        data = json.loads(line[6:])
        return data.get("event") == name and version in (None, data.get("version"))
    return seen


def _ends(until, line):
    return until(line) if callable(until) else until in line


class Board(object):
    """Boots the board root until told to stop; records what the app printed."""

    def __init__(self, root, interpreter="cpython"):
        self.root = root
        self.interpreter = interpreter
        self.lines = []
        self.boots = 0

    def write(self, name, text):
        with open(os.path.join(self.root, "usr", name), "w") as f:
            f.write(text)

    def state(self):
        """The updater's saved state ({"phase": "idle"} if it never saved one)."""
        path = os.path.join(self.root, "usr", ".ota", "state.json")
        if not os.path.exists(path):
            return {"phase": "idle"}
        with open(path) as f:
            return json.load(f)

    def version(self):
        with open(os.path.join(self.root, "usr", "version.py")) as f:
            return f.read().split('"')[1]

    def boot(self, until, timeout=30.0):
        """Boot (again after every modelled restart) until a printed line contains `until`, or
        `until(line)` is true (also checked with "" while the app is quiet), then kill the
        process (a power cut); KILLME kills it at once. Returns the line that ended it."""
        import queue
        import threading
        import time
        deadline = time.monotonic() + timeout
        while True:
            self.boots += 1
            proc = subprocess.Popen(board_root.run_command(self.root, self.interpreter),
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, cwd=REPO, start_new_session=True)
            lines = queue.Queue()
            threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put(None)],
                             daemon=True).start()
            try:
                while True:
                    try:
                        line = lines.get(timeout=0.1)
                    except queue.Empty:
                        if callable(until) and until(""):       # a condition, not a line
                            return ""
                        if time.monotonic() > deadline:
                            raise AssertionError("timeout; output:\n" +
                                                 "\n".join(self.lines[-40:]))
                        continue
                    if line is None:
                        break
                    self.lines.append(line.rstrip())
                    if _ends(until, line) or line.startswith("KILLME"):
                        return line.rstrip()
                    if time.monotonic() > deadline:
                        raise AssertionError("timeout; output:\n" + "\n".join(self.lines[-40:]))
                code = proc.wait()
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)     # a power cut
                    proc.wait()
            if code not in board_root.RESTART_CODES:
                raise AssertionError("app exited %s; output:\n%s" % (code,
                                     "\n".join(self.lines[-40:])))

    def events(self, name):
        found = []
        for line in self.lines:
            if line.startswith("EVENT "):
                data = json.loads(line[6:])
                if data.get("event") == name:
                    found.append(data)
        return found


def _files_match(root, pkg):
    """True if every file of the package at pkg is in root/usr with its manifest's SHA-256."""
    import hashlib
    with open(os.path.join(pkg, "manifest.ota"), "rb") as f:
        blob = f.read()
    for item in json.loads(blob[blob.index(b"\n") + 1:])["files"]:
        path = os.path.join(root, item["path"].lstrip("/"))
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != item["sha256"]:
                return False
    return True
