"""The Auth extension's commands (qframe/builtins/auth.py documents them): auth.status,
auth.rotate and tls.pin. Imported when one of them runs, so their code is not resident."""
import ubinascii

from ..codecs.authkeys import key_problem, unwrap_key
from ..codecs.cmdauth import kid_problem
from ..core.lazy import forget

_AUTHKEYS = __name__[:-len("builtins.auth_commands")] + "codecs.authkeys"


def run_command(auth, name, args):
    """Run the command name for the Auth extension auth; then this module and the key code
    leave the heap again."""
    try:
        return _HANDLERS[name](auth, args)
    finally:
        forget(_AUTHKEYS)
        forget(__name__)


def _status(auth, args):
    gate = auth.gate
    return {"provisioned": gate.provisioned, "dev": gate.dev,
            "kids": sorted(gate.keyring.keys), "current": gate.keyring.current,
            "pending": gate.keyring.pending, "ctr": gate.last_ctr,
            "open_commands": list(gate.open_commands), "pins": len(auth._pins)}


def _rotate(auth, args):
    args = args if isinstance(args, dict) else {}
    kid, wrapped, nonce = args.get("kid"), args.get("key"), args.get("nonce")
    if kid_problem(kid):
        raise ValueError("args.kid: %s" % kid_problem(kid))
    if not isinstance(nonce, int) or isinstance(nonce, bool):
        raise ValueError("args.nonce: the integer the key was wrapped with")
    with auth._lock:
        keyring = auth.gate.keyring
        if kid in keyring.keys:
            raise ValueError("key id %r is in use" % kid)
        under = keyring.current or sorted(keyring.keys)[0]
        key = unwrap_key(keyring.keys[under], auth.gate.dev, kid, nonce, wrapped)
        problem = key_problem(_hex(key), "the new key")
        if problem:
            raise ValueError(problem)
        keyring.add_pending(kid, key)
        auth._save_keys()
    auth.log.info("key %s installed; %s stays valid until %s signs a command", kid, under,
                  kid)
    return {"pending": kid, "valid": sorted(keyring.keys)}


def _pin(auth, args):
    args = args if isinstance(args, dict) else {}
    from .tls import normalise_fingerprint
    with auth._lock:
        if isinstance(args.get("add"), str):
            pin = normalise_fingerprint(args["add"])
            if len(pin) != 64:
                raise ValueError("args.add: a SHA-256 fingerprint (64 hex digits)")
            if pin not in auth._pins:
                auth._pins.append(pin)
        elif isinstance(args.get("remove"), str):
            pin = normalise_fingerprint(args["remove"])
            if pin in auth._pins:
                auth._pins.remove(pin)
        else:
            raise ValueError("args: {\"add\": fingerprint} or {\"remove\": fingerprint}")
        auth._save_keys()
        auth.stats["pins"] = len(auth._pins)
    return {"pins": list(auth._pins)}


def _hex(data):
    return ubinascii.hexlify(data).decode()


_HANDLERS = {"auth.status": _status, "auth.rotate": _rotate, "tls.pin": _pin}
