"""DLMS/COSEM client for field engineers and tests (host tool), on qframe's own codecs.

    python tools/dlms.py (--wrapper HOST:PORT | --hdlc-tcp HOST:PORT | --hdlc SERIALPORT [--baud N])
                         [--client-sap N] [--server-sap N] [--auth none|low] [--password PW]
                         [--class N] [--raw] COMMAND
      read OBIS[:ATTR] ...                     ATTR defaults to 2; registers also fetch scaler and unit
      profile OBIS [--from ISO8601] [--to ISO8601] [--entries N]
      write OBIS:ATTR JSON_VALUE
      clock | set-clock [ISO8601|now]

One JSON object per line on stdout. Exit 0 when every request succeeded, 1 when one failed,
2 on a usage or connection error (stderr says which). `--help` explains every option with
examples.
"""
import argparse
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.hostrun import board_root  # noqa: E402

board_root.use_device_code()

from usr.qframe.codecs import axdr, cosem  # noqa: E402
from usr.qframe.codecs.acse import AssociationRejected  # noqa: E402
from usr.qframe.protocols import dlms, dlms_client  # noqa: E402


class UsageError(Exception):
    pass


class TcpLink(object):
    def __init__(self, address, timeout):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise UsageError("expected HOST:PORT, got %r" % address)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(timeout)

    def send(self, data):
        self.sock.sendall(data)

    def recv(self):
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        if not data:
            raise OSError("connection closed by the meter")
        return data

    def close(self):
        self.sock.close()


class SerialLink(object):
    def __init__(self, port, baud, timeout):
        import serial
        self.port = serial.Serial(port, baud, timeout=timeout)

    def send(self, data):
        self.port.write(data)

    def recv(self):
        data = self.port.read(1)
        if not data:
            return None
        return data + self.port.read(self.port.in_waiting)

    def close(self):
        self.port.close()


EXAMPLES = """examples:
  tools/dlms.py --wrapper 127.0.0.1:4059 read 1.0.1.8.0.255 0.0.96.1.0.255
      {"obis": "1.0.1.8.0.255", "class": 3, "attr": 2, "value": 1234.5, "unit": "Wh", "status": "ok"}
      {"obis": "0.0.96.1.0.255", "class": 1, "attr": 2, "value": "MTR00000001", "status": "ok"}
  tools/dlms.py --wrapper 127.0.0.1:4059 --raw read 1.0.1.8.0.255
      {"obis": "1.0.1.8.0.255", "class": 3, "attr": 2, "value": 12345, "scaler": -1, "unit": 30, ...}
  tools/dlms.py --hdlc-tcp 127.0.0.1:4060 read 1.0.31.4.0.255:3 --class 5
  tools/dlms.py --hdlc-tcp 127.0.0.1:4060 profile 1.0.99.1.0.255 --entries 96
  tools/dlms.py --hdlc-tcp 127.0.0.1:4060 profile 1.0.99.1.0.255 --from 2024-01-01T00:00 --to 2024-01-02T00:00
  tools/dlms.py --hdlc /dev/ttyUSB0 --baud 9600 --client-sap 17 --auth low --password 12345678 set-clock now
  tools/dlms.py --wrapper 127.0.0.1:4059 --client-sap 17 --auth low --password 12345678 write 0.0.96.14.0.255:2 3
  tools/dlms.py --wrapper 127.0.0.1:4059 clock

output: one JSON object per line on stdout. Register values come scaled, with the unit's
name; octet strings as text when printable, hex otherwise (--raw: the meter's integer with
scaler and unit code, octet strings in hex). Profile rows hold the meter's values, clock
columns as ISO 8601.
exit codes: 0 every request succeeded; 1 a request failed (its line says why: a refused
attribute, a malformed answer); 2 usage or connection error (a refused association, a meter
that does not answer, a broken link), on stderr. After a failed request the association
stays open for the next ones; after a broken link it is released (RLRQ, DISC) so the meter
is free for the next client.
"""


