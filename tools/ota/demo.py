"""Push an update to the running app and watch it switch versions (`make sim ARGS="--ota"`).

    python -m tools.ota.demo [--version 1.0.1] [--interpreter cpython|micropython]
                             [--unhealthy] [--root build/ota-demo]

The real app (code/main.py) runs in a board root of plain copies (an update replaces files)
against the simulated HES. A
package built from the working tree with the version bumped is served over HTTP; the HES sends
the `ota` command; the app downloads, verifies, stages, restarts (the host runner boots it
again, the shim's app_fota applies the update) and registers again, now on the new version.
--unhealthy: the HES refuses connections once the update is sent, so the new version never
reports healthy within its window and the previous version comes back. Ends with one JSON line.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from tools.device.deploy import REPO, device_files
from tools.hostrun import board_root
from tools.ota import package
from tools.ota.server import PackageServer
from tools.simulators.hes import HesSim
from tools.simulators.sim_config import app_config, provision

DEMO_ROOT = os.path.join(REPO, "build", "ota-demo")
KEY_ID = "dev-fleet"


def _say(text):
    print("[ota-demo] %s" % text, flush=True)


_KEY = os.urandom(32)     # this demo's own key: the repository publishes none


def _key():
    return _KEY


def _config(hes_port, health_s):
    config = app_config(hes_port)
    config["OTA"] = {"keys": {KEY_ID: _key().hex()}, "health_s": health_s,
                     "healthy_topic": "tcp.connected", "healthy_hold_s": 2.0, "trial_boots": 2,
                     "retry_s": 0.5}
    return config


def install(root, config):
    """The working tree's device files as plain copies in root/usr, config as dev.json."""
    shutil.rmtree(root, ignore_errors=True)
    for dev, local in device_files(REPO):
        target = os.path.join(root, dev.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(local, target)
    with open(os.path.join(root, "usr", "dev.json"), "w") as f:
        json.dump(config, f, indent=1)
    provision(root, config)         # the command key the simulated HES signs `ota` with


def build_package(out, version, workdir):
    """A package of the working tree with code/version.py saying version."""
    src = os.path.join(workdir, "src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(os.path.join(REPO, "qframe"), os.path.join(src, "qframe"), ignore=ignore)
    shutil.copytree(os.path.join(REPO, "code"), os.path.join(src, "code"), ignore=ignore)
    shutil.copy(os.path.join(REPO, "dev.json"), os.path.join(src, "dev.json"))
    with open(os.path.join(src, "code", "version.py"), "w") as f:
        f.write('"""This app\'s version."""\nVERSION = "%s"\n' % version)
    return package.build(out, KEY_ID, _key(), source=src, version=version)


class Runner(object):
    """The app, booted again after every modelled restart (exit code REBOOT_EXIT)."""

    def __init__(self, root, interpreter):
        self.root = root
        self.interpreter = interpreter
        self.proc = None
        self.boots = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _loop(self):
        while not self.stopping:
            self.boots += 1
            self.proc = subprocess.Popen(board_root.run_command(self.root, self.interpreter),
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True, cwd=REPO, start_new_session=True)
            for line in self.proc.stdout:
                if "ota" in line.lower() or "loaded" in line:
                    print("  app | " + line.rstrip(), flush=True)
            code = self.proc.wait()
            if code != board_root.REBOOT_EXIT or self.stopping:
                return
            _say("the module restarted (boot %d)" % (self.boots + 1))

    def stop(self):
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.thread.join(10)


def _status(hes, timeout=20.0):
    reply = hes.command("ota_status", timeout=timeout)
    return (reply or {}).get("result") or {}


def _wait_version(hes, version, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _status(hes, 2.0)
        if status.get("version") == version and status.get("phase") == "idle":
            return status
        time.sleep(0.3)
    return None


def run(version, interpreter="cpython", root=DEMO_ROOT, unhealthy=False, timeout=60.0):
    hes = HesSim(protocol="ack").start()
    workdir = tempfile.mkdtemp(prefix="ota-demo-")
    server = runner = None
    result = {"ok": False}
    try:
        install(root, _config(hes.port, health_s=3.0 if unhealthy else 60.0))
        running = package.read_version(REPO)
        manifest = build_package(os.path.join(workdir, "pkg"), version, workdir)
        server = PackageServer(os.path.join(workdir, "pkg")).start()
        _say("package %s: %d files, %d bytes at %s" % (version, len(manifest["files"]),
             sum(f["size"] for f in manifest["files"]), server.url()))
        runner = Runner(root, interpreter).start()
        before = _wait_version(hes, running, timeout)
        _say("running version %s (HES sees it: %s)" % (running, before is not None))
        if unhealthy:
            hes.refuse = True            # the new version never registers: never healthy
        reply = hes.command("ota", {"url": server.url()}, timeout=10)
        if unhealthy:
            hes.drop_clients()
        _say("HES -> ota: %s" % json.dumps((reply or {}).get("result")))
        if unhealthy:
            hes.wait_for(lambda h: False, 8.0)      # the health window passes
            hes.refuse = False
            after = _wait_version(hes, running, timeout)
        else:
            after = _wait_version(hes, version, timeout)
        final = "rolled_back" if unhealthy else "installed"

        def ota_events(h):
            return [e["data"] for e in list(h.events) if e.get("event") == "ota"]
        hes.wait_for(lambda h: any(d.get("event") == final for d in ota_events(h)), 10.0)
        events = ota_events(hes)
        for data in events:
            _say("HES got OTA event: %s" % json.dumps(data, sort_keys=True))
        expected = running if unhealthy else version
        result = {"ok": after is not None, "from": running, "to": version,
                  "now": (after or {}).get("version"), "expected": expected,
                  "boots": runner.boots, "events": [d.get("event") for d in events],
                  "failed": (after or {}).get("failed")}
        _say("now running %s (expected %s)" % (result["now"], expected))
    finally:
        if runner is not None:
            runner.stop()
        if server is not None:
            server.stop()
        hes.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", help="the version to push (default: the running one "
                                          "with its last number + 1)")
    parser.add_argument("--interpreter", choices=["cpython", "micropython"], default="cpython")
    parser.add_argument("--unhealthy", action="store_true",
                        help="the new version never reaches the HES: watch it roll back")
    parser.add_argument("--root", default=DEMO_ROOT)
    args = parser.parse_args(argv)
    version = args.version
    if not version:
        parts = package.read_version(REPO).split(".")
        version = ".".join(parts[:-1] + [str(int(parts[-1]) + 1)])
    result = run(version, args.interpreter, args.root, args.unhealthy)
    print(json.dumps(result, sort_keys=True))
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
