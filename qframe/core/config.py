"""The app's configuration: a dict of UPPERCASE sections (as in dev.json) with typed fields.

Extensions declare their section and fields; `Application.load()` fills defaults and checks
every value, raising ConfigError that names each bad key and what was expected. Numbers must
be finite (NaN and infinity are refused); a file nested deeper than MAX_DEPTH, unreadable or not
JSON is one ConfigError naming the file. Keys and sections nobody declared are reported by
unknown() with a "did you mean" (the app logs them as warnings and counts them).

    fields = {"port": Field((int, str), 2), "baudrate": Field(int, 115200, lo=300, hi=4000000)}

A Field may also be `required` (missing is an error; its default is what a repair uses; a
function of the section's values for a key needed only in some cases) and have a `check`: fn(value) -> None or what is wrong (an OBIS code, a module name...).
Sizes are bounded by the module's resources: USR_FLASH_BYTES (the /usr file system: 1-2 MB of
flash on the modules QuecPython runs on; the larger figure) and HEAP_BYTES (the heap the app
gets: about 512 KB; docs/PORTABILITY.md "Memory").
"""
import ujson

MAX_DEPTH = 16
USR_FLASH_BYTES = 2 * 1024 * 1024
HEAP_BYTES = 512 * 1024
_TYPE_NAMES = {int: "int", float: "number", str: "string", bool: "bool", list: "list",
               dict: "object"}


