"""Which HES commands may run: the command gate, as a state machine without I/O.

    gate = CommandGate(dev, keyring, last_ctr, open_commands=("ping",), stats=stats)
    verdict = gate.admit(body)            # a command as it arrived (bytes)
    if verdict.ok:
        if verdict.save_counter:          # persist gate.last_ctr BEFORE running the command
            store.save_counter(gate.last_ctr)
        if verdict.save_keys:             # the keyring changed (a rotation was confirmed)
            store.save_keys(gate.keyring.to_json())
        reply = registry.execute(verdict.request)
        reply = gate.seal(reply, verdict) # a signed command gets a signed reply (bytes)
    else:
        reply = registry.refuse(verdict.request, verdict.error)

A command is admitted when it is a valid envelope (qframe/codecs/cmdauth.py) under a key of
the keyring, for this module's identity, with a counter above the last one admitted; or,
unsigned, when its name is in `open_commands` (config AUTH.open_commands: names from
authkeys.READ_ONLY only; empty by default). Everything else is refused, counted per reason
(`refused_<reason>`) and logged: unsigned, malformed, unknown_key, bad_mac, replay (counter
not above the last), not_provisioned (no key at all: the module refuses every signed
command until a key is installed, and says so).

The counter is the replay guard: persisting it before the command runs means a power cut can
lose a command but never open a window to run one twice (a retained MQTT command, a QoS 1
redelivery, a recorded and replayed TCP frame are all refused as replays).

Key rotation: `auth.rotate` (an authenticated command; the driver's handler calls
`keyring.add_pending`) installs a new key next to the old one; the first command signed with
the new key confirms it and retires the others (`save_keys`). Until then both are valid.
"""
import ujson

from ..codecs import cmdauth
from ..logging import getLogger

_log = getLogger("auth")

REASONS = ("unsigned", "malformed", "unknown_key", "bad_mac", "replay", "not_provisioned")


class Keyring(object):
    """The module's command keys: {kid: key bytes}, the `current` kid and a `pending` one
    (rotated in, not confirmed yet)."""

    def __init__(self, keys=None, current=None, pending=None):
        self.keys = keys or {}
        self.current = current
        self.pending = pending

    @classmethod
    def from_json(cls, data):
        """A Keyring from the store's dict ({"keys": {kid: hex}, "current", "pending"});
        keys that must not be used (authkeys.key_problem) are left out and logged."""
        from ..codecs.authkeys import parse_keyring       # start only: released after load
        keys, current, pending, problems = parse_keyring(data)
        for problem in problems:
            _log.error("%s: not used", problem)
        return cls(keys, current, pending)

    def to_json(self):
        keys = {}
        for kid in self.keys:
            keys[kid] = _hexlify(self.keys[kid])
        return {"keys": keys, "current": self.current, "pending": self.pending}

    def add_pending(self, kid, key):
        """A rotated-in key: valid from now, confirmed by its first use."""
        self.keys[kid] = bytes(key)
        self.pending = kid

    def confirm(self, kid):
        """kid signed a command: it becomes current and the others are retired."""
        self.keys = {kid: self.keys[kid]}
        self.current = kid
        self.pending = None


def _unhex(text):
    import ubinascii
    return ubinascii.unhexlify(text)


def _hexlify(data):
    import ubinascii
    return ubinascii.hexlify(data).decode()


class Verdict(object):
    """What admit() decided: ok, request (the command text to run, or to refuse with error),
    kid/ctr/key (None: unsigned), reason (refused: one of REASONS), save_counter, save_keys."""

    def __init__(self, ok, request, error=None, reason=None, kid=None, ctr=None):
        self.ok = ok
        self.request = request
        self.error = error
        self.reason = reason
        self.kid = kid
        self.ctr = ctr
        self.key = None             # the key that verified it (signs the reply)
        self.save_counter = False
        self.save_keys = False

    @property
    def signed(self):
        return self.kid is not None


class CommandGate(object):
    """See the module docstring."""

    def __init__(self, dev, keyring, last_ctr=0, open_commands=(), stats=None):
        self.dev = dev
        self.keyring = keyring
        self.last_ctr = last_ctr
        self.open_commands = tuple(open_commands)
        self.stats = {} if stats is None else stats
        for key in ("admitted", "admitted_unsigned", "replies_sealed", "keys_confirmed"):
            self.stats.setdefault(key, 0)
        for reason in REASONS:
            self.stats.setdefault("refused_" + reason, 0)

    @property
    def provisioned(self):
        return bool(self.keyring.keys)

    def admit(self, body):
        """The Verdict on one command body (bytes or str as it arrived)."""
        try:
            obj = ujson.loads(body)
        except Exception:
            obj = None          # the registry's own decode explains what is wrong
        try:
            envelope = cmdauth.decode(obj)
        except cmdauth.EnvelopeError as exc:
            return self._refuse(body, "malformed", "malformed envelope: %s" % exc)
        if envelope is None:
            return self._unsigned(body, obj)
        return self._signed(envelope)

    def seal(self, reply, verdict):
        """reply (the registry's dict) as it goes out: signed (bytes, cmdauth.seal_json under
        label "res", bound to the command's counter) when the command was signed (its key may
        have been retired by then: the reply is signed with it anyway), else the dict."""
        if not verdict.signed:
            return reply
        try:
            text = ujson.dumps(reply)
        except Exception as exc:            # e.g. a result that is not JSON-serialisable
            text = ujson.dumps({"id": reply.get("id"), "cmd": reply.get("cmd"), "ok": False,
                                "error": "reply not encodable (%s: %s)" % (
                                    type(exc).__name__, exc)})
        self.stats["replies_sealed"] += 1
        return cmdauth.seal_json(verdict.key, "res", self.dev, verdict.kid, verdict.ctr, text)

    # ------------------------------------------------------------------ internals
    def _unsigned(self, body, obj):
        name = obj.get("cmd") if isinstance(obj, dict) else None
        if name is not None and name in self.open_commands:
            self.stats["admitted_unsigned"] += 1
            return Verdict(True, body)
        if not self.provisioned:
            return self._refuse(body, "not_provisioned", "refused: no command key installed"
                                " (make provision): this module runs no HES command yet")
        return self._refuse(body, "unsigned", "refused: not signed (every command needs a MAC"
                            " except AUTH.open_commands)")

    def _signed(self, envelope):
        request = envelope.text
        if not self.provisioned:
            return self._refuse(request, "not_provisioned", "refused: no command key installed"
                                " (make provision)")
        key = self.keyring.keys.get(envelope.kid)
        if key is None:
            return self._refuse(request, "unknown_key", "refused: unknown key id %r" %
                                envelope.kid)
        if not cmdauth.verify_command(envelope, key, self.dev):
            return self._refuse(request, "bad_mac", "refused: bad MAC")
        if envelope.ctr <= self.last_ctr:
            return self._refuse(request, "replay", "refused: counter %d is not above %d" % (
                envelope.ctr, self.last_ctr))
        self.last_ctr = envelope.ctr
        self.stats["admitted"] += 1
        verdict = Verdict(True, request, kid=envelope.kid, ctr=envelope.ctr)
        verdict.key = key
        verdict.save_counter = True
        if envelope.kid == self.keyring.pending:
            self.keyring.confirm(envelope.kid)
            self.stats["keys_confirmed"] += 1
            verdict.save_keys = True
            _log.info("key %s confirmed; older keys retired", envelope.kid)
        return verdict

    def _refuse(self, request, reason, error):
        self.stats["refused_" + reason] += 1
        _log.warning("command %s", error)
        return Verdict(False, request, error, reason)
