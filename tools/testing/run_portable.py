"""Run the portable tests under MicroPython (also works on CPython).

    micropython tools/testing/run_portable.py BOARD_ROOT SHIM_PATHS TEST_DIRS [NAME_FILTER]

TEST_DIRS: one folder or several joined by ":" (make test-mp: tests/portable:tests/shim), all on
sys.path so a test imports tests/portable/checks.py from any of them. Imports every test_*.py, calls each test_* function, prints a line per failure
and ends with `N passed, N failed`; exits 1 if anything failed. What a test logs (qframe log
lines, shim notes) is captured (tests/portable/checks.py `captured`) and printed only with its
failure, as pytest does, so a green run is quiet. Imports u-names first (QuecPython
and 1.13 builds configured like it have `usys`, `uos` only), so `make test-mp
MICROPYTHON=/path/to/micropython` can run the suite on such a build.
"""
try:
    import usys as sys
except ImportError:
    import sys


def _print_exc(exc):
    if hasattr(sys, "print_exception"):
        sys.print_exception(exc)
    else:
        import traceback
        traceback.print_exception(type(exc), exc, exc.__traceback__)


def _run(root, shim_paths, test_dirs, name_filter):
    try:
        import uos
    except ImportError:
        import os as uos
    test_dirs = test_dirs.split(":")
    paths = test_dirs[::-1] + shim_paths.split(":")[::-1] + [root]     # no reversed() on 1.13
    for path in paths:
        sys.path.insert(0, path)
    import shimctl
    shimctl.install_fs(root)
    from checks import captured
    passed = failed = 0
    filenames = []
    for test_dir in test_dirs:
        filenames += sorted(uos.listdir(test_dir))
    for filename in filenames:
        if not (filename.startswith("test_") and filename.endswith(".py")):
            continue
        modname = filename[:-3]
        try:
            module = __import__(modname)
        except Exception as exc:
            print("ERROR importing %s: %r" % (modname, exc))
            _print_exc(exc)
            failed += 1
            continue
        names = sorted(n for n in dir(module) if n.startswith("test_"))
        for name in names:
            if name_filter and name_filter not in modname + "." + name:
                continue
            out = captured()
            try:
                with out:
                    getattr(module, name)()
                passed += 1
            except Exception as exc:
                failed += 1
                print("FAIL %s.%s: %r" % (modname, name, exc))
                _print_exc(exc)
                if out.lines:
                    print("captured output of %s.%s:\n  %s" % (modname, name,
                                                                 "\n  ".join(out.lines)))
    print("%d passed, %d failed" % (passed, failed))
    return failed


if __name__ == "__main__":
    _failed = _run(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "")
    sys.exit(1 if _failed else 0)
