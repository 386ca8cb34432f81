"""misc on the host: Power records restarts and power-downs in shimctl.state.

powerRestart() never returns on the module; here it counts state["reboots"] and returns None,
or raises SystemExit when state["reboot_raises"] is set.
"""
from shimlib import firmware as _firmware
from shimlib import core as _core


class Power(object):
    @staticmethod
    def powerRestart():
        _core.count("reboots")
        if _core.state["reboot_raises"]:
            raise SystemExit("misc.Power.powerRestart()")

    @staticmethod
    def powerDown():
        _core.count("power_downs")
        if _core.state["reboot_raises"]:
            raise SystemExit("misc.Power.powerDown()")

    @staticmethod
    def powerOnReason():
        return _core.state["power_on_reason"]

    @staticmethod
    def powerDownReason():
        return 1

    @staticmethod
    def getVbatt():
        return 3800


_firmware.prune(globals(), "misc")
