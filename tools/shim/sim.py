"""sim on the host: presence and hot-swap from network.set_sim(present).

setCallback(fun): fun(1) inserted / fun(2) removed, on the shim's callback thread, only while
hot-swap detection is on (setSimDet(1, level)), as on the module.
"""
from shimlib import firmware as _firmware
from shimlib import core as _core, network as _network


def getStatus():
    return 1 if _core.state["sim"] else 0


def getImsi():
    return _core.state["imsi"] if _core.state["sim"] else -1


def getIccid():
    return _core.state["iccid"] if _core.state["sim"] else -1


def getPhoneNumber():
    return -1


def setSimDet(switch, triggerLevel):
    _core.state["sim_det"] = (1 if switch else 0, triggerLevel)
    return 0


def getSimDet():
    return _core.state["sim_det"]


def setCallback(usrFun):
    _core.callbacks["sim"] = usrFun
    return 0


_firmware.prune(globals(), "sim")
