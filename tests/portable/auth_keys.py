"""Portable tests' command keys: provision an in-process app's AUTH folder and sign commands
as the HES would (qframe's own codec; the simulators check it against CPython's hmac)."""
import ujson
import uos

from usr.qframe.codecs import authkeys
from usr.qframe.store.authstore import AuthStore

KEY = bytes(range(7, 39))
KID = "k1"


def provision(folder, dev, key=KEY):
    """folder (AUTH.keys_path) holds key for dev, counter 0; its AUTH config section."""
    for name in ("keys.0", "keys.1", "counter.0", "counter.1"):
        try:
            uos.remove(folder + "/" + name)
        except OSError:
            pass
    AuthStore(folder).save_keys({"dev": dev, "keys": {KID: _hex(key)}, "current": KID})
    return {"keys_path": folder, "sign_data": True}


def _hex(data):
    import ubinascii
    return ubinascii.hexlify(data).decode()


class Signer(object):
    """sign(body) -> the envelope bytes, counters 1, 2, ... (or as given)."""

    def __init__(self, dev, key=KEY):
        self.dev = dev
        self.key = key
        self.ctr = 0

    def sign(self, body, ctr=None):
        if ctr is None:
            self.ctr += 1
            ctr = self.ctr
        text = body.decode() if isinstance(body, bytes) else body
        return authkeys.seal_command(self.key, self.dev, KID, ctr, text)

    def open(self, payload):
        """The reply dict inside a signed reply (AssertionError if its MAC is bad)."""
        opened = authkeys.open_json(self.key, "res", self.dev, payload)
        assert opened is not None, payload
        return ujson.loads(opened[2])
