"""make check-config: a dev.json checked by the app's own rules (code/main.py's create_app and
every extension's config_fields), nothing started; one line per problem, exit 1 on errors."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CHECK = [sys.executable, "-m", "tools.hostrun.check_config"]


def _config(tmp_path, change, name="site.json"):
    with open(os.path.join(REPO, "dev.json")) as f:
        config = json.load(f)
    change(config)
    path = tmp_path / name
    path.write_text(json.dumps(config, indent=1))
    return str(path)


def _check(*args):
    return subprocess.run(CHECK + list(args), capture_output=True, text=True, cwd=REPO,
                          timeout=60)


def test_the_repos_config_passes():
    done = _check()
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].endswith(
        "dev.json: 0 error(s), 0 warning(s); the app accepts it")


def _change(config):
    config["UART"]["baudrate"] = "fast"                  # wrong type
    config["TCP_SERVER"]["port"] = 70000                 # out of range
    config["HEALTH"]["interval_s"] = True                # a bool is not a number
    config["UART"]["baud_rate"] = 9600                   # unknown key
    config["TCP_SERVR"] = {"host": "x"}                   # unknown section


def test_each_problem_is_named_with_the_default_that_would_be_used(tmp_path):
    done = _check(_config(tmp_path, _change))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "error   UART.baudrate: expected int in 300..4000000, got 'fast' (default 115200 " \
        "would be used)" in lines
    assert "error   TCP_SERVER.port: expected int in 1..65535, got 70000 (default 9000 would " \
        "be used)" in lines
    assert any(line.startswith("error   HEALTH.interval_s: expected number") for line in lines)
    assert "warning UART.baud_rate (did you mean UART.baudrate?): no extension reads it" in lines
    assert "warning TCP_SERVR (did you mean TCP_SERVER?): no extension reads it" in lines
    assert lines[-1].endswith("site.json: 3 error(s), 2 warning(s)")


def test_what_the_app_refuses_beyond_types(tmp_path):
    def change(config):
        config["APP"]["workers"] = 1                     # below what the uart extension needs
        config["TCP_SERVER"]["connect_timeout"] = float("inf")
    done = _check(_config(tmp_path, change))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("error   APP.workers: uart needs at least 2") and
               line.endswith("got 1 (default 2 would be used)") for line in lines), lines
    assert any(line.startswith("error   TCP_SERVER.connect_timeout: expected a finite number")
               for line in lines), lines
    deep = tmp_path / "deep.json"
    deep.write_text('{"APP": ' + "[" * 40 + "]" * 40 + "}")
    done = _check(str(deep))
    assert done.returncode == 1 and "nested deeper than" in done.stdout


def test_warnings_alone_pass(tmp_path):
    done = _check(_config(tmp_path, lambda c: c["APP"].update(colour="blue")))
    assert done.returncode == 0, done.stdout + done.stderr
    assert any(line.startswith("warning APP.colour") for line in done.stdout.splitlines())


def test_a_broken_or_missing_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"APP": {"workers": 2,}')
    done = _check(str(broken))
    assert done.returncode == 1 and "not valid JSON" in done.stdout
    done = _check(str(tmp_path / "none.json"))
    assert done.returncode == 2 and "none.json: no such file" in done.stderr


def test_make_check_config(tmp_path):
    bad = _config(tmp_path, _change)
    made = subprocess.run(["make", "-s", "-o", ".venv/.installed", "check-config",
                           "CONFIG=%s" % bad], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert made.returncode != 0 and "error   UART.baudrate" in made.stdout
    made = subprocess.run(["make", "-s", "-o", ".venv/.installed", "check-config"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stdout + made.stderr


VARIANTS = os.path.join(REPO, "tests", "host", "config_variants.py")


def _judged(tmp_path, *args):
    """config_variants.py's results: what check-config and the app's load said of each."""
    done = subprocess.run([sys.executable, VARIANTS, str(tmp_path)] + list(args),
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _same_verdict(result):
    """check-config's error lines and the app's ConfigError name the same problems."""
    checked = [line[len("error   "):].split(" (default ")[0].split(" (")[0]
               for line in result["check"]]
    if result["load"] == "loaded":
        return checked == []
    return isinstance(result["load"], list) and sorted(checked) == sorted(
        problem.split(" (")[0] for problem in result["load"])


BAD = [  # (change, the problem both must name) -- what issues 18.6 and 23.5 found accepted
    (lambda c: c["TCP_SERVER"].update(protocol="os"), "TCP_SERVER.protocol: expected \"ack\""),
    (lambda c: c["TCP_SERVER"].update(protocol="../x"), "TCP_SERVER.protocol: expected"),
    (lambda c: c["TCP_SERVER"].update(protocol="usr.nowhere"),
     "TCP_SERVER.protocol: cannot import usr.nowhere"),
    (lambda c: c.update(DLMS={"objects": ["bad obis"]}), "DLMS.objects: not an OBIS code"),
    (lambda c: c["TCP_SERVER"].update(queue_max_bytes=10 ** 12),
     "TCP_SERVER.queue_max_bytes: expected int in 64..1048576"),
    (lambda c: c["TCP_SERVER"].update(queue_ram_bytes=10 ** 12),
     "TCP_SERVER.queue_ram_bytes: expected int in 0..65536"),
    (lambda c: c["APP"].update(log_max_bytes=10 ** 12),
     "APP.log_max_bytes: expected int in 1024..262144"),
    (lambda c: c["APP"].update(log_max_bytes=200000), "APP.log_max_bytes: 200000 x 2 files"),
    (lambda c: c["OTA"].update(reserve_bytes=10 ** 15),
     "OTA.reserve_bytes: expected int in 0..524288"),
    (lambda c: c.pop("TCP_SERVER"), "TCP_SERVER: missing (required: host)"),
    (lambda c: c["TCP_SERVER"].pop("host"), "TCP_SERVER.host: missing (required)"),
]


def test_bad_configs_are_refused_by_check_config_and_by_the_app_alike(tmp_path):
    paths = []
    for index, (change, _problem) in enumerate(BAD):
        def changed(config, change=change):
            config["TCP_SERVER"]["host"] = "127.0.0.1"
            change(config)
        paths.append(_config(tmp_path, changed, "bad%d.json" % index))
    results = _judged(tmp_path, "--files", *paths)
    for (_change, problem), result in zip(BAD, results):
        assert any(line.startswith("error   " + problem) for line in result["check"]), result
        assert isinstance(result["load"], list), result
        assert any(line.startswith(problem) for line in result["load"]), result
        assert _same_verdict(result), result


def test_without_a_uart_section_the_defaults_used_are_named(tmp_path):
    done = _check(_config(tmp_path, lambda c: c.pop("UART")))
    assert done.returncode == 0, done.stdout + done.stderr
    line = [x for x in done.stdout.splitlines() if x.startswith("default UART")]
    assert line and "port=2" in line[0] and "baudrate=115200" in line[0], done.stdout


def test_what_check_config_accepts_the_app_loads(tmp_path):
    """60 seeded variants of dev.json: check-config and the app's load agree on each, and
    every accepted one loads (and stops)."""
    results = _judged(tmp_path, "7", "60")
    accepted = [r for r in results if not r["check"]]
    assert 5 < len(accepted) < len(results)
    for result in results:
        assert _same_verdict(result), result
