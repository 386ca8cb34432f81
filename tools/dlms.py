"""DLMS/COSEM client for field engineers and tests (host tool), on qframe's own codecs.

    python tools/dlms.py (--wrapper HOST:PORT | --hdlc-tcp HOST:PORT | --hdlc SERIALPORT [--baud N])
                         [--client-sap N] [--server-sap N] [--auth none|low] [--password PW] COMMAND
      read OBIS[:ATTR] ...                     ATTR defaults to 2; registers also fetch scaler and unit
      profile OBIS [--from ISO8601] [--to ISO8601] [--entries N]
      write OBIS:ATTR JSON_VALUE
      clock | set-clock [ISO8601|now]

One JSON object per line on stdout. Exit 0 when every request succeeded, 1 when one failed,
2 on a usage or connection error (stderr says which). Extra options: --timeout S (per answer,
default 3), --retries N (default 2), --max-info N (HDLC information field, default 128).
"""
import argparse
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.hostrun import board  # noqa: E402

board.use_device_code()

from usr.qframe.codecs import axdr, cosem  # noqa: E402
from usr.qframe.codecs.acse import AssociationRejected  # noqa: E402
from usr.qframe.protocols import dlms  # noqa: E402


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


def _parser():
    ap = argparse.ArgumentParser(prog="tools/dlms.py", description="DLMS/COSEM client")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--wrapper", metavar="HOST:PORT")
    where.add_argument("--hdlc-tcp", metavar="HOST:PORT")
    where.add_argument("--hdlc", metavar="SERIALPORT")
    ap.add_argument("--baud", type=int, default=9600)
    ap.add_argument("--client-sap", type=int, default=16)
    ap.add_argument("--server-sap", type=int, default=1)
    ap.add_argument("--auth", choices=("none", "low"), default="none")
    ap.add_argument("--password")
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--retries", type=int, default=2)
    ap.add_argument("--max-info", type=int, default=128)
    sub = ap.add_subparsers(dest="command", required=True)
    read = sub.add_parser("read")
    read.add_argument("targets", nargs="+", metavar="OBIS[:ATTR]")
    prof = sub.add_parser("profile")
    prof.add_argument("obis")
    prof.add_argument("--from", dest="start")
    prof.add_argument("--to", dest="end")
    prof.add_argument("--entries", type=int)
    write = sub.add_parser("write")
    write.add_argument("target", metavar="OBIS:ATTR")
    write.add_argument("value", metavar="JSON_VALUE")
    sub.add_parser("clock")
    setc = sub.add_parser("set-clock")
    setc.add_argument("when", nargs="?", default="now")
    return ap


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
            return [("read",) + cosem.parse_target(t) for t in args.targets]
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
            return [("write", obis, attr, value)]
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

    def run_op(op):
        return dlms.drive(op, link.send, link.recv)
    failed = False
    try:
        run_op(assoc.open())
        client = dlms.Client(assoc, run_op)
        for request in requests:
            kind = request[0]
            if kind == "read":
                out = client.read(request[1], request[2])
            elif kind == "profile":
                out = client.profile(request[1], request[2], request[3], request[4])
            elif kind == "write":
                out = client.write(request[1], request[2], request[3])
            elif kind == "clock":
                out = client.clock()
            else:
                out = client.set_clock(request[1])
            failed = failed or out["status"] != "ok"
            _emit(out)
        try:
            run_op(assoc.close())
        except (dlms.DlmsTimeout, dlms.ProtocolError, OSError):
            pass
    except AssociationRejected as exc:
        sys.stderr.write("connection error: %s\n" % exc)
        return 2
    except (dlms.DlmsTimeout, dlms.ProtocolError, dlms.ServiceError, OSError, ValueError) as exc:
        sys.stderr.write("connection error: %s: %s\n" % (type(exc).__name__, exc))
        return 2
    finally:
        link.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run())
