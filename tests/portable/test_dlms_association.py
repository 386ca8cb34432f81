"""qframe.protocols.dlms: the sans-I/O client association against a scripted meter built
from the codecs (HDLC segmentation both ways, block transfer, errors, timeouts, recovery)."""
from checks import raises
from usr.qframe.codecs import acse, axdr, cosem, hdlc, wrapper, xdlms
from usr.qframe.protocols import dlms, dlms_client

from dlms_peer import ScriptedMeter

ENERGY = cosem.obis("1.0.1.8.0.255")
PROFILE = cosem.obis("1.0.99.1.0.255")


def _run(op, meter, drop=0):
    """Drive op against meter in memory; drop the first `drop` outgoing transmissions."""
    out = op.start()
    for _ in range(1000):
        if op.done:
            break
        if drop:
            drop -= 1
            out = op.timeout()
            continue
        reply = meter.feed(out) if out else b""
        out = op.receive(reply) if reply else op.timeout()
    assert op.done
    if op.error is not None:
        raise op.error
    return op.result


def _assoc(**kw):
    return dlms.Association(dlms.Settings(**kw))


def test_open_get_close():
    get = xdlms.get(3, ENERGY, 2)
    meter = ScriptedMeter({get: xdlms.get_response(axdr.encode(axdr.Typed(axdr.DOUBLE_LONG_UNSIGNED, 12345)))})
    a = _assoc()
    info = _run(a.open(), meter)
    assert a.associated and info["max_pdu"] == 512 and a.max_info_tx == 128
    assert _run(a.get(3, ENERGY, 2), meter) == 12345
    assert _run(a.close(), meter) is True
    assert meter.seen == ["SNRM", "I", "I", "I", "DISC"] and not a.associated


def test_ua_without_parameters_uses_defaults():
    a = _assoc(max_info=512)
    _run(a.open(), ScriptedMeter({}, ua_info=False))
    assert a.max_info_tx == 128


def test_segmented_reply_and_request():
    big = axdr.encode(b"x" * 700)
    setreq = xdlms.set_(1, ENERGY, 2, axdr.encode(b"y" * 300))
    meter = ScriptedMeter({xdlms.get(1, ENERGY, 2): xdlms.get_response(big),
                    setreq: xdlms.set_response()}, max_info=64)
    a = _assoc(max_info=64)
    _run(a.open(), meter)
    assert _run(a.get(1, ENERGY, 2), meter) == b"x" * 700
    assert a.stats["segments_in"] >= 10
    assert _run(a.set(1, ENERGY, 2, axdr.encode(b"y" * 300)), meter) is True
    assert a.stats["segments_out"] >= 4


def test_block_transfer_streams_rows():
    rows = [(axdr.DateTime(2024, 1, 1, 0, i, 0).encode(), i) for i in range(40)]
    raw = axdr.encode(rows)
    blocks = [raw[i:i + 100] for i in range(0, len(raw), 100)]
    replies = [xdlms.get_block(n + 1, b, n == len(blocks) - 1) for n, b in enumerate(blocks)]
    meter = ScriptedMeter({xdlms.get(7, PROFILE, 2): replies})
    a = _assoc()
    _run(a.open(), meter)
    got = []
    assert _run(a.get(7, PROFILE, 2, on_row=got.append), meter) == 40
    assert got == rows and a.stats["blocks"] == len(blocks)


def test_block_transfer_bounds():
    endless = [xdlms.get_block(n + 1, b"\x00", False) for n in range(20)]
    meter = ScriptedMeter({xdlms.get(7, PROFILE, 2): endless})
    a = _assoc(max_blocks=5)
    _run(a.open(), meter)
    e = raises(dlms.ProtocolError, _run, a.get(7, PROFILE, 2), meter)
    assert "5 blocks" in str(e) and a.broken
    wrong = [xdlms.get_block(1, b"\x01", False), xdlms.get_block(3, b"\x00", True)]
    meter = ScriptedMeter({xdlms.get(7, PROFILE, 2): wrong})
    a = _assoc()
    _run(a.open(), meter)
    assert "expected 2" in str(raises(dlms.ProtocolError, _run, a.get(7, PROFILE, 2), meter))


def test_refusals_are_clear_errors():
    meter = ScriptedMeter({xdlms.get(3, ENERGY, 2): xdlms.get_response(error=4),
                    xdlms.get(3, ENERGY, 3): xdlms.exception(1, 2),
                    xdlms.action(70, ENERGY, 1): xdlms.action_response(3)})
    a = _assoc()
    _run(a.open(), meter)
    assert raises(dlms.DataAccessError, _run, a.get(3, ENERGY, 2), meter).name == "object-undefined"
    assert "service-not-supported" in str(raises(dlms.ServiceError, _run, a.get(3, ENERGY, 3), meter))
    assert raises(dlms.DataAccessError, _run, a.action(70, ENERGY, 1), meter).name == "read-write-denied"
    assert a.associated and not a.broken


def test_rejected_association():
    class Refuser(ScriptedMeter):
        def _answer(self, apdu):
            return acse.aare(1, 13)
    a = _assoc(password="bad")
    e = raises(dlms.AssociationRejected, _run, a.open(), Refuser({}))
    assert e.diagnostic == "authentication-failure" and not a.associated


