"""Command authentication for every uplink: the `Auth` extension (dev.json section AUTH).

An app adds it before its uplink (code/app_main.py); an uplink driver (TcpClient, MqttClient)
without it refuses every command. No command reaches the registry without passing `admit()` (qframe/protocols/auth.py's CommandGate: a
MAC under a key of the module, a counter above the last one, or an open read-only command).
The keys and the counter live in AUTH.keys_path (qframe/store/authstore.py), installed by
`make provision` (tools/device/provision.py), never in dev.json. Without keys the module
runs no command at all and logs so at start ("not provisioned").

Commands it adds (all signed; none may be opened by AUTH.open_commands but auth.status;
their code is in qframe/builtins/auth_commands.py, imported when one runs):
  auth.status               {"provisioned", "dev", "kids", "current", "pending", "ctr", ...}
  auth.rotate {"kid", "key", "nonce"}   a new key, wrapped (codecs/authkeys.wrap_key) under
                            the key that signed this command; valid at once, confirmed (and
                            the old keys retired) by the first command signed with it
  tls.pin {"add": fp} / {"remove": fp}  the server-certificate pins kept next to the keys,
                            used with TCP_SERVER.tls_fingerprint (the next certificate's pin
                            goes in before the renewal, the old one out after it)
"""
import ujson

from ..codecs import cmdauth
from ..core.config import Field
from ..core.ext import AppExtension
from ..core.lazy import forget
from ..protocols import auth as gate_mod
from ..protocols.commands import commands_of
from ..store.authstore import AuthStore
from ..threading import Lock
from .identity import device_id


def _open_commands_problem(names):
    from ..codecs.authkeys import open_commands_problem     # released by Auth.load
    return open_commands_problem(names)


def _read_only(text):
    try:
        name = ujson.loads(text).get("cmd")
    except (ValueError, AttributeError):
        return False
    return name in cmdauth.READ_ONLY


AUTHKEYS = __name__[:-len("builtins.auth")] + "codecs.authkeys"


class Auth(AppExtension):
    name = "auth"
    config_section = "AUTH"
    config_fields = {
        "keys_path": Field(str, "/usr/.auth"),
        "open_commands": Field(list, [], check=_open_commands_problem),
        "require_proof": Field(bool, True),     # TCP: records wait for a proven HES
        "sign_data": Field(bool, False),        # records and events carry MACs (heap: see docs)
    }

    def __init__(self, name=None, app=None):
        self.stats = {"save_errors": 0, "counter_unsaved": 0, "pins": 0, "records_signed": 0,
                      "events_signed": 0}
        self._boot = 0
        self._events = 0
        self._records = None         # cmdauth.RecordSigner of the key that signs records
        self.gate = None
        self.store = None
        self._pins = []
        self._lock = Lock()
        AppExtension.__init__(self, name, app)

    def load(self):
        if self.gate is not None:
            return
        cfg = self.config
        self.store = AuthStore(cfg.get("keys_path") or "/usr/.auth")
        data = self.store.load_keys() or {}
        keyring = gate_mod.Keyring.from_json(data)
        dev = data.get("dev") or device_id()
        self._pins = [p for p in data.get("pins") or [] if isinstance(p, str)]
        self.gate = gate_mod.CommandGate(dev, keyring, self.store.load_counter(),
                                         cfg.get("open_commands") or (), self.stats)
        commands = commands_of(self.app)
        for name in ("auth.status", "auth.rotate", "tls.pin"):
            commands.unregister(name)
            commands.register(name, self._command(name))
        if keyring.keys:
            self._boot = self._next_boot()
            self.log.info("command keys %s for %s; last counter %d", sorted(keyring.keys), dev,
                          self.gate.last_ctr)
        else:
            self.log.error("not provisioned: no command key in %s, so no HES command will run"
                           " (make provision PORT=...)", self.store.folder)
        forget(AUTHKEYS)          # the key checks' code: not needed again until a rotation

    def _next_boot(self):
        """This start's number (events' n), counted on flash; 0 if it cannot be stored."""
        try:
            return self.store.next_boot()
        except OSError as exc:
            self.stats["save_errors"] += 1
            self.log.error("cannot count this start: %s", exc)
            return 0

    def stop(self, timeout=2.0):
        return True

    def status(self):
        report = dict(self.stats)
        report["provisioned"] = self.gate is not None and self.gate.provisioned
        return report

    # ------------------------------------------------------------------ for the uplinks
    def admit(self, body):
        """The gate's Verdict on one command, its counter (and keys) on flash before it runs:
        a verdict whose state cannot be saved is refused."""
        if self.gate is None:
            self.load()
        with self._lock:
            verdict = self.gate.admit(body)
            if verdict.ok and (verdict.save_counter or verdict.save_keys):
                try:
                    if verdict.save_keys:
                        self._save_keys()
                    self.store.save_counter(self.gate.last_ctr)
                except OSError as exc:
                    self.stats["save_errors"] += 1
                    if verdict.save_keys or not _read_only(verdict.request):
                        self.log.error("cannot save the command counter: %s", exc)
                        verdict.ok = False
                        verdict.error = "refused: the module cannot store its counter (%s)" % exc
                    else:       # a full flash must not lock the HES out (nor its proof ping)
                        self.stats["counter_unsaved"] += 1
                        self.log.warning("cannot save the command counter (%s): read-only "
                                         "command run with the counter in RAM", exc)
        return verdict

    def seal(self, reply, verdict):
        return self.gate.seal(reply, verdict)

    # ------------------------------------------------------------------ what the module sends
    def data_kid(self):
        """The key id that signs records, events and replies' data (None: not provisioned)."""
        ring = self.gate.keyring if self.gate is not None else None
        if not ring or not ring.keys:
            return None
        return ring.current or sorted(ring.keys)[0]

    def record_mac(self, epoch, seq, payload):
        """The MAC a record carries (codecs/cmdauth.record_mac), by a signer kept per key."""
        kid = self.data_kid()
        key = self.gate.keyring.keys[kid]
        signer = self._records
        if signer is None or signer.key is not key:
            signer = self._records = cmdauth.RecordSigner(key, self.gate.dev, kid)
        self.stats["records_signed"] += 1
        return signer.mac(epoch, seq, payload)

    def seal_event(self, name, data):
        """The event {"event": name, "data": data} as signed JSON bytes, n = boot << 32 |
        its number since this start (a replayed or reordered one shows in n)."""
        kid = self.data_kid()
        with self._lock:
            self._events += 1
            n = (self._boot << 32) | self._events
        self.stats["events_signed"] += 1
        return cmdauth.seal_json(self.gate.keyring.keys[kid], "evt", self.gate.dev, kid, n,
                                 ujson.dumps({"event": name, "data": data}))

    def provisioned(self):
        return self.gate is not None and self.gate.provisioned

    def pins(self):
        """The server-certificate pins installed by tls.pin (a list of hex fingerprints)."""
        return list(self._pins)

    # ------------------------------------------------------------------ commands
    def _command(self, name):
        """A handler that imports auth_commands (rarely used: not resident) when it runs."""
        def run(args):
            from .auth_commands import run_command
            return run_command(self, name, args)
        return run

    def _save_keys(self):
        data = self.gate.keyring.to_json()
        data["dev"] = self.gate.dev
        data["pins"] = self._pins
        self.store.save_keys(data)
