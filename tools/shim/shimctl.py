"""Control panel of the host shim: the board's filesystem and the state tests drive.

Runs on CPython and MicroPython. Device code never imports this module; tests and host tools do.

    state                      dict of what the shim modules report (see DEFAULTS)
    reset()                    defaults back, shim threads stopped, callbacks forgotten
    set_network(up)            forced outage on/off (registration + PDP; sockets aborted)
    set_pdp(active)            the PDP context alone
    set_sim(present)           SIM hot-swap (callbacks need sim.setSimDet(1, level))
    set_csq(n)                 what net.csqQueryPoll() returns (-1 = the query fails)
    set_modem_fun(fun)         as net.setModemFun: 0/4 radio off, 1 on (attach after a delay)
    set_dns_fail(on)           usocket.getaddrinfo raises OSError
    reset_sockets()            TCP reset of every live usocket socket
    set_flash_free(n)          writes to /usr, /bak raise OSError(28) once n bytes are used
    set_gpio(pin, level)       an input level for machine.Pin.read()
    uart_map[port] = device    "/dev/pts/N", a tty path, "socket://h:p", "loop://", pyserial URL
    wait_for(pred, timeout_ms) event-driven wait (wakes on every shim state change)
    fire(fn, *args)            run fn on the shim's callback thread
    serve_control(port)        line-based TCP control server (127.0.0.1) for another process
    shimctl_client(port, cmd)  send one command to it (also: python shimctl.py PORT CMD...)
    apply_app_fota()           move app_fota downloads into place, as the firmware does at boot

Callbacks (dataCall, sim, fota) run on one shim thread, never in the caller's stack.
On MicroPython `import usocket` resolves to the builtin socket module before sys.path is
searched; importing this module puts tools/shim/usocket.py into sys.modules first.
"""
import sys
import _thread

IS_MICROPYTHON = sys.implementation.name == "micropython"
DEVICE_DIRS = ("/usr", "/bak")
ENOSPC = 28
ECONNRESET = 104
ECONNABORTED = 103

board_root = None


def host_path(path):
    """Map a device path (/usr/..., /bak/...) into the board root on CPython."""
    if board_root and isinstance(path, str):
        for top in DEVICE_DIRS:
            if path == top or path.startswith(top + "/"):
                return board_root + path
    return path


def install_fs(root):
    """Make /usr and /bak of device code resolve inside ROOT (created if missing)."""
    global board_root
    import uos
    board_root = root.rstrip("/")
    for top in DEVICE_DIRS:
        try:
            uos.mkdir(board_root + top)
        except OSError:
            pass
    if IS_MICROPYTHON:
        import _shimfs        # VfsPosix + flash quota + a rename that works with a root
        _shimfs.mount_quota(board_root, DEVICE_DIRS)
    else:
        import builtins
        if not hasattr(builtins, "_host_open"):
            builtins._host_open = builtins.open

            def device_open(file, *args, **kwargs):
                return _open_device(file, *args, **kwargs)

            builtins.open = device_open


# -- state ---------------------------------------------------------------------------------

DEFAULTS = {
    "outage": False,          # forced by set_network(False)
    "sim": True,              # SIM present
    "sim_det": (0, 0),        # sim.setSimDet(switch, level)
    "modem_fun": 1,           # net.setModemFun
    "registered": True,       # network registration (derived)
    "attaching": False,       # radio on / SIM in: registration pending
    "pdp": True,              # PDP context 1 active (derived)
    "attach_delay_ms": 100,   # radio on / SIM in -> registered
    "csq": 25,
    "dns_fail": False,
    "dns_errno": -202,        # lwIP's EAI_FAIL, as MicroPython lwIP ports raise it
    "flash_free": None,       # None: no quota; else bytes left on /usr + /bak
    "flash_quota": None,      # the n of the last set_flash_free(n)
    "reboots": 0,             # misc.Power.powerRestart(), net.setModemFun(fun, rst=1)
    "reboot_raises": False,   # powerRestart raises SystemExit after recording
    "power_downs": 0,
    "power_on_reason": 1,
    "wdt_feeds": 0,
    "wdt_expired": 0,         # times the hardware watchdog would have reset the module
    "wdt_running": False,
    "socket_resets": 0,       # live sockets aborted (reset_sockets or network loss)
    "datacall_events": 0,
    "sim_events": 0,
    "ntp_syncs": 0,
    "rtc_offset_s": 0,
    "imei": "866000000000001",
    "model": "EC600U-CN",
    "fw_version": "EC600UCNLBR03A01M08_OCPU_QPY",
    "sn": "SHIM00000001",
    "imsi": "460001234567890",
    "iccid": "89860000000000000001",
    "ip": "10.64.0.2",
    "apn": None,              # dataCall.setPDPContext arguments
    "dns": ("8.8.8.8", "114.114.114.114"),
    "fota": None,             # fota.fota() records (see fota.py)
    "app_fota": None,         # app_fota records (see app_fota.py)
}

