"""qframe.codecs.axdr: every listed type both ways, streaming arrays, malformed input."""
import ubinascii

from checks import raises
from usr.qframe.codecs import axdr
from usr.qframe.codecs.axdr import Typed, DateTime, BitString

CASES = (
    ("00", Typed(axdr.NULL, None)),
    ("0301", Typed(axdr.BOOLEAN, True)),
    ("040ba0e0", Typed(axdr.BIT_STRING, BitString("10100000111"))),
    ("0500003039", Typed(axdr.DOUBLE_LONG, 12345)),
    ("05ffffffff", Typed(axdr.DOUBLE_LONG, -1)),
    ("06ffffffff", Typed(axdr.DOUBLE_LONG_UNSIGNED, 0xFFFFFFFF)),
    ("0f80", Typed(axdr.INTEGER, -128)),
    ("10fffe", Typed(axdr.LONG, -2)),
    ("11ff", Typed(axdr.UNSIGNED, 255)),
    ("12ffff", Typed(axdr.LONG_UNSIGNED, 65535)),
    ("14ffffffffffffffff", Typed(axdr.LONG64, -1)),
    ("150000000100000000", Typed(axdr.LONG64_UNSIGNED, 1 << 32)),
    ("161e", Typed(axdr.ENUM, 30)),
    ("173fc00000", Typed(axdr.FLOAT32, 1.5)),
    ("18bff8000000000000", Typed(axdr.FLOAT64, -1.5)),
    ("0903010203", Typed(axdr.OCTET_STRING, b"\x01\x02\x03")),
    ("0a03616263", Typed(axdr.VISIBLE_STRING, "abc")),
    # "\u00e9" as octets: QuecPython's str has no unicode, where "\u00e9" is one octet E9
    ("0c02c3a9", Typed(axdr.UTF8_STRING, b"\xc3\xa9".decode())),
    ("0d42", Typed(axdr.BCD, 42)),
)


def _b(t):
    return ubinascii.unhexlify(t)


def _hex(d):
    return ubinascii.hexlify(d).decode()


def test_scalars_both_ways():
    for text, value in CASES:
        assert _hex(axdr.encode(value)) == text, text
        got = axdr.decode(_b(text), typed=True)
        assert got.tag == value.tag and got.value == value.value, text


def test_plain_inference():
    assert axdr.encode(None) == b"\x00"
    assert axdr.encode(True) == b"\x03\x01"
    assert axdr.encode(7) == b"\x05\x00\x00\x00\x07"
    assert axdr.encode(1 << 40)[0] == axdr.LONG64
    assert axdr.encode(b"ab") == b"\x09\x02ab"
    assert axdr.encode("ab") == b"\x0a\x02ab"
    assert axdr.encode([1, (2, "x")]) == _b("0102" "0500000001" "0202" "0500000002" "0a0178")
    assert axdr.decode(_b("0102" "0500000001" "0202" "0500000002" "0a0178")) == [1, (2, "x")]


def test_date_time_types():
    dt = DateTime(2024, 3, 15, 12, 30, 45, 0, -60, 0)
    assert dt.weekday == 5                      # a Friday
    raw = dt.encode()
    assert _hex(raw) == "07e8030f050c1e2d00ffc400"
    assert axdr.encode(dt) == b"\x09\x0c" + raw          # COSEM carries it as octet-string(12)
    assert axdr.decode(b"\x19" + raw) == dt
    assert axdr.decode(_b("1a07e8030f05")).day == 15
    t = axdr.decode(_b("1b0c1e2dff"))
    assert (t.hour, t.minute, t.second, t.hundredths) == (12, 30, 45, None)
    assert _hex(axdr.encode(Typed(axdr.DATE, dt))) == "1a07e8030f05"
    assert _hex(axdr.encode(Typed(axdr.TIME, dt))) == "1b0c1e2d00"
    assert dt.iso() == "2024-03-15T12:30:45"
    assert DateTime.parse_iso("2024-03-15T12:30:45Z").iso() == dt.iso()
    unspecified = DateTime.decode(_b("ffffffffffffffffff800000"))
    assert unspecified.year is None and unspecified.deviation is None
    raises(axdr.AxdrError, DateTime.parse_iso, "yesterday")
    raises(axdr.AxdrError, DateTime.parse_iso, "2024-13-01")


def test_epoch_round_trip():
    dt = DateTime(2026, 11, 30, 4, 55, 1)
    assert DateTime.from_epoch(dt.epoch()).iso() == "2026-11-30T04:55:01"
    assert DateTime.from_epoch(0).iso() == "1970-01-01T00:00:00"
    assert DateTime(2000, 2, 29).weekday == 2


def test_long_lengths():
    data = b"z" * 300
    enc = axdr.encode(data)
    assert enc[:4] == b"\x09\x82\x01\x2c"
    assert axdr.decode(enc) == data
    assert axdr.length(b"\x84\x00\x00\x01\x00", 0) == (256, 5)


def test_malformed():
    for text in ("", "05000030", "0905010203", "0a8a", "ff", "0102", "0104050000",
                 "0985ffffffffff", "0a02ff41", "04ff"):
        raises(axdr.AxdrError, axdr.decode, _b(text))
    raises(axdr.AxdrError, axdr.decode, _b("000000"))              # trailing octets
    deep = b"\x02\x01" * 40 + b"\x00"
    assert "nesting" in str(raises(axdr.AxdrError, axdr.decode, deep))
    huge = b"\x01\x84\x7f\xff\xff\xff"                              # claims 2**31 elements
    raises(axdr.AxdrError, axdr.decode, huge)
    raises(axdr.AxdrError, axdr.encode, Typed(axdr.UNSIGNED, 256))
    raises(axdr.AxdrError, axdr.encode, Typed(axdr.LONG, "x"))
    raises(axdr.AxdrError, axdr.encode, object())


def test_plain_view():
    value = axdr.decode(_b("0203" "0903010203" "040380" "0202" "0f01" "1620"), typed=True)
    assert axdr.plain(value) == ["010203", "100", [1, 32]]


def test_array_stream_in_chunks():
    rows = [(i, b"\x00" * 12, i * 10) for i in range(20)]
    data = axdr.encode(rows)
    stream = axdr.ArrayStream(max_element=64)
    got = []
    for i in range(0, len(data), 7):
        got += stream.feed(data[i:i + 7])
    assert got == rows and stream.done and stream.count == 20
    s2 = axdr.ArrayStream(max_element=16)
    raises(axdr.AxdrError, s2.feed, b"\x01\x01\x09\x82\x01\x00" + b"x" * 40)
    raises(axdr.AxdrError, axdr.ArrayStream().feed, b"\x02\x01\x00")
    s3 = axdr.ArrayStream()
    s3.feed(b"\x01\x01\x00")
    s4 = axdr.ArrayStream()                 # octets after the array: dropped, counted
    assert s4.feed(b"\x01\x01\x00\x00\x00") == [None] and s4.done and s4.trailing == 2


def test_tag_named():
    assert axdr.tag_named("long-unsigned") == axdr.LONG_UNSIGNED
    raises(axdr.AxdrError, axdr.tag_named, "nope")
