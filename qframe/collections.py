"""QFrame's `usr.qframe.collections`: an insertion-ordered dict and a JSON-backed store.

MicroPython 1.13 has no OrderedDict and its dicts do not keep insertion order, so
`OrderedDict` keeps its keys in a list (deleting is O(n): meant for tens of entries, such as
an app's extensions).
"""
import ujson

from .threading import Lock


class OrderedDict(object):
    """A dict that iterates in insertion order; replacing a value keeps the key's place."""

    def __init__(self, sequence=None):
        self._keys = []
        self._map = {}
        if sequence is not None:
            self.init(sequence)

    def init(self, sequence):
        """Add (key, value) pairs in order."""
        for key, value in sequence:
            self[key] = value

    def __repr__(self):
        return "OrderedDict(%r)" % ([(k, self._map[k]) for k in self._keys],)

    def __len__(self):
        return len(self._keys)

    def __contains__(self, key):
        return key in self._map

    def __setitem__(self, key, value):
        if key not in self._map:
            self._keys.append(key)
        self._map[key] = value

    def __getitem__(self, key):
        return self._map[key]

    def __delitem__(self, key):
        del self._map[key]
        self._keys.remove(key)

    def __iter__(self):
        return iter(list(self._keys))

    def get(self, key, default=None):
        return self._map.get(key, default)

    def pop(self, key, default=None):
        if key not in self._map:
            return default
        value = self._map[key]
        del self[key]
        return value

    def keys(self):
        return list(self._keys)

    def values(self):
        return [self._map[k] for k in self._keys]

    def items(self):
        return [(k, self._map[k]) for k in self._keys]

    def setdefault(self, key, value):
        if key not in self._map:
            self[key] = value
        return self._map[key]

    def update(self, other):
        """Add or replace every (key, value) of a dict or OrderedDict."""
        for key in other:
            self[key] = other[key]


def deepcopy(obj):
    """A copy of a JSON-like value (None, bool, int, float, str, list, tuple, dict)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)([deepcopy(item) for item in obj])
    if isinstance(obj, dict):
        copy = {}
        for key in obj:
            copy[key] = deepcopy(obj[key])
        return copy
    raise TypeError("cannot copy a %s" % type(obj).__name__)


class Singleton(object):
    """Class decorator: the first call creates the instance, later calls return it."""

    def __init__(self, cls):
        self.cls = cls
        self.instance = None

    def __call__(self, *args, **kwargs):
        if self.instance is None:
            self.instance = self.cls(*args, **kwargs)
        return self.instance

    def __repr__(self):
        return repr(self.cls)


class LocalStorage(object):
    """A thread-safe key/value store loaded from and saved to a JSON file; reads return
    copies, so a caller never changes the store by accident."""

    def __init__(self):
        self._path = None
        self._db = {}
        self._lock = Lock()

    def from_json(self, path):
        """Merge the JSON object in path (ValueError if it is missing or not an object)."""
        with self._lock:
            self._path = path
            try:
                with open(path) as f:
                    data = ujson.load(f)
            except OSError:
                raise ValueError("%r does not exist" % path)
            if not isinstance(data, dict):
                raise ValueError("%r does not hold a JSON object" % path)
            self._db.update(data)
        return self

    def save(self, to_path=None):
        """Write the store as JSON to to_path (default: the file it was loaded from)."""
        with self._lock:
            path = to_path or self._path
            if path is None:
                raise ValueError("no path to save to")
            with open(path, "w") as f:
                ujson.dump(self._db, f)

    def update(self, *args, **kwargs):
        with self._lock:
            self._db.update(*args, **kwargs)
        return self

    def get(self, key, default=None):
        with self._lock:
            return deepcopy(self._db.get(key, default))

    def __contains__(self, key):
        return key in self._db

    def __getitem__(self, key):
        with self._lock:
            return deepcopy(self._db[key])

    def __setitem__(self, key, value):
        with self._lock:
            self._db[key] = value
