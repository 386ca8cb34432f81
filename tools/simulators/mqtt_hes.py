"""The HES side of the MQTT uplink: a real broker on loopback (mosquitto, else amqtt; a
subprocess that can be restarted) and a real MQTT client (paho-mqtt) that records what arrives.

    broker = Broker().start()                   # on a free loopback port
    hes = MqttHes(broker.port).start()          # subscribes <prefix>/+/status and .../up/#
    hes.wait_for(lambda h: len(h.received) >= 10, 5)
    hes.command("dev-1", "ping", request_id=7)  # -> .../down/cmd; the reply lands in hes.replies
    hes.send_data("dev-1", b"to the meter")     # -> .../down/meter
    broker.restart()                            # the module and the HES reconnect by themselves

`received` holds each meter payload once, in arrival order (`ordered(device)`: in the module's
order, by epoch and seq): a record arriving again with the same (device, epoch, seq) from its
topic counts in `duplicates` instead. `statuses` is the last
status per device (retained "online" / will "offline"), `replies` the command replies, `events`
the module's events. The HES client has a persistent session (clean_session false, QoS 1), so
what the broker took while the HES was reconnecting still reaches it.
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as paho

from tools.simulators.hes_auth import MAC_BYTES, SIM_MASTER, HesSigner
from tools.simulators.hes_wire import DATA, EVENT, HEARTBEAT, REGISTER, RESPONSE
from tools.simulators.ports import server_port

PREFIX = "qframe"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# mosquitto (Debian's, installed by `make test` where it can): persistence keeps the sessions,
# their subscriptions and what was queued for an offline client across restarts (saved on
# SIGTERM and every second).
MOSQUITTO_CONFIG = """listener %(port)d 127.0.0.1
%(tls)sallow_anonymous true
persistence true
persistence_location %(dir)s/
autosave_interval 1
max_queued_messages 0
set_tcp_nodelay true
%(user)s"""
# amqtt, the fallback (pip only): clients must give a user name (any), as amqtt queues QoS 1
# messages for an offline persistent session only when it is not anonymous; its session
# plugin, made to restore before the broker listens (tools/simulators/amqtt_sessions.py),
# keeps sessions and subscriptions across restarts. amqtt 0.12 is less reliable there (what it
# queued for an offline client can be missing after a restart) and hands a new client the
# retained messages of every subscription on the broker.
BROKER_CONFIG = """listeners:
  default:
    type: tcp
    bind: 127.0.0.1:%d
plugins:
  amqtt.plugins.authentication.AnonymousAuthPlugin:
    allow_anonymous: false
  tools.simulators.amqtt_sessions.SessionsFirst:
    connection: "sqlite+aiosqlite:///%s"
"""


def nodelay(client):
    """TCP_NODELAY on a paho client's socket (small packets go out at once)."""
    sock = client.socket()
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def mosquitto_path():
    """The mosquitto binary, or None."""
    found = shutil.which("mosquitto")
    if found is None and os.access("/usr/sbin/mosquitto", os.X_OK):
        found = "/usr/sbin/mosquitto"
    return found


