"""A-XDR encoding of COSEM Data (IEC 62056-6-2), both ways. No I/O.

Decoded values are plain Python: None, bool, int, float, bytes (octet-string), str
(visible/utf8), list (array), tuple (structure), BitString, DateTime (date-time, date, time).
encode() takes the same plain values (int -> double-long, or long64 beyond 32 bits; bytes ->
octet-string; str -> visible-string; list -> array; tuple -> structure; DateTime ->
octet-string(12) as COSEM attributes carry it) or Typed(tag, value) for an exact type.
decode(data, typed=True) returns Typed nodes all the way down (for trees and for writing a
value back in the type the meter uses).

Bad input raises AxdrError (Truncated when the data ends early): lengths beyond the data,
unknown tags, nesting deeper than MAX_DEPTH. ArrayStream decodes an array's elements as
chunks arrive (block transfer), holding only the unfinished element.
"""
import ustruct

from . import utf8

NULL = 0
ARRAY = 1
STRUCTURE = 2
BOOLEAN = 3
BIT_STRING = 4
DOUBLE_LONG = 5
DOUBLE_LONG_UNSIGNED = 6
OCTET_STRING = 9
VISIBLE_STRING = 10
UTF8_STRING = 12
BCD = 13
INTEGER = 15
LONG = 16
UNSIGNED = 17
LONG_UNSIGNED = 18
COMPACT_ARRAY = 19
LONG64 = 20
LONG64_UNSIGNED = 21
ENUM = 22
FLOAT32 = 23
FLOAT64 = 24
DATE_TIME = 25
DATE = 26
TIME = 27

NAMES = {NULL: "null-data", ARRAY: "array", STRUCTURE: "structure", BOOLEAN: "boolean",
         BIT_STRING: "bit-string", DOUBLE_LONG: "double-long",
         DOUBLE_LONG_UNSIGNED: "double-long-unsigned", OCTET_STRING: "octet-string",
         VISIBLE_STRING: "visible-string", UTF8_STRING: "utf8-string", BCD: "bcd",
         INTEGER: "integer", LONG: "long", UNSIGNED: "unsigned", LONG_UNSIGNED: "long-unsigned",
         LONG64: "long64", LONG64_UNSIGNED: "long64-unsigned", ENUM: "enum",
         FLOAT32: "float32", FLOAT64: "float64", DATE_TIME: "date-time", DATE: "date",
         TIME: "time"}
MAX_DEPTH = 16

# fixed-size numbers: tag -> (ustruct format, size)
_FIXED = {DOUBLE_LONG: (">i", 4), DOUBLE_LONG_UNSIGNED: (">I", 4), INTEGER: (">b", 1),
          LONG: (">h", 2), UNSIGNED: (">B", 1), LONG_UNSIGNED: (">H", 2), LONG64: (">q", 8),
          LONG64_UNSIGNED: (">Q", 8), ENUM: (">B", 1), FLOAT32: (">f", 4), FLOAT64: (">d", 8)}
_RANGES = {DOUBLE_LONG: (-0x80000000, 0x7FFFFFFF), DOUBLE_LONG_UNSIGNED: (0, 0xFFFFFFFF),
           INTEGER: (-128, 127), LONG: (-0x8000, 0x7FFF), UNSIGNED: (0, 255),
           LONG_UNSIGNED: (0, 0xFFFF), LONG64: (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF),
           LONG64_UNSIGNED: (0, 0xFFFFFFFFFFFFFFFF), ENUM: (0, 255)}


class AxdrError(ValueError):
    """Malformed A-XDR."""


class Truncated(AxdrError):
    """The data ends inside a value."""


class Typed(object):
    """A value with its A-XDR tag (children Typed too when decoded with typed=True)."""
    __slots__ = ("tag", "value")

    def __init__(self, tag, value):
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Typed) and self.tag == other.tag and self.value == other.value

    def __repr__(self):
        return "%s(%r)" % (NAMES.get(self.tag, self.tag), self.value)


class BitString(object):
    __slots__ = ("bits",)

    def __init__(self, bits):
        self.bits = bits            # str of "0"/"1", first bit = most significant of octet 0

    def __eq__(self, other):
        return isinstance(other, BitString) and self.bits == other.bits

    def __repr__(self):
        return "BitString(%r)" % self.bits


def _days_from_civil(y, m, d):
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


