"""QFrame's `usr.qframe.datetime`: dates and times with whole-hour time zones.

    now = DateTime.now()                     # local time, tz from utime.getTimeZone()
    later = now + TimeDelta(minutes=90)
    (later - now).total_seconds()            # 5400
    now.astimezone(UTC)

Arithmetic is calendar arithmetic on the fields (proleptic Gregorian), so it does not depend
on the platform's epoch; `timestamp` / `fromtimestamp` go through utime.mktime / localtime like
the firmware's clock. Comparing with another type is False (==) or TypeError (<), where QFrame
raises TypeError for == too; QFrame's check of a day against its month is fixed.
"""
import utime

_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_leap_year(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in_month(year, month):
    return 29 if month == 2 and is_leap_year(year) else _DAYS_IN_MONTH[month - 1]


def _days_from_civil(year, month, day):
    """Days since 1970-01-01 of a date (negative before)."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days):
    """(year, month, day) of a day count since 1970-01-01."""
    days += 719468
    era = (days if days >= 0 else days - 146096) // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


class UtimeAdapter(object):
    """The firmware clock as QFrame reads it."""

    @staticmethod
    def get_local_time_tuple():
        return utime.localtime()

    @staticmethod
    def get_timestamp_from_time_tuple(time_tuple):
        return utime.mktime(time_tuple)

    @staticmethod
    def get_time_tuple_from_timestamp(timestamp):
        return utime.localtime(timestamp)

    @staticmethod
    def get_local_timezone_offset():
        get = getattr(utime, "getTimeZone", None)
        return get() if get is not None else 0

    @staticmethod
    def set_local_timezone_offset(offset):
        setter = getattr(utime, "setTimeZone", None)
        return setter is not None and setter(offset) == 0


class TimeZone(object):
    """A fixed offset of whole hours from UTC (-12..12)."""

    def __init__(self, offset=0, name="N/A"):
        if not (isinstance(offset, int) and -12 <= offset <= 12):
            raise ValueError("offset should be an int in [-12, 12]")
        self.offset = offset
        self.name = name

    def __str__(self):
        return "UTC%s%02d:00" % ("-" if self.offset < 0 else "+", abs(self.offset))


UTC = TimeZone(0, "UTC")


class _Comparable(object):
    """Comparisons through _key(other): the signed difference (TypeError for another type);
    == with another type is False."""

    def __eq__(self, other):
        return isinstance(other, type(self)) and self._key(other) == 0

    def __ne__(self, other):
        return not self.__eq__(other)

    def __lt__(self, other):
        return self._key(other) < 0

    def __le__(self, other):
        return self._key(other) <= 0

    def __gt__(self, other):
        return self._key(other) > 0

    def __ge__(self, other):
        return self._key(other) >= 0


class TimeDelta(_Comparable):
    """A duration: days and seconds (0 <= seconds < 86400)."""

    def __init__(self, days=0, seconds=0, hours=0, minutes=0, weeks=0):
        total = int((weeks * 7 + days) * 86400 + hours * 3600 + minutes * 60 + seconds)
        self.days = total // 86400
        self.seconds = total % 86400

    def __str__(self):
        return "%d days, %d seconds" % (self.days, self.seconds)

    def total_seconds(self):
        return self.days * 86400 + self.seconds

    def __add__(self, other):
        if isinstance(other, TimeDelta):
            return TimeDelta(seconds=self.total_seconds() + other.total_seconds())
        if isinstance(other, DateTime):
            return other + self
        raise TypeError("cannot add %s to TimeDelta" % type(other).__name__)

    def __sub__(self, other):
        if isinstance(other, TimeDelta):
            return TimeDelta(seconds=self.total_seconds() - other.total_seconds())
        raise TypeError("cannot subtract %s from TimeDelta" % type(other).__name__)

    def __neg__(self):
        return TimeDelta(seconds=-self.total_seconds())

    def _key(self, other):
        if not isinstance(other, TimeDelta):
            raise TypeError("cannot compare TimeDelta with %s" % type(other).__name__)
        return self.total_seconds() - other.total_seconds()


    def __hash__(self):
        return hash(self.total_seconds())


class _Date(object):
    def __init__(self, year, month=1, day=1):
        if not (isinstance(year, int) and 1 <= year <= 9999):
            raise ValueError("year %r is not valid" % (year,))
        if not (isinstance(month, int) and 1 <= month <= 12):
            raise ValueError("month %r is not valid" % (month,))
        if not (isinstance(day, int) and 1 <= day <= _days_in_month(year, month)):
            raise ValueError("day %r is not valid" % (day,))
        self.year = year
        self.month = month
        self.day = day

    def __str__(self):
        return "%04d-%02d-%02d" % (self.year, self.month, self.day)


class _Time(object):
    def __init__(self, hour=0, minute=0, second=0):
        for label, value, top in (("hour", hour, 23), ("minute", minute, 59),
                                  ("second", second, 59)):
            if not (isinstance(value, int) and 0 <= value <= top):
                raise ValueError("%s %r is not valid" % (label, value))
        self.hour = hour
        self.minute = minute
        self.second = second

    def __str__(self):
        return "%02d:%02d:%02d" % (self.hour, self.minute, self.second)


class DateTime(_Comparable):
    """A date and time of day, optionally in a TimeZone."""

    def __init__(self, year, month=1, day=1, hour=0, minute=0, second=0, tz=None):
        self.date = _Date(year, month, day)
        self.time = _Time(hour, minute, second)
        self.tz = tz

    def __str__(self):
        text = "%s %s" % (self.date, self.time)
        return text + " " + str(self.tz) if self.tz else text

    year = property(lambda self: self.date.year)
    month = property(lambda self: self.date.month)
    day = property(lambda self: self.date.day)
    hour = property(lambda self: self.time.hour)
    minute = property(lambda self: self.time.minute)
    second = property(lambda self: self.time.second)

    @property
    def yearday(self):
        return _days_from_civil(self.year, self.month, self.day) - \
            _days_from_civil(self.year, 1, 1) + 1

    @property
    def weekday(self):
        """0 Sunday .. 6 Saturday (QFrame's; utime.localtime counts from Monday)."""
        return (_days_from_civil(self.year, self.month, self.day) + 4) % 7

    @property
    def timetuple(self):
        return (self.year, self.month, self.day, self.hour, self.minute, self.second,
                self.weekday, self.yearday)

    @property
    def timestamp(self):
        """Seconds since the firmware's epoch (utime.mktime of the fields)."""
        return UtimeAdapter.get_timestamp_from_time_tuple(self.timetuple)

    @classmethod
    def fromtimestamp(cls, timestamp, tz=None):
        fields = UtimeAdapter.get_time_tuple_from_timestamp(timestamp)
        return cls(fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], tz=tz)

    @classmethod
    def now(cls, tz=None):
        """The firmware's local time (tz: the firmware's offset), converted to tz if given."""
        if tz is not None and not isinstance(tz, TimeZone):
            raise TypeError("tz should be a TimeZone or None")
        fields = UtimeAdapter.get_local_time_tuple()
        local = cls(fields[0], fields[1], fields[2], fields[3], fields[4], fields[5],
                    tz=TimeZone(UtimeAdapter.get_local_timezone_offset()))
        return local.astimezone(tz) if tz is not None else local

    @classmethod
    def utcnow(cls):
        return cls.now(UTC)

    def _seconds(self):
        """Seconds since 1970-01-01 00:00 of the fields (ignoring tz)."""
        return (_days_from_civil(self.year, self.month, self.day) * 86400 + self.hour * 3600
                + self.minute * 60 + self.second)

    @classmethod
    def _from_seconds(cls, seconds, tz):
        days, rest = divmod(seconds, 86400)
        year, month, day = _civil_from_days(days)
        return cls(year, month, day, rest // 3600, rest % 3600 // 60, rest % 60, tz=tz)

    def _utc_seconds(self):
        return self._seconds() - (self.tz.offset * 3600 if self.tz else 0)

    def replace(self, year=None, month=None, day=None, hour=None, minute=None, second=None,
                tz=None):
        return DateTime(self.year if year is None else year,
                        self.month if month is None else month,
                        self.day if day is None else day,
                        self.hour if hour is None else hour,
                        self.minute if minute is None else minute,
                        self.second if second is None else second,
                        tz=self.tz if tz is None else tz)

    def astimezone(self, tz):
        if not (isinstance(tz, TimeZone) and isinstance(self.tz, TimeZone)):
            raise TypeError("cannot convert without time zones on both sides")
        return self._from_seconds(self._utc_seconds() + tz.offset * 3600, tz)

    def __add__(self, other):
        if not isinstance(other, TimeDelta):
            raise TypeError("cannot add %s to DateTime" % type(other).__name__)
        return self._from_seconds(self._seconds() + other.total_seconds(), self.tz)

    def __sub__(self, other):
        if isinstance(other, TimeDelta):
            return self._from_seconds(self._seconds() - other.total_seconds(), self.tz)
        if isinstance(other, DateTime):
            if self.tz and other.tz:
                return TimeDelta(seconds=self._utc_seconds() - other._utc_seconds())
            return TimeDelta(seconds=self._seconds() - other._seconds())
        raise TypeError("cannot subtract %s from DateTime" % type(other).__name__)

    def _key(self, other):
        if not isinstance(other, DateTime):
            raise TypeError("cannot compare DateTime with %s" % type(other).__name__)
        return (self - other).total_seconds()


    def __hash__(self):
        return hash(self._utc_seconds())
