"""A simulated head-end system (HES) on loopback: a TCP (or TLS) server that records and checks
what the module sends, acknowledges uplink data, and sends transparent data and commands.

Library (tests, tools/simulators/system.py):

    hes = HesSim(protocol="ack").start()          # hes.port: the listening port
    hes.wait_for(lambda h: h.registrations, 5)
    hes.send_data(b"\\x01\\x02")                   # downlink to the meter (hes.data)
    reply = hes.command("status", timeout=5)     # a COMMAND frame, the RESPONSE's dict
    ident = hes.send_command("ping", None, dev); hes.wait_reply(ident, 5)   # one module
    hes.send_frame(0x83, b'{"cmd": {}}')          # any frame, as a faulty or hostile HES would
    hes.stop(); hes.start()                      # server down / back (same port, same records)
    hes.refuse = True                            # accept, then reset at once
    hes.drop_clients()                           # reset every live connection (RST)
    hes.connect_to("127.0.0.1", 9100)            # dial a module in the server role
    hes.add_observer(fn)                         # fn(kind, client, data) on every change

What it checks (the framed "ack" protocol of qframe/codecs/hes.py): a REGISTER must come first;
DATA sequence numbers are deduplicated per (dev, epoch) (`duplicates`), gaps counted (`gaps`,
records the module dropped); each DATA is acknowledged (cumulative ACK) once recorded. In "raw"
mode every received byte is appended to `raw`.

CLI:  python -m tools.simulators.hes [--port 9000] [--raw] [--tls-cert C --tls-key K]
                                     [--dashboard PORT|off]
then type `data HEX`, `cmd NAME`, `stop`, `start`, `refuse on|off`, `drop`, `stats`, `quit`.
The web dashboard (tools/simulators/hes_dashboard.py, default port 8080 or a free one when that
is taken) shows every module live and has a command box; its URL is printed at start.
"""
import argparse
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time

from tools.simulators.condwait import wait_on
from tools.simulators.hes_auth import SIM_MASTER, HesSigner
from tools.simulators.hes_wire import (  # noqa: F401  (re-exported: hes.DATA, hes.frame, ...)
    ACK, COMMAND, DATA, DOWN_DATA, EVENT, HEARTBEAT, NAMES, PONG, REGISTER, RESPONSE, frame)

HERE = os.path.dirname(os.path.abspath(__file__))



class _Client(object):
    def __init__(self, sock, addr):
        self.sock = sock
        self.addr = addr
        self.key = None          # (dev, epoch) after REGISTER
        self.mac_kid = None      # REGISTER's "data_kid": the key its records and events carry
        self.hello = None        # the REGISTER frame's body
        self.reset_by_hes = False
        self.lock = threading.Lock()
        self.buffer = bytearray()
        self.opened = time.monotonic()

    def send(self, data):
        with self.lock:
            self.sock.sendall(data)

    def reset(self, reader_running=True):
        """Abort with RST (SO_LINGER 0), as a broken link or a crashed server would.

        With a reader thread blocked in recv, shut the read side to wake it: it closes the
        socket (and the RST goes out) itself.
        """
        self.reset_by_hes = True
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            if reader_running:
                self.sock.shutdown(socket.SHUT_RD)
            else:
                self.sock.close()
        except OSError:
            pass


