"""The OTA extension's jobs (builtins/ota_update.py): an app update (manifest, download, check,
back up, stage, flag, restart) and a firmware delta (FOTA). Imported on the first job, so a
module that never updates keeps none of this, nor the HTTP, manifest and download code, on
its heap. Each function takes the `Ota` extension whose state, stats and events it updates.
"""
import ubinascii

from ..codecs import http
from ..codecs.ota_manifest import Refused, verify as verify_manifest
from ..logging import getLogger
from ..store import ota_files as files
from ..threading import Event
from .ota_download import ENOSPC, Download, OtaFailed
from .ota_boot import note_staged, restart, set_update_flag, save_state, updater_dir

_log = getLogger("ota")


def _keys(ota, section="keys"):
    keys = {}
    for key_id in ota.config[section]:
        try:
            keys[key_id] = ubinascii.unhexlify(ota.config[section][key_id])
        except Exception:
            _log.error("OTA.%s[%s] is not hex: ignored", section, key_id)
    return keys


def _device(ota):
    from .identity import device_id
    try:
        return device_id()
    except Exception:
        return ""


def run_app(ota, job):
    run = Download(ota.config, ota.stats, ota._stop, ota._on_bytes)
    state = ota.state
    if job[0] == "resume":
        url, force = state["url"], True
        try:
            with open(files.MANIFEST_PATH, "rb") as f:
                blob = f.read()
        except OSError:
            blob = None
    else:
        url, blob, force = job[1], job[2], job[3]
        if state["phase"] not in ("idle", "download", "ready"):
            ota._refuse(None, "busy", "an update is in phase %s" % state["phase"])
            return
        if blob is not None:
            blob = blob.encode()
            url = url if url.endswith("/manifest.ota") else url.rstrip("/") + "/manifest.ota"
    try:
        if blob is None:
            blob = run.manifest(url)
        failed = () if force else state["failed"]
        manifest = verify_manifest(blob, _keys(ota), ota.config["app_name"] or
                                   ota.app.name, ota.version, ota.framework,
                                   _device(ota), failed, _keys(ota, "public_keys"))
    except Refused as exc:
        if job[0] == "resume":          # its saved manifest no longer holds: drop it
            ota._give_up(state["target"], exc.reason, exc.text)
        elif job[0] == "app" and job[4] and exc.reason in ("replayed", "failed_before"):
            _log.debug("OTA check: %s", exc.text)     # nothing new: not an event
        else:
            ota._refuse(job, exc.reason, exc.text)
        return
    except OtaFailed as exc:
        if job[0] == "resume":
            ota._give_up(state["target"], exc.reason, exc.text)
        else:
            ota._fail(exc)
        return
    stale = state["target"] if state["phase"] in ("download", "ready") else None
    if job[0] != "resume" and stale is not None:
        ota.stats["superseded"] += 1       # an authentic newer command replaces it
        ota._event("failed", version=stale, reason="superseded",
                    text="replaced by %s" % manifest.version)
        ota._abandon(stale)
    try:
        if job[0] != "resume":
            ota.stats["started"] += 1
            ota._event("started", version=manifest.version, files=len(manifest.files),
                        bytes=manifest.total_size())
            files.remove_tree(files.NEW_DIR)
            _check_space(ota, manifest)
            files.makedirs(files.OTA_DIR)
            with open(files.MANIFEST_PATH, "wb") as f:
                f.write(blob)
            state.update({"phase": "download", "target": manifest.version, "url": url,
                          "result": None, "resumes": 0})
            save_state(state)
        _download_all(ota, run, manifest, url)
        _activate(ota, manifest)
    except OtaFailed as exc:
        if exc.reason == "interrupted":
            _log.warning("OTA download interrupted (%s): resumes on the next boot or "
                         "trigger", exc.text)
            ota._event("failed", version=manifest.version, reason=exc.reason,
                        text=exc.text, resumable=True)
            return
        ota._give_up(manifest.version, exc.reason, exc.text)
    except OSError as exc:
        reason = "no_space" if exc.args and exc.args[0] == ENOSPC else "flash"
        ota._give_up(manifest.version, reason, "%s: %s" % (type(exc).__name__, exc))
    except Exception as exc:        # never left in `download` by a surprise
        ota._give_up(manifest.version, "download", "%s: %s" % (type(exc).__name__, exc))


