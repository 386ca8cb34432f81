"""DLMS-lite against the quirks real meters have (both interpreters): octets after a complete
value, a value encoded twice, unknown tags in the AARE, block transfer with odd block sizes,
profile rows shorter than the capture objects, a repeated LLC header; class discovery from
the object list; a refused request keeps the association, a broken one is released; a job
deadline that noise or a meter answering RR for ever cannot outlive; a whole response bounded
by the free heap."""
from checks import raises
from usr.qframe.codecs import acse, axdr, cosem, hdlc, xdlms
from usr.qframe.protocols import dlms, dlms_client

from dlms_peer import ScriptedMeter
from test_dlms_association import _assoc, _run

CLOCK = cosem.CLOCK_OBIS
DEMAND = cosem.obis("1.0.31.4.0.255")
PROFILE = cosem.obis("1.0.99.1.0.255")
WHEN = axdr.DateTime(2024, 3, 1, 12, 30, 15, 0, None, 0)


def _open(replies, **kw):
    meter = ScriptedMeter(replies, **kw)
    a = _assoc(**({"max_info": kw["max_info"]} if "max_info" in kw else {}))
    _run(a.open(), meter)
    return a, meter


def test_octets_after_a_complete_value_are_counted_not_fatal():
    value = axdr.encode(WHEN)
    reply = xdlms.get_response(value) + b"\x01\x02\x03"          # 3 octets after the response
    a, meter = _open({xdlms.get(8, CLOCK, 2): reply})
    assert _run(a.get(8, CLOCK, 2), meter) == WHEN.encode()
    assert a.stats["trailing_octets"] == 3 and not a.broken
    assert xdlms.parse_response(reply).trailing == 3


def test_a_value_encoded_twice_gives_the_first():
    """The clock's value twice in one GET response (one meter's bug): 14 octets follow."""
    twice = axdr.encode(WHEN) * 2
    value, trailing = axdr.decode_first(twice)
    assert value == WHEN.encode() and trailing == 14
    a, meter = _open({xdlms.get(8, CLOCK, 2): xdlms.get_response(twice)})
    client = dlms_client.Client(a, lambda op: _run(op, meter))
    assert client.clock() == {"obis": "0.0.1.0.0.255", "value": "2024-03-01T12:30:15",
                              "status": "ok"}
    assert a.stats["trailing_octets"] == 14
    raises(axdr.AxdrError, axdr.decode, twice)         # the strict decoder still says so


def test_unknown_tags_in_the_aare_are_skipped():
    aare = acse.aare(0, 0, acse.CONFORMANCE, 512)
    body = aare[2:]
    # responder-acse-requirements (88), mechanism name (89), responding AP title (A4),
    # implementation information (BD): tags this client does not use
    extra = (b"\x88\x02\x07\x80" + b"\x89\x07\x60\x85\x74\x05\x08\x02\x01"
             + b"\xa4\x0a\x04\x08GRX12345" + b"\xbd\x03\x04\x01\x00")
    patched = bytes((acse.AARE, len(body) + len(extra))) + extra + body
    info = acse.parse_aare(patched)
    assert info["result"] == 0 and info["max_pdu"] == 512


def test_block_transfer_with_odd_block_sizes():
    rows = [(axdr.DateTime(2024, 1, 1, 0, 15 * i, 0).encode() if i < 4 else
             axdr.DateTime(2024, 1, 1, 1, 0, 0).encode(), 1000 + i, 7) for i in range(5)]
    data = axdr.encode(rows)
    for sizes in ((1, 2, 3), (7,), (13, 1), (len(data) - 1, 1)):
        blocks, pos, n = [], 0, 0
        while pos < len(data):
            size = sizes[n % len(sizes)]
            blocks.append(data[pos:pos + size])
            pos += size
            n += 1
        replies = [xdlms.get_block(i + 1, raw, i == len(blocks) - 1)
                   for i, raw in enumerate(blocks)]
        a, meter = _open({xdlms.get(7, PROFILE, 2): replies})
        got = []
        assert _run(a.get(7, PROFILE, 2, on_row=got.append), meter) == 5
        assert got == rows, sizes
        a, meter = _open({xdlms.get(7, PROFILE, 2): replies})
        assert _run(a.get(7, PROFILE, 2), meter) == rows


def test_last_block_not_flagged_ends_at_the_whole_array():
    data = axdr.encode([(1, 2), (3, 4)])
    replies = [xdlms.get_block(1, data[:5], False), xdlms.get_block(2, data[5:], False)]
    a, meter = _open({xdlms.get(7, PROFILE, 2): replies})
    got = []
    assert _run(a.get(7, PROFILE, 2, on_row=got.append), meter) == 2
    assert got == [(1, 2), (3, 4)] and a.stats["unflagged_last"] == 1


def test_short_profile_rows():
    """Rows hold fewer values than the capture objects: kept as they are."""
    columns = [(8, CLOCK, 2, 0), (3, cosem.obis("1.0.1.8.0.255"), 2, 0),
               (3, cosem.obis("1.0.2.8.0.255"), 2, 0)]
    rows = [(WHEN.encode(), 5), (WHEN.encode(), 6, 7)]
    a, meter = _open({xdlms.get(7, PROFILE, 3): xdlms.get_response(axdr.encode(columns)),
                      xdlms.get(7, PROFILE, 2): xdlms.get_response(axdr.encode(rows))})
    out = dlms_client.Client(a, lambda op: _run(op, meter)).profile(PROFILE)
    assert out["status"] == "ok" and len(out["columns"]) == 3
    assert out["rows"] == [["2024-03-01T12:30:15", 5], ["2024-03-01T12:30:15", 6, 7]]


