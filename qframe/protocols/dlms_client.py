"""COSEM reads and writes as JSON-ready dicts over an open Association (protocols/dlms.py);
shared by the `dlms` extension and tools/dlms.py.

    client = Client(assoc, run)     # run(op): drives one Operation, returns its result or raises
    client.read(obis)               # {"obis", "class", "attr", "value", "scaler", "unit", "status"}
    client.profile(obis, entries=96); client.write(obis, 2, 7); client.clock(); client.set_clock(t)

encode_like(current, value) puts a JSON value in the A-XDR type the meter uses for an attribute.
"""
from ..codecs import axdr, cosem
from ..codecs.xdlms import DataAccessError
from .dlms import REQUEST_ERRORS

CLOCK_OBIS = cosem.CLOCK_OBIS
_NOT_THIS_CLASS = (4, 9)          # object-undefined, object-class-inconsistent


def class_guesses(obis):
    """Interface classes to try for an OBIS code whose class is not given, likeliest first."""
    if obis == CLOCK_OBIS:
        return (8,)
    a, c = obis[0], obis[2]
    if c in (98, 99):
        return (7,)
    if a != 0 and 1 <= c <= 94:
        return (3, 4, 5, 1)
    return (1, 3, 70, 4, 8)


def _status(exc):
    if isinstance(exc, DataAccessError):
        return exc.name
    return "error"


OBJECT_LIST = (15, b"\x00\x00\x28\x00\x00\xff", 2)   # the LN association's object_list


class Client(object):
    """COSEM-level requests over an open Association; run(op) drives one Operation and
    returns its result or raises its error (drive() with bound I/O).

    The class of an OBIS code given without one comes from the association's object list
    (0.0.40.0.0.255 attribute 2, streamed, read once and kept in `classes`, which a caller
    may share between associations with the same meter); likely classes are tried when the
    meter has no list or does not list the object. A refused or malformed answer to one
    request is reported in that request's "status" and the association stays usable; a
    link failure (ProtocolError, DlmsTimeout, OSError) raises. With text, octet strings that
    are printable come out as text (hex otherwise)."""

    def __init__(self, assoc, run, classes=None, text=False):
        self.assoc = assoc
        self.run = run
        self.classes = {} if classes is None else classes     # obis octets -> class
        self.listed = None           # object list read: None not yet, True, False (refused)
        self.text = text

    def _plain(self, value):
        return axdr.plain(value, self.text)

    def object_list(self):
        """Read the object list into self.classes (elements streamed, only classes kept);
        True when the meter gave it."""
        classes = self.classes

        def take(element):
            if isinstance(element, tuple) and len(element) >= 3 and isinstance(element[2], bytes):
                classes[element[2]] = element[0]
        try:
            self.run(self.assoc.get(OBJECT_LIST[0], OBJECT_LIST[1], OBJECT_LIST[2], on_row=take))
            self.listed = True
        except REQUEST_ERRORS:
            self.listed = False
        return self.listed

    def _class_for(self, obis, attr, cls, typed=False):
        """(class, value of attr, Typed with typed): the class given, listed or tried;
        raises the last error. Plain values take a fraction of the heap Typed ones do."""
        if cls is not None:
            return cls, self.run(self.assoc.get(cls, obis, attr, typed=typed))
        if obis not in self.classes and self.listed is None and obis != CLOCK_OBIS:
            self.object_list()
        tries = (self.classes[obis],) if obis in self.classes else class_guesses(obis)
        error = None
        for guess in tries:
            try:
                value = self.run(self.assoc.get(guess, obis, attr, typed=typed))
            except DataAccessError as exc:
                if exc.code not in _NOT_THIS_CLASS:
                    raise
                error = exc
                continue
            self.classes[obis] = guess
            return guess, value
        raise error

    def read(self, obis, attr=2, cls=None):
        """{"obis", "class", "attr", "value", ["scaler", "unit"], "status"}; a refusal is
        reported in "status" (and "error"), a link failure raises."""
        out = {"obis": cosem.obis_text(obis), "class": cls, "attr": attr}
        try:
            cls, value = self._class_for(obis, attr, cls)
            out["class"] = cls
            if cls == cosem.CLOCK and attr == 2 and isinstance(value, bytes) and len(value) == 12:
                value = axdr.DateTime.decode(value)
            out["value"] = self._plain(value)
            scaler_attr = cosem.scaler_attr(cls, attr)
            if scaler_attr is not None:
                scaler, unit = cosem.scaler_unit(self.run(self.assoc.get(cls, obis, scaler_attr)))
                out["scaler"] = scaler
                out["unit"] = unit
            out["status"] = "ok"
        except REQUEST_ERRORS as exc:
            out["status"] = _status(exc)
            out["error"] = str(exc) or type(exc).__name__
        return out

    def profile(self, obis, start=None, end=None, entries=None, on_row=None, on_columns=None):
        """{"obis", "columns", "rows" (or "count" when on_row takes them), "status"}.
        start/end: DateTime; entries: the newest N; on_columns(columns) before any row."""
        out = {"obis": cosem.obis_text(obis)}
        try:
            columns = cosem.capture_objects(self.run(self.assoc.get(cosem.PROFILE_GENERIC, obis, 3)))
            out["columns"] = [[c, o, a] for c, o, a in columns]
            if on_columns is not None:
                on_columns(out["columns"])
            access = None
            if start is not None or end is not None:
                access = cosem.by_range(start or axdr.DateTime(2000, 1, 1, 0, 0, 0, 0, None, 0),
                                        end or axdr.DateTime(2099, 12, 31, 23, 59, 59, 0, None, 0))
            elif entries is not None:
                used = self.run(self.assoc.get(cosem.PROFILE_GENERIC, obis, 7))
                access = cosem.by_entry(max(1, used - entries + 1), used)
            clocks = cosem.clock_columns(columns)
            rows = []

            def take(element):
                row = [self._plain(v) for v in cosem.row(element, clocks)]
                if on_row is None:
                    rows.append(row)
                else:
                    on_row(row)
            count = self.run(self.assoc.get(cosem.PROFILE_GENERIC, obis, 2, access, on_row=take))
            if on_row is None:
                out["rows"] = rows
            else:
                out["count"] = count
            out["status"] = "ok"
        except REQUEST_ERRORS as exc:
            out["status"] = _status(exc)
            out["error"] = str(exc) or type(exc).__name__
        return out

    def write(self, obis, attr, value, cls=None):
        """SET with the type the meter uses for the attribute (read first). value: plain
        JSON value, or {"type": name, "value": v} for an explicit type."""
        out = {"obis": cosem.obis_text(obis), "class": cls, "attr": attr}
        try:
            cls, current = self._class_for(obis, attr, cls, True)
            out["class"] = cls
            encoded = encode_like(current, value)
            self.run(self.assoc.set(cls, obis, attr, encoded))
            out["status"] = "ok"
        except REQUEST_ERRORS as exc:
            out["status"] = _status(exc)
            out["error"] = str(exc) or type(exc).__name__
        return out

    def clock(self):
        """{"obis", "value" (ISO), "status"}."""
        out = self.read(CLOCK_OBIS, 2, 8)
        return {"obis": out["obis"], "value": out.get("value"), "status": out["status"]}

    def set_clock(self, when):
        """Set the meter's clock to when (DateTime)."""
        out = {"obis": cosem.obis_text(CLOCK_OBIS), "value": when.iso()}
        try:
            self.run(self.assoc.set(8, CLOCK_OBIS, 2, axdr.encode(when)))
            out["status"] = "ok"
        except REQUEST_ERRORS as exc:
            out["status"] = _status(exc)
            out["error"] = str(exc) or type(exc).__name__
        return out