def test_timeouts_retry_then_fail_and_recover():
    get = xdlms.get(3, ENERGY, 2)
    meter = ScriptedMeter({get: xdlms.get_response(axdr.encode(1))})
    a = _assoc(retries=2)
    _run(a.open(), meter)
    assert _run(a.get(3, ENERGY, 2), meter, drop=1) == 1          # one retransmission
    assert a.stats["retransmits"] == 1
    op = a.get(3, ENERGY, 2)
    op.start()
    for _ in range(3):
        op.timeout()
    assert op.done and isinstance(op.error, dlms.DlmsTimeout) and a.broken
    meter2 = ScriptedMeter({get: xdlms.get_response(axdr.encode(2))})
    _run(a.open(), meter2)                                          # the next cycle recovers
    assert not a.broken and _run(a.get(3, ENERGY, 2), meter2) == 2


def test_misaddressed_and_unexpected_frames():
    a = _assoc()
    _run(a.open(), ScriptedMeter({}))
    op = a.get(3, ENERGY, 2)
    op.start()
    other = hdlc.encode(b"\x23", b"\x03", hdlc.i_control(0, 1), hdlc.LLC_RESPONSE + b"\xc4")
    assert op.receive(other) == b"" and not op.done and a.stats["ignored_frames"] == 1
    assert op.receive(b"\x00garbage\x7e") == b"" and not op.done
    op.receive(hdlc.encode(b"\x21", b"\x03", hdlc.DM | hdlc.POLL))
    assert op.done and isinstance(op.error, dlms.ProtocolError) and "DM" in str(op.error)


def test_wrapper_transport():
    a = _assoc(transport=dlms.WRAPPER)
    op = a.open()
    sent = wrapper.decode(op.start())
    assert (sent.src, sent.dst, sent.apdu[0]) == (16, 1, acse.AARQ)
    op.receive(wrapper.encode(1, 16, acse.aare(0, 0, acse.CONFORMANCE, 300)))
    assert op.done and op.error is None and a.max_pdu == 300
    op = a.get(8, cosem.CLOCK_OBIS, 2)
    op.start()
    dt = axdr.DateTime(2024, 5, 6, 7, 8, 9)
    reply = wrapper.encode(1, 16, xdlms.get_response(axdr.encode(dt)))
    op.receive(reply[:5])
    op.receive(reply[5:])
    assert op.result == dt.encode()
    raises(ValueError, dlms.Settings, "serial")


def test_get_list():
    items = [(3, ENERGY, 2), (1, ENERGY, 2)]
    meter = ScriptedMeter({xdlms.get_list(items): xdlms.get_list_response([(axdr.encode(5), 0), (None, 4)])})
    a = _assoc()
    _run(a.open(), meter)
    got = _run(a.get_list(items), meter)
    assert got[0] == (5, None) and got[1][1].name == "object-undefined"


def test_client_read_and_profile():
    reg = xdlms.get(3, ENERGY, 2)
    meter = ScriptedMeter({
        reg: xdlms.get_response(axdr.encode(axdr.Typed(axdr.DOUBLE_LONG_UNSIGNED, 77))),
        xdlms.get(3, ENERGY, 3): xdlms.get_response(axdr.encode((axdr.Typed(axdr.INTEGER, -2),
                                                                axdr.Typed(axdr.ENUM, 30)))),
        xdlms.get(7, PROFILE, 3): xdlms.get_response(axdr.encode([(8, cosem.CLOCK_OBIS, 2, 0),
                                                                  (3, ENERGY, 2, 0)])),
        xdlms.get(7, PROFILE, 2): xdlms.get_response(axdr.encode(
            [(axdr.DateTime(2024, 1, 1, 0, 15, 0).encode(), 5)])),
    })
    a = _assoc()
    _run(a.open(), meter)
    client = dlms_client.Client(a, lambda op: _run(op, meter))
    assert client.read(ENERGY) == {"obis": "1.0.1.8.0.255", "class": 3, "attr": 2, "value": 77,
                                   "scaler": -2, "unit": 30, "status": "ok"}
    prof = client.profile(PROFILE)
    assert prof["columns"] == [[8, "0.0.1.0.0.255", 2], [3, "1.0.1.8.0.255", 2]]
    assert prof["rows"] == [["2024-01-01T00:15:00", 5]] and prof["status"] == "ok"


def test_encode_like():
    current = axdr.Typed(axdr.LONG_UNSIGNED, 5)
    assert dlms_client.encode_like(current, 7) == b"\x12\x00\x07"
    assert dlms_client.encode_like(axdr.Typed(axdr.OCTET_STRING, b"ab"), "6364") == b"\x09\x02cd"
    clock = axdr.Typed(axdr.OCTET_STRING, b"\x00" * 12)
    assert dlms_client.encode_like(clock, "2024-01-02T03:04:05")[2:] == \
        axdr.DateTime(2024, 1, 2, 3, 4, 5, 0, None, 0).encode()
    assert dlms_client.encode_like(None, {"type": "unsigned", "value": 3}) == b"\x11\x03"
    raises(axdr.AxdrError, dlms_client.encode_like, current, 70000)