state = {}
uart_map = {}
gpio = {}
callbacks = {"datacall": None, "sim": None}   # functions registered by device code

_lock = _thread.allocate_lock()
_tracked = []                 # objects with _shim_stop(): threads reset() must stop
_sockets = []                 # live connected usocket sockets
_waiters = []                 # Events of wait_for() calls
_dispatcher = None
_attach_timer = None
_control = None


def oserror(code):
    """OSError(code) whose args[0] and errno are code on both interpreters."""
    if IS_MICROPYTHON:
        return OSError(code)
    import os
    return OSError(code, os.strerror(code))


def _sync():
    import _shimsync
    return _shimsync


def changed():
    """Wake every wait_for() (shim modules call this after recording something)."""
    with _lock:
        waiters = list(_waiters)
    for event in waiters:
        event.set()


def _set(**values):
    with _lock:
        state.update(values)
    changed()


def count(key, n=1):
    """Add n to a counter in state (thread-safe) and wake waiters."""
    with _lock:
        state[key] = state.get(key, 0) + n
    changed()


def track(obj):
    """Remember a running shim object; reset() calls its _shim_stop()."""
    with _lock:
        if obj not in _tracked:
            _tracked.append(obj)


def untrack(obj):
    with _lock:
        if obj in _tracked:
            _tracked.remove(obj)


def reset():
    """Back to defaults: network up, PDP active, SIM in, CSQ 25, no faults; threads stopped."""
    global _dispatcher
    stop_control()
    _cancel_attach()
    with _lock:
        tracked = list(_tracked)
        del _tracked[:]
    for obj in tracked:
        try:
            obj._shim_stop()
        except Exception as exc:
            _sync().print_exception(exc)
    if _dispatcher is not None:
        _dispatcher.stop()
        _dispatcher = None
    with _lock:
        state.clear()
        state.update(DEFAULTS)
        uart_map.clear()
        gpio.clear()
        callbacks["datacall"] = callbacks["sim"] = None
        del _sockets[:]
    changed()


# -- callbacks on a thread of their own -----------------------------------------------------

class _Dispatcher(object):
    def __init__(self):
        sync = _sync()
        self.calls = []
        self.pending = sync.Event()
        self.worker = sync.Worker(self._loop, "shim-callbacks").start()

    def put(self, fn, args):
        with _lock:
            self.calls.append((fn, args))
        self.pending.set()

    def _loop(self, worker):
        while True:
            self.pending.wait()
            if worker.stopping.is_set():
                return
            self.pending.clear()
            while not worker.stopping.is_set():
                with _lock:
                    if not self.calls:
                        break
                    fn, args = self.calls.pop(0)
                try:
                    fn(*args)
                except Exception as exc:
                    _sync().print_exception(exc)
                changed()

    def stop(self):
        self.worker.stopping.set()
        self.pending.set()
        if self.worker.stop():
            self.pending.close()


def fire(fn, *args):
    """Run fn(*args) on the shim's callback thread (as the firmware runs its callbacks)."""
    global _dispatcher
    if fn is None:
        return
    with _lock:
        if _dispatcher is None or not _dispatcher.worker.running:
            _dispatcher = _Dispatcher()
        dispatcher = _dispatcher
    dispatcher.put(fn, args)


