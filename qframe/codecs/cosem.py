"""COSEM objects (IEC 62056-6-2) as the client needs them: OBIS codes, Data, Register and
Extended Register (value, scaler, unit), Clock, Profile Generic (selective access by range or
entry, capture objects, rows). No I/O.

obis('1-0:1.8.0.255') / obis('1.0.1.8.0.255') -> 6 octets; obis_text(octets) ->
'1.0.1.8.0.255'. Class ids DATA, REGISTER, EXTENDED_REGISTER, PROFILE_GENERIC, CLOCK.
scaler_unit(value) -> (scaler, unit); by_range(from, to) / by_entry(first, last) -> access
(selector, A-XDR octets) for xdlms.get; capture_objects(value) -> [(cls, obis text, attr)];
row(values, columns) turns octet-string date-times of clock columns into DateTime.
The functions that build or read A-XDR values import codecs/axdr.py when called: checking and
parsing OBIS targets (DLMS-lite's config, at load) needs none of it.
"""

DATA = 1
REGISTER = 3
EXTENDED_REGISTER = 4
DEMAND_REGISTER = 5
PROFILE_GENERIC = 7
CLOCK = 8
CLOCK_OBIS = b"\x00\x00\x01\x00\x00\xff"
SCALED_CLASSES = (REGISTER, EXTENDED_REGISTER, DEMAND_REGISTER)

UNITS = {1: "a", 2: "mo", 3: "wk", 4: "d", 5: "h", 6: "min", 7: "s", 8: "deg", 9: "degC",
         23: "Pa", 25: "J", 27: "W", 28: "VA", 29: "var", 30: "Wh", 31: "VAh", 32: "varh",
         33: "A", 35: "V", 44: "Hz", 255: "count", 56: "%", 10: "m", 11: "m/s", 13: "m3",
         21: "m3/h", 34: "Ah", 38: "ohm", 41: "Wb", 42: "T", 46: "Rac", 47: "Rre", 48: "Rap",
         254: "other"}


class CosemError(ValueError):
    """A COSEM value that does not have the expected shape."""


def obis(text):
    """6 octets from 'A-B:C.D.E.F', 'A.B.C.D.E.F' (F defaults to 255 when only 5 given)
    or 12 hex digits."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) != 6:
            raise CosemError("OBIS code of %d octets" % len(text))
        return bytes(text)
    value = text.strip()
    if len(value) == 12 and "." not in value and ":" not in value:
        try:
            return bytes(int(value[i:i + 2], 16) for i in range(0, 12, 2))
        except ValueError:
            raise CosemError("not an OBIS code: %r" % text)
    for sep in "-:*&":
        value = value.replace(sep, ".")
    parts = value.split(".")
    if len(parts) == 5:
        parts.append("255")
    if len(parts) != 6:
        raise CosemError("not an OBIS code: %r" % text)
    try:
        out = bytes(int(p) for p in parts)
    except ValueError:
        raise CosemError("not an OBIS code: %r" % text)
    return out


def obis_text(octets):
    if len(octets) != 6:
        raise CosemError("OBIS code of %d octets" % len(octets))
    return "%d.%d.%d.%d.%d.%d" % tuple(octets)


def parse_target(text, default_attr=2):
    """'OBIS[:ATTR]' -> (obis octets, attr). A trailing ':N' after a full OBIS is the attribute."""
    parts = text.split(":")
    if len(parts) >= 2 and "." in parts[-1] and len(parts) == 2 and "-" in parts[0]:
        return obis(text), default_attr            # 1-0:1.8.0.255
    if len(parts) >= 2 and "." not in parts[-1]:
        try:
            attr = int(parts[-1])
        except ValueError:
            raise CosemError("bad attribute in %r" % text)
        return obis(":".join(parts[:-1])), attr
    return obis(text), default_attr


def scaler_attr(cls, attr):
    """The attribute holding the scaler_unit of (cls, attr), or None when attr is not a
    scaled value (Register and Extended Register: 2 -> 3; Demand Register: 2, 3 -> 4)."""
    if cls in (REGISTER, EXTENDED_REGISTER) and attr == 2:
        return 3
    if cls == DEMAND_REGISTER and attr in (2, 3):
        return 4
    return None


def unit_name(code):
    """The unit's name ('Wh') or 'unit-N' for a code not in UNITS."""
    return UNITS.get(code, "unit-%d" % code)