def _hex_bytes(text):
    if len(text) % 2:
        return None
    try:
        return bytes(int(text[i:i + 2], 16) for i in range(0, len(text), 2))
    except ValueError:
        return None


def encode_like(current, value):
    """A-XDR octets of a JSON value in the type of current (a Typed read from the meter)."""
    if isinstance(value, dict):
        tag = axdr.tag_named(value.get("type", ""))
        value = value.get("value")
        if tag == axdr.OCTET_STRING and isinstance(value, str):
            value = _hex_bytes(value) if _hex_bytes(value) is not None else value.encode()
        return axdr.encode(axdr.Typed(tag, value))
    tag = current.tag if isinstance(current, axdr.Typed) else None
    if tag == axdr.OCTET_STRING and isinstance(value, str):
        if len(current.value) == 12 and len(value) >= 10 and value[4:5] == "-":
            return axdr.encode(axdr.DateTime.parse_iso(value))
        raw = _hex_bytes(value)
        return axdr.encode(raw if raw is not None else value.encode())
    if tag in (axdr.ARRAY, axdr.STRUCTURE):
        if not isinstance(value, list) or len(value) != len(current.value) and tag == axdr.STRUCTURE:
            raise axdr.AxdrError("write needs a list shaped like the current value")
        model = current.value
        items = [encode_like(model[i] if i < len(model) else (model[-1] if model else None), v)
                 for i, v in enumerate(value)]
        return bytes((tag,)) + axdr.encode_length(len(items)) + b"".join(items)
    if tag is None:
        return axdr.encode(value)
    return axdr.encode(axdr.Typed(tag, value))
