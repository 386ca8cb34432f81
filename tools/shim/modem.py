"""modem on the host: device identity from shimctl.state."""
import shimctl


def getDevImei():
    return shimctl.state["imei"]


def getDevModel():
    return shimctl.state["model"]


def getDevSN():
    return shimctl.state["sn"]


def getDevFwVersion():
    return shimctl.state["fw_version"]


def getDevProductId():
    return "Quectel"
