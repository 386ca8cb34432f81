"""The sim's summary (tools/simulators/system.py, docs/SIM.md): its `ok` key, the downlink's
counts, and a clean MQTT run that logs no warning (its generated config has no section the app
does not use; a clean stop is INFO)."""
import json
import os
import subprocess
import sys

from tools.hostrun.board_root import REPO
from tools.simulators import system


def _result(**figures):
    result = {"lost": 0, "meter_send_errors": 0, "downlink_lost": 0, "faults": {}}
    result.update(figures)
    return result


def test_ok_is_true_only_when_nothing_was_lost_and_nothing_failed():
    assert system.verdict(_result(), 0)["ok"] is True
    assert system.verdict(_result(), 0)["app_exit"] == 0
    assert system.verdict(_result(lost=1), 0)["ok"] is False
    assert system.verdict(_result(meter_send_errors=2), 0)["ok"] is False
    assert system.verdict(_result(), 1)["ok"] is False                    # the app failed
    assert system.verdict(_result(), None)["ok"] is False                 # or never stopped
    assert system.verdict(_result(downlink_lost=1), 0)["ok"] is False
    # with faults the downlink is best effort
    assert system.verdict(_result(downlink_lost=1, faults={"drop": 1}), 0)["ok"] is True
    # with power cuts only what was lost while the app was up counts
    cuts = object()
    assert system.verdict(_result(lost=3, lost_while_up=0), 0, cuts)["ok"] is True
    assert system.verdict(_result(lost=3, lost_while_up=1), 0, cuts)["ok"] is False


def test_the_mqtt_config_has_only_the_sections_the_app_uses():
    config = system.mqtt_config(system.app_config(1883, "/dev/null"), 1883)
    assert "TCP_SERVER" not in config and config["MQTT"]["device_id"] == "sim-module-1"


def test_a_clean_mqtt_run_is_ok_without_warnings_and_counts_the_downlink(tmp_path):
    root = str(tmp_path / "sim")
    run = subprocess.run(
        [sys.executable, "-m", "tools.simulators.system", "--uplink", "mqtt", "--duration", "3",
         "--downlink", "3", "--log", "--root", root],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert run.returncode == 0 and summary["ok"] is True, out
    assert [line for line in out.splitlines() if "WARNING" in line] == [], out
    assert summary["downlink_sent"] > 0, summary
    assert (summary["downlink_received"], summary["downlink_lost"],
            summary["downlink_duplicates"]) == (summary["downlink_sent"], 0, 0), summary
    with open(os.path.join(root, "usr", "dev.json")) as f:
        assert "TCP_SERVER" not in json.load(f)