def wait_for(predicate, timeout_ms=2000, recheck_ms=100):
    """True once predicate() is true, False after timeout_ms. Wakes on every shim state
    change (and re-checks at least every recheck_ms for conditions the shim cannot see)."""
    sync = _sync()
    event = sync.Event()
    with _lock:
        _waiters.append(event)
    try:
        import utime
        deadline = utime.ticks_add(utime.ticks_ms(), int(timeout_ms))
        while True:
            if predicate():
                return True
            left = sync.ms_left(deadline)
            if left <= 0:
                return bool(predicate())
            event.wait(min(left, recheck_ms))
            event.clear()
    finally:
        with _lock:
            _waiters.remove(event)
        event.close()


# -- network, PDP, SIM, radio ---------------------------------------------------------------

def net_ready():
    """Data can flow: registered and the PDP context active."""
    return state["registered"] and state["pdp"]


def _reachable():
    return state["sim"] and state["modem_fun"] == 1 and not state["outage"]


def _datacall_event(active):
    count("datacall_events")
    fire(callbacks.get("datacall"), (1, 1 if active else 0))


def _drop(errno=ECONNABORTED):
    """Registration lost: PDP down (dataCall callback), live sockets aborted."""
    with _lock:
        was_pdp = state["pdp"]
        state["registered"] = False
        state["pdp"] = False
    if was_pdp:
        _datacall_event(False)
        _abort_sockets(errno)
    changed()


def _attach():
    """Register and (auto) activate the PDP context if nothing prevents it."""
    with _lock:
        state["attaching"] = False
        if not _reachable() or state["registered"]:
            return
        state["registered"] = True
        state["pdp"] = True
    _datacall_event(True)
    changed()


def _cancel_attach():
    global _attach_timer
    timer, _attach_timer = _attach_timer, None
    if timer is not None:
        timer.stop()
        untrack(timer)
    state["attaching"] = False


def _schedule_attach():
    global _attach_timer
    _cancel_attach()
    if not _reachable() or state["registered"]:
        return
    delay = state["attach_delay_ms"]
    if delay <= 0:
        _attach()
        return
    state["attaching"] = True
    timer = _sync().Ticker(delay, False, _attach, "shim-attach")
    timer._shim_stop = timer.stop
    _attach_timer = timer
    track(timer)
    timer.start()


def set_network(up):
    """up=False: forced outage (registration and PDP lost, sockets aborted with
    ECONNABORTED); up=True: outage over, registered and PDP active at once."""
    state["outage"] = not up
    if up:
        _cancel_attach()
        _attach()
    else:
        _cancel_attach()
        _drop()
    changed()


def set_pdp(active):
    """PDP context 1 up/down (the network stays registered). False if it cannot come up."""
    if active:
        with _lock:
            ok = state["registered"] and not state["pdp"]
            if ok:
                state["pdp"] = True
        if ok:
            _datacall_event(True)
        changed()
        return state["pdp"]
    with _lock:
        was = state["pdp"]
        state["pdp"] = False
    if was:
        _datacall_event(False)
        _abort_sockets(ECONNABORTED)
    changed()
    return True


def set_sim(present):
    """SIM inserted/removed: sim callback (1 in / 2 out) if detection is on; removal drops
    the network, insertion attaches after attach_delay_ms."""
    present = bool(present)
    if state["sim"] == present:
        return
    state["sim"] = present
    count("sim_events")
    if state["sim_det"][0]:
        fire(callbacks.get("sim"), 1 if present else 2)
    if present:
        _schedule_attach()
    else:
        _cancel_attach()
        _drop()
    changed()


def set_modem_fun(fun):
    """As net.setModemFun: 0 or 4 radio off (network down), 1 on (attach after a delay)."""
    state["modem_fun"] = fun
    if fun == 1:
        _schedule_attach()
    else:
        _cancel_attach()
        _drop()
    changed()


def set_csq(n):
    _set(csq=n)


def set_dns_fail(on):
    _set(dns_fail=bool(on))


def set_gpio(pin, level):
    with _lock:
        gpio[pin] = level
    changed()


def get_gpio(pin, default=0):
    with _lock:
        return gpio.get(pin, default)


# -- sockets ---------------------------------------------------------------------------------

def register_socket(sock):
    with _lock:
        if sock not in _sockets:
            _sockets.append(sock)


def unregister_socket(sock):
    with _lock:
        if sock in _sockets:
            _sockets.remove(sock)


