"""The virtual board's peers for `make board SIM=1`: the simulated meter and HES, and the site
config that points the app at them.

    peers = SimPeers("build/vboard/site.json", "build/vboard/meter.tty").start()
    ... make deploy PORT=build/board.tty CONFIG=build/vboard/site.json; make run ...
    peers.stop()

The meter (tools/simulators/meter.py) is on a pty linked at `meter_link` and sends a
transparent reading every `every_s` seconds; the HES (tools/simulators/hes.py) listens on a
free loopback port. The site config is tools/simulators/sim_config.py's `app_config` for those two
(short timeouts), with the app logging to /usr/log/app.log so `make log` has a file to follow.
Both peers report what they see through `say` (one line each: registrations, connections,
data received, readings sent).
"""
import json
import os
import threading

from tools.simulators.hes import HesSim
from tools.simulators.meter import MeterSim
from tools.simulators.sim_config import app_config

LOG_FILE = "/usr/log/app.log"
QUIET_HES = ("heartbeat", "raw")


class SimPeers(object):
    """Meter and HES simulators plus the site config; see the module docstring."""

    def __init__(self, site_config, meter_link, every_s=2.0, say=print):
        self.site_config = site_config
        self.meter_link = meter_link
        self.every_s = every_s
        self.say = say
        self.hes = self.meter = None
        self.config = None
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self.hes = HesSim(on_event=self._hes_event).start()
        os.makedirs(os.path.dirname(os.path.abspath(self.meter_link)), exist_ok=True)
        self.meter = MeterSim(link=self.meter_link, on_event=self._meter_event).start()
        self.config = app_config(self.hes.port, self.meter_link)
        self.config["APP"]["log_file"] = LOG_FILE
        with open(self.site_config, "w") as f:
            json.dump(self.config, f, indent=2, sort_keys=True)
            f.write("\n")
        if self.every_s > 0:
            self._thread = threading.Thread(target=self._readings, name="board-sim-meter",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self.meter is not None:
            self.meter.stop()
        if self.hes is not None:
            self.hes.stop()

    def _readings(self):
        count = 0
        while not self._stop.wait(self.every_s):
            count += 1
            try:
                self.meter.send_transparent(b"reading %d" % count)
            except OSError:
                continue          # the app has not opened its UART yet: the meter retries

    def _hes_event(self, kind, detail):
        if kind not in QUIET_HES:
            self.say("hes:   %s %s" % (kind, detail))

    def _meter_event(self, text):
        self.say("meter: %s" % text)
