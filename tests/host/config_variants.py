"""Child of test_check_config.py: variants of dev.json judged by check-config and by the app's load.

    python tests/host/config_variants.py WORKDIR SEED COUNT     -> one JSON line of results
    python tests/host/config_variants.py WORKDIR --files A.json...  (those configs instead)

Each variant is dev.json with one to three changes (a section or key removed, a value replaced
by a boundary, out-of-range, wrongly typed or hostile one; a DLMS section added). For each, the
check-config function (tools/hostrun/check_config.check) gives its error lines, and the app
(the app /usr/main.py builds, in a board root of its own) is loaded with repair_config=False and
stopped. Printed: [{"changes", "check": [error lines], "load": "loaded" or the ConfigError's
problems or "crash: ..."}].
"""
import copy
import json
import os
import random
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from tools.hostrun import board_root  # noqa: E402
from tools.hostrun import check_config  # noqa: E402

VALUES = [None, True, "x", "os", "../x", "usr.hes_protocol", "usr.missing", [], ["bad obis"],
          ["1.0.1.8.0.255"], {}, -1, 0, 1, 63, 64, 255, 256, 65535, 65536, 1048576, 1048577,
          262144, 262145, 524288, 524289, 10 ** 12, 10 ** 15, 0.5, 1e400]


def variants(seed, count):
    rng = random.Random(seed)
    with open(os.path.join(REPO, "dev.json")) as f:
        base = json.load(f)
    base["TCP_SERVER"]["host"] = "127.0.0.1"     # nothing to resolve; connections are refused
    base["TCP_SERVER"]["port"] = 9
    base["APP"]["stop_timeout"] = 2
    base["APP"]["log_file"] = ""
    out = []
    for _ in range(count):
        config = copy.deepcopy(base)
        changes = []
        for _ in range(rng.randint(1, 3)):
            section = rng.choice(sorted(config) + ["DLMS"])
            roll = rng.random()
            if section == "DLMS":
                config["DLMS"] = {"objects": rng.choice(VALUES), "transport": "meter_link"}
                changes.append("DLMS.objects=%r" % (config["DLMS"]["objects"],))
            elif roll < 0.15:
                del config[section]
                changes.append("no %s" % section)
            elif isinstance(config[section], dict) and config[section]:
                key = rng.choice(sorted(config[section]))
                if roll < 0.3:
                    del config[section][key]
                    changes.append("no %s.%s" % (section, key))
                else:
                    value = rng.choice(VALUES)
                    config[section][key] = value
                    changes.append("%s.%s=%r" % (section, key, value))
        out.append((changes, config))
    return out


def load(root, config):
    """'loaded', the app's ConfigError problems, or 'crash: ...'."""
    with open(os.path.join(root, "usr", "dev.json"), "w") as f:
        f.write(json.dumps(config).replace("Infinity", "1e400"))
    import shimctl
    shimctl.install_fs(root)
    from usr.qframe import ConfigError, CurrentApp
    namespace = {"__name__": "config_variant", "__file__": "/usr/main.py"}   # builds, no load()
    try:
        with open("/usr/main.py") as f:
            exec(compile(f.read(), "/usr/main.py", "exec"), namespace)
        app = CurrentApp()
        try:
            app.load(repair_config=False)
        except ConfigError as exc:
            return ["%s: %s" % (s if k is None else "%s.%s" % (s, k), m) for s, k, m in exc.errors]
        app.stop()
        return "loaded"
    except Exception as exc:
        return "crash: %s: %s" % (type(exc).__name__, exc)


def main(workdir, configs):
    root = board_root.stage(os.path.join(workdir, "board"))
    os.remove(os.path.join(root, "usr", "dev.json"))
    for path in reversed([root] + board_root.shim_paths("cpython")):
        sys.path.insert(0, path)
    from usr.qframe import logging
    logging.basicConfig(level=logging.CRITICAL, console=False)
    results = []
    for changes, config in configs:
        path = os.path.join(workdir, "variant.json")
        with open(path, "w") as f:
            f.write(json.dumps(config).replace("Infinity", "1e400"))
        errors, _warnings = check_config.check(path)
        results.append({"changes": changes, "check": errors, "load": load(root, config)})
    shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results))


if __name__ == "__main__":
    if sys.argv[2] == "--files":
        main(sys.argv[1], [([name], json.load(open(name))) for name in sys.argv[3:]])
    else:
        main(sys.argv[1], variants(int(sys.argv[2]), int(sys.argv[3])))
