"""OTA end to end on the host: packages built by tools/ota/package.py, served by a real HTTP
server with Range and faults, applied to a board root by the app in a subprocess (the shim's
app_fota applies them at the modelled reboot, tools/hostrun/boot.py restarts)."""
import json
import os

import pytest

from ota_helpers import KEY, STEPS, Board, _config, _files_match, _install, _source, event
from tools.ota import package
from tools.ota.server import PackageServer


@pytest.fixture
def rig(tmp_path):
    """v1 installed in a board root, v2 packaged and served."""
    root = str(tmp_path / "board")
    os.makedirs(os.path.join(root, "usr"))
    v1 = _source(tmp_path, "1.0.0", extra={"old_only.py": "X = 1\n"})
    _install(v1, root, _config())
    v2 = _source(tmp_path, "1.1.0", extra={"feature.py": "Y = 2\n" * 200})
    pkg = str(tmp_path / "pkg-1.1.0")
    package.build(pkg, "fleet", KEY, source=v2, delete=["/usr/old_only.py"])
    server = PackageServer(pkg).start()
    yield {"root": root, "tmp": tmp_path, "server": server, "pkg": pkg}
    server.stop()


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_update_installs_and_confirms(rig, interpreter):
    b = Board(rig["root"], interpreter)
    b.write("trigger", rig["server"].url())
    b.boot(event("installed"))           # the new version ran and reported healthy
    assert "RUNNING 1.1.0" in b.lines and b.version() == "1.1.0"
    assert os.path.exists(os.path.join(rig["root"], "usr", "feature.py"))
    assert not os.path.exists(os.path.join(rig["root"], "usr", "old_only.py"))
    state = b.state()
    assert state["phase"] == "idle" and state["result"]["ok"] is True
    assert state["prev"] == "1.0.0" and state["failed"] == []
    # the previous version is kept to come back to
    assert os.path.exists(os.path.join(rig["root"], "usr", ".ota", "prev", "usr", "old_only.py"))


def test_power_cut_at_every_step_leaves_a_verified_app(tmp_path):
    """A power cut (SIGKILL) at each step: the board root holds v1 whole, or v2 whole, or a
    complete flagged stage the firmware applies at boot; booting again ends on v2, confirmed."""
    v1 = _source(tmp_path, "1.0.0", extra={"old_only.py": "X = 1\n"})
    v2 = _source(tmp_path, "1.1.0", extra={"feature.py": "Y = 2\n" * 200})
    pkg = str(tmp_path / "pkg")
    package.build(pkg, "fleet", KEY, source=v2, delete=["/usr/old_only.py"])
    pkg_v1 = str(tmp_path / "pkg-v1")
    package.build(pkg_v1, "fleet", KEY, source=v1, version="1.0.0")
    server = PackageServer(pkg).start()
    try:
        for step in STEPS:
            root = str(tmp_path / ("board-" + step))
            os.makedirs(os.path.join(root, "usr"))
            _install(v1, root, _config())
            b = Board(root)
            b.write("trigger", server.url())
            # first_boot: killed as the new version's app is imported, before it can confirm
            kill_at = "import 1.1.0" if step == "first_boot" else step
            b.write("kill_at", kill_at)
            assert b.boot("never printed") == "KILLME " + kill_at, step
            os.remove(os.path.join(root, "usr", "kill_at"))
            flagged = os.path.exists(os.path.join(root, "usr", ".updater", "update.flag"))
            assert _files_match(root, pkg_v1) or _files_match(root, pkg) or flagged, step
            b.boot(event("installed"))
            assert _files_match(root, pkg), step
            state = b.state()
            assert state["phase"] == "idle" and state["result"]["ok"], (step, state)
            assert not os.path.exists(os.path.join(root, "usr", "old_only.py")), step
    finally:
        server.stop()


