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
    """One config key: accepted type(s), default and optional range or choices. Only what
    differs from the class defaults is stored (an app declares a hundred or more)."""

    lo = hi = choices = check = None
    optional = required = False

    def __init__(self, kind, default=None, lo=None, hi=None, choices=None, optional=False,
                 required=False, check=None):
        self.kind = kind
        self.default = default
        if lo is not None:
            self.lo = lo
        if hi is not None:
            self.hi = hi
        if choices is not None:
            self.choices = choices
        if optional:
            self.optional = optional
        if required:
            self.required = required
        if check is not None:
            self.check = check

    def problem(self, value):
        """None if value is acceptable, else a message saying what was expected."""
        from .config_check import problem
        return problem(self, value)


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
        """Fill defaults into config[section] and check it; return the list of errors
        (core/config_check.py; repair=True replaces each bad value by its default)."""
        from .config_check import resolve
        return resolve(self, section, fields, repair)

    def unknown(self, declared):
        """Sections and keys nobody declared: "SECTION[.key] (did you mean X?)" each."""
        from .config_check import unknown
        return unknown(self, declared)
