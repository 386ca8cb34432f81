"""The machinery behind the QuecPython stand-ins in tools/shim (device code never imports it).

Layers, each importing only those above it:
    hostio        the host's sys/select/socket (u-names on MicroPython)
    threads       Event with timeouts, Worker, Ticker
    core          the shim's state, change notification, wait_for, tracked objects, reset()
    dispatch      the callback thread
    sockets       live sockets (aborted by network faults)
    network       SIM, radio, registration, PDP, CSQ, DNS
    quota         the flash quota;  devicefs: /usr and /bak inside the board root
    host_socket   usocket;  uart_devices: machine.UART's devices;  http_get: fota downloads
    control       the line-based control server and its client
The QuecPython modules (machine, usocket, app_fota, ...) use these; shimctl.py is the control
panel that tests and host tools import.

On MicroPython `import usocket` finds the built-in socket module before sys.path is searched,
so importing this package puts host_socket into sys.modules['usocket'] (and tls_mp into
sys.modules['ussl']: a 1.13 build has ussl built in). The firmware's
`osTimer` and `fota` modules are types: their shim modules put the type in sys.modules in
place of themselves, which CPython's import honours at once but MicroPython's only from the
second import on, so on MicroPython this package imports them first. A module the chosen
firmware line lacks (uselect, uerrno on E1/E2) but the interpreter has built in (MicroPython
1.13 finds built-ins before sys.path) is replaced by a stand-in whose attributes raise
ImportError (shimlib/firmware.py `Absent`).
"""
from shimlib import hostio

if hostio.IS_MICROPYTHON and "usocket" not in hostio.sys.modules:
    from shimlib import host_socket
    hostio.sys.modules["usocket"] = host_socket
    from shimlib import tls_mp
    hostio.sys.modules["ussl"] = tls_mp

if hostio.IS_MICROPYTHON:
    from shimlib import firmware
    for _name in ("osTimer", "fota"):
        if _name not in hostio.sys.modules:
            __import__(_name)
    for _name in ("uselect", "uerrno"):
        firmware.hide_builtin(_name)
