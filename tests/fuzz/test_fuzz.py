"""A short fuzz run in `make test`: every target of targets.py on hypothesis-drawn bytes, plus
regressions of what the long run (`make fuzz`, tests/fuzz/run.py) found."""
import json
import os

from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st

import targets

targets.setup_paths()

_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                     suppress_health_check=list(HealthCheck))
# bytes rich in the octets the decoders care about
_OCTETS = st.one_of(st.sampled_from([0x7E, 0x7D, 0xFF, 0x03, 0x00, 0x21, 0x22, 0x5E, 0x5D]),
                    st.integers(0, 255))
_DATA = st.one_of(st.binary(max_size=600), st.lists(_OCTETS, max_size=600).map(bytes))


def _short_run(name):
    @_SETTINGS
    @given(_DATA)
    def run(data):
        targets.TARGETS[name](data)
    run()


def test_every_target_short_run():
    assert sorted(targets.TARGETS) == ["axdr", "command_gate", "commands", "config", "dlms_apdu",
                                       "dlms_association", "hdlc", "hes_framed", "hes_raw",
                                       "meter", "mqtt_session", "pqueue_files", "resolver",
                                       "rfc1662_legacy", "rfc1662_standard", "wrapper"]
    for name in sorted(targets.TARGETS):
        if name != "pqueue_files":      # its seeded pass: tests/portable/test_pqueue_corruption
            _short_run(name)


_JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                               st.text(max_size=8)),
                     lambda inner: st.one_of(st.lists(inner, max_size=4),
                                             st.dictionaries(st.text(max_size=8), inner,
                                                             max_size=4)), max_leaves=20)


@_SETTINGS
@given(st.dictionaries(st.sampled_from(["APP", "UART", "TCP_SERVER", "NETWORK", "UARTT"]),
                       st.one_of(_JSON, st.dictionaries(
                           st.sampled_from(["workers", "baudrate", "port", "timeout",
                                            "stop_timeout", "queue_retry_s", "window",
                                            "dialect", "baudrat"]), _JSON))))
def test_config_structured(doc):
    targets.TARGETS["config"](json.dumps(doc).encode())


def test_crash_inputs_found_by_the_long_run():
    # tests/fuzz/crashes/<target>-<what>: inputs `make fuzz` failed on, replayed for good
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crashes")
    names = sorted(os.listdir(folder))
    assert names
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            targets.TARGETS[name.split("-")[0]](f.read())


def test_regressions():
    # deeply nested COMMAND JSON raised RecursionError out of the HES decoder (issue 9.2)
    targets.TARGETS["hes_framed"](b"\x00" + b"\x83\x03\xe8" + b"[" * 1000)
    # COMMAND bodies of the wrong shape raised TypeError at the command lookup (issue 9.2)
    for body in (b'{"cmd": {}}', b'{"cmd": []}', b'{"id": "x"}', b'{"cmd": "\xff"}'):
        targets.TARGETS["commands"](body)
    # non-UTF-8 and non-JSON config files
    targets.TARGETS["config"](b"\xff\xfe{")
    targets.TARGETS["config"](b'{"APP": {"stop_timeout": NaN}}')
    targets.TARGETS["config"](b"[" * 100000)