def test_unhealthy_version_rolls_back_and_is_not_retried(tmp_path):
    root = str(tmp_path / "board")
    os.makedirs(os.path.join(root, "usr"))
    v1 = _source(tmp_path, "1.0.0", extra={"old_only.py": "X = 1\n"})
    _install(v1, root, _config(health_s=0.5))
    pkg_v1 = str(tmp_path / "pkg-v1")
    package.build(pkg_v1, "fleet", KEY, source=v1, version="1.0.0")
    bad = _source(tmp_path, "1.1.0", healthy=False, extra={"feature.py": "Y = 2\n"})
    pkg = str(tmp_path / "pkg")
    package.build(pkg, "fleet", KEY, source=bad, delete=["/usr/old_only.py"])
    server = PackageServer(pkg).start()
    try:
        b = Board(root)
        b.write("trigger", server.url())
        b.boot(event("rolled_back"))
        assert "RUNNING 1.1.0" in b.lines          # the new version did run, unhealthy
        assert _files_match(root, pkg_v1)
        assert not os.path.exists(os.path.join(root, "usr", "feature.py"))
        state = b.state()
        assert state["phase"] == "idle" and state["failed"] == ["1.1.0"]
        assert state["result"]["reason"] == "unhealthy" and not state["result"]["ok"]
        b.write("trigger", server.url())            # the same package again: not retried
        b.boot(event("refused"))
        assert b.events("refused")[-1]["reason"] == "failed_before"
        assert b.version() == "1.0.0"
    finally:
        server.stop()


def test_download_cut_mid_file_resumes_with_range(rig):
    rig["server"].cut_after = 400           # feature.py (1200 bytes) is cut at 400 and 800
    rig["server"].cuts_left = 3
    rig["server"].cut_prefix = "/usr/feature.py"
    b = Board(rig["root"])
    b.write("trigger", rig["server"].url())
    b.boot(event("installed"))
    assert rig["server"].cuts == 2
    resumed = [(path, start) for path, start in rig["server"].requests if start > 0]
    assert resumed == [("/usr/feature.py", 400), ("/usr/feature.py", 800)], resumed
    assert b.version() == "1.1.0"


def test_download_resumes_after_a_reboot(rig):
    rig["server"].cut_after = 700
    rig["server"].cuts_left = 1
    rig["server"].cut_prefix = "/usr/feature.py"
    with open(os.path.join(rig["root"], "usr", "dev.json"), "w") as f:
        json.dump(_config(retries=0), f)
    b = Board(rig["root"])
    b.write("trigger", rig["server"].url())
    b.boot(lambda line: event("failed")(line) and "resumable" in line)   # then a power cut
    assert b.state()["phase"] == "download"
    b.boot(event("installed"))
    assert any(start == 700 for _, start in rig["server"].requests), rig["server"].requests
    assert b.version() == "1.1.0"


def _refusal(rig, pkg_dir):
    server = PackageServer(pkg_dir).start()
    try:
        b = Board(rig["root"])
        b.write("trigger", server.url())
        line = b.boot(lambda text: event("refused")(text) or event("failed")(text))
        assert b.version() == "1.0.0" and b.state()["phase"] == "idle"
        assert not os.path.exists(os.path.join(rig["root"], "usr", ".ota", "new"))
        return json.loads(line[6:])
    finally:
        server.stop()


def test_bad_packages_refused_and_app_untouched(rig, tmp_path):
    src = _source(tmp_path, "1.2.0", name="bad")
    cases = {}
    pkg = str(tmp_path / "tampered")
    package.build(pkg, "fleet", KEY, source=src)
    with open(os.path.join(pkg, "usr", "app_main.py"), "r+b") as f:
        f.seek(40)
        f.write(b"#")                                 # one byte changed after signing
    cases["tampered file"] = (pkg, "file_tampered")
    pkg = str(tmp_path / "foreign")
    package.build(pkg, "other", b"someone else's key", source=src)
    cases["foreign"] = (pkg, "foreign")
    pkg = str(tmp_path / "older")
    package.build(pkg, "fleet", KEY, source=src, version="0.9.0")
    cases["downgrade"] = (pkg, "replayed")
    pkg = str(tmp_path / "unsigned")
    package.build(pkg, "fleet", KEY, source=src)
    with open(os.path.join(pkg, "manifest.ota"), "rb") as f:
        blob = f.read()
    with open(os.path.join(pkg, "manifest.ota"), "wb") as f:
        f.write(blob[blob.index(b"\n") + 1:])
    cases["unsigned"] = (pkg, "unsigned")
    pkg = str(tmp_path / "truncated")
    package.build(pkg, "fleet", KEY, source=src)
    with open(os.path.join(pkg, "manifest.ota"), "r+b") as f:
        f.truncate(len(blob) - 30)
    cases["truncated"] = (pkg, "truncated")
    for name, (pkg_dir, reason) in sorted(cases.items()):
        event = _refusal(rig, pkg_dir)
        assert event["reason"] == reason, (name, event)