class Broker(object):
    """A broker in a subprocess on 127.0.0.1:port (stop/start/restart keep the port and the
    persisted sessions): mosquitto where it is installed, else amqtt (`kind` forces one)."""

    def __init__(self, port=None, log=None, tls=None, kind=None):
        """tls: (certfile, keyfile) makes the listener TLS only."""
        self.port = port or server_port()
        self.log = log or (lambda source, text: None)
        self.proc = None
        self.restarts = 0
        self.kind = kind or ("mosquitto" if mosquitto_path() else "amqtt")
        self._dir = tempfile.mkdtemp(prefix="qframe-broker-")
        self.log_path = os.path.join(self._dir, "broker.log")   # the broker's own log
        if self.kind == "mosquitto":
            self._config = os.path.join(self._dir, "mosquitto.conf")
            config = MOSQUITTO_CONFIG % {
                "port": self.port, "dir": self._dir,
                "tls": "certfile %s\nkeyfile %s\n" % tls if tls else "",
                "user": "user root\n" if os.geteuid() == 0 else ""}   # root keeps its files
            self._argv = [mosquitto_path(), "-c", self._config]
        else:
            self._config = os.path.join(self._dir, "broker.yaml")
            config = BROKER_CONFIG % (self.port, os.path.join(self._dir, "sessions.db"))
            if tls:
                config = config.replace("    type: tcp\n", "    type: tcp\n    ssl: true\n"
                                        "    certfile: %s\n    keyfile: %s\n" % tls)
            self._argv = [os.path.join(os.path.dirname(sys.executable), "amqtt"), "-c",
                          self._config]
        with open(self._config, "w") as f:
            f.write(config)

    def start(self, timeout=15.0):
        with open(self.log_path, "ab") as log:
            env = dict(os.environ, PYTHONPATH=REPO)   # amqtt's session plugin's module
            # its own session: a Ctrl-C on make sim's terminal must not end the broker before
            # the run drains (stop() ends it)
            self.proc = subprocess.Popen(self._argv, cwd=REPO, env=env,
                                         stdout=subprocess.DEVNULL, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s (%s)" % (self.kind, self.proc.returncode,
                                                               self.log_path))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                self.log("broker", "listening on %d" % self.port)
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("%s did not listen on %d within %s s" % (self.kind, self.port,
                                                                  timeout))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self):
        """Stop for good: the broker and its folder (config, persistence, log) go."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def restart(self, down_s=0.0):
        self.stop()
        self.log("broker", "stopped")
        if down_s:
            time.sleep(down_s)
        self.restarts += 1
        return self.start()


class MqttHes(object):
    """The head end as an MQTT client (see the module docstring)."""

    def __init__(self, port, prefix=PREFIX, client_id="qframe-hes", log=None, ca=None,
                 signer="sim"):
        """ca: the broker's certificate (PEM path) to connect over TLS; signer: a
        hes_auth.HesSigner, "sim" (the simulated modules' keys) or None (unsigned)."""
        self.signer = HesSigner(SIM_MASTER) if signer == "sim" else signer
        self.port = port
        self.prefix = prefix
        self.log = log or (lambda source, text: None)
        self.received = []
        self.received_at = []           # time.monotonic() of each entry of received
        self.keys = []                  # (device, epoch, seq) of each entry of received
        self.duplicates = 0
        self.records = 0
        self.statuses = {}
        self.status_history = []
        self.replies = []
        self.reply_auth = {}            # "verified" / "unsigned" / "bad" -> replies
        self.events = []
        self.mac_kids = {}              # device -> the key id its records carry (data_kid)
        self.bad = []
        self.connects = 0
        self.subscribed = 0             # SUBACKs: the HES hears its topics from then on
        self.observers = []             # fn(parts, payload, duplicate) after each message
        self._seen = set()
        self._cond = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=False)
        self.client.username_pw_set("hes")
        if ca:
            self.client.tls_set(ca_certs=ca)
        self.client.reconnect_delay_set(0.1, 1.0)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self, timeout=10.0):
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        if not self.wait_for(lambda h: h.subscribed > 0, timeout):
            raise RuntimeError("the HES client did not connect to the broker and subscribe")
        return self

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        nodelay(client)
        client.subscribe([(self.prefix + "/+/status", 1), (self.prefix + "/+/up/#", 1)])
        with self._cond:
            self.connects += 1
            self._cond.notify_all()
        self.log("hes", "connected to the broker")

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties=None):
        with self._cond:
            self.subscribed += 1
            self._cond.notify_all()

    def _on_message(self, client, userdata, message):
        parts = message.topic.split("/")
        duplicate = False
        with self._cond:
            payload = bytes(message.payload)
            if len(parts) == 6 and parts[2:4] == ["up", "meter"] and self.signer is not None:
                payload = self.signer.open_record(parts[1], self.mac_kids.get(parts[1]),
                                                  parts[4], parts[5], payload)
            if payload is None:
                pass                        # a bad MAC: not the module's record (counted)
            elif len(parts) == 6 and parts[2:4] == ["up", "meter"]:
                self.records += 1
                key = (parts[1], parts[4], parts[5])
                if key in self._seen:
                    self.duplicates += 1
                    duplicate = True
                else:
                    self._seen.add(key)
                    self.received.append(payload)
                    self.received_at.append(time.monotonic())
                    self.keys.append(key)
            elif len(parts) == 3 and parts[2] == "status":
                status = self._json(message)
                if isinstance(status, dict) and status.get("data_kid"):
                    self.mac_kids[parts[1]] = status["data_kid"]   # its records' key
                self.statuses[parts[1]] = status
                self.status_history.append((parts[1], status))
            elif parts[2:] == ["up", "resp"]:
                if self.signer is not None:
                    reply, how = self.signer.open_reply(parts[1], bytes(message.payload))
                else:
                    reply, how = self._json(message), "unsigned"
                self.reply_auth[how] = self.reply_auth.get(how, 0) + 1
                if reply is not None:
                    self.replies.append(reply)
            elif parts[2:4] == ["up", "event"]:
                event = self._json(message) if self.signer is None else \
                    self.signer.open_event(parts[1], payload)
                if event is not None:               # None: a bad MAC or a replay (counted)
                    self.events.append(("/".join(parts[4:]), event))
            else:
                self.bad.append(message.topic)
            self._cond.notify_all()
        for fn in list(self.observers):
            fn(parts, bytes(message.payload), duplicate)

    def _json(self, message):
        try:
            return json.loads(message.payload.decode())
        except ValueError:
            return {"undecodable": message.payload.hex()}

    def wait_for(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def ordered(self, device):
        """The device's payloads in the module's order: by epoch (as first seen), then seq.
        Arrival order can differ: each record has its own topic and a broker orders per
        topic only (amqtt delivers what it queued for an offline HES after live messages)."""
        with self._cond:
            entries = [(k, p) for k, p in zip(self.keys, self.received) if k[0] == device]
        epochs = []
        for key, _payload in entries:
            if key[1] not in epochs:
                epochs.append(key[1])
        entries.sort(key=lambda e: (epochs.index(e[0][1]), int(e[0][2])))
        return [payload for _key, payload in entries]

    def topic(self, device, leaf):
        return "%s/%s/%s" % (self.prefix, device, leaf)

    def command(self, device, cmd, args=None, request_id=None, retain=False):
        body = json.dumps({"id": request_id, "cmd": cmd, "args": args})
        if self.signer is not None:
            body = self.signer.seal(device, body)
        return self.publish(self.topic(device, "down/cmd"), body, retain=retain)

    def send_data(self, device, data):
        return self.publish(self.topic(device, "down/meter"), data)

    def publish(self, topic, payload, qos=1, retain=False):
        """True when sent, or (QoS 1) queued while the HES reconnects: paho sends it then."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == paho.MQTT_ERR_SUCCESS or (qos > 0 and info.rc == paho.MQTT_ERR_NO_CONN)

    def reply(self, request_id, timeout):
        """The reply with request_id once it arrived within timeout, else None."""
        found = []

        def arrived(hes):
            found[:] = [r for r in hes.replies if r.get("id") == request_id]
            return bool(found)

        return found[0] if self.wait_for(arrived, timeout) else None


def watch_status(port, topic, timeout=5.0):
    """A fresh client's view of a retained topic: its payload (JSON) or None."""
    got = []
    done = threading.Event()

    def on_message(client, userdata, message):
        if message.topic == topic:      # amqtt also hands a new client others' retained ones
            got.append(json.loads(message.payload.decode()))
            done.set()

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, clean_session=True)
    client.username_pw_set("watcher")
    client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, 1)
    client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0] if got else None


