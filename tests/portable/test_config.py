from checks import raises

from usr.qframe import Application, AppExtension, ConfigError, Field
from usr.qframe.core.config import Config


class _Radio(AppExtension):
    config_section = "RADIO"
    config_fields = {
        "port": Field((int, str), 2),
        "baudrate": Field(int, 115200, lo=300, hi=4000000),
        "parity": Field(int, 0, choices=(0, 1, 2)),
        "ratio": Field(float, 0.5, lo=0, hi=1),
        "tls": Field(bool, False),
        "host": Field(str, "", optional=True),
    }


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_defaults_fill_missing_keys():
    app = Application("cfg")
    _Radio("radio", app)
    app.config.update({"RADIO": {"baudrate": 9600}})
    app.check_config()
    assert app.config["RADIO"]["baudrate"] == 9600
    assert app.config["RADIO"]["port"] == 2
    assert app.radio.config["parity"] == 0
    assert app.config["APP"]["workers"] >= 1


def test_error_names_key_and_expectation():
    app = Application("cfg")
    _Radio("radio", app)
    app.config.update({"RADIO": {"baudrate": "fast", "parity": 7, "tls": 1}})
    exc = raises(ConfigError, app.check_config)
    text = str(exc)
    assert "RADIO.baudrate: expected int in 300..4000000, got 'fast'" in text
    assert "RADIO.parity: expected int in [0, 1, 2], got 7" in text
    assert "RADIO.tls: expected bool, got 1" in text
    assert len(exc.errors) == 3


def test_bool_is_not_an_int_and_int_is_a_float():
    assert Field(int, 0).problem(True) is not None
    assert Field(float, 0.0).problem(3) is None
    assert Field(float, 0.0, lo=0, hi=1).problem(1.5) is not None
    assert Field(str, None, optional=True).problem(None) is None


def test_section_must_be_an_object():
    app = Application("cfg")
    _Radio("radio", app)
    app.config["RADIO"] = [1, 2]
    exc = raises(ConfigError, app.check_config)
    assert "RADIO: expected an object" in str(exc)


def test_a_section_that_is_no_object_with_a_conditional_required_key():
    config = Config()
    config["LINK"] = [None]
    fields = {"role": Field(str, "client"),
              "host": Field(str, "127.0.0.1", required=lambda cfg: cfg.get("role") != "server")}
    errors = config.resolve("LINK", fields, repair=True)
    assert errors[0] == ("LINK", None, "expected an object, got a list of 1 items")
    assert ("LINK", "host", "missing (required)") in errors
    assert config["LINK"] == {"role": "client", "host": "127.0.0.1"}


def test_repair_uses_defaults_and_counts():
    app = Application("cfg")
    _Radio("radio", app)
    app.config.update({"RADIO": {"baudrate": -1}, "APP": {"workers": "many"}})
    errors = app.check_config(repair=True)
    assert len(errors) == 2
    assert app.config["RADIO"]["baudrate"] == 115200
    assert app.config["APP"]["workers"] == 2
    assert app.stats["config_errors"] == 2


def test_from_json_merges_sections():
    path = "/usr/test_cfg.json"
    _write(path, '{"RADIO": {"baudrate": 9600}, "EXTRA": 1}')
    config = Config()
    config.update({"RADIO": {"port": 3}})
    config.from_json(path)
    assert config["RADIO"] == {"port": 3, "baudrate": 9600}
    assert config["EXTRA"] == 1


def test_from_json_malformed_and_missing_files():
    path = "/usr/test_bad.json"
    _write(path, '{"RADIO": {"baudrate": 96')
    exc = raises(ConfigError, Config().from_json, path)
    assert path in str(exc) and "not valid JSON" in str(exc)
    _write(path, '[1, 2]')
    exc = raises(ConfigError, Config().from_json, path)
    assert "top level" in str(exc)
    exc = raises(ConfigError, Config().from_json, "/usr/no_such.json")
    assert "cannot read" in str(exc)


# -- hostile values (issue 9.4) -------------------------------------------------------------

_NAN = float("nan")
_INF = float("inf")


