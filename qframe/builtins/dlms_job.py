"""The `dlms` extension's jobs (builtins/dlms.py): the ports to the meter, one association per
job (open, the work, close) and the work itself (reads, writes, actions, profiles, the clock).
Imported with the first job, and with it the association and its codecs (protocols/dlms.py,
dlms_client.py; axdr, hdlc, xdlms...): a module that has DLMS-lite configured to read on demand
keeps none of that code on its heap until the HES asks for a reading. Each function takes the
`Dlms` extension whose config, stats and bus it uses.
"""
import utime

from .. import threading as threads
from ..codecs import axdr, cosem
from ..logging import getLogger
from ..protocols import dlms as proto
from ..protocols.dlms_client import Client
from .sockets import is_timeout, open_socket

_log = getLogger("dlms")


class _TcpPort(object):
    def __init__(self, host, port, timeout_s):
        self.sock = open_socket(host, port, timeout_s)

    def send(self, data):
        view = memoryview(data)
        while view:
            n = self.sock.send(view)
            view = view[n:]

    def recv(self, timeout_ms):
        self.sock.settimeout(timeout_ms / 1000)
        try:
            data = self.sock.recv(2048)
        except OSError as exc:
            if is_timeout(exc):
                return None
            raise
        if not data:
            raise OSError("meter closed the connection")
        return data

    def close(self):
        self.sock.close()


class _UartPort(object):
    def __init__(self, cfg):
        import machine
        self.port = machine.UART(cfg["uart_port"], cfg["baudrate"], 8, cfg["parity"], 1, 0)

    def send(self, data):
        self.port.write(data)

    def recv(self, timeout_ms):
        deadline = utime.ticks_add(utime.ticks_ms(), timeout_ms)
        while True:
            n = self.port.any()
            if n:
                return self.port.read(n)
            if utime.ticks_diff(deadline, utime.ticks_ms()) <= 0:
                return None
            utime.sleep_ms(5)

    def close(self):
        self.port.close()


class _MeterLinkPort(object):
    """HDLC in transparent frames of the meter link; replies arrive through the arbiter."""

    def __init__(self, ext):
        self.ext = ext
        self.inbox = threads.Queue(64)

    def send(self, data):
        if not self.ext.uart().send_transparent(data):
            raise OSError("meter link refused the frame")

    def recv(self, timeout_ms):
        try:
            return self.inbox.get(timeout_ms / 1000)
        except threads.QueueEmpty:
            return None

    def close(self):
        pass


def open_port(ext):
    cfg = ext.config
    kind = cfg["transport"]
    if kind == "tcp":
        return _TcpPort(cfg["host"], cfg["port"], cfg["timeout_ms"] / 1000)
    if kind == "uart":
        return _UartPort(cfg)
    return _MeterLinkPort(ext)


def settings(ext):
    cfg = ext.config
    transport = proto.WRAPPER if cfg["transport"] == "tcp" else proto.HDLC
    return proto.Settings(transport=transport, client_sap=cfg["client_sap"],
                          server_upper=cfg["server_sap"], server_lower=cfg["server_lower"],
                          logical_device=cfg["server_sap"], password=cfg["password"],
                          max_info=cfg["max_info"], window=cfg["window"],
                          retries=cfg["retries"], max_pdu=cfg["max_pdu"],
                          max_blocks=cfg["max_blocks"], max_response=cfg["max_response"])


def run_job(ext, kind, args):
    """One association: open, the work, close. A JSON-ready dict, never raises."""
    ext.stats["jobs"] += 1
    held = False
    port = None
    try:
        if ext.arbiter is not None:
            held = ext._acquire_link()
            if not held:
                ext.stats["link_busy"] += 1
                return {"status": "busy", "error": "the HES holds the meter link"}
        if ext.assoc is None:
            ext.assoc = proto.Association(settings(ext))
        port = ext._port = ext._open_port()
        assoc = ext.assoc
        cfg = ext.config
        deadline = utime.ticks_add(utime.ticks_ms(), cfg["job_timeout_s"] * 1000)

        def expired():
            return utime.ticks_diff(deadline, utime.ticks_ms()) <= 0

        def run(op):
            def recv():
                wait = cfg["interframe_ms"] if assoc.receiver.buffered else cfg["timeout_ms"]
                return port.recv(wait)
            return proto.drive(op, port.send, recv, expired)
        run(assoc.open())
        client = Client(assoc, run, ext.classes)
        try:
            result = _work(ext, client, kind, args)
        finally:
            _release(ext, assoc, port)
        return result
    except Exception as exc:
        ext.stats["job_errors"] += 1
        ext.last_error = "%s: %s" % (type(exc).__name__, exc)
        _log.warning("dlms %s failed: %s", kind, ext.last_error)
        if ext.assoc is not None and port is not None:
            _release(ext, ext.assoc, port)
        return {"status": "error", "error": ext.last_error}
    finally:
        ext._port = None
        if port is not None:
            try:
                port.close()
            except OSError:
                pass
        if held:
            ext._flush_hes(ext._release_link())


