"""The strict shim against tools/firmware/api.json on the chosen firmware line (QFRAME_FIRMWARE;
`make test` runs it on E1 and E3, tests/host/architecture/test_shim_lines.py on every line): each public
name of a QuecPython stand-in is one the line's firmware has, and each name the line has that
the shim defines is there (nothing pruned too far)."""
import shimctl  # noqa: F401  (installs the shim's usocket and types on MicroPython)
from shimlib import firmware

# The stand-ins of QuecPython's own modules (tools/shim/*.py) and the u-modules the shim
# writes for CPython (tools/shim/cpython/*.py: on MicroPython those are the interpreter's).
SHIM = ("osTimer", "fota", "app_fota", "app_fota_download", "checkNet", "dataCall", "net",
        "sim", "modem", "misc", "machine", "ql_fs", "log", "ntptime", "umqtt", "usocket",
        "ussl", "sms")
CPYTHON_ONLY = ("uhashlib", "utime", "uos", "usys", "ujson", "ubinascii", "ustruct", "uzlib")
KEEP = ("ioctl",)          # MicroPython's stream hook on the shim's sockets


def _modules():
    import usys
    names = SHIM if usys.implementation.name == "micropython" else SHIM + CPYTHON_ONLY
    return [(name, __import__(name)) for name in names]


def _public(obj):
    return [name for name in dir(obj) if not name.startswith("_") and name not in KEEP]


def _classes(module_name, module):
    """(table class name, class) for the table's classes the shim has."""
    found = []
    for class_name in firmware.table()[module_name].get("classes", {}):
        cls = getattr(module, class_name, None)
        if cls is None and module_name == "ussl":
            from shimlib.host_socket import _TLSSocket
            cls = _TLSSocket
        if isinstance(cls, type):
            found.append((class_name, cls))
    return found


def test_no_name_the_line_lacks():
    extra = []
    for name, module in _modules():
        for attr in _public(module):
            if not firmware.has(name, attr):
                extra.append("%s.%s" % (name, attr))
        for class_name, cls in _classes(name, module):
            for attr in _public(cls):
                if not firmware.class_has(name, class_name, attr):
                    extra.append("%s.%s.%s" % (name, class_name, attr))
    assert extra == [], "not on firmware line %s: %s" % (firmware.LINE, ", ".join(extra))


def _source(name):
    folder = firmware._path().rsplit("/", 2)[0] + "/shim/"
    for path in (folder + name + ".py", folder + "cpython/" + name + ".py",
                 folder + "shimlib/host_socket.py"):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if name != "usocket" or "host_socket" in path:
            return text
    return ""


def _defined(source, attr):
    for form in ("def %s(", "class %s(", "\n%s = ", "    %s = "):
        if (form % attr) in source:
            return True
    return False


def test_every_name_of_the_line_the_shim_defines_is_there():
    missing = []
    for name, module in _modules():
        spec = firmware.table()[name]
        source = _source(name)
        for attr in spec.get("names", {}):
            if firmware.has(name, attr) and _defined(source, attr) and not hasattr(module, attr):
                missing.append("%s.%s" % (name, attr))
        for class_name, cls in _classes(name, module):
            entry = spec["classes"][class_name]
            for attr in list(entry.get("methods", {})) + list(entry.get("constants", {})):
                if firmware.class_has(name, class_name, attr) and _defined(source, attr) and \
                        not hasattr(cls, attr):
                    missing.append("%s.%s.%s" % (name, class_name, attr))
    assert missing == [], "pruned although line %s has them: %s" % (firmware.LINE,
                                                                    ", ".join(missing))


def test_types_as_modules():
    import osTimer
    import fota
    assert isinstance(osTimer, type) and isinstance(fota, type)
    assert not hasattr(osTimer, "osTimer") and not hasattr(osTimer, "delete")
    assert hasattr(osTimer(), "delete_timer")