def _check_space(ota, manifest):
    """OtaFailed('no_space') unless the flash holds what is left to download, the backup
    copies and reserve_bytes."""
    need = ota.config["reserve_bytes"]         # covers the manifest and the state
    for item in manifest.files:
        if files.size(files.NEW_DIR + item["path"]) != item["size"]:
            need += item["size"] - max(0, files.size(files.NEW_DIR + item["path"] + ".part"))
        need += max(0, files.size(item["path"]))            # the backup copy
    free = files.free_bytes()
    if free is not None and free < need:
        raise OtaFailed("no_space", "needs %d bytes of flash, %d free" % (need, free))


def _download_all(ota, run, manifest, url):
    ota._step("download")
    _check_space(ota, manifest)
    total, done = manifest.total_size(), 0
    for item in manifest.files:
        path = files.NEW_DIR + item["path"]
        if files.file_sha256(path) != item["sha256"]:
            files.makedirs(files.parent(path))
            run.file(http.join_url(url, item["path"]), path + ".part", item["size"], done,
                     total)
            ota._step("verify")
            if files.file_sha256(path + ".part") != item["sha256"]:
                files.remove(path + ".part")
                raise OtaFailed("file_tampered", "%s does not match its SHA-256"
                                % item["path"])
            files.replace(path + ".part", path)
        done += item["size"]
        ota.progress = {"bytes": done, "total": total}
    ota.state["phase"] = "ready"
    save_state(ota.state)


def _activate(ota, manifest):
    """Back up what the update replaces, stage it for app_fota, set the flag, restart."""
    state = ota.state
    ota._step("backup")
    backup = []
    for path in manifest.paths() + manifest.delete:
        digest = files.file_sha256(path)
        if digest is not None:
            if files.file_sha256(files.PREV_DIR + path) != digest:
                files.copy(path, files.PREV_DIR + path)
        backup.append({"path": path, "sha256": digest})
    state.update({"backup": backup, "prev": ota.version,
                  "trial_boots": ota.config["trial_boots"], "boots": 0})
    save_state(state)
    ota._step("stage")
    updater = updater_dir()
    for item in manifest.files:
        src = files.NEW_DIR + item["path"]
        if files.exists(src):
            files.move(src, updater + item["path"])
        note_staged(item["path"], item["size"])
    ota._step("flag")
    state["phase"] = "activating"
    save_state(state)
    set_update_flag()
    ota._event("activating", version=manifest.version, running=ota.version)
    ota._step("reboot")
    files.remove_tree(files.NEW_DIR)
    restart()


def run_fota(ota, url):
    import fota
    from ..ota import http_download
    ota.stats["fota"] += 1
    ota._event("started", firmware=url)
    done = Event()
    outcome = {"status": None, "percent": 0}

    def progress(args):
        # (status, percent): status 0, 1, 2 while downloading / done, anything else failed
        status, percent = args[0], args[1]
        outcome["status"], outcome["percent"] = status, percent
        ota.progress = {"percent": percent}
        if status not in (0, 1, 2) or percent == 100:
            done.set()

    updater = fota(reset_disable=1)          # the firmware's module is the type
    code = http_download(updater, url, None, progress)
    if code == 0 and outcome["status"] is not None and not done.is_set():
        done.wait(ota.config["fota_timeout_s"])     # models that download in background
    status = outcome["status"]
    if code != 0 or (status is not None and (status not in (0, 1, 2) or
                                              outcome["percent"] != 100)):
        ota.stats["failed"] += 1
        ota._event("failed", firmware=url, reason="fota", text="fota download returned "
                    "%s, status %s at %s%%" % (code, status, outcome["percent"]))
        return
    # what was checked here: the firmware's own download reported success and 100 %; the delta
    # itself is checked by the firmware when it applies it at restart
    checked = "firmware download status %s at %s%%" % (status, outcome["percent"]) \
        if status is not None else "firmware download returned %s (no progress reported)" % code
    ota._event("fota", firmware=url, ok=True, checked=checked, text="%s; the firmware checks "
               "the delta when the restart applies it" % checked)
    if ota.config["fota_reboot"]:
        ota._step("reboot")
        restart()
