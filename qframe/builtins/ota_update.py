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
from ..threading import Event, Queue, QueueEmpty, QueueClosed

_log = getLogger("ota")

_CONNECTED_TOPICS = ("tcp.connected", "mqtt.connected")   # an uplink reached the HES


def boot_check():
    """First thing in main.py: finish or undo an update (builtins/ota_boot.py boot_check)."""
    from .ota_boot import boot_check as check
    return check()


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
        self._watching = False      # a trial or an unreported result: ota_confirm.py
        AppExtension.__init__(self, name, app)

    # ---------------------------------------------------------------- lifecycle
    def load(self):
        from ..protocols.commands import commands_of
        from . import ota_boot
        self.state = ota_boot.load_state()
        self._stop.clear()
        self._jobs = Queue(4)
        commands = commands_of(self.app)
        for name, handler in (("ota", self._cmd_ota), ("fota", self._cmd_fota),
                              ("ota_status", self._cmd_status)):
            commands.unregister(name)
            commands.register(name, handler)
        for topic in _CONNECTED_TOPICS:
            self.subscribe(topic, self._on_connected)
        if self.state["phase"] in ("download", "ready"):
            from . import ota_job
            ota_job.resume_or_abandon(self)
        from . import ota_confirm
        self._watching = ota_confirm.start(self)
        if not self._watching and self._jobs.size() == 0:
            ota_boot.unload()
        self.app.spawn(self._run, name="ota")

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
                self._tick()
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
            self._tick()

    def _tick(self):
        """The post-update watch (builtins/ota_confirm.py) while something is pending; the
        boot code is forgotten once nothing is."""
        if not self._watching:
            return
        from . import ota_confirm
        if not ota_confirm.tick(self):
            self._watching = False
            from .ota_boot import unload
            unload()

    def _on_healthy(self, topic, data):
        if self._health_deadline is not None:
            from . import ota_confirm
            ota_confirm.on_healthy(self)

    def _uplink(self):
        """The app's uplink driver (TCP or MQTT), or None."""
        extensions = self.app.extensions
        return extensions.get("tcp") or extensions.get("mqtt")

    def _on_connected(self, topic, peer):
        if self._watching:
            from . import ota_confirm
            ota_confirm.report_pending(self)

    def _event(self, event, **data):
        data["event"] = event
        level = _log.warning if event in ("refused", "failed") else _log.info
        level("OTA %s: %s", event, ujson.dumps(data))
        self.app.bus.publish("ota.event", data)

    def _step(self, name):
        self.app.bus.publish("ota.step", name)

    def _on_bytes(self, done, total):
        self.progress = {"bytes": done, "total": total}