def _parser():
    ap = argparse.ArgumentParser(
        prog="tools/dlms.py", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="DLMS/COSEM client (IEC 62056): reads and writes a meter over HDLC "
                    "(serial line or TCP) or WRAPPER (TCP), with no or low authentication.")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--wrapper", metavar="HOST:PORT",
                       help="WRAPPER (IEC 62056-47) over TCP, e.g. 127.0.0.1:4059")
    where.add_argument("--hdlc-tcp", metavar="HOST:PORT",
                       help="HDLC (IEC 62056-46) frames over TCP, e.g. 127.0.0.1:4060")
    where.add_argument("--hdlc", metavar="SERIALPORT",
                       help="HDLC on a serial line, e.g. /dev/ttyUSB0 (optical probe, RS-485)")
    ap.add_argument("--baud", type=int, default=9600,
                    help="serial line speed with --hdlc (default 9600)")
    ap.add_argument("--client-sap", type=int, default=16,
                    help="client address: 16 public client (no authentication), 17+ usually "
                         "need --auth low (default 16)")
    ap.add_argument("--server-sap", type=int, default=1,
                    help="server (logical device) address, 1 the management device (default 1)")
    ap.add_argument("--auth", choices=("none", "low"), default="none",
                    help="none, or low: LLS with --password (default none)")
    ap.add_argument("--password", help="the LLS password with --auth low, e.g. 12345678")
    ap.add_argument("--class", dest="cls", type=int, metavar="N",
                    help="interface class of every OBIS code given (skips class discovery), "
                         "e.g. 5 for a demand register; default: from the association's "
                         "object list, then likely classes")
    ap.add_argument("--raw", action="store_true",
                    help="values as the meter sends them: integer with scaler and unit code, "
                         "octet strings in hex")
    ap.add_argument("--timeout", type=float, default=3.0,
                    help="seconds to wait for each answer before resending (default 3)")
    ap.add_argument("--retries", type=int, default=2,
                    help="resends of an unanswered frame before giving up (default 2)")
    ap.add_argument("--deadline", type=float, default=300.0,
                    help="seconds the whole run may take, whatever the meter sends (default 300)")
    ap.add_argument("--max-info", type=int, default=128,
                    help="HDLC information field size to propose (default 128)")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    read = sub.add_parser("read", help="read attributes: OBIS[:ATTR] ..., ATTR 2 (the value) "
                                       "by default")
    read.add_argument("targets", nargs="+", metavar="OBIS[:ATTR]",
                      help="e.g. 1.0.1.8.0.255, 1-0:32.7.0.255, 1.0.1.6.0.255:5")
    prof = sub.add_parser("profile", help="read a load profile or event log: the whole buffer, "
                                          "a date range or the newest entries")
    prof.add_argument("obis", help="e.g. 1.0.99.1.0.255 (load profile), 0.0.99.98.0.255 (events)")
    prof.add_argument("--from", dest="start", metavar="ISO8601", help="first row's time")
    prof.add_argument("--to", dest="end", metavar="ISO8601", help="last row's time")
    prof.add_argument("--entries", type=int, metavar="N", help="the newest N rows")
    write = sub.add_parser("write", help="write an attribute in the type the meter uses for it")
    write.add_argument("target", metavar="OBIS:ATTR")
    write.add_argument("value", metavar="JSON_VALUE",
                       help='e.g. 3, "text", or {"type": "long-unsigned", "value": 5}')
    sub.add_parser("clock", help="read the meter's clock")
    setc = sub.add_parser("set-clock", help="set the meter's clock")
    setc.add_argument("when", nargs="?", default="now", metavar="ISO8601|now")
    return ap


def present(out, raw):
    """A reading as printed: scaled with the unit's name, or (raw) as the meter sent it."""
    if raw or "scaler" not in out or out.get("status") != "ok":
        return out
    shown = dict(out)
    scaler = shown.pop("scaler")
    shown["value"] = cosem.scaled(shown["value"], scaler)
    shown["unit"] = cosem.unit_name(shown["unit"])
    return shown


def _emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _when(text):
    if text == "now":
        return axdr.DateTime.from_epoch(time.time())
    return axdr.DateTime.parse_iso(text)


