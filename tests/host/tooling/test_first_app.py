"""docs/FIRST_APP.md's app (examples/first_app) runs as the guide says, on CPython and
MicroPython, against the simulated meter and HES: meter -> HES, HES -> meter, the meter's
parameter request answered by a decorator-registered handler, and its extensions log under
the names they are registered with. The guide's code is this folder, so it cannot rot."""
import os

import pytest

from tools.hostrun import board_root
from tools.simulators import system
from qframe.codecs import meter

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
APP = os.path.join(REPO, "examples", "first_app")
DEADLINE_S = 20


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_first_app_moves_data_both_ways(tmp_path, interpreter):
    sim = system.System(interpreter, str(tmp_path / "board"), app=APP).start(DEADLINE_S)
    try:
        sim.meter.send_transparent(b"reading 1")
        assert sim.hes.wait_for(lambda h: b"reading 1" in h.received, DEADLINE_S), \
            "\n".join(sim.app.lines)
        assert sim.hes.send_data(b"tariff 2")
        assert sim.meter.wait_for(lambda: b"tariff 2" in sim.meter.transparent, DEADLINE_S), \
            "\n".join(sim.app.lines)
        answer = sim.meter.request(meter.get_request(meter.PID_CSQ), DEADLINE_S)
        assert answer is not None and answer.cmd == meter.CMD_GET_RESPONSE, answer
        assert sim.app.wait_line("client: connected to 127.0.0.1:%d" % sim.hes.port, 1)
    finally:
        sim.stop()
    # its own files, not the repo's meter app, ran from a copy of the folder
    usr = str(tmp_path / "board" / "usr")
    assert os.path.isfile(os.path.join(usr, "gateway.py"))
    assert not os.path.exists(os.path.join(usr, "app_main.py"))
    assert not any(os.path.islink(os.path.join(usr, n)) for n in os.listdir(usr))


def test_make_run_app_says_what_it_needs():
    """`make run APP=` with a folder that is not an app: one line, no traceback."""
    with pytest.raises(SystemExit) as stop:
        system.main(["--app", REPO + "/docs", "--duration", "1"])
    assert "docs: no main.py" in str(stop.value)


def test_check_config_checks_with_the_app_folder():
    from tools.hostrun import check_config
    errors, _ = check_config.check(os.path.join(APP, "dev.json"), board_root.REPO, APP)
    assert errors == []
