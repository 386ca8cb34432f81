"""misc on the host: Power records restarts and power-downs in shimctl.state.

powerRestart() never returns on the module; here it counts state["reboots"] and returns None,
or raises SystemExit when state["reboot_raises"] is set.
"""
from shimlib import core


class Power(object):
    @staticmethod
    def powerRestart():
        core.count("reboots")
        if core.state["reboot_raises"]:
            raise SystemExit("misc.Power.powerRestart()")

    @staticmethod
    def powerDown():
        core.count("power_downs")
        if core.state["reboot_raises"]:
            raise SystemExit("misc.Power.powerDown()")

    @staticmethod
    def powerOnReason():
        return core.state["power_on_reason"]

    @staticmethod
    def powerDownReason():
        return 1

    @staticmethod
    def getVbatt():
        return 3800
