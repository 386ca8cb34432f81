"""Control panel of the host shim, for tests and host tools (device code never imports it).

Runs on CPython and MicroPython. The machinery lives in shimlib/ (one module per job); this
module gathers what tests and tools drive:

    state                      dict of what the shim modules report (shimlib/core.py DEFAULTS)
    notes                      what the shim said (WDT, failed downloads, crashed threads):
                               notes.mark()/since(m)/quiet(on) (shimlib/notes.py)
    reset()                    defaults back, shim threads stopped, callbacks forgotten
    install_fs(root)           /usr and /bak of device code inside the board root ROOT
    set_network(up)            forced outage on/off (registration + PDP; sockets aborted)
    set_pdp(active)            the PDP context alone
    set_sim(present)           SIM hot-swap (callbacks need sim.setSimDet(1, level))
    set_csq(n)                 what net.csqQueryPoll() returns (-1 = the query fails)
    set_modem_fun(fun)         as net.setModemFun: 0/4 radio off, 1 on (attach after a delay)
    set_dns_fail(on)           usocket.getaddrinfo raises OSError
    net_ready()                registered and PDP active
    net_stage()                checkNet's (stage, subcode) now, without waiting
    reset_sockets()            TCP reset of every live usocket socket; live_sockets() lists them
    set_flash_free(n)          writes to /usr, /bak raise OSError(28) once n bytes are used
    set_gpio(pin, level)       an input level for machine.Pin.read(); gpio holds the levels
    uart_map[port] = device    "/dev/pts/N", a tty path, "socket://h:p", "loop://", pyserial URL
    wait_for(pred, timeout_ms) event-driven wait (wakes on every shim state change)
    fire(fn, *args)            run fn on the shim's callback thread
    serve_control(port)        line-based TCP control server (127.0.0.1) for another process
    shimctl_client(port, cmd)  send one command to it (also: python shimctl.py PORT CMD...)
    command(line)              the control server's language, in-process
    apply_app_fota()           move app_fota downloads into place, as the firmware does at boot
    sms_receive(phone, msg)    an SMS arrives (sms.setCallback's function is called)
    sms_sent()                 [(phone, msg, code mode)] sent with sms.sendTextMsg
"""
try:
    import usys as sys
except ImportError:
    import sys

if __name__ == "__main__" and sys.implementation.name != "micropython":
    sys.path.append(sys.path[0] + "/cpython")     # run as a script: the shim's u-names

from shimlib.core import (state, uart_map, gpio, reset, wait_for,  # noqa: E402,F401
                          set_gpio)
from shimlib.devicefs import install_fs  # noqa: E402,F401
from shimlib import notes  # noqa: E402,F401
from shimlib.dispatch import fire  # noqa: E402,F401
from shimlib.network import (net_ready, set_network, set_pdp, set_sim,  # noqa: E402,F401
                             set_modem_fun, set_csq, set_dns_fail, stage as net_stage)
from shimlib.sockets import live, reset_sockets  # noqa: E402
from shimlib.quota import set_flash_free  # noqa: E402,F401
from shimlib.control import command, serve_control, client  # noqa: E402

live_sockets = live
shimctl_client = client


def sms_receive(phone, msg):
    """An SMS for the device; its index (searchTextMsg)."""
    import sms
    return sms._receive(phone, msg)


def sms_sent():
    import sms
    return sms._sent


def apply_app_fota():
    """If app_fota's update flag is set, move /usr/.updater/usr/... onto /usr/...; return the
    device paths replaced."""
    import app_fota
    return app_fota._apply_update()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print("usage: shimctl.py PORT COMMAND...  (try: shimctl.py PORT help)")
        sys.exit(2)
    reply = client(int(sys.argv[1]), " ".join(sys.argv[2:]))
    print(reply if isinstance(reply, str) else __import__("json").dumps(reply, indent=1))
    sys.exit(1 if isinstance(reply, str) and reply.startswith("error") else 0)
