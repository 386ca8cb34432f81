"""qframe.codecs.hdlc: IEC 62056-46 frames, addresses, parameters, stream receiver (hex
vectors checked against Gurux's client)."""
import ubinascii

from checks import raises
from usr.qframe.codecs import hdlc

SNRM = "7ea0070321930f017e"                 # server 1 (one octet), client 16
GET = "7ea0190321326fd8e6e600c001c100030100010800ff020032687e"


def _b(text):
    return ubinascii.unhexlify(text)


def _hex(data):
    return ubinascii.hexlify(data).decode()


def test_encode_matches_vectors():
    srv = hdlc.server_address(1)
    cl = hdlc.client_address(16)
    assert _hex(hdlc.encode(srv, cl, hdlc.SNRM | hdlc.POLL)) == SNRM
    info = _b("e6e600c001c100030100010800ff0200")
    assert _hex(hdlc.encode(srv, cl, hdlc.i_control(1, 1), info)) == GET


def test_decode_fields():
    f = hdlc.decode(_b(GET))
    assert f.kind == "I" and f.dest == b"\x03" and f.src == b"\x21"
    assert hdlc.ns_of(f.control) == 1 and hdlc.nr_of(f.control) == 1
    assert f.info[:3] == hdlc.LLC_REQUEST and not f.segmented
    s = hdlc.decode(_b(SNRM))
    assert s.kind == "SNRM" and s.info == b""


def test_addresses():
    assert hdlc.server_address(1, 17) == b"\x02\x23"
    assert hdlc.server_address(1, 0x3FFF, 4) == b"\x00\x02\xfe\xff"
    assert hdlc.parse_address(b"\x00\x02\xfe\xff") == (1, 0x3FFF)
    assert hdlc.parse_address(b"\x02\x23") == (1, 17)
    raises(hdlc.HdlcError, hdlc.server_address, 1, 2, 3)
    raises(hdlc.HdlcError, hdlc.client_address, 200)
    # four-octet address round trip through a frame
    frame = hdlc.encode(hdlc.server_address(0x1234 & 0x3FFF, 0x22, 4), b"\x21", 0x93)
    assert hdlc.decode(frame).dest == hdlc.server_address(0x1234 & 0x3FFF, 0x22, 4)


def test_three_octet_address_rejected():
    body = b"\xa0\x09\x02\x02\x03\x21\x93"
    raises(hdlc.HdlcError, hdlc.decode, _frame_with_fcs(body))


def _frame_with_fcs(body):
    from usr.qframe.codecs.crc import fcs16
    body = bytes((body[0], len(body) + 2)) + body[2:]
    v = fcs16(body) ^ 0xFFFF
    return b"\x7e" + body + bytes((v & 0xFF, v >> 8)) + b"\x7e"


def test_control_kinds():
    assert hdlc.kind(hdlc.rr_control(3)) == "RR" and hdlc.nr_of(hdlc.rr_control(3)) == 3
    assert hdlc.kind(hdlc.rnr_control(2)) == "RNR"
    assert [hdlc.kind(c) for c in (0x93, 0x53, 0x73, 0x1F, 0x97, 0x13)] == \
        ["SNRM", "DISC", "UA", "DM", "FRMR", "UI"]
    assert hdlc.kind(0x10 | 0x0B) == "?"


def test_bad_fcs_hcs_length():
    good = bytearray(_b(GET))
    bad = bytearray(good)
    bad[-3] ^= 1
    assert "FCS" in str(raises(hdlc.HdlcError, hdlc.decode, bytes(bad)))
    bad = bytearray(good)
    bad[7] ^= 1                              # HCS octet
    e = raises(hdlc.HdlcError, hdlc.decode, bytes(bad))
    assert "FCS" in str(e) or "HCS" in str(e)
    raises(hdlc.HdlcError, hdlc.decode, bytes(good[:10]))
    raises(hdlc.HdlcError, hdlc.decode, b"\x7e\x7e")


def test_hcs_checked_separately():
    # a frame whose FCS is right but HCS wrong: rebuild the FCS after corrupting the HCS
    from usr.qframe.codecs.crc import fcs16
    body = bytearray(_b(GET)[1:-3])
    body[6] ^= 0xFF
    v = fcs16(bytes(body)) ^ 0xFFFF
    frame = b"\x7e" + bytes(body) + bytes((v & 0xFF, v >> 8)) + b"\x7e"
    assert "HCS" in str(raises(hdlc.HdlcError, hdlc.decode, frame))


def test_segmented_flag_and_segments():
    f = hdlc.encode(b"\x21", b"\x03", hdlc.i_control(0, 1), b"x" * 10, segmented=True)
    assert f[1] == 0xA8 and hdlc.decode(f).segmented
    assert hdlc.segments(b"abcdefg", 3) == [b"abc", b"def", b"g"]
    assert hdlc.segments(b"", 3) == [b""]
    raises(hdlc.HdlcError, hdlc.encode, b"\x21", b"\x03", 0x10, b"x" * 2100)


def test_params_negotiation():
    info = hdlc.encode_params(256, 512, 1, 1)
    assert _hex(info) == "818014050201000602020007040000000108040000000" + "1"
    p = hdlc.decode_params(info)
    assert p == {"max_info_tx": 256, "max_info_rx": 512, "window_tx": 1, "window_rx": 1}
    assert hdlc.swap(p)["max_info_tx"] == 512
    assert hdlc.decode_params(b"") == hdlc.DEFAULT_PARAMS
    assert hdlc.decode_params(_b("818006050180060180")) == \
        {"max_info_tx": 128, "max_info_rx": 128, "window_tx": 1, "window_rx": 1}
    raises(hdlc.HdlcError, hdlc.decode_params, _b("81800605038000"))
    raises(hdlc.HdlcError, hdlc.decode_params, _b("818010"))
    raises(hdlc.HdlcError, hdlc.decode_params, _b("7f80"))


def test_receiver_stream_split_garbage_and_errors():
    r = hdlc.Receiver(max_frame=64)
    a, b = _b(SNRM), _b(GET)
    out = []
    stream = b"junk" + a + b[:5]
    out += r.feed(stream)
    out += r.feed(b[5:] + b"\x00")
    assert [f.kind for f in out] == ["SNRM", "I"]
    assert r.stats["garbage_bytes"] == 4 and r.stats["frames"] == 2
    bad = bytearray(b)
    bad[-3] ^= 1
    assert r.feed(bytes(bad) + a) and r.stats["bad_frames"] == 1
    # oversize length: dropped, buffer stays bounded
    assert r.feed(b"\x7e\xa7\xff" + b"\x00" * 300) == []
    assert r.stats["oversize"] == 1 and r.buffered <= 66
    # shared flag between frames
    r2 = hdlc.Receiver()
    assert len(r2.feed(a[:-1] + a)) == 2


def test_receiver_byte_at_a_time():
    r = hdlc.Receiver()
    frames = []
    for byte in _b(GET + SNRM):
        frames += r.feed(bytes((byte,)))
    assert [f.kind for f in frames] == ["I", "SNRM"]