class ConfigError(ValueError):
    """Bad configuration. `errors` lists (section, key, message) for every problem found."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__("; ".join(_describe(e) for e in errors))


def _describe(error):
    section, key, message = error
    where = section if key is None else "%s.%s" % (section, key)
    return "%s: %s" % (where, message)


class Field(object):
    """One config key: accepted type(s), default and optional range or choices."""

    def __init__(self, kind, default=None, lo=None, hi=None, choices=None, optional=False,
                 required=False, check=None):
        self.kinds = kind if isinstance(kind, tuple) else (kind,)
        self.default = default
        self.lo = lo
        self.hi = hi
        self.choices = choices
        self.optional = optional
        self.required = required
        self.check = check

    def needed(self, values):
        """True if the key must be in the section (values: the section as written)."""
        rule = self.required
        return bool(rule(values) if callable(rule) else rule)

    def expected(self):
        text = " or ".join(_TYPE_NAMES.get(k, str(k)) for k in self.kinds)
        if self.choices is not None:
            text += " in %r" % (list(self.choices),)
        elif self.lo is not None or self.hi is not None:
            text += " in %s..%s" % ("" if self.lo is None else self.lo,
                                    "" if self.hi is None else self.hi)
        if self.optional:
            text += " or null"
        return text

    def problem(self, value):
        """None if value is acceptable, else a message saying what was expected."""
        if value is None and self.optional:
            return None
        ok_type = False
        for kind in self.kinds:
            if kind is bool:
                ok_type = ok_type or isinstance(value, bool)
            elif kind is float:
                ok_type = ok_type or (isinstance(value, (int, float))
                                      and not isinstance(value, bool))
            elif kind is int:
                ok_type = ok_type or (isinstance(value, int) and not isinstance(value, bool))
            else:
                ok_type = ok_type or isinstance(value, kind)
        bad = not ok_type
        if ok_type and isinstance(value, float) and value - value != 0:
            return "expected a finite %s, got %s" % (self.expected(), value)  # NaN, inf
        if ok_type and self.choices is not None and value not in self.choices:
            bad = True
        if ok_type and isinstance(value, (int, float)) and not isinstance(value, bool):
            if (self.lo is not None and value < self.lo) or (self.hi is not None
                                                            and value > self.hi):
                bad = True
        if bad:
            return "expected %s, got %s" % (self.expected(), _show(value))
        if self.check is not None and value is not None:
            return self.check(value)
        return None


def _show(value):
    """A short description of a config value (never recursing into a nested one)."""
    if isinstance(value, dict):
        return "an object of %d keys" % len(value)
    if isinstance(value, list):
        return "a list of %d items" % len(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _depth(value):
    """How deeply value nests lists and objects (iterative: no recursion limit)."""
    deepest = 0
    todo = [(value, 1)]
    while todo:
        value, level = todo.pop()
        if isinstance(value, dict):
            value = list(value.values())
        elif not isinstance(value, list):
            continue
        if level > deepest:
            deepest = level
            if deepest > MAX_DEPTH:
                break
        for item in value:
            todo.append((item, level + 1))
    return deepest


def _distance(a, b, most):
    """Edit distance between a and b, or most + 1 when it is above most."""
    if abs(len(a) - len(b)) > most:
        return most + 1
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev = row[0]
        row[0] = i
        for j in range(1, len(b) + 1):
            cur = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
            prev = cur
    return row[len(b)]


def close_match(name, known):
    """The name in known closest to name (case-insensitive, at most 2 edits), or None."""
    best = None
    best_d = 3
    lowered = name.lower()
    for candidate in sorted(known):
        d = _distance(lowered, candidate.lower(), 2)
        if d < best_d:
            best, best_d = candidate, d
    return best


class Config(dict):
    """`app.config`: a plain dict of sections plus from_json, save and validation."""

    path = None

    def from_json(self, path):
        """Merge the JSON object in path into this config (section by section)."""
        self.path = path
        try:
            f = open(path)
        except OSError as exc:
            raise ConfigError([(path, None, "cannot read file (%s)" % exc)])
        try:
            data = ujson.load(f)
        except Exception as exc:    # ValueError, a deep file's RecursionError/MemoryError...
            raise ConfigError([(path, None, "not valid JSON (%s)" % (exc or type(exc).__name__))])
        finally:
            f.close()
        if not isinstance(data, dict):
            raise ConfigError([(path, None, "expected a JSON object at top level")])
        if _depth(data) > MAX_DEPTH:
            raise ConfigError([(path, None, "nested deeper than %d levels" % MAX_DEPTH)])
        self.merge(data)
        return self

    def save(self, to_path=None):
        """Write the config as JSON to to_path (default: the file from_json read), as QFrame's
        LocalStorage.save."""
        path = to_path or self.path
        if path is None:
            raise ValueError("no path to save the config to")
        with open(path, "w") as f:
            ujson.dump(self, f)

    def merge(self, data):
        """Update sections key by key (a section dict is merged, other values replaced)."""
        for name in data:
            value = data[name]
            if isinstance(value, dict) and isinstance(self.get(name), dict):
                self[name].update(value)
            else:
                self[name] = value

    def resolve(self, section, fields, repair=False):
        """Fill defaults into config[section] and check it; return the list of errors.

        repair=True replaces each bad value by its default (the caller logs the errors).
        Unknown keys are kept and not reported here (see unknown()).
        """
        values = self.get(section)
        errors = []
        known = values if isinstance(values, dict) else {}
        required = sorted(k for k in fields if fields[k].needed(known))
        if values is None:
            if required:
                errors.append((section, None, "missing (required: %s)" % ", ".join(required)))
                required = []             # named once, in the section's error
            values = self[section] = {}
        elif not isinstance(values, dict):
            errors.append((section, None, "expected an object, got %s" % _show(values)))
            if not repair:
                return errors
            values = self[section] = {}
        for key in sorted(fields):
            field = fields[key]
            if key not in values:
                values[key] = field.default
                if key in required:
                    errors.append((section, key, "missing (required)"))
                continue
            message = field.problem(values[key])
            if message:
                errors.append((section, key, message))
                if repair:
                    values[key] = field.default
        return errors

    def defaults_used(self, declared):
        """Declared sections the config does not have: [(section, {key: default})], for a
        line each saying which defaults the app will use (call before resolve)."""
        return [(section, dict((k, declared[section][k].default) for k in declared[section]))
                for section in sorted(declared) if section not in self]

    def unknown(self, declared):
        """Sections and keys nobody declared: a list of "SECTION[.key] (did you mean X?)".

        declared: {section: fields or None}; None accepts any key of that section.
        """
        found = []
        for section in sorted(self):
            if section not in declared:
                found.append(_guess(section, declared))
                continue
            fields = declared[section]
            values = self[section]
            if fields is None or not isinstance(values, dict):
                continue
            for key in sorted(values):
                if key not in fields:
                    found.append(_guess(key, fields, section + "."))
        return found


def _guess(name, known, prefix=""):
    near = close_match(name, known)
    text = prefix + name
    return text if near is None else "%s (did you mean %s%s?)" % (text, prefix, near)
