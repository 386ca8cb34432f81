"""A board root running the real app (code/app_main.py) plus a loopback standing in for the HES.

Used by tests/host/integration/test_meter_link.py and tools/benches/uart.py to run the app in a separate
interpreter (CPython or MicroPython) against tools/simulators/meter.py:

    root = hes_loopback.stage(path, config)             # like board_root.stage(), plus:
    proc = subprocess.Popen(board_root.run_command(root, "micropython", duration), ...)

The staged /usr/main.py imports the app from /usr/app_main.py (code/app_main.py),
registers `loopback` (every `meter.transparent` payload is published back as `hes.data`
with PREFIX in front, so it returns to the meter as a 0x2100 frame) and loads the app.
"""
import os

from tools.hostrun import board_root

PREFIX = b"echo:"
MAIN = '''"""Test board main: the real app plus a loopback for the HES (tools/hostrun)."""
from usr.qframe import AppExtension
from usr.app_main import app

PREFIX = %r


class Loopback(AppExtension):
    name = "loopback"

    def __init__(self, app=None):
        self.stats = {"echoed": 0}
        AppExtension.__init__(self, None, app)

    def load(self):
        self.app.bus.subscribe("meter.transparent", self._echo)

    def _echo(self, topic, data):
        self.stats["echoed"] += 1
        self.app.bus.publish("hes.data", PREFIX + data)


Loopback(app=app)
app.load(repair_config=True)
'''


def stage(root, config):
    """Stage ROOT with config as /usr/dev.json and the loopback main; returns ROOT."""
    board_root.stage(root, config)
    usr = os.path.join(root, "usr")
    main = os.path.join(usr, "main.py")
    if os.path.lexists(main):
        os.remove(main)
    with open(main, "w") as f:
        f.write(MAIN % (PREFIX,))
    return root
