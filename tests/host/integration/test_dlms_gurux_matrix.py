"""DLMS-lite against a server we did not write: gurux-dlms's own server classes
(tests/host/gurux_server.py) on HDLC over TCP, WRAPPER and HDLC on a pty, with no and with
low authentication. Each case reads with tools/dlms.py or with the `dlms` extension through
the module (the HES asking the module), and compares with what gurux's own client reads from
the same server over the same transport in the same run.

50 cases: tools/dlms.py x 3 transports x 2 auth x 7 operations (42), the module x 2
transports x 2 auth x 2 operations (8). The meters are shared by the whole module."""
import contextlib
import datetime
import importlib.util
import io
import json
import os

import pytest

from tools.hostrun import board_root

board_root.use_device_code()

import shimctl  # noqa: E402
from gurux_dlms import GXDLMSClient  # noqa: E402
from gurux_dlms.enums import DataType  # noqa: E402
from gurux_dlms.objects import (GXDLMSClock, GXDLMSData, GXDLMSDemandRegister,  # noqa: E402
                                GXDLMSExtendedRegister, GXDLMSProfileGeneric, GXDLMSRegister)
from gurux_peer import GuruxSession  # noqa: E402
from gurux_server import PASSWORD, GuruxMeter  # noqa: E402
from usr.qframe import Application  # noqa: E402
from usr.qframe.builtins.dlms import Dlms  # noqa: E402
from usr.qframe.codecs import cosem  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_spec = importlib.util.spec_from_file_location("dlms_cli", os.path.join(REPO, "tools", "dlms.py"))
cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli)

REGISTERS = [("1.0.1.8.0.255", GXDLMSRegister, 3), ("1.0.32.7.0.255", GXDLMSRegister, 3),
             ("1.0.1.6.0.255", GXDLMSExtendedRegister, 3), ("1.0.31.4.0.255", GXDLMSDemandRegister, 4)]
DATA = [("0.0.1.0.0.255", GXDLMSClock), ("0.0.96.1.0.255", GXDLMSData),
        ("0.0.42.0.0.255", GXDLMSData), ("0.0.96.14.0.255", GXDLMSData)]
LOAD, EVENTS, DAILY = "1.0.99.1.0.255", "0.0.99.98.0.255", "1.0.98.1.0.255"
RANGE = (datetime.datetime(2024, 1, 1, 6, 0), datetime.datetime(2024, 1, 1, 9, 0))
ENTRIES = 5
CLI_OPS = ("registers", "data", "profile", "profile-range", "profile-entries", "events",
           "short-rows")
MODULE_OPS = ("readings", "profile")
TRANSPORTS = ("hdlc-tcp", "wrapper", "hdlc-pty")
AUTHS = ("none", "low")
CASES = ([("cli", t, a, op) for t in TRANSPORTS for a in AUTHS for op in CLI_OPS]
         + [("module", t, a, op) for t in ("wrapper", "hdlc-pty") for a in AUTHS
            for op in MODULE_OPS])


def test_the_matrix_has_50_cases():
    assert len(CASES) == 50


@pytest.fixture(scope="module")
def meters():
    hdlc, wrapper, line = GuruxMeter("hdlc"), GuruxMeter("wrapper"), GuruxMeter("hdlc")
    where = {"hdlc-tcp": hdlc.listen_tcp(), "wrapper": wrapper.listen_tcp(),
             "hdlc-pty": line.listen_pty()}
    yield where
    for meter in (hdlc, wrapper, line):
        meter.stop()


# --- what gurux's client reads ------------------------------------------------------------

def _gurux(where, transport, auth):
    kind = "wrapper" if transport == "wrapper" else "hdlc"
    host = None if transport == "hdlc-pty" else "127.0.0.1"
    low = auth == "low"
    session = GuruxSession(host, where[transport], kind, PASSWORD if low else None,
                           17 if low else 16)
    session.open()
    return session


def _text(value):
    """An octet string as the CLI shows it: text when printable, hex otherwise."""
    raw = bytes(value)
    if raw and all(32 <= b < 127 for b in raw):
        return raw.decode()
    return raw.hex()


def _iso(value):
    return value.value.strftime("%Y-%m-%dT%H:%M:%S")