def _prepare(args):
    """The requests to make, checked before connecting: [(kind, args...)]."""
    if args.auth == "low" and args.password is None:
        raise UsageError("--auth low needs --password")
    try:
        if args.command == "read":
            return [("read",) + cosem.parse_target(t) + (args.cls,) for t in args.targets]
        if args.command == "profile":
            start = _when(args.start) if args.start else None
            end = _when(args.end) if args.end else None
            if args.entries is not None and args.entries < 1:
                raise UsageError("--entries must be at least 1")
            return [("profile", cosem.obis(args.obis), start, end, args.entries)]
        if args.command == "write":
            obis, attr = cosem.parse_target(args.target, None)
            if attr is None:
                raise UsageError("write needs OBIS:ATTR")
            try:
                value = json.loads(args.value)
            except ValueError:
                raise UsageError("JSON_VALUE is not JSON: %r" % args.value)
            return [("write", obis, attr, value, args.cls)]
        if args.command == "clock":
            return [("clock",)]
        return [("set-clock", _when(args.when))]
    except (cosem.CosemError, axdr.AxdrError) as exc:
        raise UsageError(str(exc))


def _settings(args):
    transport = dlms.WRAPPER if args.wrapper else dlms.HDLC
    return dlms.Settings(transport=transport, client_sap=args.client_sap,
                         server_upper=args.server_sap, logical_device=args.server_sap,
                         password=args.password if args.auth == "low" else None,
                         max_info=args.max_info, retries=args.retries)


def _open_link(args):
    if args.wrapper:
        return TcpLink(args.wrapper, args.timeout)
    if args.hdlc_tcp:
        return TcpLink(args.hdlc_tcp, args.timeout)
    return SerialLink(args.hdlc, args.baud, args.timeout)


def run(argv=None):
    ap = _parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    try:
        requests = _prepare(args)
        settings = _settings(args)
    except (UsageError, ValueError) as exc:
        sys.stderr.write("usage error: %s\n" % exc)
        return 2
    try:
        link = _open_link(args)
    except UsageError as exc:
        sys.stderr.write("usage error: %s\n" % exc)
        return 2
    except (OSError, ImportError) as exc:
        sys.stderr.write("connection error: %s\n" % exc)
        return 2
    assoc = dlms.Association(settings)
    deadline = time.monotonic() + args.deadline

    def run_op(op):
        return dlms.drive(op, link.send, link.recv, lambda: time.monotonic() > deadline)
    failed = False
    try:
        run_op(assoc.open())
        client = dlms_client.Client(assoc, run_op, text=not args.raw)
        for request in requests:
            out = _request(client, request)
            failed = failed or out["status"] != "ok"
            _emit(present(out, args.raw))
        if assoc.stats["trailing_octets"]:
            sys.stderr.write("note: the meter sent %d octets after complete values (ignored)\n"
                             % assoc.stats["trailing_octets"])
        _release(assoc, run_op)
    except AssociationRejected as exc:
        sys.stderr.write("connection error: %s\n" % exc)
        _release(assoc, run_op)
        return 2
    except (dlms.DlmsTimeout, dlms.ProtocolError, dlms.ServiceError, OSError, ValueError) as exc:
        sys.stderr.write("connection error: %s: %s\n" % (type(exc).__name__, exc))
        _release(assoc, run_op)
        return 2
    finally:
        link.close()
    return 1 if failed else 0


def _request(client, request):
    kind = request[0]
    if kind == "read":
        return client.read(request[1], request[2], request[3])
    if kind == "profile":
        return client.profile(request[1], request[2], request[3], request[4])
    if kind == "write":
        return client.write(request[1], request[2], request[3], request[4])
    if kind == "clock":
        return client.clock()
    return client.set_clock(request[1])


def _release(assoc, run_op):
    """RLRQ then DISC, best effort: the meter is free for the next client."""
    if not (assoc.associated or assoc.connected):
        return
    assoc.settings.retries = 0
    try:
        run_op(assoc.close())
    except (dlms.DlmsTimeout, dlms.ProtocolError, OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(run())
