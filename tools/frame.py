"""Meter-link frame inspector for field engineers (host tool, stdlib only).

    python3 tools/frame.py decode [--dialect legacy|standard] [--accm ACCM] [--json] HEX...
    python3 tools/frame.py encode [--dialect legacy|standard] [--accm ACCM]
                                  --protocol 0x2100 --cmd 0xbf [PAYLOAD_HEX]

    python3 tools/frame.py dlms [--json] HEX...

dlms decodes DLMS octets into a tree (like Gurux's translator): HDLC frames (7E...; several
may follow each other), a WRAPPER packet (00 01 ...) or a bare APDU; with --json one JSON
line ({"name", "value", "children"} nodes). A malformed part exits 1 with the reason.
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

from tools.hostrun import board_root  # noqa: E402

_ROOT = board_root.stage()
for _path in reversed([_ROOT] + board_root.shim_paths("cpython")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from usr.qframe.codecs import acse, axdr, cosem, hdlc, meter, rfc1662, wrapper, xdlms  # noqa: E402


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


# --- DLMS tree ------------------------------------------------------------------------------

def _node(name, value=None, children=None):
    return {"name": name, "value": value, "children": children or []}


def _data_tree(typed, name="data"):
    tag = typed.tag
    kind = axdr.NAMES.get(tag, str(tag))
    if tag in (axdr.ARRAY, axdr.STRUCTURE):
        return _node(name, "%s of %d" % (kind, len(typed.value)),
                     [_data_tree(item, "[%d]" % i) for i, item in enumerate(typed.value)])
    value = typed.value
    if isinstance(value, bytes):
        text = value.hex()
        if len(value) == 12:
            try:
                text += " (date-time %s)" % axdr.DateTime.decode(value).iso()
            except axdr.AxdrError:
                pass
        elif len(value) == 6:
            text += " (OBIS %s)" % cosem.obis_text(value)
        value = text
    elif isinstance(value, axdr.DateTime):
        value = value.iso()
    elif isinstance(value, axdr.BitString):
        value = value.bits
    return _node(name, "%s %s" % (kind, value))


def _data_at(data, name="data"):
    return _data_tree(axdr.decode(data, typed=True), name)


def _descriptor(item, what="attribute"):
    cls, obis, attr, access = item
    children = [_node("class", cls), _node("obis", cosem.obis_text(obis)), _node(what, attr)]
    if access is not None:
        selector, params = access
        children.append(_node("access selector", selector,
                              [_data_tree(axdr.decode(axdr.encode(params), typed=True), "parameters")]))
    return _node("descriptor", None, children)


def _apdu_tree(apdu):
    if not apdu:
        raise ValueError("empty APDU")
    tag = apdu[0]
    if tag == acse.AARQ:
        info = acse.parse_aarq(apdu)
        children = [_node("context", "LN" if info["context"] == acse.LN_NO_CIPHER else info["context"].hex()),
                    _node("mechanism", "LLS" if info["mechanism"] == acse.MECH_LLS else
                          (info["mechanism"] or b"").hex() or "none")]
        if info["password"] is not None:
            children.append(_node("password", info["password"].decode("latin-1")))
        children += [_node("conformance", "0x%06x" % info["conformance"]),
                     _node("max PDU", info["max_pdu"])]
        return _node("AARQ", None, children)
    if tag == acse.AARE:
        info = acse.parse_aare(apdu, check=False)
        children = [_node("result", acse.RESULTS.get(info["result"], info["result"])),
                    _node("diagnostic", "%s %d" % (info["source"], info["diagnostic"]))]
        if "max_pdu" in info:
            children += [_node("conformance", "0x%06x" % info["conformance"]),
                         _node("max PDU", info["max_pdu"])]
        return _node("AARE", None, children)
    if tag in (acse.RLRQ, acse.RLRE):
        return _node("RLRQ" if tag == acse.RLRQ else "RLRE", None,
                     [_node("reason", acse.parse_release(apdu, tag))])
    if tag in (xdlms.GET_REQUEST, xdlms.SET_REQUEST, xdlms.ACTION_REQUEST):
        req = xdlms.parse_request(apdu)
        children = [_node("invoke-id-and-priority", "0x%02x" % req.invoke)]
        if req.service == "get-next":
            children.append(_node("block", req.block))
        for item in req.items:
            children.append(_descriptor(item, "method" if req.service == "action" else "attribute"))
        if req.value is not None:
            children.append(_data_tree(axdr.decode(axdr.encode(req.value), typed=True), "value"))
        return _node("%s-request" % req.service, None, children)
    try:
        resp = xdlms.parse_response(apdu)
    except xdlms.ServiceError as exc:
        return _node("exception", str(exc))
    children = [_node("invoke-id-and-priority", "0x%02x" % resp.invoke)]
    if resp.service == "get-block":
        children += [_node("block", resp.block), _node("last", resp.last)]
        if resp.raw is not None:
            children.append(_node("raw data", "%d octets %s" % (len(resp.raw), resp.raw[:32].hex())))
    if resp.error is not None:
        children.append(_node("result", resp.error.name))
    if resp.data is not None:
        children.append(_data_at(resp.data))
    for i, (raw, err) in enumerate(resp.items or []):
        children.append(_data_at(raw, "[%d]" % i) if raw is not None else _node("[%d]" % i, err.name))
    return _node("%s-response" % resp.service, None, children)


def _address(octets):
    upper, lower = hdlc.parse_address(octets)
    if lower is None:
        return "%s (%d)" % (octets.hex(), upper)
    return "%s (upper %d, lower %d)" % (octets.hex(), upper, lower)


def _hdlc_tree(frame):
    kind = frame.kind
    control = "0x%02x %s" % (frame.control, kind)
    if kind == "I":
        control += " N(S)=%d N(R)=%d" % (hdlc.ns_of(frame.control), hdlc.nr_of(frame.control))
    elif kind in ("RR", "RNR"):
        control += " N(R)=%d" % hdlc.nr_of(frame.control)
    if frame.control & hdlc.POLL:
        control += " P/F"
    length = len(hdlc.encode(frame.dest, frame.src, frame.control, frame.info)) - 2
    children = [_node("length", length), _node("segmented", frame.segmented),
                _node("destination", _address(frame.dest)), _node("source", _address(frame.src)),
                _node("control", control), _node("checks", "HCS/FCS ok")]
    info = frame.info
    if kind in ("SNRM", "UA") and info:
        params = hdlc.decode_params(info)
        children.append(_node("parameters", None, [_node(k, params[k]) for k in sorted(params)]))
    elif kind == "I" and info[:3] in (hdlc.LLC_REQUEST, hdlc.LLC_RESPONSE):
        children.append(_node("LLC", info[:3].hex()))
        if len(info) > 3:
            try:
                children.append(_apdu_tree(info[3:]))
            except ValueError as exc:
                if frame.segmented:
                    children.append(_node("APDU (first segment)", info[3:].hex()))
                else:
                    raise ValueError("APDU: %s" % exc)
    elif info:
        children.append(_node("information", info.hex()))
    return _node("HDLC " + kind, None, children)


def dlms_tree(data):
    """Nodes for DLMS octets: HDLC frames, a WRAPPER packet or an APDU (ValueError if bad)."""
    if data[:1] == b"\x7e":
        receiver = hdlc.Receiver()
        frames = receiver.feed(data)
        if not frames or receiver.stats["bad_frames"] or receiver.stats["oversize"]:
            hdlc.decode(data)                     # names the problem
            raise ValueError(receiver.last_error or "no complete HDLC frame")
        return [_hdlc_tree(frame) for frame in frames]
    if data[:2] == b"\x00\x01" and len(data) >= wrapper.HEADER:
        packet = wrapper.decode(data)
        return [_node("WRAPPER", None, [_node("source wPort", packet.src),
                                        _node("destination wPort", packet.dst),
                                        _node("length", len(packet.apdu)),
                                        _apdu_tree(packet.apdu)])]
    return [_apdu_tree(data)]


def _print_tree(node, depth=0):
    value = "" if node["value"] is None else " %s" % (node["value"],)
    print("%s%s%s" % ("  " * depth, node["name"], value))
    for child in node["children"]:
        _print_tree(child, depth + 1)


def _dlms(args):
    data = _hex_arg(args.hex)
    try:
        nodes = dlms_tree(data)
    except ValueError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(nodes))
    else:
        for node in nodes:
            _print_tree(node)
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
    tree = sub.add_parser("dlms", help="decode HDLC / WRAPPER / APDU hex into a tree")
    tree.add_argument("--json", action="store_true", help="print one JSON line")
    tree.add_argument("hex", nargs="+", help="HDLC frames (7e...), a WRAPPER packet or an APDU")
    args = parser.parse_args(argv)
    if args.command == "dlms":
        return _dlms(args)
    return _decode(args) if args.command == "decode" else _encode(args)


if __name__ == "__main__":
    sys.exit(main())
