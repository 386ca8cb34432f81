"""Checking the app's configuration (core/config.py): fill defaults, check every value against
its Field, name unknown keys with a "did you mean". Startup-only: `Application.check_config`
imports it and forgets it after (core/lazy.py), so none of it stays on the heap while the app
runs; a later check (a reload, tools/hostrun/check_config.py) imports it again.
"""
from .config import ConfigError, _TYPE_NAMES
from ..logging import getLogger

_log = getLogger("app")


def _needed(field, values):
    """True if the key must be in the section (values: the section as written)."""
    rule = field.required
    return bool(rule(values) if callable(rule) else rule)


def _kinds(field):
    return field.kind if isinstance(field.kind, tuple) else (field.kind,)


def expected(field):
    text = " or ".join(_TYPE_NAMES.get(k, str(k)) for k in _kinds(field))
    if field.choices is not None:
        text += " in %r" % (list(field.choices),)
    elif field.lo is not None or field.hi is not None:
        text += " in %s..%s" % ("" if field.lo is None else field.lo,
                                "" if field.hi is None else field.hi)
    if field.optional:
        text += " or null"
    return text


def problem(field, value):
    """None if value is acceptable for field, else a message saying what was expected."""
    if value is None and field.optional:
        return None
    ok_type = False
    for kind in _kinds(field):
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
        return "expected a finite %s, got %s" % (expected(field), value)  # NaN, inf
    if ok_type and field.choices is not None and value not in field.choices:
        bad = True
    if ok_type and isinstance(value, (int, float)) and not isinstance(value, bool):
        if (field.lo is not None and value < field.lo) or (field.hi is not None
                                                          and value > field.hi):
            bad = True
    if bad:
        return "expected %s, got %s" % (expected(field), _show(value))
    if field.check is not None and value is not None:
        return field.check(value)
    return None


def _show(value):
    """A short description of a config value (never recursing into a nested one)."""
    if isinstance(value, dict):
        return "an object of %d keys" % len(value)
    if isinstance(value, list):
        return "a list of %d items" % len(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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


def _guess(name, known, prefix=""):
    near = close_match(name, known)
    text = prefix + name
    return text if near is None else "%s (did you mean %s%s?)" % (text, prefix, near)


def resolve(config, section, fields, repair=False):
    """Fill defaults into config[section] and check it; return the list of errors.

    repair=True replaces each bad value by its default (the caller logs the errors).
    Unknown keys are kept and not reported here (see unknown()).
    """
    values = config.get(section)
    errors = []
    known = values if isinstance(values, dict) else {}
    required = sorted(k for k in fields if _needed(fields[k], known))
    if values is None:
        if required:
            errors.append((section, None, "missing (required: %s)" % ", ".join(required)))
            required = []             # named once, in the section's error
        values = config[section] = {}
    elif not isinstance(values, dict):
        errors.append((section, None, "expected an object, got %s" % _show(values)))
        if not repair:
            return errors
        values = config[section] = {}
    for key in sorted(fields):
        field = fields[key]
        if key not in values:
            values[key] = field.default
            if key in required:
                errors.append((section, key, "missing (required)"))
            continue
        message = problem(field, values[key])
        if message:
            errors.append((section, key, message))
            if repair:
                values[key] = field.default
    return errors


def defaults_used(config, declared):
    """Declared sections the config does not have: [(section, {key: default})], for a
    line each saying which defaults the app will use (call before resolve)."""
    return [(section, dict((k, declared[section][k].default) for k in declared[section]))
            for section in sorted(declared) if section not in config]


def unknown(config, declared):
    """Sections and keys nobody declared: a list of "SECTION[.key] (did you mean X?)".

    declared: {section: fields or None}; None accepts any key of that section.
    """
    found = []
    for section in sorted(config):
        if section not in declared:
            found.append(_guess(section, declared))
            continue
        fields = declared[section]
        values = config[section]
        if fields is None or not isinstance(values, dict):
            continue
        for key in sorted(values):
            if key not in fields:
                found.append(_guess(key, fields, section + "."))
    return found


def check_app(app, repair=False):
    """Application.check_config: fill defaults and check APP and every extension's section.

    Raises ConfigError listing every problem; with repair=True logs and counts each
    problem, uses the defaults instead, and returns the list.
    """
    declared = app.declared_config()
    app.config_defaults = defaults_used(app.config, declared)
    errors = []
    for section in sorted(declared):
        errors.extend(resolve(app.config, section, declared[section], repair))
    errors.extend(_check_minimums(app, repair))
    errors.extend(_check_log_room(app, repair))
    if errors and not repair:
        raise ConfigError(errors)
    for error in errors:
        app.stats["config_errors"] += 1
        _log.error("config %s: using the default", ConfigError([error]))
    for name in unknown(app.config, declared):
        app.stats["config_unknown"] += 1
        _log.warning("config: unknown %s, ignored", name)
    for section, _defaults in app.config_defaults:
        _log.info("config: no %s section: its defaults are used", section)
    return errors


def _check_minimums(app, repair):
    """APP values below what an extension needs (its `app_minimums`: {key: (least, why)})."""
    errors = []
    settings = app.config["APP"]
    for ext in app.extensions.values():
        minimums = getattr(ext, "app_minimums", None) or {}
        for key in sorted(minimums):
            least, why = minimums[key]
            value = settings.get(key, least)
            if type(value) in (int, float) and value < least:
                errors.append(("APP", key, "%s needs at least %d (%s), got %r"
                               % (ext.name, least, why, settings[key])))
                if repair:
                    settings[key] = least
    return errors


def _check_log_room(app, repair):
    """The log file and its backups must fit in app.LOG_FLASH_BYTES of /usr."""
    from .app import LOG_FLASH_BYTES as room
    settings = app.config["APP"]
    size, backups = settings.get("log_max_bytes"), settings.get("log_backups")
    if type(size) is not int or type(backups) is not int or size > room or \
            size * (backups + 1) <= room:
        return []             # a bad value on its own is the field's error
    if repair:
        settings["log_max_bytes"] = room // (backups + 1)
    return [("APP", "log_max_bytes", "%d x %d files (log_backups + 1) is over the %d bytes "
             "of /usr the logs may take" % (size, backups + 1, room))]
