"""tools/dlms.py, the field engineer's DLMS client, against the simulated meter's DLMS server:
the contract's JSON lines and exit codes, both TCP framings, faults the meter injects."""
import json
import os
import subprocess
import sys

import pytest

from tools.simulators import dlms_server

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CLI = os.path.join(REPO, "tools", "dlms.py")


@pytest.fixture()
def server():
    with dlms_server.Server(dlms_server.MeterModel(rows=300)) as srv:
        srv.listen("hdlc")
        srv.listen("wrapper")
        yield srv


def _cli(*args, timeout=30):
    proc = subprocess.run([sys.executable, CLI] + list(args), capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc.returncode, lines, proc.stderr


def _at(server, transport):
    flag = "--wrapper" if transport == "wrapper" else "--hdlc-tcp"
    return [flag, "127.0.0.1:%d" % server.ports[transport]]


@pytest.mark.parametrize("transport", ["hdlc", "wrapper"])
def test_read_registers_and_data(server, transport):
    rc, lines, err = _cli(*_at(server, transport), "read", "1.0.1.8.0.255", "1-0:32.7.0.255",
                          "0.0.96.1.0.255", "1.0.1.6.0.255:5")
    assert rc == 0, err
    assert lines[0] == {"obis": "1.0.1.8.0.255", "class": 3, "attr": 2, "value": 1234.5,
                        "unit": "Wh", "status": "ok"}
    assert lines[1]["value"] == 230.1 and lines[1]["unit"] == "V"
    assert lines[2]["class"] == 1 and lines[2]["value"] == "MTR00000001"
    assert lines[3]["class"] == 4 and lines[3]["attr"] == 5
    rc, lines, err = _cli(*_at(server, transport), "--raw", "read", "1.0.1.8.0.255",
                          "0.0.96.1.0.255")
    assert rc == 0, err
    assert lines[0] == {"obis": "1.0.1.8.0.255", "class": 3, "attr": 2, "value": 12345,
                        "scaler": -1, "unit": 30, "status": "ok"}
    assert lines[1]["value"] == b"MTR00000001".hex()


def test_class_override(server):
    """--class sends the class given (no discovery): a wrong one is refused, reported."""
    rc, lines, _ = _cli(*_at(server, "wrapper"), "--class", "4", "read", "1.0.1.6.0.255:5")
    assert rc == 0 and lines[0]["class"] == 4
    rc, lines, _ = _cli(*_at(server, "wrapper"), "--class", "1", "read", "1.0.1.8.0.255")
    assert rc == 1 and lines[0]["class"] == 1 and lines[0]["status"] != "ok"


def test_help_explains_every_option():
    proc = subprocess.run([sys.executable, CLI, "--help"], capture_output=True, text=True,
                          timeout=30, cwd=REPO)
    assert proc.returncode == 0
    for option in ("--wrapper", "--hdlc-tcp", "--hdlc", "--baud", "--client-sap", "--auth",
                   "--password", "--class", "--raw", "--timeout", "--deadline", "examples:"):
        assert option in proc.stdout


def test_failed_read_exit_1(server):
    rc, lines, _ = _cli(*_at(server, "hdlc"), "read", "1.0.1.8.0.255", "9.9.9.9.9.9")
    assert rc == 1
    assert lines[0]["status"] == "ok" and lines[1]["status"] == "object-undefined"


def test_profile_by_entries_range_and_all(server):
    rc, lines, _ = _cli(*_at(server, "hdlc"), "profile", "1.0.99.1.0.255", "--entries", "3")
    assert rc == 0
    out = lines[0]
    assert out["columns"] == [[8, "0.0.1.0.0.255", 2], [3, "1.0.1.8.0.255", 2], [3, "1.0.2.8.0.255", 2]]
    assert [r[2] for r in out["rows"]] == [5297, 5298, 5299] and out["status"] == "ok"
    rc, lines, _ = _cli(*_at(server, "wrapper"), "profile", "1.0.99.1.0.255",
                        "--from", "2024-01-01T01:00:00", "--to", "2024-01-01T02:00:00")
    assert [r[0] for r in lines[0]["rows"]] == ["2024-01-01T01:%02d:00" % m for m in (0, 15, 30, 45)] \
        + ["2024-01-01T02:00:00"]
    rc, lines, _ = _cli(*_at(server, "hdlc"), "profile", "1.0.99.1.0.255")
    assert rc == 0 and len(lines[0]["rows"]) == 300


def test_clock_set_clock_and_write(server):
    at = _at(server, "wrapper")
    lls = ["--client-sap", "1", "--auth", "low", "--password", "12345678"]
    rc, lines, _ = _cli(*at, *lls, "set-clock", "2030-05-06T07:08:09")
    assert rc == 0 and lines == [{"obis": "0.0.1.0.0.255", "value": "2030-05-06T07:08:09", "status": "ok"}]
    rc, lines, _ = _cli(*at, "clock")
    assert rc == 0 and lines[0]["value"][:15] == "2030-05-06T07:0"
    rc, lines, _ = _cli(*at, "write", "0.0.96.1.1.255:2", '"renamed"')
    assert rc == 0 and lines[0]["status"] == "ok"
    assert _cli(*at, "read", "0.0.96.1.1.255")[1][0]["value"] == "renamed"
    rc, lines, _ = _cli(*at, "write", "1.0.1.8.0.255:2", "5")
    assert rc == 1 and lines[0]["status"] == "read-write-denied"


def test_usage_and_connection_errors_exit_2(server):
    rc, _, err = _cli("clock")
    assert rc == 2 and "required" in err
    rc, _, err = _cli(*_at(server, "hdlc"), "read", "1.2.3")
    assert rc == 2 and "OBIS" in err
    rc, _, err = _cli(*_at(server, "hdlc"), "--auth", "low", "clock")
    assert rc == 2 and "password" in err
    rc, _, err = _cli(*_at(server, "hdlc"), "write", "1.0.1.8.0.255:2", "{bad")
    assert rc == 2 and "JSON" in err
    rc, _, err = _cli("--wrapper", "nohost", "clock")
    assert rc == 2 and "HOST:PORT" in err
    rc, _, err = _cli("--wrapper", "127.0.0.1:1", "clock")
    assert rc == 2 and "connection error" in err
    rc, _, err = _cli(*_at(server, "wrapper"), "--client-sap", "1", "--auth", "low",
                      "--password", "wrong", "clock")
    assert rc == 2 and "authentication-failure" in err


def test_meter_faults(server):
    at = _at(server, "hdlc")
    server.faults.max_info = 32                      # segmented replies and requests
    server.max_pdu = 200                             # block transfer
    rc, lines, _ = _cli(*at, "--max-info", "32", "profile", "1.0.99.1.0.255", "--entries", "20")
    assert rc == 0 and len(lines[0]["rows"]) == 20
    server.faults.max_info = None
    server.faults.drop = 1                           # a lost answer: retransmitted
    rc, lines, _ = _cli(*at, "--timeout", "0.5", "read", "1.0.1.8.0.255")
    assert rc == 0 and lines[0]["value"] == 1234.5
    server.faults.corrupt = 1                        # a bad FCS: dropped, retransmitted
    rc, lines, _ = _cli(*at, "--timeout", "0.5", "clock")
    assert rc == 0 and lines[0]["status"] == "ok"
    server.faults.delay_s = 0.2                      # slow but within the timeout
    rc, lines, _ = _cli(*at, "--timeout", "2", "clock")
    assert rc == 0
    server.faults.delay_s = 0
    server.faults.mute = True                        # a meter that stopped answering
    rc, _, err = _cli(*at, "--timeout", "0.3", "--retries", "1", "clock")
    assert rc == 2 and "no answer" in err


def test_hdlc_on_a_serial_port():
    """--hdlc SERIALPORT: the simulated meter's DLMS server on a pty (the optical/RS-485 port)."""
    import pty
    import tty
    master, slave = pty.openpty()
    tty.setraw(slave)
    with dlms_server.Server() as srv:
        srv.serve_fd(master)
        rc, lines, err = _cli("--hdlc", os.ttyname(slave), "--baud", "9600", "read", "1.0.1.8.0.255")
    os.close(slave)
    os.close(master)
    assert rc == 0, err
    assert lines[0]["value"] == 1234.5 and lines[0]["unit"] == "Wh"
