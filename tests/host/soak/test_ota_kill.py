"""The OTA kill loop: a power cut (SIGKILL) at every step of an update, to versions that fail in
every way, on CPython and MicroPython; the module always ends on a verified version that runs.

Steps: download, verify, backup, stage, flag, reboot, first_boot (killed as the new version's
app module is imported, on trial), load (killed as its load() starts), health (killed in the
health window). Every kill point is a line the app prints before it can report healthy, so a
version on trial is still on trial when the power goes.
Versions: good, "import" (an import error), "load" (load() raises), "hang" (load() never returns:
the launcher's watchdog resets it), "stop" (the app stops after load at every boot: a crash
loop), "missing" (the entry module is gone at the first boot).

`make test` runs OTA_KILL_RUNS combinations (default 4 per interpreter) drawn with OTA_KILL_SEED;
`make soak` runs all of them (OTA_KILL_RUNS=all).
"""
import os
import random

import pytest

from ota_helpers import KEY, Board, _config, _files_match, _install, _source, event
from tools.ota import package
from tools.ota.server import PackageServer

STEPS = ["download", "verify", "backup", "stage", "flag", "reboot", "first_boot", "load",
         "health"]
KINDS = ["good", "import", "load", "hang", "stop", "missing"]
SEED = int(os.environ.get("OTA_KILL_SEED", "18"))
RUNS = os.environ.get("OTA_KILL_RUNS", "4")


def _combinations(interpreter):
    every = [(step, kind) for kind in KINDS for step in STEPS
             if not (kind == "import" and step in ("load", "health"))]   # never reached
    if RUNS == "all":
        return every
    pick = random.Random("%s-%s" % (SEED, interpreter))
    return pick.sample(every, min(int(RUNS), len(every)))


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """v1.0.0 sources and a served package of v1.1.0 for each kind."""
    tmp = tmp_path_factory.mktemp("kill")
    v1 = _source(tmp, "1.0.0", extra={"old_only.py": "X = 1\n"})
    pkg_v1 = str(tmp / "pkg-v1")
    package.build(pkg_v1, "fleet", KEY, source=v1)
    served = {}
    for kind in KINDS:
        fail = "" if kind in ("good", "missing") else kind
        src = _source(tmp, "1.1.0", fail=fail, name="v2" + kind,
                      extra={"feature.py": "Y = 2\n" * 100})
        pkg = str(tmp / ("pkg-" + kind))
        package.build(pkg, "fleet", KEY, source=src, delete=["/usr/old_only.py"])
        served[kind] = (pkg, PackageServer(pkg).start())
    yield {"tmp": tmp, "v1": v1, "pkg_v1": pkg_v1, "served": served}
    for _pkg, server in served.values():
        server.stop()


def _kill_loop(packages, interpreter, step, kind):
    pkg, server = packages["served"][kind]
    root = str(packages["tmp"] / ("board-%s-%s-%s" % (interpreter, step, kind)))
    os.makedirs(os.path.join(root, "usr"))
    _install(packages["v1"], root, _config(health_s=3))
    b = Board(root, interpreter)
    b.write("trigger", server.url())
    _kill_at(b, {"first_boot": "import 1.1.0", "load": "load 1.1.0"}.get(step, step))
    if kind == "missing":                       # the entry lost on flash once v2 is there
        if not _files_match(root, pkg):
            _kill_at(b, "import 1.1.0")
        assert b.state()["phase"] == "trial", b.state()
        os.remove(os.path.join(root, "usr", "app_main.py"))
    # power on again: it must settle on a verified version that runs
    if kind == "good":
        b.boot(event("installed"), timeout=90)
        expected, pkg_expected = "1.1.0", pkg
    else:
        b.boot(event("rolled_back"), timeout=90)
        expected, pkg_expected = "1.0.0", packages["pkg_v1"]
        assert b.state()["failed"] == ["1.1.0"], b.state()
    assert _files_match(root, pkg_expected), (step, kind)
    assert b.state()["phase"] == "idle", b.state()
    b.boot("RUNNING " + expected, timeout=60)        # and it runs after another power cut
    return b.boots


def _kill_at(b, point):
    """Boot until the app prints KILLME at `point` (an ota step, "import V" or "load V"), then
    cut the power."""
    b.write("kill_at", point)
    assert b.boot("never printed", timeout=60) == "KILLME " + point
    os.remove(os.path.join(b.root, "usr", "kill_at"))


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_kill_loop_ends_on_a_verified_version_that_runs(packages, interpreter):
    outcomes = []
    for step, kind in _combinations(interpreter):
        boots = _kill_loop(packages, interpreter, step, kind)
        outcomes.append("%s/%s: %d boots" % (step, kind, boots))
    print("\nOTA kill loop (%s, seed %s): %d runs, all on a verified version that runs\n  %s"
          % (interpreter, SEED, len(outcomes), "\n  ".join(outcomes)))
