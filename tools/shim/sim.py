"""sim on the host: presence and hot-swap from shimctl.set_sim(present).

setCallback(fun): fun(1) inserted / fun(2) removed, on the shim's callback thread, only while
hot-swap detection is on (setSimDet(1, level)), as on the module.
"""
import shimctl


def getStatus():
    return 1 if shimctl.state["sim"] else 0


def getImsi():
    return shimctl.state["imsi"] if shimctl.state["sim"] else -1


def getIccid():
    return shimctl.state["iccid"] if shimctl.state["sim"] else -1


def getPhoneNumber():
    return -1


def setSimDet(switch, triggerLevel):
    shimctl.state["sim_det"] = (1 if switch else 0, triggerLevel)
    return 0


def getSimDet():
    return shimctl.state["sim_det"]


def setCallback(usrFun):
    shimctl.callbacks["sim"] = usrFun
    return 0
