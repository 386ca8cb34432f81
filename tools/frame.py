"""Meter-link frame inspector for field engineers (host tool, stdlib only).

    python3 tools/frame.py decode [--dialect legacy|standard] [--accm ACCM] [--json] HEX...
    python3 tools/frame.py encode [--dialect legacy|standard] [--accm ACCM]
                                  --protocol 0x2100 --cmd 0xbf [PAYLOAD_HEX]

decode prints one frame's fields (0x2200 messages decoded too); with --json exactly one JSON
line: protocol, cmd, pid, rid, tag and ack as hex strings ("0x2100", "0xbf"), payload as
lowercase hex, the dialect, plus the message fields. Without --dialect the frame is tried as
legacy, then as standard (the dialect that decodes it is named); a frame that decodes in
neither exits 1 with both reasons, one with --dialect that only the other dialect decodes says
so. HEX may contain spaces or colons. encode prints the frame as lowercase hex (default dialect
legacy). It uses the device codec (qframe/).
"""
import argparse
import binascii
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.hostrun import board  # noqa: E402

_ROOT = board.stage()
for _path in reversed([_ROOT] + board.shim_paths("cpython")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from usr.qframe.codecs import meter, rfc1662  # noqa: E402


def _int(text):
    return int(text, 0)


def _hex_arg(parts):
    text = "".join(parts).replace(" ", "").replace(":", "").replace("\n", "")
    if text.lower().startswith("0x"):
        text = text[2:]
    try:
        return binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        raise SystemExit("error: not hex: %r" % "".join(parts)) from None


HEX_FIELDS = {"protocol": 4, "cmd": 2, "pid": 4, "rid": 4, "tag": 2, "ack": 2}


def _json_fields(fields):
    """fields with the numbers the text shows in hex as hex strings ("0x2100")."""
    out = dict(fields)
    for key, width in HEX_FIELDS.items():
        if isinstance(out.get(key), int):
            out[key] = "0x%0*x" % (width, out[key])
    return out


def _fields(frame):
    """Fields of a decoded frame; 'error' names a malformed 0x2200 payload."""
    out = {"protocol": frame.protocol, "cmd": frame.cmd, "payload": frame.payload.hex(),
           "length": len(frame.payload) + 1,
           "protocol_name": meter.PROTOCOL_NAMES.get(frame.protocol, "unknown"),
           "cmd_name": meter.CMD_NAMES.get(frame.cmd, "unknown")}
    try:
        message = meter.describe(frame.protocol, frame.cmd, frame.payload)
    except ValueError as exc:
        out["error"] = str(exc)
        return out
    for key, value in message.items():
        if key == "kind":
            continue
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).hex()
        out[key] = value
    return out


def _text(fields, dialect, size):
    lines = ["frame     %s dialect, %d octets on the wire, FCS ok" % (dialect, size),
             "protocol  0x%04x (%s)" % (fields["protocol"], fields["protocol_name"]),
             "cmd       0x%02x (%s)" % (fields["cmd"], fields["cmd_name"]),
             "length    %d (CMD + DATA)" % fields["length"],
             "payload   %s (%d octets)" % (fields["payload"] or "-", fields["length"] - 1)]
    if "pid" in fields:
        name = meter.PID_NAMES.get(fields["pid"])
        lines.append("pid       0x%04x%s" % (fields["pid"], " (%s)" % name if name else ""))
    if "value" in fields:
        lines.append("value     %s" % (fields["value"] or "-"))
    if "rid" in fields:
        lines.append("rid       0x%04x" % fields["rid"])
        lines.append("type      0x%02x (%s)" % (fields["tag"],
                                                 meter.TAG_NAMES.get(fields["tag"], "?")))
        lines.append("data      %r" % (fields["data"],))
    if "ack" in fields:
        meaning = {meter.ACK_SUCCESS: "success", meter.ACK_FAILURE: "failure"}
        lines.append("ack       0x%02x (%s)" % (fields["ack"],
                                                 meaning.get(fields["ack"], "unknown")))
    if fields["protocol"] == meter.PROTO_TRANSPARENT:
        lines.append("text      %r" % binascii.unhexlify(fields["payload"]))
    return "\n".join(lines)


def _other(dialect):
    return rfc1662.STANDARD if dialect == rfc1662.LEGACY else rfc1662.LEGACY


def _decode_any(data, dialect, accm):
    """(frame, dialect, how): the given dialect only, else legacy then standard. Raises
    ValueError naming each dialect's reason (and the other dialect if it would decode)."""
    tries = [dialect] if dialect else [rfc1662.LEGACY, rfc1662.STANDARD]
    reasons = []
    for name in tries:
        try:
            return rfc1662.decode_frame(data, name, accm), name, "given" if dialect else "detected"
        except ValueError as exc:
            reasons.append("%s dialect: %s" % (name, exc))
    if dialect:
        try:
            rfc1662.decode_frame(data, _other(dialect), accm)
        except ValueError:
            raise ValueError(reasons[0])
        raise ValueError("%s; it decodes as the %s dialect: try --dialect %s (or leave "
                         "--dialect out to detect it)" % (reasons[0], _other(dialect),
                                                         _other(dialect)))
    raise ValueError("not a frame in either dialect: " + "; ".join(reasons))


def _decode(args):
    data = _hex_arg(args.hex)
    try:
        frame, dialect, how = _decode_any(data, args.dialect, args.accm)
    except ValueError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    fields = _fields(frame)
    if args.json:
        fields["dialect"] = dialect
        print(json.dumps(_json_fields(fields), sort_keys=True))
    else:
        print(_text(fields, dialect if how == "given" else dialect + " (detected)",
                    len(data)))
    if "error" in fields:
        print("error: %s" % fields["error"], file=sys.stderr)
        return 1
    return 0


def _encode(args):
    payload = _hex_arg(args.payload)
    try:
        frame = rfc1662.encode(args.protocol, args.cmd, payload, args.dialect,
                               rfc1662.TX_ACCM if args.accm is None else args.accm)
    except ValueError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    print(frame.hex())
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    dec = sub.add_parser("decode", help="decode one frame given in hex")
    dec.add_argument("--dialect", choices=rfc1662.DIALECTS, default=None,
                     help="default: detected (legacy tried first)")
    dec.add_argument("--accm", type=_int, default=rfc1662.RX_ACCM,
                     help="receive ACCM (standard dialect; default 0)")
    dec.add_argument("--json", action="store_true", help="print one JSON line")
    dec.add_argument("hex", nargs="+", help="the frame, flags included")
    enc = sub.add_parser("encode", help="build a frame; prints lowercase hex")
    enc.add_argument("--dialect", choices=rfc1662.DIALECTS, default=rfc1662.LEGACY)
    enc.add_argument("--accm", type=_int, default=None,
                     help="transmit ACCM (standard dialect; default 0xffffffff)")
    enc.add_argument("--protocol", type=_int, required=True)
    enc.add_argument("--cmd", type=_int, required=True)
    enc.add_argument("payload", nargs="*", default=[], help="payload hex (may be empty)")
    args = parser.parse_args(argv)
    return _decode(args) if args.command == "decode" else _encode(args)


if __name__ == "__main__":
    sys.exit(main())