class HesSim(object):
    """See the module docstring. Every attribute read by tests is updated under `lock`."""

    def __init__(self, host="127.0.0.1", port=0, protocol="ack", ack=True, tls_cert=None,
                 tls_key=None, on_event=None, max_frame=65535, signer="sim"):
        """signer: a hes_auth.HesSigner, "sim" (one for SIM_MASTER, the simulated modules'
        keys) or None (an HES without keys: unsigned commands, as an attacker would send)."""
        self.host = host
        self.signer = HesSigner(SIM_MASTER) if signer == "sim" else signer
        self.port = port
        self.protocol = protocol
        self.ack = ack
        self.refuse = False
        self.tls = None
        if tls_cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(tls_cert, tls_key)
        self.on_event = on_event
        self.max_frame = max_frame
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.received = []        # payloads in arrival order, duplicates removed
        self.received_seqs = []   # (dev, epoch, seq) of each
        self.received_at = []     # time.monotonic() of each
        self.raw = bytearray()
        self.registrations = []
        self.heartbeats = []
        self.events = []
        self.responses = {}       # id -> the RESPONSE's dict
        self.replies = []         # every RESPONSE in arrival order
        self.stats = {"connections": 0, "refused": 0, "registrations": 0, "heartbeats": 0,
                      "data": 0, "duplicates": 0, "gaps": 0, "gap_records": 0, "acks": 0,
                      "protocol_errors": 0, "downlink": 0, "commands": 0, "frames": 0, "resets": 0,
                      "tls_errors": 0, "hellos": 0, "replies_verified": 0, "replies_unsigned": 0,
                      "replies_bad": 0}
        self._last_seq = {}
        self._clients = []
        self._listener = None
        self._thread = None
        self._running = False
        self._command_id = 0
        self._observers = []

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        """Listen (on the same port again after stop()); returns self."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._running = True
        self._thread = threading.Thread(target=self._accept_loop, name="hes-accept", daemon=True)
        self._thread.start()
        self._emit("listening", "%s:%d%s" % (self.host, self.port, " TLS" if self.tls else ""))
        self._observe("listening", None, self.port)
        return self

    def stop(self):
        """Close the listener and reset every client: the server is down."""
        self._running = False
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.drop_clients()
        self._emit("stopped", "")
        self._observe("stopped", None, None)

    def restart(self, down_s=0.0):
        self.stop()
        if down_s:
            time.sleep(down_s)
        return self.start()

    def drop_clients(self):
        """Reset every live connection."""
        with self.lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.reset()
            self.stats["resets"] += 1
        return len(clients)

    def client_count(self):
        with self.lock:
            return len(self._clients)

    # ------------------------------------------------------------------ waiting
    def wait_for(self, predicate, timeout):
        """Wait until predicate(self) is true (re-checked on every change); its last value."""
        return wait_on(self.changed, lambda: predicate(self), timeout)

    # ------------------------------------------------------------------ downlink
    def send_data(self, payload):
        """Transparent data to every connected module; how many got it."""
        data = frame(DOWN_DATA, payload) if self.protocol == "ack" else bytes(payload)
        return self._broadcast(data, "downlink")

    def send_command(self, name, args=None, dev=None):
        """Send a COMMAND (to every module, or those registered as dev); its id (the reply
        lands in responses[id])."""
        with self.lock:
            self._command_id += 1
            command_id = self._command_id
        body = json.dumps({"id": command_id, "cmd": name, "args": args})
        if self.signer is not None:         # a signature names the module: wait for REGISTER
            self.wait_for(lambda h: all(c.key for c in h._clients), 5.0)
        self._broadcast(lambda to: frame(COMMAND, self._seal(to, body)), "commands", dev)
        return command_id

    def _seal(self, dev, body):
        """body signed for dev (unsigned without a signer or a key for dev)."""
        if self.signer is None or not dev:
            return body.encode()
        return self.signer.seal(dev, body)

    def send_frame(self, kind, body=b""):
        """One frame of any type and body to every connected module; how many got it."""
        return self._broadcast(frame(kind, body), "frames")

    def command(self, name, args=None, timeout=5.0):
        return self.wait_reply(self.send_command(name, args), timeout)

    def wait_reply(self, command_id, timeout):
        """The RESPONSE (a dict) to command_id once it arrived within timeout, else None."""
        if self.wait_for(lambda h: command_id in h.responses, timeout):
            return self.responses[command_id]
        return None

    def _broadcast(self, data, counter, dev=None):
        with self.lock:
            clients = [c for c in self._clients if dev is None or (c.key and c.key[0] == dev)]
        sent = 0
        for client in clients:
            try:
                client.send(data(client.key and client.key[0]) if callable(data) else data)
                sent += 1
            except OSError:
                pass
        self.stats[counter] += sent
        return sent

    # ------------------------------------------------------------------ observers
    def add_observer(self, fn):
        """Call fn(kind, client, data) after every change (the dashboard's feed), from the HES's
        threads: "listening" (data: port) and "stopped" (client None); "connected";
        "frame" (data: (frame type, body), after the HES handled it, so client.key is set once
        registered); "disconnected" (data: the reason). client.addr and client.key
        ((dev, epoch) or None) identify the connection. fn first hears what is already up (the
        listener, connections), as if it had just started, connected and registered."""
        with self.lock:
            self._observers.append(fn)
            clients = list(self._clients)
        if self._listener is not None:
            fn("listening", None, self.port)
        for client in clients:
            fn("connected", client, None)
            if client.hello is not None:
                fn("frame", client, (REGISTER, client.hello))

    def _observe(self, kind, client, data):
        for fn in list(self._observers):
            try:
                fn(kind, client, data)
            except Exception as exc:        # an observer's bug must not take the HES down
                self._emit("observer-error", repr(exc))

    # ------------------------------------------------------------------ server threads
    def _emit(self, kind, detail):
        if self.on_event is not None:
            try:
                self.on_event(kind, detail)
            except Exception:
                pass

    def _notify(self):
        with self.changed:
            self.changed.notify_all()

    def _accept_loop(self):
        listener = self._listener
        while self._running:
            try:
                sock, addr = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            if self.refuse:
                self.stats["refused"] += 1
                _Client(sock, addr).reset(reader_running=False)
                self._emit("refused", "%s:%d" % addr)
                continue
            self._adopt(sock, addr, server_side=True)

    def connect_to(self, host, port, timeout=5.0):
        """Dial a module that listens (TCP_SERVER.role "server"); True once connected."""
        try:
            sock = socket.create_connection((host, port), timeout)
        except OSError as exc:
            self._emit("dial-failed", "%s:%d %s" % (host, port, exc))
            return False
        return self._adopt(sock, (host, port), server_side=False)

    def _adopt(self, sock, addr, server_side):
        if self.tls is not None and server_side:
            try:
                sock.settimeout(5)
                sock = self.tls.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                self.stats["tls_errors"] += 1
                self._emit("tls-error", str(exc))
                sock.close()
                return False
        sock.settimeout(None)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        client = _Client(sock, addr)
        with self.lock:
            self._clients.append(client)
            self.stats["connections"] += 1
        self._emit("connected", "%s:%d" % addr)
        self._observe("connected", client, None)
        threading.Thread(target=self._client_loop, args=(client,), daemon=True,
                         name="hes-client").start()
        self._notify()
        return True

    def _client_loop(self, client):
        reason = "closed by the module"
        try:
            while True:
                chunk = client.sock.recv(65536)
                if not chunk:
                    break
                if self.protocol == "ack":
                    client.buffer.extend(chunk)
                    self._parse(client)
                else:
                    with self.lock:
                        self.raw.extend(chunk)
                    self._emit("raw", "%d bytes" % len(chunk))
                self._notify()
        except (OSError, ValueError) as exc:
            reason = str(exc)
        if client.reset_by_hes:
            reason = "reset by the HES"
        with self.lock:
            if client in self._clients:
                self._clients.remove(client)
        try:
            client.sock.close()
        except OSError:
            pass
        self._emit("disconnected", "%s:%d %s" % (client.addr[0], client.addr[1], reason))
        self._observe("disconnected", client, reason)
        self._notify()

    def _parse(self, client):
        buffer = client.buffer
        while len(buffer) >= 3:
            kind, size = struct.unpack(">BH", bytes(buffer[:3]))
            if size > self.max_frame:
                self.stats["protocol_errors"] += 1
                raise ValueError("frame of %d bytes" % size)
            if len(buffer) < 3 + size:
                break
            body = bytes(buffer[3:3 + size])
            del buffer[:3 + size]
            shown = self._handle(client, kind, body)
            if shown is not None:
                self._observe("frame", client, (kind, shown))

    def _handle(self, client, kind, body):
        """Handle one frame; the body observers see (a RESPONSE's opened reply), or None."""
        if kind == REGISTER:
            info = json.loads(body)
            client.key = (info.get("dev"), info.get("epoch"))
            client.mac_kid = info.get("data_kid")   # records and events signed with this key
            client.hello = body
            with self.lock:
                self.registrations.append(info)
                self.stats["registrations"] += 1
            self._emit("register", json.dumps(info, sort_keys=True))
            if self.signer is not None and self.signer.key_for(info.get("dev")):
                hello = json.dumps({"id": "hello", "cmd": "ping", "args": None})
                client.send(frame(COMMAND, self._seal(info.get("dev"), hello)))
                self.stats["hellos"] += 1   # a signed command proves this HES to the module
        elif client.key is None:
            self.stats["protocol_errors"] += 1
            raise ValueError("%s before REGISTER" % NAMES.get(kind, hex(kind)))
        elif kind == DATA:
            seq, payload = struct.unpack(">I", body[:4])[0], body[4:]
            if self.signer is not None:
                payload = self.signer.open_record(client.key[0], client.mac_kid, client.key[1],
                                                  seq, payload)
                if payload is None:
                    return None             # a bad MAC: not the module's record, not acked
                body = body[:4] + payload   # observers see the record without its MAC
            self._data(client, seq, payload)
        elif kind == HEARTBEAT:
            info = json.loads(body)
            with self.lock:
                self.heartbeats.append(info)
                self.stats["heartbeats"] += 1
            client.send(frame(PONG))
            self._emit("heartbeat", json.dumps(info, sort_keys=True))
        elif kind == RESPONSE:
            if self.signer is not None:
                reply, how = self.signer.open_reply(client.key[0], body)
            else:
                reply, how = json.loads(body), "unsigned"
            self.stats["replies_" + how] += 1
            if reply is None or reply.get("id") == "hello":
                return None                 # a bad MAC: not the module's; hello: ours
            body = json.dumps(dict(reply, auth=how)).encode()
            with self.lock:
                self.responses[reply.get("id")] = reply
                self.replies.append(reply)
            self._emit("response", "id %s ok=%s %s" % (reply.get("id"), reply.get("ok"), how))
        elif kind == EVENT:
            event = json.loads(body) if self.signer is None else \
                self.signer.open_event(client.key[0], body)
            if event is None:
                return None                 # a bad MAC or a replay: not the module's
            with self.lock:
                self.events.append(event)
            self._emit("event", body[:80].decode("utf-8", "replace"))
        else:
            self.stats["protocol_errors"] += 1
            raise ValueError("unknown frame type 0x%02x" % kind)
        return body

    def _data(self, client, seq, payload):
        with self.lock:
            self.stats["data"] += 1
            last = self._last_seq.get(client.key, 0)
            if seq <= last:
                self.stats["duplicates"] += 1
                duplicate = True
            else:
                if seq > last + 1 and last:
                    self.stats["gaps"] += 1
                    self.stats["gap_records"] += seq - last - 1
                self._last_seq[client.key] = seq
                self.received.append(payload)
                self.received_seqs.append((client.key[0], client.key[1], seq))
                self.received_at.append(time.monotonic())
                duplicate = False
        self._emit("data", "seq %d %d bytes%s" % (seq, len(payload),
                                                   " (duplicate)" if duplicate else ""))
        if self.ack:
            client.send(frame(ACK, struct.pack(">I", max(seq, self._last_seq[client.key]))))
            self.stats["acks"] += 1


def _cli(argv=None):
    from tools.simulators import hes_dashboard       # aiohttp: only the CLI needs it
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--raw", action="store_true", help="raw transparent mode (no framing)")
    parser.add_argument("--no-ack", action="store_true", help="never acknowledge DATA")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--dashboard", type=hes_dashboard.port_option,
                        default=hes_dashboard.DEFAULT_PORT, metavar="PORT|off",
                        help="web dashboard port (default %(default)s; 0: any free port)")
    args = parser.parse_args(argv)

    def show(kind, detail):
        print("%s hes %-12s %s" % (time.strftime("%H:%M:%S"), kind, detail), flush=True)

    hes = HesSim(args.host, args.port, "raw" if args.raw else "ack", not args.no_ack,
                 args.tls_cert, args.tls_key, on_event=show).start()
    dashboard = hes_dashboard.start(hes, args.dashboard, say=lambda text: show("web", text))
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            verb = words[0]
            if verb == "data" and len(words) > 1:
                show("sent", "%d modules" % hes.send_data(bytes.fromhex(words[1])))
            elif verb == "cmd" and len(words) > 1:
                show("reply", json.dumps(hes.command(words[1])))
            elif verb == "stop":
                hes.stop()
            elif verb == "start":
                hes.start()
            elif verb == "refuse":
                hes.refuse = len(words) > 1 and words[1] == "on"
            elif verb == "drop":
                show("dropped", "%d connections" % hes.drop_clients())
            elif verb == "stats":
                show("stats", json.dumps(dict(hes.stats, received=len(hes.received))))
            elif verb == "quit":
                break
            else:
                show("?", "data HEX | cmd NAME | stop | start | refuse on|off | drop | stats | quit")
    except KeyboardInterrupt:
        pass
    if dashboard is not None:
        dashboard.stop()
    hes.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