class DateTime(object):
    """COSEM date-time; a field of None is 'not specified' (FF / FFFF / 8000 on the wire)."""
    __slots__ = ("year", "month", "day", "weekday", "hour", "minute", "second", "hundredths",
                 "deviation", "status")

    def __init__(self, year=None, month=None, day=None, hour=None, minute=None, second=None,
                 hundredths=None, deviation=None, status=None, weekday=None):
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
        self.hundredths = hundredths
        self.deviation = deviation
        self.status = status
        if weekday is None and year is not None and month is not None and day is not None:
            weekday = (_days_from_civil(year, month, day) + 3) % 7 + 1     # 1 = Monday
        self.weekday = weekday

    def __eq__(self, other):
        return isinstance(other, DateTime) and self.encode() == other.encode()

    def __repr__(self):
        return "DateTime(%s)" % self.iso()

    def encode(self):
        """The 12 octets of a COSEM date-time."""
        def one(v):
            return 0xFF if v is None else v
        year = 0xFFFF if self.year is None else self.year
        dev = 0x8000 if self.deviation is None else self.deviation & 0xFFFF
        return bytes((year >> 8, year & 0xFF, one(self.month), one(self.day), one(self.weekday),
                      one(self.hour), one(self.minute), one(self.second), one(self.hundredths),
                      dev >> 8, dev & 0xFF, 0xFF if self.status is None else self.status))

    @classmethod
    def decode(cls, data):
        if len(data) != 12:
            raise AxdrError("date-time of %d octets" % len(data))
        return cls.from_parts(data[0:5], data[5:9], data[9:12])

    @classmethod
    def from_parts(cls, date=None, time=None, tail=None):
        def one(v):
            return None if v == 0xFF else v
        dt = cls()
        if date is not None:
            year = (date[0] << 8) | date[1]
            dt.year = None if year == 0xFFFF else year
            dt.month = None if date[2] in (0xFF, 0xFD, 0xFE) else date[2]
            dt.day = None if date[3] in (0xFF, 0xFD, 0xFE) else date[3]
            dt.weekday = one(date[4])
        if time is not None:
            dt.hour, dt.minute, dt.second, dt.hundredths = (one(time[0]), one(time[1]),
                                                            one(time[2]), one(time[3]))
        if tail is not None:
            dev = (tail[0] << 8) | tail[1]
            dt.deviation = None if dev == 0x8000 else (dev - 0x10000 if dev & 0x8000 else dev)
            dt.status = one(tail[2])
        return dt

    def iso(self):
        """YYYY-MM-DDTHH:MM:SS (unspecified fields as 0)."""
        def z(v):
            return 0 if v is None else v
        return "%04d-%02d-%02dT%02d:%02d:%02d" % (z(self.year), z(self.month), z(self.day),
                                                  z(self.hour), z(self.minute), z(self.second))

    @classmethod
    def parse_iso(cls, text):
        """From YYYY-MM-DD[THH:MM[:SS]] (a trailing Z or offset is ignored)."""
        text = text.strip()
        try:
            date = text[:10].split("-")
            year, month, day = int(date[0]), int(date[1]), int(date[2])
            hour = minute = second = 0
            if len(text) > 10:
                clock = text[11:19].split(":")
                hour, minute = int(clock[0]), int(clock[1])
                if len(clock) > 2:
                    second = int(clock[2][:2])
        except (ValueError, IndexError):
            raise AxdrError("not an ISO 8601 date-time: %r" % text)
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60):
            raise AxdrError("date-time out of range: %r" % text)
        return cls(year, month, day, hour, minute, second, 0, None, 0)

    def epoch(self):
        """Seconds since 1970-01-01 (local fields, deviation ignored)."""
        days = _days_from_civil(self.year or 1970, self.month or 1, self.day or 1)
        return days * 86400 + (self.hour or 0) * 3600 + (self.minute or 0) * 60 + (self.second or 0)

    @classmethod
    def from_epoch(cls, seconds):
        days, rest = divmod(int(seconds), 86400)
        z = days + 719468
        era = z // 146097
        doe = z - era * 146097
        yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
        doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
        mp = (5 * doy + 2) // 153
        day = doy - (153 * mp + 2) // 5 + 1
        month = mp + 3 if mp < 10 else mp - 9
        year = yoe + era * 400 + (month <= 2)
        return cls(year, month, day, rest // 3600, (rest // 60) % 60, rest % 60, 0, None, 0)


# --- decoding --------------------------------------------------------------------------------

def length(data, pos):
    """(length, next position) of an A-XDR length at data[pos]."""
    if pos >= len(data):
        raise Truncated("data ends before a length")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    size = first & 0x7F
    if size == 0 or size > 4:
        raise AxdrError("length of %d octets" % size)
    if pos + 1 + size > len(data):
        raise Truncated("data ends inside a length")
    value = 0
    for i in range(pos + 1, pos + 1 + size):
        value = (value << 8) | data[i]
    return value, pos + 1 + size


def encode_length(n):
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return bytes((0x82, n >> 8, n & 0xFF))
    return bytes((0x84, (n >> 24) & 0xFF, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))


_unpack_from = ustruct.unpack_from


def decode_at(data, pos, typed=False, depth=0):
    """(value, next position) of the Data at data[pos]."""
    end = len(data)
    if pos >= end:
        raise Truncated("data ends before a tag")
    tag = data[pos]
    pos += 1
    fixed = _FIXED.get(tag)
    if fixed is not None:
        nxt = pos + fixed[1]
        if nxt > end:
            raise Truncated("data ends inside %s" % NAMES[tag])
        value = _unpack_from(fixed[0], data, pos)[0]
        pos = nxt
    elif tag == STRUCTURE or tag == ARRAY:
        if depth >= MAX_DEPTH:
            raise AxdrError("nesting deeper than %d" % MAX_DEPTH)
        count, pos = length(data, pos)
        if count > end - pos:
            raise Truncated("%s of %d elements in %d octets" % (NAMES[tag], count, end - pos))
        items = [None] * count           # sized once: no regrowth, less fragmentation
        depth += 1
        for i in range(count):
            items[i], pos = decode_at(data, pos, typed, depth)
        value = tuple(items) if tag == STRUCTURE else items
    elif tag == OCTET_STRING or tag == VISIBLE_STRING or tag == UTF8_STRING or tag == BCD:
        if tag == BCD:
            n = 1
        else:
            n, pos = length(data, pos)
        if pos + n > end:
            raise Truncated("%s of %d octets, %d left" % (NAMES[tag], n, end - pos))
        raw = bytes(data[pos:pos + n])
        pos += n
        if tag == OCTET_STRING:
            value = raw
        elif tag == BCD:
            if raw[0] >> 4 > 9 or raw[0] & 0x0F > 9:
                raise AxdrError("bcd %02x is not two decimal digits" % raw[0])
            value = (raw[0] >> 4) * 10 + (raw[0] & 0x0F)
        else:
            try:
                value = utf8.decode(raw)
            except ValueError:
                raise AxdrError("%s is not text" % NAMES[tag])
    elif tag == NULL:
        value = None
    elif tag == BOOLEAN:
        if pos >= end:
            raise Truncated("data ends inside boolean")
        value = data[pos] != 0
        pos += 1
    elif tag == BIT_STRING:
        nbits, pos = length(data, pos)
        nbytes = (nbits + 7) // 8
        if pos + nbytes > end:
            raise Truncated("bit-string of %d bits, %d octets left" % (nbits, end - pos))
        bits = "".join("{:08b}".format(b) for b in data[pos:pos + nbytes])
        value = BitString(bits[:nbits])
        pos += nbytes
    elif tag == DATE_TIME or tag == DATE or tag == TIME:
        n = 12 if tag == DATE_TIME else 5 if tag == DATE else 4
        if pos + n > end:
            raise Truncated("data ends inside %s" % NAMES[tag])
        raw = data[pos:pos + n]
        if tag == DATE_TIME:
            value = DateTime.decode(raw)
        elif tag == DATE:
            value = DateTime.from_parts(date=raw)
        else:
            value = DateTime.from_parts(time=raw)
        pos += n
    else:
        raise AxdrError("unknown A-XDR tag %d" % tag)
    if typed:
        return Typed(tag, value), pos
    return value, pos


def decode(data, typed=False):
    """The one Data that fills data."""
    value, pos = decode_at(data, 0, typed)
    if pos != len(data):
        raise AxdrError("%d octets after the data" % (len(data) - pos))
    return value


def decode_first(data, typed=False):
    """(value, trailing): the first complete Data of data and how many octets followed it
    (a meter that encodes a value twice, or pads a block, still gives its value)."""
    value, pos = decode_at(data, 0, typed)
    return value, len(data) - pos


def printable(raw):
    """True when every octet is printable ASCII (and there is at least one)."""
    if not raw:
        return False
    for b in raw:
        if b < 32 or b > 126:
            return False
    return True


def plain(value, text=False):
    """A decoded value as JSON-friendly Python (Typed unwrapped, tuples as lists, bytes as
    hex - as text when text is set and they are printable -, DateTime as ISO text,
    BitString as its bits)."""
    if isinstance(value, Typed):
        value = value.value
    if isinstance(value, (list, tuple)):
        return [plain(v, text) for v in value]
    if isinstance(value, bytes):
        if text and printable(value):
            return value.decode()
        return "".join("%02x" % b for b in value)
    if isinstance(value, DateTime):
        return value.iso()
    if isinstance(value, BitString):
        return value.bits
    return value


class ArrayStream(object):
    """Elements of one array decoded as its octets arrive: feed(chunk) -> [element]. Holds
    only the unfinished element (at most max_element octets). Octets after the last element
    are dropped and counted in .trailing."""

    def __init__(self, max_element=4096):
        self.max_element = max_element
        self.count = None           # elements announced
        self.seen = 0
        self.trailing = 0           # octets after the array (tolerated, dropped, counted)
        self._buf = b""

    @property
    def done(self):
        return self.count is not None and self.seen >= self.count

    def feed(self, chunk):
        buf = self._buf + bytes(chunk) if self._buf else bytes(chunk)
        pos = 0
        out = []
        try:
            if self.count is None:
                if not buf:
                    return out
                if buf[0] != ARRAY:
                    raise AxdrError("expected an array, tag %d" % buf[0])
                self.count, pos = length(buf, 1)
            while self.seen < self.count:
                item, pos = decode_at(buf, pos)
                out.append(item)
                self.seen += 1
        except Truncated:
            if len(buf) - pos > self.max_element:
                raise AxdrError("array element larger than %d octets" % self.max_element)
        if self.count is not None and self.seen >= self.count:
            self.trailing += len(buf) - pos
            pos = len(buf)
        self._buf = buf[pos:]
        return out


# --- encoding --------------------------------------------------------------------------------

def _encode_into(value, out, tag=None):
    if isinstance(value, Typed):
        tag = value.tag
        value = value.value
    if tag is None:
        if value is None:
            tag = NULL
        elif value is True or value is False:
            tag = BOOLEAN
        elif isinstance(value, int):
            tag = DOUBLE_LONG if -0x80000000 <= value <= 0x7FFFFFFF else LONG64
        elif isinstance(value, float):
            tag = FLOAT64
        elif isinstance(value, (bytes, bytearray)):
            tag = OCTET_STRING
        elif isinstance(value, str):
            tag = VISIBLE_STRING
        elif isinstance(value, list):
            tag = ARRAY
        elif isinstance(value, tuple):
            tag = STRUCTURE
        elif isinstance(value, DateTime):
            tag = OCTET_STRING
        elif isinstance(value, BitString):
            tag = BIT_STRING
        else:
            raise AxdrError("no A-XDR type for %r" % (value,))
    out.append(bytes((tag,)))
    fixed = _FIXED.get(tag)
    if fixed is not None:
        if tag != FLOAT32 and tag != FLOAT64:
            if not isinstance(value, int):
                raise AxdrError("%s needs an integer, not %r" % (NAMES[tag], value))
            lo, hi = _RANGES[tag]
            if not lo <= value <= hi:
                raise AxdrError("%d out of range for %s" % (value, NAMES[tag]))
        out.append(ustruct.pack(fixed[0], value))
    elif tag == ARRAY or tag == STRUCTURE:
        out.append(encode_length(len(value)))
        for item in value:
            _encode_into(item, out)
    elif tag == OCTET_STRING:
        if isinstance(value, DateTime):
            value = value.encode()
        out.append(encode_length(len(value)))
        out.append(bytes(value))
    elif tag == VISIBLE_STRING or tag == UTF8_STRING:
        raw = value.encode()
        out.append(encode_length(len(raw)))
        out.append(raw)
    elif tag == NULL:
        pass
    elif tag == BOOLEAN:
        out.append(b"\x01" if value else b"\x00")
    elif tag == BCD:
        if not isinstance(value, int) or not 0 <= value <= 99:
            raise AxdrError("bcd holds 0..99, not %r" % (value,))
        out.append(bytes(((value // 10) << 4 | (value % 10),)))
    elif tag == BIT_STRING:
        bits = value.bits if isinstance(value, BitString) else value
        out.append(encode_length(len(bits)))
        padded = bits + "0" * (-len(bits) % 8)
        out.append(bytes(int(padded[i:i + 8], 2) for i in range(0, len(padded), 8)))
    elif tag == DATE_TIME:
        out.append(value.encode())
    elif tag == DATE:
        out.append(value.encode()[:5])
    elif tag == TIME:
        out.append(value.encode()[5:9])
    else:
        raise AxdrError("cannot encode tag %d" % tag)


def encode(value, tag=None):
    """A-XDR octets of value (plain or Typed; tag forces the outer type)."""
    out = []
    _encode_into(value, out, tag)
    return b"".join(out)


def tag_named(name):
    """The tag of a type name ('long-unsigned', ...); AxdrError if unknown."""
    for tag in NAMES:
        if NAMES[tag] == name:
            return tag
    raise AxdrError("unknown A-XDR type %r" % name)
