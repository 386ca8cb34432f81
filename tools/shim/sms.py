"""sms on the host: text messages in and out.

receive(phone, msg) (the host's side) stores a message and calls the function given to
setCallback with (sim id, index, storage) on the shim's callback thread, as the firmware does;
searchTextMsg(index) returns (phone, msg, length) or -1; sendTextMsg records into `sent`.
"""
import shimctl

inbox = []      # (phone, msg)
sent = []       # (phone, msg, code mode)
_callback = [None]


def setCallback(usrFun):
    _callback[0] = usrFun
    return 0


def receive(phone, msg):
    """Deliver an SMS to the device; returns its index."""
    inbox.append((phone, msg))
    index = len(inbox) - 1
    shimctl.fire(_callback[0], (0, index, "SM"))
    return index


def searchTextMsg(index):
    if not 0 <= index < len(inbox):
        return -1
    phone, msg = inbox[index]
    return (phone, msg, len(msg))


def sendTextMsg(phone, msg, codeMode="GSM"):
    sent.append((phone, msg, codeMode))
    return 0


def getMsgNums():
    return len(inbox)