def test_flash_full_refuses_cleanly(rig):
    b = Board(rig["root"])
    b.write("flash_free", "2000")
    b.write("trigger", rig["server"].url())
    b.boot(event("failed"))
    failed = b.events("failed")[-1]
    assert failed["reason"] == "no_space", failed
    assert b.version() == "1.0.0" and b.state()["phase"] == "idle"


def test_two_updates_in_a_row(rig, tmp_path):
    b = Board(rig["root"])
    b.write("trigger", rig["server"].url())
    b.boot(event("installed"))
    v3 = _source(tmp_path, "1.2.0")
    pkg = str(tmp_path / "pkg-1.2.0")
    package.build(pkg, "fleet", KEY, source=v3,
                  previous=os.path.join(rig["pkg"], "manifest.ota"))
    server = PackageServer(pkg).start()
    try:
        b.write("trigger", server.url())
        b.boot(event("installed", "1.2.0"))
    finally:
        server.stop()
    assert b.version() == "1.2.0" and b.state()["prev"] == "1.1.0"
    assert not os.path.exists(os.path.join(rig["root"], "usr", "feature.py"))   # dropped by v3


def test_firmware_delta_through_fota(rig, tmp_path):
    (tmp_path / "fw").mkdir()
    (tmp_path / "fw" / "delta.bin").write_bytes(b"\x5a" * 5000)
    server = PackageServer(str(tmp_path / "fw")).start()
    try:
        b = Board(rig["root"])
        b.write("fota", server.url("/delta.bin"))
        b.boot(event("fota"))
        done = b.events("fota")[-1]
        assert done["ok"] is True
        # it says what was checked (the firmware's download at 100 %), not "delta verified"
        assert done["checked"].startswith("firmware download "), done
        assert "verified" not in done["text"], done
        assert any('"accepted": true' in line for line in b.lines if line.startswith("REPLY"))
    finally:
        server.stop()


def test_ed25519_signed_package_installs(tmp_path):
    """A package signed with Ed25519: the device holds only the public key."""
    seed = bytes(range(32))
    root = str(tmp_path / "board")
    os.makedirs(os.path.join(root, "usr"))
    config = _config()
    config["OTA"]["keys"] = {}
    config["OTA"]["public_keys"] = {"release": package.ed25519_public_key(seed).hex()}
    _install(_source(tmp_path, "1.0.0"), root, config)
    pkg = str(tmp_path / "pkg")
    package.build(pkg, "release", None, source=_source(tmp_path, "1.1.0"), ed25519_seed=seed)
    with open(os.path.join(pkg, "manifest.ota"), "rb") as f:
        assert f.read().startswith(b"qframe-ota/1 ed25519 release ")
    server = PackageServer(pkg).start()
    try:
        b = Board(root, "micropython")
        b.write("trigger", server.url())
        b.boot(event("installed"))
        assert b.version() == "1.1.0"
    finally:
        server.stop()


def test_periodic_check_installs_a_newer_package_then_stays_quiet(rig):
    with open(os.path.join(rig["root"], "usr", "dev.json"), "w") as f:
        json.dump(_config(check_url=rig["server"].url(), check_s=0.2), f)
    b = Board(rig["root"])
    b.boot(event("installed"))
    assert b.version() == "1.1.0"
    before = len(rig["server"].requests)
    b.boot(lambda line: len(rig["server"].requests) >= before + 3)   # 3 more checks, quiet
    assert not b.events("refused")            # the same version again is not news


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_hes_pushes_an_update_to_the_real_app(tmp_path, interpreter):
    """`make sim ARGS="--ota"`: code/main.py against the simulated HES takes the `ota` command,
    restarts on the new version and reports it upstream."""
    from tools.ota import demo
    result = demo.run("9.9.9", interpreter, root=str(tmp_path / "board"), timeout=40)
    assert result["ok"] and result["now"] == "9.9.9", result
    assert result["events"][-1] == "installed" and result["boots"] == 2, result