class _Module(object):
    """What HesSim's observers get as `client`: a module as the HES sees it over MQTT."""

    def __init__(self, dev, port):
        self.addr = ("broker", port)
        self.key = (dev, None)


class MqttHesSim(object):
    """Broker + MqttHes behind HesSim's interface, so tools/simulators/system.py (make sim
    --uplink mqtt), its faults and the web dashboard (hes_dashboard.py) drive either:
    `stop()`/`start()` stop and start the broker (the HES client reconnects by itself),
    `drop_clients()` takes the module's client id over (the broker disconnects the module,
    which sends its will), `refuse` holds the broker down, `add_observer` feeds a Fleet,
    `send_command`/`wait_reply` reach any module by its device id. `close()` ends both."""

    def __init__(self, device, prefix=PREFIX, on_event=None, tls=None, port=None):
        """tls: (certfile, keyfile) for a TLS-only broker (the HES trusts its certificate)."""
        self.device = device
        self.host = "127.0.0.1"
        self.on_event = on_event or (lambda kind, detail: None)
        self.tls = tls
        self.broker = Broker(port, lambda source, text: self.on_event(source, text), tls)
        self.port = self.broker.port
        self.hes = None
        self.prefix = prefix
        self._refuse = False
        self._next_id = 0
        self._lock = threading.Lock()
        self._observers = []
        self._modules = {}              # dev -> _Module
        self._online = set()            # devs whose last status is "online"

    def start(self):
        self.broker.start()
        if self.hes is None:
            self.hes = MqttHes(self.port, self.prefix, ca=self.tls and self.tls[0])
            self.hes.observers.append(self._translate)
            self.hes.start()
        self._observe("listening", None, self.port)
        return self

    def stop(self):
        self.broker.stop()
        self._observe("stopped", None, None)

    # ------------------------------------------------------------------ observers (a Fleet)
    def add_observer(self, fn):
        """fn(kind, client, data) as HesSim calls it: each message becomes the frame the TCP
        protocol carries for it (status online: REGISTER, or HEARTBEAT when already online;
        up/meter: DATA; up/event/heartbeat: HEARTBEAT; up/event: EVENT; up/resp: RESPONSE),
        status offline: "disconnected". fn first hears who is online now."""
        with self._lock:
            self._observers.append(fn)
            online = [(self._modules[dev], self.hes.statuses.get(dev)) for dev in self._online]
        if self.broker.proc is not None:
            fn("listening", None, self.port)
        for module, status in online:
            fn("connected", module, None)
            fn("frame", module, (REGISTER, json.dumps(status).encode()))

    def _observe(self, kind, client, data):
        for fn in list(self._observers):
            fn(kind, client, data)

    def _translate(self, parts, payload, duplicate):
        if len(parts) < 3:
            return
        dev, leaf = parts[1], parts[2:]
        with self._lock:
            module = self._modules.setdefault(dev, _Module(dev, self.port))
        if leaf == ["status"]:
            try:
                state = json.loads(payload.decode()).get("state")
            except (ValueError, AttributeError):
                return
            with self._lock:
                was_online = dev in self._online
                (self._online.add if state == "online" else self._online.discard)(dev)
            if state == "online":
                self._observe("frame", module, (HEARTBEAT if was_online else REGISTER, payload))
            elif was_online:
                self._observe("disconnected", module, "offline (its will, or a clean stop)")
        elif leaf[:2] == ["up", "meter"] and len(leaf) == 4 and leaf[3].isdigit():
            if self.hes.mac_kids.get(dev):
                payload = payload[:-MAC_BYTES]          # its MAC (checked by the HES)
            self._observe("frame", module, (DATA, struct.pack(">I", int(leaf[3])) + payload))
        elif leaf == ["up", "resp"]:
            if self.hes.signer is not None:
                reply, how = self.hes.signer.open_reply(dev, payload, count=False)
            else:
                try:
                    reply, how = json.loads(payload.decode()), "unsigned"
                except (ValueError, UnicodeError):
                    return
            if isinstance(reply, dict):     # a bad MAC: not the module's, not shown
                self._observe("frame", module, (RESPONSE, json.dumps(dict(reply, auth=how))
                                                .encode()))
        elif leaf == ["up", "event", "heartbeat"]:
            try:
                figures = json.loads(payload.decode()).get("data") or {}
            except (ValueError, AttributeError):
                return
            self._observe("frame", module, (HEARTBEAT, json.dumps(figures).encode()))
        elif leaf[:2] == ["up", "event"]:
            self._observe("frame", module, (EVENT, payload))

    def close(self):
        if self.hes is not None:
            self.hes.stop()
        self.broker.close()

    @property
    def _listener(self):
        return self.broker.proc

    @property
    def refuse(self):
        return self._refuse

    @refuse.setter
    def refuse(self, value):
        if value and not self._refuse:
            self.broker.stop()
        elif not value and self._refuse:
            self.broker.start()
        self._refuse = value

    # what HesSim offers
    @property
    def received(self):
        return self.hes.received

    @property
    def received_at(self):
        return self.hes.received_at

    @property
    def signer(self):
        """The HES's hes_auth.HesSigner (what it signs and verifies with), or None."""
        return self.hes.signer if self.hes is not None else None

    @property
    def registrations(self):
        return [s for d, s in self.hes.status_history if d == self.device and
                s.get("state") == "online"]

    @property
    def stats(self):
        """As HesSim's: duplicates, connections ("online" statuses) and gaps (records of a
        device and epoch below its highest seq that have not arrived, as arrival order
        differs from the module's over MQTT)."""
        seqs = {}
        with self.hes._cond:
            for dev, epoch, seq in self.hes.keys:
                seqs.setdefault((dev, epoch), set()).add(int(seq))
        return {"duplicates": self.hes.duplicates, "connections": len(self.registrations),
                "gaps": sum(max(each) - len(each) for each in seqs.values())}

    def wait_for(self, predicate, timeout):
        return self.hes.wait_for(lambda h: predicate(self), timeout)

    def client_count(self):
        status = self.hes.statuses.get(self.device) or {}
        return 1 if status.get("state") == "online" else 0

    def command(self, name, args=None, timeout=5.0):
        self._next_id += 1
        request_id = "sim-%d" % self._next_id
        self.hes.command(self.device, name, args, request_id)
        return self.hes.reply(request_id, timeout)

    def send_command(self, name, args=None, dev=None):
        """A command to dev (None: every module online); its id (wait_reply awaits it)."""
        with self._lock:
            self._next_id += 1
            command_id = self._next_id
            devs = [dev] if dev is not None else sorted(self._online)
        for each in devs:
            self.hes.command(each, name, args, command_id)
        return command_id

    def wait_reply(self, command_id, timeout):
        """The reply to command_id (a dict) once it arrived within timeout, else None."""
        return self.hes.reply(command_id, timeout)

    def send_data(self, payload):
        return self.hes.send_data(self.device, payload)

    def drop_clients(self):
        """Connect with the module's client id: the broker drops the module's connection."""
        thief = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.device,
                            clean_session=False)
        thief.username_pw_set("module")
        try:
            thief.connect("127.0.0.1", self.port, keepalive=30)
            thief.loop(0.5)
            thief.disconnect()
        except OSError:
            pass
