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
so importing this package puts host_socket into sys.modules['usocket'].
"""
from shimlib import hostio

if hostio.IS_MICROPYTHON and "usocket" not in hostio.sys.modules:
    from shimlib import host_socket
    hostio.sys.modules["usocket"] = host_socket