def test_nan_and_infinity_are_refused_naming_the_key():
    for value in (_NAN, _INF, -_INF):
        app = Application("cfg")
        _Radio("radio", app)
        app.config.update({"RADIO": {"ratio": value}, "APP": {"stop_timeout": value}})
        text = str(raises(ConfigError, app.check_config))
        assert "RADIO.ratio" in text and "APP.stop_timeout" in text and "finite" in text, text
        # an unbounded float field refuses them too
        assert Field(float, 1.0).problem(value) is not None
    assert Field(float, 1.0).problem(1e300) is None


def test_repair_never_crashes_on_any_value():
    hostile = [_NAN, _INF, -_INF, None, True, "", "x" * 5000, [], {}, [[[[1]]]], {"a": {"b": 1}},
               -1, 2 ** 70, 1e300, -1e300, 0.5]
    for value in hostile:
        app = Application("cfg")
        _Radio("radio", app)
        section = {}
        for key in _Radio.config_fields:
            section[key] = value
        app_section = {}
        for key in ("workers", "backlog", "stop_timeout", "log_level", "log_file",
                    "log_max_bytes", "log_backups"):
            app_section[key] = value
        app.config.update({"RADIO": section, "APP": app_section})
        app.check_config(repair=True)
        for key, field in _Radio.config_fields.items():
            assert field.problem(app.config["RADIO"][key]) is None, (key, value)
        assert 1 <= app.config["APP"]["workers"] <= 16
    app = Application("cfg")
    app.config.update({"APP": [1], "RADIO": 3})
    _Radio("radio", app)
    assert len(app.check_config(repair=True)) == 2


def test_deep_nesting_is_a_config_error():
    path = "/usr/test_deep.json"
    for depth in (40, 5000):
        _write(path, '{"APP": ' + "[" * depth + "]" * depth + "}")
        text = str(raises(ConfigError, Config().from_json, path))
        assert path in text and ("nested deeper" in text or "not valid JSON" in text), text
    _write(path, '{"A": {"b": [[[1]]]}}')
    assert Config().from_json(path)["A"] == {"b": [[[1]]]}


def test_invalid_json_is_one_line_naming_the_file():
    path = "/usr/test_bad.json"
    _write(path, '{"APP": {"workers": 2,\n "backlog": tru}}')  # MicroPython's ujson is lenient
    text = str(raises(ConfigError, Config().from_json, path))
    assert text.startswith(path + ": not valid JSON") and "\n" not in text, text
    import usys
    if usys.implementation.name == "cpython":   # MicroPython's ujson gives no position
        assert "line 2 column" in text, text
    text = str(raises(ConfigError, Config().from_json, "/usr/no_such_dev.json"))
    assert text.startswith("/usr/no_such_dev.json: cannot read file") and "\n" not in text


def test_unknown_keys_and_sections_warn_with_a_guess_and_count():
    from usr.qframe import logging
    lines = []
    listener = logging.add_listener(lambda level, line: lines.append(line))
    try:
        app = Application("cfg")
        _Radio("radio", app)
        app.config.update({"RADIO": {"baudrat": 9600, "zzz": 1}, "RADOI": {}, "OTHER": 1,
                           "APP": {"worker": 3}})
        app.check_config()
    finally:
        logging.remove_listener(listener)
    text = "\n".join(lines)
    assert "RADIO.baudrat (did you mean RADIO.baudrate?)" in text, text
    assert "RADIO.zzz" in text and "RADIO.zzz (did" not in text
    assert "RADOI (did you mean RADIO?)" in text
    assert "OTHER" in text
    assert "APP.worker (did you mean APP.workers?)" in text
    assert app.stats["config_unknown"] == 5
    assert app.config["RADIO"]["baudrate"] == 115200   # the typo does not set the key


def test_uart_needs_two_workers_and_says_why():
    from usr.qframe.builtins.uart import Uart
    app = Application("cfg")
    Uart(app=app)
    app.config.update({"APP": {"workers": 1}})
    text = str(raises(ConfigError, app.check_config))
    assert "APP.workers" in text and "uart needs at least 2" in text and "worker" in text, text
    app.check_config(repair=True)
    assert app.config["APP"]["workers"] == 2
    plain = Application("cfg")
    plain.config.update({"APP": {"workers": 1}})
    assert plain.check_config() == []     # without the link one worker is enough
