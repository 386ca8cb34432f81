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
