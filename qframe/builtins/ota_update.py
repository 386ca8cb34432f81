"""OTA: authenticated app updates with rollback, and firmware delta updates (`app.ota`).

    from usr.qframe.builtins.ota_update import Ota, boot_check
    RESTARTING = boot_check()         # first thing in main.py: finish or undo an update
    Ota(app=app, version=VERSION)     # section OTA; commands `ota`, `fota`, `ota_status`

An app update: the manifest (codecs/ota_manifest.py) is fetched and authenticated, flash space
checked, every file downloaded into /usr/.ota/new (builtins/ota_download.py: HTTP Range resumes
after a dropped link or a reboot) and checked against its size and SHA-256, the files it replaces copied to
/usr/.ota/prev, the new ones moved into the app_fota updater folder, the update flag set and the
module restarted: the firmware moves them into /usr. The new version then has `health_s`
seconds (and `trial_boots` boots) to publish `healthy_topic`; otherwise the previous version is
staged back the same way and the failed version is never retried unless a command forces it.
The phases and the boot decisions are in protocols/ota_state.py; docs/OTA.md has the whole story.

Events: `ota.event` (forwarded to the HES by the cloud link) carries {"event": ..., ...}:
started, progress, refused, failed, activating, installed, rolled_back, fota. `ota.step`
carries the name of each step as it starts (download, verify, backup, stage, flag, reboot,
first_boot, health) for tests and live views.
"""
import ujson
import utime

from ..core.config import Field, USR_FLASH_BYTES
from ..core.ext import AppExtension
from ..logging import getLogger
from ..store import ota_files as files
from ..threading import Event, Queue, QueueEmpty, QueueClosed
from .ota_boot import boot_check  # noqa: F401  (main.py imports it from here)
from .ota_boot import load_state, result as new_result, roll_back, save_state

_log = getLogger("ota")

_CONNECTED_TOPICS = ("tcp.connected", "mqtt.connected")   # an uplink reached the HES


def url_host(url):
    """The host of an http(s) URL, lower case, without user or port ("" if none)."""
    rest = url.split("://", 1)[-1]
    host = rest.split("/", 1)[0].split("@")[-1]
    if host.startswith("["):
        return host[1:host.find("]")].lower()
    return host.split(":")[0].lower()


def _keys_problem(keys):
    """Why OTA.keys must not be used (an empty, short or published key), or None."""
    from ..codecs.authkeys import key_problem
    for key_id in keys:
        problem = key_problem(keys[key_id], "key %r" % key_id)
        if problem:
            return problem
    return None


