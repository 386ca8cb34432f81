"""sim on the host: presence and hot-swap from network.set_sim(present).

setCallback(fun): fun(1) inserted / fun(2) removed, on the shim's callback thread, only while
hot-swap detection is on (setSimDet(1, level)), as on the module.
"""
from shimlib import core, network


def getStatus():
    return 1 if core.state["sim"] else 0


def getImsi():
    return core.state["imsi"] if core.state["sim"] else -1


def getIccid():
    return core.state["iccid"] if core.state["sim"] else -1


def getPhoneNumber():
    return -1


def setSimDet(switch, triggerLevel):
    core.state["sim_det"] = (1 if switch else 0, triggerLevel)
    return 0


def getSimDet():
    return core.state["sim_det"]


def setCallback(usrFun):
    core.callbacks["sim"] = usrFun
    return 0
