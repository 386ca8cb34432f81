"""modem on the host: device identity from shimctl.state."""
from shimlib import firmware as _firmware
from shimlib import core as _core


def getDevImei():
    return _core.state["imei"]


def getDevModel():
    return _core.state["model"]


def getDevSN():
    return _core.state["sn"]


def getDevFwVersion():
    return _core.state["fw_version"]


def getDevProductId():
    return "Quectel"


_firmware.prune(globals(), "modem")