# -- the extension ----------------------------------------------------------------------------
class Ota(AppExtension):
    """See the module docstring. Config section OTA."""

    name = "ota"
    config_section = "OTA"
    config_fields = {
        "keys": Field(dict, {}, check=_keys_problem),   # {key id: hex key}: per device/fleet
        "public_keys": Field(dict, {}),          # {key id: hex Ed25519 public key}
        "app_name": Field(str, ""),              # "" -> the Application's name
        "health_s": Field(float, 300.0, lo=0.1, hi=86400),
        "healthy_topic": Field(str, "tcp.connected"),
        "healthy_hold_s": Field(float, 10.0, lo=0, hi=3600),   # the link must stay up this long
        "trial_boots": Field(int, 2, lo=1, hi=10),
        "boot_wdt_s": Field(int, 120, lo=0, hi=3600),   # the launcher's WDT (qframe/launcher.py)
        "check_url": Field(str, ""),             # periodic check of a manifest URL ("" off)
        "check_s": Field(float, 0.0, lo=0, hi=604800),
        "http_timeout_s": Field(float, 20.0, lo=0.1, hi=600),
        "download_s": Field(float, 1800.0, lo=1, hi=86400),    # deadline of one download run
        "resumes": Field(int, 3, lo=0, hi=100),  # boots/triggers a cut download may resume
        "retries": Field(int, 5, lo=0, hi=1000),
        "retry_s": Field(float, 10.0, lo=0, hi=3600),
        "reserve_bytes": Field(int, 8192, lo=0, hi=USR_FLASH_BYTES // 4),
        "chunk": Field(int, 2048, lo=256, hi=16384),
        "fota_reboot": Field(bool, True),
        "fota_timeout_s": Field(float, 1800.0, lo=1, hi=86400),
        "allowed_hosts": Field(list, []),        # hosts ota/fota commands may name ([]: any)
    }

    def __init__(self, name=None, app=None, version="0.0.0", framework=None):
        self.version = version
        if framework is None:
            from .. import __version__ as framework
        self.framework = framework
        self.stats = {"started": 0, "refused": 0, "failed": 0, "installed": 0,
                      "rolled_back": 0, "download_errors": 0, "resumed": 0, "bytes": 0,
                      "fota": 0, "checks": 0, "abandoned": 0, "superseded": 0,
                      "refused_hosts": 0}
        self.state = None
        self.busy = None
        self.progress = None
        self._jobs = None
        self._stop = Event()
        self._health_deadline = None
        self._healthy_since = None
        self._reported_at = None
        AppExtension.__init__(self, name, app)

    # ---------------------------------------------------------------- lifecycle
    def load(self):
        from ..protocols.commands import commands_of
        self.state = load_state()
        self._stop.clear()
        self._jobs = Queue(4)
        commands = commands_of(self.app)
        for name, handler in (("ota", self._cmd_ota), ("fota", self._cmd_fota),
                              ("ota_status", self._cmd_status)):
            commands.unregister(name)
            commands.register(name, handler)
        for topic in _CONNECTED_TOPICS:
            self.subscribe(topic, self._on_connected)
        phase = self.state["phase"]
        if phase == "trial":
            self._step("health")
            self._health_deadline = utime.ticks_add(utime.ticks_ms(),
                                                    int(self.config["health_s"] * 1000))
            self.subscribe(self.config["healthy_topic"], self._on_healthy, replay=True)
            tcp = self._uplink()
            if self.config["healthy_topic"] in _CONNECTED_TOPICS and tcp is not None and \
                    tcp.is_connected():
                self._on_healthy(self.config["healthy_topic"], None)   # it connected before
        elif phase in ("download", "ready"):
            self._resume_or_abandon()
        self._report_pending()
        self.app.spawn(self._run, name="ota")

    def _resume_or_abandon(self):
        """A download cut by a reboot resumes, at most `resumes` times (counted on flash)."""
        state = self.state
        state["resumes"] = state.get("resumes", 0) + 1
        if state["resumes"] > self.config["resumes"]:
            self._give_up(state["target"], "abandoned", "download of %s cut %d times: "
                          "abandoned" % (state["target"], state["resumes"]))
            return
        save_state(state)
        self.stats["resumed"] += 1
        self._jobs.put(("resume",))

    def _give_up(self, version, reason, text):
        """Abandon the update in progress (counted, reported); the running app is untouched."""
        self.stats["abandoned"] += 1
        self._abandon(version)
        self.stats["failed"] += 1
        self._event("failed", version=version, reason=reason, text=text)

    def stop(self, timeout=2.0):
        self._stop.set()
        if self._jobs is not None:
            self._jobs.close()
        self.unsubscribe_all()
        return True

    def status(self):
        report = dict(self.stats)
        state = self.state or {}
        report.update({"version": self.version, "phase": state.get("phase"),
                       "target": state.get("target"), "busy": self.busy,
                       "progress": self.progress, "failed": list(state.get("failed") or []),
                       "last": state.get("result")})
        return report

    # ---------------------------------------------------------------- triggers
    def update(self, url=None, manifest=None, force=False):
        """Queue an app update from a manifest URL (or manifest text + url as the files'
        base); False if one is already running or queued."""
        return self._queue(("app", url, manifest, force, False))

    def firmware(self, url):
        """Queue a firmware delta (FOTA) from url; False if busy."""
        return self._queue(("fota", url))

    def _queue(self, job):
        if self._jobs is None or self.busy is not None:
            return False
        try:
            self._jobs.put(job)
        except Exception:
            return False
        self.busy = job[0]
        return True

    def _allowed(self, url):
        """ValueError (counted, logged) when OTA.allowed_hosts is set and url's host is not in
        it: a signed command may still not point the module at any server."""
        allowed = self.config["allowed_hosts"]
        host = url_host(url)
        if allowed and host not in allowed:
            self.stats["refused_hosts"] += 1
            self.log.warning("refused: host %r is not in OTA.allowed_hosts", host)
            raise ValueError("refused: host %r is not in OTA.allowed_hosts" % host)

    def _cmd_ota(self, args):
        args = args if isinstance(args, dict) else {}
        url, manifest = args.get("url"), args.get("manifest")
        if not isinstance(url, str) or not url:
            raise ValueError("args.url (the manifest's URL, or the files' base with "
                             "args.manifest) is required")
        self._allowed(url)
        if manifest is not None and not isinstance(manifest, str):
            raise ValueError("args.manifest is the manifest.ota text")
        if not self.update(url, manifest, bool(args.get("force"))):
            return {"accepted": False, "busy": self.busy, "phase": self.state["phase"]}
        return {"accepted": True, "running": self.version}

    def _cmd_fota(self, args):
        url = args.get("url") if isinstance(args, dict) else None
        if not isinstance(url, str) or not url:
            raise ValueError("args.url (the firmware delta package) is required")
        self._allowed(url)
        return {"accepted": self.firmware(url)}

    def _cmd_status(self, args):
        return self.status()

    # ---------------------------------------------------------------- job thread
    def _run(self):
        period_ms = int(self.config["check_s"] * 1000) if self.config["check_url"] else 0
        next_check = utime.ticks_add(utime.ticks_ms(), period_ms)
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=1.0)
            except QueueClosed:
                return
            except QueueEmpty:
                self._tick_health()
                self._tick_report()
                due = period_ms > 0 and utime.ticks_diff(utime.ticks_ms(), next_check) >= 0
                if not due or self.busy is not None or self.state["phase"] != "idle":
                    continue
                next_check = utime.ticks_add(utime.ticks_ms(), period_ms)
                self.stats["checks"] += 1
                job = ("app", self.config["check_url"], None, False, True)
            try:
                from . import ota_job           # on the first job: the rarely used code
                if job[0] == "fota":
                    ota_job.run_fota(self, job[1])
                else:
                    ota_job.run_app(self, job)
            except Exception as exc:
                self.stats["failed"] += 1
                _log.exception("OTA job %s failed", exc, job[0])
            self.busy = None
            self.progress = None
            self._tick_health()

    def _tick_health(self):
        if self._health_deadline is None or self.state["phase"] != "trial":
            return
        if self._still_healthy():
            self._confirm()
            return
        if utime.ticks_diff(utime.ticks_ms(), self._health_deadline) >= 0:
            self._health_deadline = None
            text = "no %s held %s s within %s s" % (self.config["healthy_topic"],
                                                    self.config["healthy_hold_s"],
                                                    self.config["health_s"])
            self._event("failed", version=self.state["target"], reason="unhealthy", text=text)
            self.stats["rolled_back"] += 1
            self._step("reboot")
            roll_back(self.state, "unhealthy", text)

    def _on_healthy(self, topic, data):
        if self.state["phase"] != "trial" or self._health_deadline is None:
            return
        if self._healthy_since is None:
            self._healthy_since = utime.ticks_ms()
        if self.config["healthy_hold_s"] <= 0:
            self._confirm()

    def _still_healthy(self):
        """The healthy signal came and, if there is an uplink, it has stayed up since."""
        if self._healthy_since is None:
            return False
        tcp = self._uplink()
        if tcp is not None and not getattr(tcp, "is_connected", lambda: True)():
            self._healthy_since = None          # it dropped: wait for the signal again
            return False
        held = utime.ticks_diff(utime.ticks_ms(), self._healthy_since)
        return held >= self.config["healthy_hold_s"] * 1000

    def _confirm(self):
        self._health_deadline = None
        state = self.state
        state["result"] = new_result(state["target"], True, "ok", "healthy")
        state["phase"], state["boots"], state["target"] = "idle", 0, None
        save_state(state)
        self.stats["installed"] += 1
        _log.info("OTA: version %s healthy: update confirmed", self.version)
        self._report_pending()

    def _uplink(self):
        """The app's uplink driver (TCP or MQTT), or None."""
        extensions = self.app.extensions
        return extensions.get("tcp") or extensions.get("mqtt")

    def _on_connected(self, topic, peer):
        self._report_pending()

    def _report_pending(self):
        """Publish the last result; it counts as reported once a link it went out on stayed up
        healthy_hold_s (checked by _tick_report), else it goes again on the next connection."""
        result = self.state.get("result") if self.state else None
        if not result or result.get("reported"):
            return
        data = dict(result)
        data.pop("reported", None)
        self.app.bus.publish("ota.event", data)
        tcp = self._uplink()
        if tcp is None:
            result["reported"] = True       # no uplink to wait for
            save_state(self.state)
        elif getattr(tcp, "is_connected", lambda: False)():
            self._reported_at = utime.ticks_ms()

    def _tick_report(self):
        result = self.state.get("result") if self.state else None
        if self._reported_at is None or not result or result.get("reported"):
            return
        tcp = self._uplink()
        if tcp is not None and not tcp.is_connected():
            self._reported_at = None
            return
        if utime.ticks_diff(utime.ticks_ms(), self._reported_at) >= \
                self.config["healthy_hold_s"] * 1000:
            result["reported"] = True
            save_state(self.state)


    def _event(self, event, **data):
        data["event"] = event
        level = _log.warning if event in ("refused", "failed") else _log.info
        level("OTA %s: %s", event, ujson.dumps(data))
        self.app.bus.publish("ota.event", data)

    def _step(self, name):
        self.app.bus.publish("ota.step", name)

    # ---------------------------------------------------------------- jobs (ota_job.py)
    def _refuse(self, job, reason, text):
        self.stats["refused"] += 1
        self._event("refused", reason=reason, text=text, url=job[1] if job else None)

    def _fail(self, exc, version=None):
        self.stats["failed"] += 1
        self._event("failed", version=version, reason=exc.reason, text=exc.text)

    def _abandon(self, version):
        """Drop the staging area; the running app was never touched."""
        files.remove_tree(files.NEW_DIR)
        files.remove(files.MANIFEST_PATH)
        self.state.update({"phase": "idle", "target": None, "url": None, "resumes": 0})
        save_state(self.state)

    def _on_bytes(self, done, total):
        self.progress = {"bytes": done, "total": total}
