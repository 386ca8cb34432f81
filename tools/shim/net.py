"""net on the host: signal, registration and radio mode from shimctl."""
from shimlib import firmware as _firmware
from shimlib import core as _core, network as _network


def csqQueryPoll():
    """CSQ 0..31 (99 unknown, -1 failed) as shimctl.set_csq set it; 99 with the radio off."""
    state = _core.state
    if state["modem_fun"] != 1:
        return 99
    return state["csq"]


def getState():
    """([voice_state, lac, cid, rat, reject_cause, psc], [data_state, ...]); state 1 registered,
    2 searching, 0 not registered."""
    state = _core.state
    reg = 1 if state["registered"] else (2 if state["attaching"] else 0)
    return ([reg, 0x1234, 0x5678, 7, 0, 0], [reg, 0x1234, 0x5678, 7, 0, 0])


def getModemFun():
    return _core.state["modem_fun"]


def setModemFun(fun, rst=0):
    """0 / 4 radio off (network down), 1 radio on (registered after attach_delay_ms unless an
    outage is forced); rst=1 also records a reboot."""
    if fun not in (0, 1, 4):
        return -1
    _network.set_modem_fun(fun)
    if rst:
        _core.count("reboots")
    return 0


def getConfig():
    """(network mode, roaming): 8 is GSM+LTE automatic on EC600U."""
    return (8, 0)


def setConfig(mode, roaming=0):
    return 0


def getSignal(sinrEnable=0):
    csq = csqQueryPoll()
    rssi = -113 + 2 * csq if 0 <= csq <= 31 else 99
    return ([99, 99, 255, 255], [rssi, rssi - 10, -10, 255, 255])


def operatorName():
    return ("SHIM MOBILE", "SHIM", "460", "00") if _core.state["registered"] else -1


_firmware.prune(globals(), "net")
