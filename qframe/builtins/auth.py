"""Command authentication for every uplink: the `Auth` extension (dev.json section AUTH).

An app adds it before its uplink (code/app_main.py); an uplink driver (TcpClient, MqttClient)
without it refuses every command. No command reaches the registry without passing `admit()` (qframe/protocols/auth.py's CommandGate: a
MAC under a key of the module, a counter above the last one, or an open read-only command).
The keys and the counter live in AUTH.keys_path (qframe/store/authstore.py), installed by
`make provision` (tools/device/provision.py), never in dev.json. Without keys the module
runs no command at all and logs so at start ("not provisioned").

Commands it adds (all signed; none may be opened by AUTH.open_commands but auth.status):
  auth.status               {"provisioned", "dev", "kids", "current", "pending", "ctr", ...}
  auth.rotate {"kid", "key", "nonce"}   a new key, wrapped (codecs/cmdauth.wrap_key) under
                            the key that signed this command; valid at once, confirmed (and
                            the old keys retired) by the first command signed with it
  tls.pin {"add": fp} / {"remove": fp}  the server-certificate pins kept next to the keys,
                            used with TCP_SERVER.tls_fingerprint (the next certificate's pin
                            goes in before the renewal, the old one out after it)
"""
from ..codecs import cmdauth
from ..core.config import Field
from ..core.ext import AppExtension
from ..protocols import auth as gate_mod
from ..protocols.commands import commands_of
from ..store.authstore import AuthStore
from ..threading import Lock
from .identity import device_id


class Auth(AppExtension):
    name = "auth"
    config_section = "AUTH"
    config_fields = {
        "keys_path": Field(str, "/usr/.auth"),
        "open_commands": Field(list, [], check=gate_mod.open_commands_problem),
        "require_proof": Field(bool, True),     # TCP: records wait for a proven HES
    }

    def __init__(self, name=None, app=None):
        self.stats = {"save_errors": 0, "pins": 0}
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
        for name, handler in (("auth.status", self._cmd_status),
                              ("auth.rotate", self._cmd_rotate), ("tls.pin", self._cmd_pin)):
            commands.unregister(name)
            commands.register(name, handler)
        if keyring.keys:
            self.log.info("command keys %s for %s; last counter %d", sorted(keyring.keys), dev,
                          self.gate.last_ctr)
        else:
            self.log.error("not provisioned: no command key in %s, so no HES command will run"
                           " (make provision PORT=...)", self.store.folder)

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
                    self.log.error("cannot save the command counter: %s", exc)
                    verdict.ok = False
                    verdict.error = "refused: the module cannot store its counter (%s)" % exc
        return verdict

    def seal(self, reply, verdict):
        return self.gate.seal(reply, verdict)

    def provisioned(self):
        return self.gate is not None and self.gate.provisioned

    def pins(self):
        """The server-certificate pins installed by tls.pin (a list of hex fingerprints)."""
        return list(self._pins)

    # ------------------------------------------------------------------ commands
    def _save_keys(self):
        data = self.gate.keyring.to_json()
        data["dev"] = self.gate.dev
        data["pins"] = self._pins
        self.store.save_keys(data)

    def _cmd_status(self, args):
        gate = self.gate
        return {"provisioned": gate.provisioned, "dev": gate.dev,
                "kids": sorted(gate.keyring.keys), "current": gate.keyring.current,
                "pending": gate.keyring.pending, "ctr": gate.last_ctr,
                "open_commands": list(gate.open_commands), "pins": len(self._pins)}

    def _cmd_rotate(self, args):
        args = args if isinstance(args, dict) else {}
        kid, wrapped, nonce = args.get("kid"), args.get("key"), args.get("nonce")
        if not isinstance(kid, str) or not kid or len(kid) > cmdauth.MAX_KID_CHARS:
            raise ValueError("args.kid: the new key's id (1..%d chars)" % cmdauth.MAX_KID_CHARS)
        if not isinstance(nonce, int) or isinstance(nonce, bool):
            raise ValueError("args.nonce: the integer the key was wrapped with")
        with self._lock:
            keyring = self.gate.keyring
            if kid in keyring.keys:
                raise ValueError("key id %r is in use" % kid)
            under = keyring.current or sorted(keyring.keys)[0]
            key = cmdauth.unwrap_key(keyring.keys[under], self.gate.dev, kid, nonce, wrapped)
            problem = cmdauth.key_problem(_hex(key), "the new key")
            if problem:
                raise ValueError(problem)
            keyring.add_pending(kid, key)
            self._save_keys()
        self.log.info("key %s installed; %s stays valid until %s signs a command", kid, under,
                      kid)
        return {"pending": kid, "valid": sorted(keyring.keys)}

    def _cmd_pin(self, args):
        args = args if isinstance(args, dict) else {}
        from .tls import normalise_fingerprint
        with self._lock:
            if isinstance(args.get("add"), str):
                pin = normalise_fingerprint(args["add"])
                if len(pin) != 64:
                    raise ValueError("args.add: a SHA-256 fingerprint (64 hex digits)")
                if pin not in self._pins:
                    self._pins.append(pin)
            elif isinstance(args.get("remove"), str):
                pin = normalise_fingerprint(args["remove"])
                if pin in self._pins:
                    self._pins.remove(pin)
            else:
                raise ValueError("args: {\"add\": fingerprint} or {\"remove\": fingerprint}")
            self._save_keys()
            self.stats["pins"] = len(self._pins)
        return {"pins": list(self._pins)}


def _hex(data):
    import ubinascii
    return ubinascii.hexlify(data).decode()
