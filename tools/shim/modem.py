"""modem on the host: device identity from shimctl.state."""
from shimlib import core


def getDevImei():
    return core.state["imei"]


def getDevModel():
    return core.state["model"]


def getDevSN():
    return core.state["sn"]


def getDevFwVersion():
    return core.state["fw_version"]


def getDevProductId():
    return "Quectel"
