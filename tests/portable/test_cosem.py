"""qframe.codecs.cosem: OBIS codes, scaler/unit, selective access, capture objects, rows."""
from checks import raises
from usr.qframe.codecs import axdr, cosem


def test_obis_forms():
    want = b"\x01\x00\x01\x08\x00\xff"
    for text in ("1-0:1.8.0.255", "1.0.1.8.0.255", "1-0:1.8.0", "0100010800ff"):
        assert cosem.obis(text) == want, text
    assert cosem.obis_text(want) == "1.0.1.8.0.255"
    for bad in ("1.2.3", "a.b.c.d.e.f", "1.0.1.8.0.256", "1.0.1.8.0.255.1"):
        raises(cosem.CosemError, cosem.obis, bad)
    raises(cosem.CosemError, cosem.obis_text, b"\x01")


def test_targets():
    assert cosem.parse_target("1-0:1.8.0.255") == (b"\x01\x00\x01\x08\x00\xff", 2)
    assert cosem.parse_target("1.0.1.8.0.255:3") == (b"\x01\x00\x01\x08\x00\xff", 3)
    assert cosem.parse_target("1-0:1.8.0.255:3")[1] == 3
    raises(cosem.CosemError, cosem.parse_target, "1.0.1.8.0.255:x")


def test_scaler_unit():
    assert cosem.scaler_unit((-1, 30)) == (-1, 30)
    assert cosem.scaled(12345, -1) == 1234.5 and cosem.scaled(7, 2) == 700
    raises(cosem.CosemError, cosem.scaler_unit, (1,))
    raises(cosem.CosemError, cosem.scaler_unit, ("a", 1))


def test_by_range_and_entry_encoding():
    start = axdr.DateTime(2024, 1, 1, 0, 0, 0, 0, None, 0)
    end = axdr.DateTime(2024, 1, 2, 0, 0, 0, 0, None, 0)
    selector, params = cosem.by_range(start, end)
    assert selector == 1
    value = axdr.decode(params)
    assert value[0] == (8, cosem.CLOCK_OBIS, 2, 0)
    got = cosem.parse_range(value)
    assert got[0] == start and got[1] == end
    selector, params = cosem.by_entry(5, 9)
    assert selector == 2 and params == bytes.fromhex("020406000000050600000009120001120000") \
        if hasattr(bytes, "fromhex") else selector == 2
    assert cosem.parse_entry(axdr.decode(params)) == (5, 9)
    raises(cosem.CosemError, cosem.parse_entry, 3)


def test_capture_objects_and_rows():
    cap = [(8, cosem.CLOCK_OBIS, 2, 0), (3, cosem.obis("1.0.1.8.0.255"), 2, 0)]
    cols = cosem.capture_objects(axdr.decode(axdr.encode(cap)))
    assert cols == [(8, "0.0.1.0.0.255", 2), (3, "1.0.1.8.0.255", 2)]
    clocks = cosem.clock_columns(cols)
    assert clocks == [0]
    dt = axdr.DateTime(2024, 1, 1, 0, 15, 0)
    r = cosem.row((dt.encode(), 42), clocks)
    assert r[0] == dt and r[1] == 42
    raises(cosem.CosemError, cosem.capture_objects, 5)
    raises(cosem.CosemError, cosem.capture_objects, [(1, 2)])
    assert cosem.as_datetime(dt.encode()) == dt
    raises(cosem.CosemError, cosem.as_datetime, b"x")
