"""Check a dev.json as the app would, without starting it (make check-config [CONFIG=file]).

    python -m tools.hostrun.check_config [--source DIR] [--app DIR] [FILE]
                                         (default FILE: the app folder's or the repo's dev.json)

Builds the app as its main.py does (--app: an app folder's main.py) (its `create_app`, in a board root whose /usr/dev.json is
FILE, on CPython with the shim) and runs the app's own check, `Application.check_config`
(qframe/core/config.py and every registered extension's `config_fields`), without loading any
extension. One line per problem: `error   SECTION.key: what is wrong (default X would be used)`
for a bad value (X: what the app's repair puts there; an extension's minimum for APP values
below it), `error   SECTION: missing (required: keys)` for a section the app cannot do without,
`warning SECTION.key (did you mean ...?)` for a key or section no extension reads,
`default SECTION: not in the file: the app uses its defaults (key=value, ...)`; then a
summary. The checks are the app's own (`Application.check_config`: every Field's type, range,
`check` and `required`), so what this accepts, `app.load()` loads. Exit 1 when there are errors (warnings alone exit 0), 2 on a usage problem.
tools/device/deploy.py runs it before copying a config.
"""
import argparse
import contextlib
import os
import shutil
import sys
import tempfile

from tools.hostrun import board_root

MAIN = "/usr/main.py"


def _boot_paths(root):
    for path in reversed([root] + board_root.shim_paths("cpython")):
        if path not in sys.path:
            sys.path.insert(0, path)
    import shimctl
    shimctl.install_fs(root)


def check(path, source=board_root.REPO, app=None):
    """(errors, warnings): lists of lines about the config file at path, checked by the app
    of the app folder `app` (default: source's code/)."""
    root = tempfile.mkdtemp(prefix="qframe-check-config-")
    previous = _device_fs_root()
    try:
        with open(path, "rb") as f:
            board_root.stage(root, f.read(), source=source, app=app)  # the bytes: the app judges
        _boot_paths(root)
        return _check(path)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if previous:                    # a caller's /usr (a test process) is its own again
            import shimctl
            shimctl.install_fs(previous)


def _device_fs_root():
    """Where the shim maps /usr in this process now (None: nowhere yet)."""
    try:
        from shimlib import devicefs
    except ImportError:
        return None
    return getattr(devicefs, "board_root", None)


def _check(path):
    try:
        from usr.qframe import Application, ConfigError, CurrentApp
        from usr.qframe import logging as qlog
        from usr.qframe.core.config import Config
    except Exception as exc:            # a broken qframe/: the app could not start either
        return ["error   cannot import usr.qframe to check the config: %s: %s"
                % (type(exc).__name__, exc)], []
    try:
        Config().from_json("/usr/dev.json")
    except ConfigError as exc:
        return ["error   %s: %s" % (path, exc.errors[0][2])], []
    main = {"__name__": "qframe_check_config", "__file__": MAIN}   # not __main__: no load()
    try:
        with open(MAIN) as f, contextlib.redirect_stdout(sys.stderr):
            exec(compile(f.read(), MAIN, "exec"), main)
    except Exception as exc:
        return ["error   %s: building the app failed: %s: %s"
                % (MAIN, type(exc).__name__, exc)], []
    try:
        app = CurrentApp()
    except RuntimeError:
        print("check-config: %s creates no qframe Application: only APP is checked" % MAIN,
              file=sys.stderr)
        app = Application("check-config")
        app.config.from_json("/usr/dev.json")
    errors = []
    qlog.basicConfig(console=False)          # the app's own log lines: the report says it all
    try:
        app.check_config(repair=False)
    except ConfigError as exc:
        app.check_config(repair=True)        # ... and shows the value the app would use
        declared = app.declared_config()
        for section, key, message in exc.errors:
            where = section if key is None else "%s.%s" % (section, key)
            errors.append("error   %s: %s%s" % (where, message,
                                                 _used(app.config, declared, section, key)))
    warnings = ["warning %s: no extension reads it" % name
                for name in app.config.unknown(app.declared_config())]
    failed = set(line.split()[1].split(".")[0].rstrip(":") for line in errors)
    for section, defaults in app.config_defaults:
        if section not in failed:
            warnings.append("default %s: not in the file: the app uses its defaults (%s)" % (
                section, ", ".join("%s=%s" % (k, _json(defaults[k])) for k in sorted(defaults))))
    return errors, warnings


def _json(value):
    import json
    return json.dumps(value)


def _used(config, declared, section, key):
    """' (default X would be used)' or ' (X would be used)': what the repair left there."""
    values = config.get(section)
    if key is None or not isinstance(values, dict) or key not in values:
        return ""
    field = declared.get(section, {}).get(key)
    if field is not None and values[key] == field.default:
        return " (default %r would be used)" % (values[key],)
    return " (%r would be used)" % (values[key],)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="the dev.json to check (default: the repo's)")
    parser.add_argument("--source", default=board_root.REPO,
                        help="folder holding the qframe/ and code/ whose app checks it")
    parser.add_argument("--app", help="an app folder (main.py, dev.json, modules): its app "
                        "checks the config (default FILE: its dev.json)")
    args = parser.parse_args(argv)
    path = args.config or os.path.join(args.app or args.source, "dev.json")
    if not os.path.isfile(path):
        print("check-config: %s: no such file" % path, file=sys.stderr)
        return 2
    if args.app and not os.path.isfile(os.path.join(args.app, "main.py")):
        print("check-config: %s: no main.py (an app folder holds main.py, dev.json and its "
              "modules)" % args.app, file=sys.stderr)
        return 2
    errors, warnings = check(path, args.source, args.app)
    for line in errors + warnings:
        print(line)
    print("check-config: %s: %d error(s), %d warning(s)%s"
          % (path, len(errors), len(warnings), "" if errors else "; the app accepts it"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
