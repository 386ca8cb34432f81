"""The shim's control server: a line-based TCP server on 127.0.0.1 that drives the network and
flash faults of the process it runs in, from another process (tools/simulators/system.py).

    port = serve_control(0)            # 0: any free port (CPython only)
    client(port, "network down")      # "ok"; "status" answers a dict
    command("help")                    # the language, without the server
"""
import gc

from shimlib import core, network, notes, quota, sockets, threads
from shimlib.hostio import IS_MICROPYTHON, bound_port, select, socket

_server = None

HELP = ("commands: status | network up|down | pdp up|down | sim in|out | csq N | "
        "modem 0|1|4 | reset_sockets | dns fail on|off | flash free N|none | "
        "heap fill LEAVE [HOLD_MS] | heap release | "
        "reset")
_ballast = [None]   # the chain of blocks `heap fill` holds


def status():
    """A JSON-able snapshot of the state."""
    snap = {}
    with core.lock:
        for key in core.state:
            value = core.state[key]
            if value is None or isinstance(value, (bool, int, str, float)):
                snap[key] = value
            elif isinstance(value, tuple):
                snap[key] = list(value)
        snap["live_sockets"] = len(core.live_sockets)
        snap["uart_map"] = dict((str(k), str(v)) for k, v in core.uart_map.items())
    return snap


def command(line):
    """Run one control command; return the reply line."""
    import ujson
    words = line.strip().lower().split()
    if not words:
        return "error: empty command"
    head, args = words[0], words[1:]
    try:
        if head == "status":
            return ujson.dumps(status())
        if head == "network" and args in (["up"], ["down"]):
            network.set_network(args[0] == "up")
        elif head == "pdp" and args in (["up"], ["down"]):
            network.set_pdp(args[0] == "up")
        elif head == "sim" and args in (["in"], ["out"]):
            network.set_sim(args[0] == "in")
        elif head == "csq" and len(args) == 1:
            network.set_csq(int(args[0]))
        elif head == "modem" and len(args) == 1:
            network.set_modem_fun(int(args[0]))
        elif head == "reset_sockets" and not args:
            return "ok %d" % sockets.reset_sockets()
        elif head == "dns" and args in (["fail", "on"], ["fail", "off"]):
            network.set_dns_fail(args[1] == "on")
        elif head == "flash" and len(args) == 2 and args[0] == "free":
            quota.set_flash_free(None if args[1] == "none" else int(args[1]))
        elif head == "heap" and len(args) in (2, 3) and args[0] == "fill":
            hold_ms = int(args[2]) if len(args) == 3 else 0
            return "ok %d" % heap_fill(int(args[1]), hold_ms)
        elif head == "heap" and args == ["release"]:
            _release_ballast()
        elif head == "reset" and not args:
            core.reset()
        elif head == "help":
            return HELP
        else:
            return "error: unknown command %r (try help)" % line.strip()
    except ValueError as exc:
        return "error: %s" % exc
    return "ok"


def heap_fill(leave, hold_ms=0):
    """Allocate the process's heap (MicroPython) until about `leave` bytes stay free, so the
    app runs short of memory; `heap release` gives it back, or, with hold_ms, a thread started
    beforehand (the control server itself may not get the memory to read a command) hold_ms
    after the fill is complete (a slow fill on a loaded machine must not outlast the hold).
    Returns the bytes held. The blocks are chained (no growing list needs a large free block)
    and the fill repeats after a collection, so the garbage the app leaves is taken too."""
    if not IS_MICROPYTHON:
        raise ValueError("heap fill needs MicroPython (gc.mem_free)")
    filled = None
    if hold_ms:
        import _thread
        import utime
        filled = _thread.allocate_lock()
        filled.acquire()

        def release():
            filled.acquire()
            utime.sleep_ms(hold_ms)
            _release_ballast()
            notes.note("shim: heap released")

        _thread.start_new_thread(release, ())
    try:
        return _fill(leave)
    finally:
        if filled is not None:
            filled.release()


def _release_ballast():
    """Drop the blocks, unlinking the chain first: MicroPython's GC is conservative, and a stale
    word on some thread's stack that points at one block would otherwise keep every block after
    it (the app stayed short of memory after `heap released`)."""
    node, _ballast[0] = _ballast[0], None
    while node is not None:
        after = node[1]
        node[1] = None
        node = after
    gc.collect()


def _fill(leave):
    held = 0
    for block in (1024, 256, 64, 16):
        for _ in range(3):
            try:
                while True:
                    _ballast[0] = [bytearray(block), _ballast[0]]
                    held += block
            except MemoryError:
                pass
            gc.collect()
    while held and gc.mem_free() < leave:
        _ballast[0] = _ballast[0][1]
        held -= len(_ballast[0][0]) if _ballast[0] else 0
        gc.collect()
    return held


def _loopback(port):
    if IS_MICROPYTHON:
        return socket.getaddrinfo("127.0.0.1", port)[0][-1]
    return ("127.0.0.1", port)


def _send_all(conn, data):
    """socket.sendall where it exists; QuecPython-like builds have write() only."""
    if hasattr(conn, "sendall"):
        conn.sendall(data)
        return
    while data:
        data = data[conn.write(data):]


class _ControlServer(object):
    """One thread: accepts clients and answers their lines (any number of clients at once)."""

    def __init__(self, port):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(_loopback(port))
        self.listener.listen(4)
        self.port = port or bound_port(self.listener)
        self.worker = threads.Worker(self._serve, "shim-control").start()

    def _serve(self, worker):
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
                _send_all(conn, command(line.decode()).encode() + b"\n")
        except (OSError, UnicodeError):
            return False
        return True

    def _shim_stop(self):
        self.worker.stop()


def serve_control(port=0):
    """Start the control server on 127.0.0.1:port (0: any free port); return the port.
    core.reset() stops it."""
    global _server
    stop_control()
    _server = _ControlServer(port)
    core.track(_server)
    return _server.port


def stop_control():
    global _server
    server, _server = _server, None
    if server is not None:
        core.untrack(server)
        server._shim_stop()


def client(port, line, timeout_s=5.0):
    """Send one command to a control server; the reply (a dict for `status`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout_s)
        sock.connect(_loopback(port))
        _send_all(sock, line.strip().encode() + b"\n")
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
            import ujson
        except ImportError:
            import json as ujson
        return ujson.loads(text)
    return text