def _release(ext, assoc, port):
    """RLRQ then DISC, best effort and without resends, so the meter is free for the
    next client; the association is reset either way."""
    if assoc.associated or assoc.connected:
        retries = assoc.settings.retries
        assoc.settings.retries = 0
        wait = ext.config["timeout_ms"]
        try:
            proto.drive(assoc.close(), port.send, lambda: port.recv(wait))
        except (proto.DlmsTimeout, proto.ProtocolError, OSError, ValueError):
            pass
        finally:
            assoc.settings.retries = retries
    if assoc.last_trailing:
        _log.info("meter sent octets after complete values (ignored; %d in all)",
                  assoc.stats["trailing_octets"])
    assoc.reset()


def _work(ext, client, kind, args):
    if kind == "read":
        obis, attr = _target(args)
        return _counted(ext, client.read(obis, attr, args.get("class")))
    if kind == "read_many":
        readings = []
        for text in args.get("objects") or []:
            obis, attr = cosem.parse_target(text)
            readings.append(_counted(ext, client.read(obis, attr)))
        return {"readings": readings, "status": "ok"}
    if kind == "write":
        obis, attr = _target(args)
        return client.write(obis, attr, args.get("value"), args.get("class"))
    if kind == "action":
        obis = cosem.obis(args["obis"])
        params = args.get("params")
        try:
            value = client.run(client.assoc.action(int(args["class"]), obis, int(args["method"]),
                                                   None if params is None else axdr.encode(params)))
            return {"obis": cosem.obis_text(obis), "method": int(args["method"]),
                    "value": axdr.plain(value), "status": "ok"}
        except proto.DataAccessError as exc:
            return {"obis": cosem.obis_text(obis), "method": int(args["method"]),
                    "status": exc.name}
    if kind == "profile":
        return _profile(ext, client, args)
    if kind == "clock":
        return client.clock()
    if kind == "set_clock":
        return client.set_clock(_when(args.get("time") if args else "now"))
    if kind == "clock_sync":
        return _clock_sync(ext, client)
    raise ValueError("unknown job %r" % kind)


def _counted(ext, reading):
    ext.stats["reads"] += 1
    if reading.get("status") != "ok":
        ext.stats["read_errors"] += 1
    return reading


def _profile(ext, client, args):
    obis = cosem.obis(args["obis"])
    start = _when(args["from"]) if args.get("from") else None
    end = _when(args["to"]) if args.get("to") else None
    entries = args.get("entries")
    chunk = []
    state = {"seq": 0, "columns": None}
    size = ext.config["profile_chunk_rows"]
    bus = ext.app.bus
    text = cosem.obis_text(obis)

    def publish(last):
        bus.publish("dlms.profile", {"obis": text, "columns": state["columns"],
                                     "rows": list(chunk), "seq": state["seq"], "last": last})
        state["seq"] += 1
        del chunk[:]

    def on_row(row):
        chunk.append(row)
        ext.stats["profile_rows"] += 1
        if len(chunk) >= size:
            publish(False)
    def on_columns(columns):
        state["columns"] = columns
    result = client.profile(obis, start, end, entries, on_row, on_columns)
    if result.get("status") == "ok":
        publish(True)
    return result


def _clock_sync(ext, client):
    ext.stats["clock_checks"] += 1
    if ext.config["clock_source"] == "ntp":
        try:
            import ntptime
            ntptime.settime()
        except Exception as exc:
            ext.stats["clock_failures"] += 1
            return {"status": "error", "error": "ntp: %s" % exc}
    meter = client.clock()
    if meter.get("status") != "ok":
        ext.stats["clock_failures"] += 1
        return meter
    ours = _local_now()
    drift = axdr.DateTime.parse_iso(meter["value"]).epoch() - ours.epoch()
    ext.last_drift_s = drift
    out = {"drift_s": drift, "set": False, "status": "ok"}
    if abs(drift) > ext.config["clock_max_drift_s"]:
        done = client.set_clock(_local_now())
        if done.get("status") == "ok":
            ext.stats["clock_sets"] += 1
            out["set"] = True
        else:
            ext.stats["clock_failures"] += 1
            out["status"] = done.get("status")
    _log.info("meter clock drift %d s%s", drift, " (set)" if out["set"] else "")
    return out


def _target(args):
    text = args.get("obis")
    if not isinstance(text, str):
        raise ValueError("obis is required")
    obis, attr = cosem.parse_target(text)
    return obis, int(args.get("attr", attr))


def _local_now():
    t = utime.localtime()
    return axdr.DateTime(t[0], t[1], t[2], t[3], t[4], t[5], 0, None, 0)


def _when(text):
    if text is None or text == "now":
        return _local_now()
    return axdr.DateTime.parse_iso(text)