def live_sockets():
    with _lock:
        return list(_sockets)


def _abort_sockets(errno):
    with _lock:
        socks = list(_sockets)
        del _sockets[:]
    for sock in socks:
        sock._shim_abort(errno)
    if socks:
        count("socket_resets", len(socks))
    return len(socks)


def reset_sockets():
    """TCP reset of every live socket: the peer sees a RST, the app ECONNRESET."""
    return _abort_sockets(ECONNRESET)


# -- flash quota -------------------------------------------------------------------------------

def set_flash_free(n):
    """Bytes left for writes under /usr and /bak (None: no quota)."""
    with _lock:
        state["flash_free"] = None if n is None else max(0, int(n))
        state["flash_quota"] = state["flash_free"]
    if n is not None and IS_MICROPYTHON and board_root:
        import _shimfs
        _shimfs.mount_quota(board_root, DEVICE_DIRS)
    changed()


def flash_charge(nbytes):
    """Account a write of nbytes; OSError(ENOSPC) (nothing written) if it does not fit."""
    with _lock:
        free = state.get("flash_free")
        if free is None:
            return
        if nbytes > free:
            raise oserror(ENOSPC)
        state["flash_free"] = free - nbytes


def flash_credit(nbytes):
    """Give back nbytes (a file removed or truncated)."""
    with _lock:
        free = state.get("flash_free")
        if free is not None and nbytes > 0:
            state["flash_free"] = free + nbytes


def flash_statvfs(stat):
    """statvfs tuple with the quota applied (1-byte blocks) when a quota is set."""
    free = state.get("flash_free")
    if free is None:
        return stat
    total = max(free, state.get("flash_quota") or 0)
    return (1, 1, total, free, free) + tuple(stat[5:])


def _open_device(file, mode="r", *args, **kwargs):
    """builtins.open on CPython: device paths mapped into the board root, quota applied."""
    import builtins
    path = host_path(file)
    if path is file or state.get("flash_free") is None or not _writes(mode):
        return builtins._host_open(path, mode, *args, **kwargs)
    import _shimfs
    return _shimfs.quota_open(builtins._host_open, path, mode, *args, **kwargs)


def _writes(mode):
    for flag in "wax+":
        if flag in mode:
            return True
    return False


# -- app_fota: what the firmware does at boot ------------------------------------------------

def apply_app_fota():
    """If app_fota's update flag is set, move /usr/.updater/usr/... onto /usr/...; return the
    device paths replaced."""
    import app_fota
    return app_fota.apply_update()


# -- control server ----------------------------------------------------------------------------

def status():
    """A JSON-able snapshot of the state."""
    snap = {}
    with _lock:
        for key in state:
            value = state[key]
            if value is None or isinstance(value, (bool, int, str, float)):
                snap[key] = value
            elif isinstance(value, tuple):
                snap[key] = list(value)
    snap["live_sockets"] = len(_sockets)
    snap["uart_map"] = dict((str(k), str(v)) for k, v in uart_map.items())
    return snap


def command(line):
    """Run one control command (the control server's language); return the reply line."""
    import ujson
    words = line.strip().lower().split()
    if not words:
        return "error: empty command"
    head, args = words[0], words[1:]
    try:
        if head == "status":
            return ujson.dumps(status())
        if head == "network" and args in (["up"], ["down"]):
            set_network(args[0] == "up")
        elif head == "pdp" and args in (["up"], ["down"]):
            set_pdp(args[0] == "up")
        elif head == "sim" and args in (["in"], ["out"]):
            set_sim(args[0] == "in")
        elif head == "csq" and len(args) == 1:
            set_csq(int(args[0]))
        elif head == "modem" and len(args) == 1:
            set_modem_fun(int(args[0]))
        elif head == "reset_sockets" and not args:
            return "ok %d" % reset_sockets()
        elif head == "dns" and args in (["fail", "on"], ["fail", "off"]):
            set_dns_fail(args[1] == "on")
        elif head == "flash" and len(args) == 2 and args[0] == "free":
            set_flash_free(None if args[1] == "none" else int(args[1]))
        elif head == "reset" and not args:
            reset()
        elif head == "help":
            return ("commands: status | network up|down | pdp up|down | sim in|out | csq N | "
                    "modem 0|1|4 | reset_sockets | dns fail on|off | flash free N|none | reset")
        else:
            return "error: unknown command %r (try help)" % line.strip()
    except ValueError as exc:
        return "error: %s" % exc
    return "ok"