def _plain(value, hexed=False):
    if hasattr(value, "value") and isinstance(value.value, datetime.datetime):
        return _iso(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex() if hexed else _text(value)
    return value


def gurux_reads(session, op, hexed=False):
    """Normalised readings: registers [(obis, value scaled, unit code)], data [(obis,
    value)], profiles [row, ...]."""
    if op == "registers":
        out = []
        for ln, cls, scaler_attr in REGISTERS:
            obj = cls(ln)
            session.read(obj, scaler_attr)
            value = session.read(obj, 2)
            out.append((ln, round(value, 9), int(obj.unit)))
        return out
    if op == "data":
        out = []
        for ln, cls in DATA:
            obj = cls(ln)
            out.append((ln, _plain(session.read(obj, 2), hexed)))
        return out
    ln = {"events": EVENTS, "short-rows": DAILY}.get(op, LOAD)
    pg = GXDLMSProfileGeneric(ln)
    session.read(pg, 3)
    if op == "profile-range":
        rows = session.rows_by_range(pg, RANGE[0], RANGE[1])
    elif op == "profile-entries":
        used = session.read(pg, 7)
        rows = session.rows_by_entry(pg, used - ENTRIES + 1, ENTRIES)
    elif op == "short-rows":               # gurux refuses to match them to the columns
        rows = [[GXDLMSClient.changeType(row[0], DataType.DATETIME)] + list(row[1:])
                for row in session.raw(pg, 2)]
    else:
        rows = session.read(pg, 2)
    return [[_plain(v) for v in row] for row in rows]


# --- what DLMS-lite reads -----------------------------------------------------------------

def _scaled(line):
    """(obis, value scaled, unit code) of a reading in any of the output forms."""
    value, unit = line["value"], line.get("unit")
    if "scaler" in line:
        value = value * 10 ** line["scaler"] if line["scaler"] >= 0 else value / 10 ** -line["scaler"]
    if isinstance(unit, str):
        unit = [code for code, name in cosem.UNITS.items() if name == unit][0]
    return (line["obis"], round(value, 9), unit)


def run_cli(where, transport, auth, args):
    flag = {"hdlc-tcp": "--hdlc-tcp", "wrapper": "--wrapper", "hdlc-pty": "--hdlc"}[transport]
    at = where[transport] if transport == "hdlc-pty" else "127.0.0.1:%d" % where[transport]
    argv = [flag, at, "--timeout", "1"]
    if auth == "low":
        argv += ["--client-sap", "17", "--auth", "low", "--password", PASSWORD]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.run(argv + list(args))
    return rc, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def cli_reads(where, transport, auth, op):
    if op in ("registers", "data"):
        targets = [item[0] for item in (REGISTERS if op == "registers" else DATA)]
        rc, lines, err = run_cli(where, transport, auth, ["read"] + targets)
        assert rc == 0, (lines, err)
        if op == "registers":
            return [_scaled(line) for line in lines]
        return [(line["obis"], line["value"]) for line in lines]
    ln = {"events": EVENTS, "short-rows": DAILY}.get(op, LOAD)
    args = ["profile", ln]
    if op == "profile-range":
        args += ["--from", RANGE[0].isoformat(), "--to", RANGE[1].isoformat()]
    elif op == "profile-entries":
        args += ["--entries", str(ENTRIES)]
    rc, lines, err = run_cli(where, transport, auth, args)
    assert rc == 0, (lines, err)
    return lines[0]["rows"]


def module_reads(where, transport, auth, op):
    """The HES asks the module (its command registry); the module reads the gurux meter."""
    shimctl.reset()
    cfg = {"timeout_ms": 1000, "interframe_ms": 200, "retries": 1, "command_timeout_s": 20}
    if transport == "wrapper":
        cfg.update(transport="tcp", port=where["wrapper"])
    else:
        cfg.update(transport="uart", uart_port=where["hdlc-pty"])
    if auth == "low":
        cfg.update(client_sap=17, password=PASSWORD)
    app = Application("dlms-gurux")
    app.config.update({"APP": {"stop_timeout": 2.0}, "DLMS": cfg})
    Dlms(app=app)
    rows = []
    app.bus.subscribe("dlms.profile", lambda topic, data: rows.extend(data["rows"]))
    app.load()
    try:
        if op == "readings":
            objects = [item[0] for item in REGISTERS + DATA]
            reply = app.commands.execute({"id": 1, "cmd": "dlms.read_many",
                                          "args": {"objects": objects}})
            assert reply["ok"], reply
            readings = reply["result"]["readings"]
            assert [r["status"] for r in readings] == ["ok"] * len(objects), readings
            return ([_scaled(r) for r in readings[:len(REGISTERS)]],
                    [(r["obis"], r["value"]) for r in readings[len(REGISTERS):]])
        reply = app.commands.execute({"id": 1, "cmd": "dlms.profile", "args": {"obis": LOAD}})
        assert reply["ok"] and reply["result"]["status"] == "ok", reply
        assert reply["result"]["count"] == len(rows)
        return rows
    finally:
        app.stop()
        shimctl.reset()


@pytest.mark.parametrize("who,transport,auth,op", CASES,
                         ids=["-".join(case) for case in CASES])
def test_matches_gurux(meters, who, transport, auth, op):
    session = _gurux(meters, transport, auth)
    try:
        if who == "module" and op == "readings":
            expected = (gurux_reads(session, "registers"), gurux_reads(session, "data", hexed=True))
        else:
            expected = gurux_reads(session, op)
    finally:
        session.close()
    if who == "cli":
        got = cli_reads(meters, transport, auth, op)
    else:
        got = module_reads(meters, transport, auth, op)
    assert got == expected
    assert expected                                     # gurux read something to compare
