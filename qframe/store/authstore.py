"""The module's command keys and replay counter on flash, safe against power cuts.

    store = AuthStore("/usr/.auth")
    data = store.load_keys()          # {"dev", "keys": {kid: hex}, "current", "pending",
                                      #  "pins": [...]} or None (not provisioned)
    store.save_keys(data)
    ctr = store.load_counter()        # the last command counter admitted (0: none)
    store.save_counter(ctr)
    boot = store.next_boot()          # this start's number: the n of the events it signs

No firmware line in tools/firmware/api.json has the secure data area (`SecureData`: ASR
builds outside the three lines), so the keys live in a file of their own, outside dev.json,
never read by a command, never in a status report, never packaged or overwritten by an
update or a deploy (tools/device/deploy.py and tools/ota/package.py leave /usr/.auth alone).

Each value is kept in two slot files written alternately (`<name>.0`, `<name>.1`), each
`<generation> <value JSON> <SHA-256 of both, hex>`: a write that a power cut tears spoils only
the slot being written, and reading takes the valid slot with the higher generation: the
value before the write, or the new one. A counter saved before its command runs therefore
never goes back.
"""
import ubinascii
import uhashlib
import ujson
import uos


def _digest(text):
    return ubinascii.hexlify(uhashlib.sha256(text.encode()).digest()).decode()


def _exists(path):
    try:
        uos.stat(path)
        return True
    except OSError:
        return False


def makedirs(path):
    """Create path and its parents (uos has no makedirs)."""
    parts = [p for p in path.split("/") if p]
    current = ""
    for part in parts:
        current += "/" + part
        if not _exists(current):
            uos.mkdir(current)


class AuthStore(object):
    """See the module docstring."""

    def __init__(self, folder):
        self.folder = folder.rstrip("/")
        self.stats = {"slot_damaged": 0, "slot_writes": 0}
        self._generation = {}

    def load_keys(self):
        value = self._load("keys")
        return value if isinstance(value, dict) else None

    def save_keys(self, data):
        self._save("keys", data)

    def load_counter(self):
        value = self._load("counter")
        return value if isinstance(value, int) and value >= 0 else 0

    def save_counter(self, ctr):
        self._save("counter", ctr)

    def next_boot(self):
        """The number of this start (1, 2, ...), stored before it is returned."""
        value = self._load("boot")
        boot = (value if isinstance(value, int) and value > 0 else 0) + 1
        self._save("boot", boot)
        return boot

    # ------------------------------------------------------------------ slots
    def _path(self, name, slot):
        return "%s/%s.%d" % (self.folder, name, slot)

    def _read_slot(self, name, slot):
        """(generation, value) of a valid slot, else None."""
        try:
            with open(self._path(name, slot)) as f:
                text = f.read()
        except OSError:
            return None
        parts = text.strip().split(" ")
        if len(parts) < 3:
            if text:
                self.stats["slot_damaged"] += 1
            return None
        body = " ".join(parts[:-1])
        if _digest(body) != parts[-1]:
            self.stats["slot_damaged"] += 1
            return None
        try:
            return int(parts[0]), ujson.loads(" ".join(parts[1:-1]))
        except ValueError:
            self.stats["slot_damaged"] += 1
            return None

    def _newest(self, name):
        """(slot, generation, value) of the newest valid slot, or (None, 0, None)."""
        best = (None, 0, None)
        for slot in (0, 1):
            found = self._read_slot(name, slot)
            if found is not None and (best[0] is None or found[0] > best[1]):
                best = (slot, found[0], found[1])
        return best

    def _load(self, name):
        slot, generation, value = self._newest(name)
        self._generation[name] = (slot, generation)
        return value

    def _save(self, name, value):
        if name not in self._generation:
            self._load(name)
        slot, generation = self._generation[name]
        target = 0 if slot == 1 else 1
        generation += 1
        body = "%d %s" % (generation, ujson.dumps(value))
        makedirs(self.folder)
        with open(self._path(name, target), "w") as f:
            f.write(body + " " + _digest(body) + "\n")
        self._generation[name] = (target, generation)
        self.stats["slot_writes"] += 1