def scaler_unit(value):
    """(scaler, unit) from a Register's attribute 3 (structure of integer and enum)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise CosemError("scaler_unit is not a 2-element structure: %r" % (value,))
    scaler, unit = value
    if not isinstance(scaler, int) or not isinstance(unit, int):
        raise CosemError("scaler_unit of non-integers: %r" % (value,))
    return scaler, unit


def scaled(value, scaler):
    """value * 10**scaler (an int when the scaler is >= 0)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    if scaler >= 0:
        return value * (10 ** scaler)
    return value / float(10 ** -scaler)


def as_datetime(value):
    """DateTime from a clock value (octet-string of 12 or date-time)."""
    from . import axdr
    if isinstance(value, axdr.DateTime):
        return value
    if isinstance(value, bytes) and len(value) == 12:
        return axdr.DateTime.decode(value)
    raise CosemError("not a date-time: %r" % (value,))


def by_range(start, end, clock_obis=CLOCK_OBIS):
    """Selective access 1 (range of the clock column): start/end DateTime."""
    from . import axdr
    restricting = axdr.Typed(axdr.STRUCTURE, (
        axdr.Typed(axdr.LONG_UNSIGNED, CLOCK), axdr.Typed(axdr.OCTET_STRING, clock_obis),
        axdr.Typed(axdr.INTEGER, 2), axdr.Typed(axdr.LONG_UNSIGNED, 0)))
    params = axdr.Typed(axdr.STRUCTURE, (restricting, axdr.Typed(axdr.OCTET_STRING, start.encode()),
                                         axdr.Typed(axdr.OCTET_STRING, end.encode()),
                                         axdr.Typed(axdr.ARRAY, [])))
    return 1, axdr.encode(params)


def by_entry(first, last=0):
    """Selective access 2: entries first..last (1-based; last 0 = up to the newest)."""
    from . import axdr
    params = axdr.Typed(axdr.STRUCTURE, (
        axdr.Typed(axdr.DOUBLE_LONG_UNSIGNED, first), axdr.Typed(axdr.DOUBLE_LONG_UNSIGNED, last),
        axdr.Typed(axdr.LONG_UNSIGNED, 1), axdr.Typed(axdr.LONG_UNSIGNED, 0)))
    return 2, axdr.encode(params)


def parse_range(value):
    """(start DateTime, end DateTime) of by_range parameters (server side)."""
    try:
        return as_datetime(value[1]), as_datetime(value[2])
    except (TypeError, IndexError):
        raise CosemError("bad range parameters")


def parse_entry(value):
    """(first, last) of by_entry parameters."""
    try:
        return int(value[0]), int(value[1])
    except (TypeError, IndexError, ValueError):
        raise CosemError("bad entry parameters")


def capture_objects(value):
    """[(cls, obis text, attr)] of a Profile Generic's attribute 3."""
    if not isinstance(value, list):
        raise CosemError("capture_objects is not an array")
    out = []
    for item in value:
        if not isinstance(item, tuple) or len(item) < 3 or not isinstance(item[1], bytes):
            raise CosemError("bad capture object: %r" % (item,))
        out.append((item[0], obis_text(item[1]), item[2]))
    return out


def clock_columns(columns):
    """Indexes of the columns that hold a Clock's time."""
    return [i for i, col in enumerate(columns) if col[0] == CLOCK and col[2] == 2]


def row(values, clocks):
    """A profile row as a list, the clock columns (indexes) as DateTime."""
    from . import axdr
    out = list(values) if isinstance(values, (tuple, list)) else [values]
    for i in clocks:
        if i < len(out) and isinstance(out[i], bytes) and len(out[i]) == 12:
            out[i] = axdr.DateTime.decode(out[i])
    return out


def targets_problem(targets):
    """None if every item of targets is an 'OBIS[:ATTR]' text (a config's object list), else
    what is wrong with the first bad one."""
    for text in targets:
        try:
            attr = parse_target(text)[1]
        except Exception:           # not text, not 6 parts of 0..255, a bad attribute
            attr = -1
        if not 0 <= attr <= 255:
            return "not an OBIS code: %s (e.g. \"1.0.1.8.0.255\" or \"1-0:1.8.0.255:2\")" \
                % (repr(text)[:40],)
    return None
