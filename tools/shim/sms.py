"""sms on the host: text messages in and out.

shimctl.sms_receive(phone, msg) (the host's side) stores a message and calls the function
given to setCallback with (sim id, index, storage) on the shim's callback thread, as the
firmware does; searchTextMsg(index) returns (phone, msg, length) or -1; sendTextMsg records
into shimctl.sms_sent.
"""
from shimlib import dispatch as _dispatch, firmware as _firmware

_inbox = []     # (phone, msg)
_sent = []      # (phone, msg, code mode)
_callback = [None]


def setCallback(usrFun):
    _callback[0] = usrFun
    return 0


def _receive(phone, msg):
    """Deliver an SMS to the device; returns its index."""
    _inbox.append((phone, msg))
    index = len(_inbox) - 1
    _dispatch.fire(_callback[0], (0, index, "SM"))
    return index


def searchTextMsg(index):
    if not 0 <= index < len(_inbox):
        return -1
    phone, msg = _inbox[index]
    return (phone, msg, len(msg))


def sendTextMsg(phone, msg, codeMode="GSM"):
    _sent.append((phone, msg, codeMode))
    return 0


def getMsgNums():
    return len(_inbox)


_firmware.prune(globals(), "sms")