def _loopback(port):
    import socket
    if IS_MICROPYTHON:
        return socket.getaddrinfo("127.0.0.1", port)[0][-1]
    return ("127.0.0.1", port)


class _ControlServer(object):
    """One thread: accepts clients and answers their lines (any number of clients at once)."""

    def __init__(self, port):
        import socket
        sync = _sync()
        if IS_MICROPYTHON and not port:
            raise ValueError("serve_control needs a port number on MicroPython (no getsockname)")
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(_loopback(port))
        self.listener.listen(4)
        self.port = port or self.listener.getsockname()[1]
        self.worker = sync.Worker(self._serve, "shim-control").start()

    def _serve(self, worker):
        import select
        poller = select.poll()
        stop = worker.stopping.pollable()
        poller.register(stop, select.POLLIN)
        poller.register(self.listener, select.POLLIN)
        sessions = {}                      # descriptor -> [socket, pending bytes]
        while not worker.stopping.is_set():
            for obj, _events in poller.poll(-1):
                fd = obj if isinstance(obj, int) else obj.fileno()
                if fd == self.listener.fileno():
                    try:
                        conn = self.listener.accept()[0]
                    except OSError:
                        continue
                    sessions[conn.fileno()] = [conn, b""]
                    poller.register(conn, select.POLLIN)
                elif fd in sessions and not self._answer(sessions[fd]):
                    poller.unregister(sessions[fd][0])
                    sessions.pop(fd)[0].close()
        for conn, _pending in sessions.values():
            conn.close()
        self.listener.close()

    def _answer(self, session):
        """Read what a client sent and answer its complete lines; False once it is gone."""
        conn = session[0]
        try:
            data = conn.recv(256)
            if not data:
                return False
            session[1] += data
            while b"\n" in session[1]:
                cut = session[1].find(b"\n")
                line, session[1] = session[1][:cut], session[1][cut + 1:]
                conn.sendall(command(line.decode()).encode() + b"\n")
        except (OSError, UnicodeError):
            return False
        return True

    def _shim_stop(self):
        self.worker.stop()


def serve_control(port=0):
    """Start the control server on 127.0.0.1:port (0: any, CPython only); return the port."""
    global _control
    stop_control()
    _control = _ControlServer(port)
    return _control.port


def stop_control():
    global _control
    server, _control = _control, None
    if server is not None:
        server._shim_stop()


def shimctl_client(port, line, timeout_s=5.0):
    """Send one command to a control server; the reply (a dict for `status`)."""
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout_s)
        sock.connect(_loopback(port))
        sock.send(line.strip().encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    finally:
        sock.close()
    text = reply.decode().strip()
    if text.startswith("{"):
        try:
            import json
        except ImportError:
            import ujson as json
        return json.loads(text)
    return text


# -- MicroPython: tools/shim/usocket.py instead of the builtin socket module ---------------------

def _install_u_modules():
    """`import usocket` finds the builtin socket before sys.path: load ours as shim.usocket
    (the shim folder as a namespace package) and put it into sys.modules['usocket']."""
    if "usocket" in sys.modules:
        return
    import uos
    folder = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    if not folder.startswith("/"):
        folder = uos.getcwd().rstrip("/") + "/" + folder
    while folder.endswith("/."):
        folder = folder[:-2]
    parent, package = folder.rsplit("/", 1)
    sys.path.insert(0, parent or "/")
    try:
        module = __import__(package + ".usocket", None, None, ["socket"])
    finally:
        sys.path.pop(0)
    sys.modules["usocket"] = module


state.update(DEFAULTS)
if IS_MICROPYTHON:
    _install_u_modules()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print("usage: shimctl.py PORT COMMAND...  (try: shimctl.py PORT help)")
        sys.exit(2)
    reply = shimctl_client(int(sys.argv[1]), " ".join(sys.argv[2:]))
    print(reply if isinstance(reply, str) else __import__("json").dumps(reply, indent=1))
    sys.exit(1 if isinstance(reply, str) and reply.startswith("error") else 0)
