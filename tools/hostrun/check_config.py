"""Check a dev.json as the app would, without starting it (make check-config [CONFIG=file]).

    python -m tools.hostrun.check_config [--source DIR] [FILE]     (default: the repo's dev.json)

Builds the app as code/main.py does (its `create_app`, in a board root whose /usr/dev.json is
FILE, on CPython with the shim) and runs the app's own check, `Application.check_config`
(qframe/core/config.py and every registered extension's `config_fields`), without loading any
extension. One line per problem: `error   SECTION.key: what is wrong (default X would be
used)` for a bad value, `warning SECTION.key ...` for a key or section no extension reads; then
a summary. Exit 1 when there are errors (warnings alone exit 0), 2 on a usage problem.
tools/device/deploy.py runs it before copying a config.
"""
import argparse
import contextlib
import os
import shutil
import sys
import tempfile

from tools.hostrun import board

MAIN = "/usr/main.py"


def _boot_paths(root):
    for path in reversed([root] + board.shim_paths("cpython")):
        if path not in sys.path:
            sys.path.insert(0, path)
    import shimctl
    shimctl.install_fs(root)


def _fields(app):
    """{section: {key: Field}} the app checks: APP's plus each extension's."""
    from usr.qframe.core.app import APP_FIELDS
    declared = {"APP": dict(APP_FIELDS)}
    for ext in app.extensions:
        section = getattr(ext, "config_section", None)
        if section:
            declared.setdefault(section, {}).update(getattr(ext, "config_fields", {}))
    return declared


def check(path, source=board.REPO):
    """(errors, warnings): lists of lines about the config file at path."""
    root = tempfile.mkdtemp(prefix="qframe-check-config-")
    try:
        board.stage(root, source=source)
        dev_json = os.path.join(root, "usr", "dev.json")
        os.remove(dev_json)
        shutil.copyfile(path, dev_json)        # the bytes as they are: the app judges them
        _boot_paths(root)
        return _check(path)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _check(path):
    try:
        from usr.qframe import Application, ConfigError, CurrentApp
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
    declared = _fields(app)
    errors = []
    try:
        app.check_config(repair=False)
    except ConfigError as exc:
        for section, key, message in exc.errors:
            field = declared.get(section, {}).get(key)
            where = section if key is None else "%s.%s" % (section, key)
            default = "" if field is None else " (default %r would be used)" % (field.default,)
            errors.append("error   %s: %s%s" % (where, message, default))
    warnings = ["warning %s: no extension reads it" % name for name in _unknown(app, declared)]
    return errors, warnings


def _unknown(app, declared):
    found = []
    for section in sorted(app.config):
        if section not in declared:
            found.append(section)
        elif isinstance(app.config[section], dict):
            found.extend("%s.%s" % (section, key) for key in sorted(app.config[section])
                         if key not in declared[section])
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="the dev.json to check (default: the repo's)")
    parser.add_argument("--source", default=board.REPO,
                        help="folder holding the qframe/ and code/ whose app checks it")
    args = parser.parse_args(argv)
    path = args.config or os.path.join(args.source, "dev.json")
    if not os.path.isfile(path):
        print("check-config: %s: no such file" % path, file=sys.stderr)
        return 2
    errors, warnings = check(path, args.source)
    for line in errors + warnings:
        print(line)
    print("check-config: %s: %d error(s), %d warning(s)%s"
          % (path, len(errors), len(warnings), "" if errors else "; the app accepts it"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