def test_repeated_llc_header_is_skipped():
    a, meter = _open({xdlms.get(1, DEMAND, 2): hdlc.LLC_RESPONSE + xdlms.get_response(b"\x11\x05")})
    assert _run(a.get(1, DEMAND, 2), meter) == 5


def _object_list(*entries):
    rights = ([], [])
    return xdlms.get_response(axdr.encode([(cls, 0, obis, rights) for cls, obis in entries]))


def test_class_from_the_object_list_read_once():
    listed = _object_list((5, DEMAND), (8, CLOCK))
    replies = {xdlms.get(15, dlms_client.OBJECT_LIST[1], 2): listed,
               xdlms.get(5, DEMAND, 2): xdlms.get_response(b"\x12\x04\xd2"),
               xdlms.get(5, DEMAND, 4): xdlms.get_response(axdr.encode(
                   (axdr.Typed(axdr.INTEGER, -2), axdr.Typed(axdr.ENUM, 33))))}
    a, meter = _open(replies)
    client = dlms_client.Client(a, lambda op: _run(op, meter))
    assert client.read(DEMAND) == {"obis": "1.0.31.4.0.255", "class": 5, "attr": 2, "value": 1234,
                                   "scaler": -2, "unit": 33, "status": "ok"}
    assert client.read(DEMAND)["status"] == "ok"
    assert client.listed is True and meter.unknown == []    # no class was guessed
    assert client.classes == {DEMAND: 5, CLOCK: 8}
    shared = dlms_client.Client(a, lambda op: _run(op, meter), client.classes)
    assert shared.read(DEMAND)["class"] == 5 and shared.listed is None   # not read again


def test_no_object_list_falls_back_to_likely_classes():
    a, meter = _open({xdlms.get(5, DEMAND, 2): xdlms.get_response(b"\x12\x00\x07"),
                      xdlms.get(5, DEMAND, 4): xdlms.get_response(b"\x02\x02\x0f\x00\x16\x21")})
    client = dlms_client.Client(a, lambda op: _run(op, meter))
    out = client.read(DEMAND)
    assert out["class"] == 5 and out["value"] == 7 and client.listed is False


def test_refused_or_malformed_request_keeps_the_association():
    a, meter = _open({xdlms.get(1, DEMAND, 2): b"\xc4\x01\xc1\x00\xff",      # unknown tag
                      xdlms.get(8, CLOCK, 2): xdlms.get_response(axdr.encode(WHEN))})
    client = dlms_client.Client(a, lambda op: _run(op, meter))
    bad = client.read(DEMAND, 2, 1)
    assert bad["status"] == "error" and "tag" in bad["error"]
    assert client.read(cosem.obis("9.9.9.9.9.9"), 2, 1)["status"] == "object-undefined"
    assert not a.broken and a.associated
    assert client.clock()["value"] == "2024-03-01T12:30:15"


def test_broken_association_is_released_with_disc():
    a, meter = _open({})
    a.broken = True
    assert _run(a.close(), meter) is True
    assert meter.seen[-1] == "DISC" and meter.seen.count("I") == 1    # no RLRQ, only the AARQ
    assert not a.connected


def test_deadline_ends_a_job_that_noise_keeps_alive():
    a, meter = _open({})
    op = a.get(3, PROFILE, 2)
    sent = []
    calls = [0]

    def recv():
        calls[0] += 1
        return b"\x7e\xa0\x07\x03\x21\x11\x00\x00\x7e" + b"\x55" * 7     # RR-like noise

    def expired():
        return calls[0] >= 50
    raises(dlms.DlmsTimeout, dlms.drive, op, sent.append, recv, expired)
    assert calls[0] == 50 and a.stats["expired"] == 1 and not a.associated
    assert "deadline" in str(op.error)


def test_rr_for_ever_cannot_outlive_the_deadline():
    a, meter = _open({})
    rr = hdlc.encode(b"\x21", b"\x03", hdlc.rr_control(0))
    op = a.get(3, PROFILE, 2)
    calls = [0]

    def recv():
        calls[0] += 1
        return rr

    raises(dlms.DlmsTimeout, dlms.drive, op, lambda data: None, recv, lambda: calls[0] >= 200)
    assert a.stats["ignored_frames"] >= 199


def test_whole_response_bounded_by_the_free_heap():
    settings = dlms.Settings(max_response=65536)
    assert dlms.response_limit(settings, free=115000) == 115000 // dlms.HEAP_SHARE
    assert dlms.response_limit(settings, free=10 ** 7) == 65536
    big = axdr.encode([7] * 600)                            # 3 KB
    a, meter = _open({xdlms.get(1, DEMAND, 2): [xdlms.get_block(1, big[:1000], False),
                                                xdlms.get_block(2, big[1000:2000], False),
                                                xdlms.get_block(3, big[2000:], True)]})
    a.settings.max_response = 1500
    e = raises(dlms.ProtocolError, _run, a.get(1, DEMAND, 2), meter)
    assert "above 1500" in str(e) and a.stats["too_large"] == 1
