"""dataCall on the host: PDP context 1 follows shimctl (set_network, set_pdp, set_sim, radio).

setCallback(fun): fun((profileID, state)) on the shim's callback thread when the context goes
down (state 0) or up (1).
"""
from shimlib import firmware as _firmware
from shimlib import core as _core, network as _network

_INACTIVE = [0, 0, "0.0.0.0", "0.0.0.0", "0.0.0.0"]


def setCallback(fun):
    _core.callbacks["datacall"] = fun
    return 0


def _v4():
    state = _core.state
    if not (state["registered"] and state["pdp"]):
        return list(_INACTIVE)
    return [1, 0, state["ip"], state["dns"][0], state["dns"][1]]


def getInfo(profileID, ipType):
    """(profileID, ipType, [state, reconnect, addr, priDNS, secDNS]) (two lists for ipType 2)."""
    if ipType == 0:
        return (profileID, 0, _v4())
    if ipType == 1:
        return (profileID, 1, [0, 0, "::", "::", "::"])
    if ipType == 2:
        return (profileID, 2, _v4(), [0, 0, "::", "::", "::"])
    return -1


def start(profileIdx, ipType, apn, username, password, authType):
    """Activate the PDP context (all six arguments, as on the firmware): 0, or -1 while the
    network is down."""
    _core.state["apn"] = (profileIdx, ipType, apn, username, password, authType)
    return 0 if _network.set_pdp(True) else -1


def setApn(profileIdx, ipType, apn, username, password, authType):
    _core.state["apn"] = (profileIdx, ipType, apn, username, password, authType)
    return 0


def setAutoConnect(profileID, enable):
    return 0


_firmware.prune(globals(), "dataCall")
