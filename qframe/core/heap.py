"""The app's heap (`app.heap`): free bytes, their low-water mark, MemoryError as a fault.

An extension that catches MemoryError calls `delay = self.out_of_memory(exc)` (AppExtension):
the first error of a spell is logged once, every one is counted (the extension's and the app's
`memory_errors`), garbage is collected, and the returned delay (s) to back off doubles from
APP.memory_backoff_s up to 32 times that. `self.memory_recovered()` says it works again (logged
once); the spell ends when no MemoryError follows within that longest backoff (one that does is
a counted `relapse` of the same spell). A spell older than APP.memory_exhausted_s makes the heap
`exhausted()`: "heap.exhausted" is published
on the bus once per spell (an uplink forwards it) and the watchdog stops feeding, so the module
restarts. `status()` reports free heap and the lowest free heap seen (sampled on every status
and every MemoryError).

APP.heap_trace (off by default) logs `heap: <phase>: alloc A free F low L` after a collection
at each phase: imports (when the Application was made), load (all extensions loaded), steady
(every "health" report), reconnect (every tcp.connected); `make bench` reads these lines.
"""
import gc
import utime

from ..logging import getLogger

_log = getLogger("heap")
_mem_free = getattr(gc, "mem_free", None)     # None on CPython (host tests): no figures
_mem_alloc = getattr(gc, "mem_alloc", None)


class HeapWatch(object):
    def __init__(self, bus, backoff_s=0.5, exhausted_s=300.0):
        self.bus = bus
        self.backoff_s = backoff_s
        self.exhausted_s = exhausted_s
        self.stats = {"memory_errors": 0, "relapses": 0, "exhausted_reports": 0}
        self.low_water = None
        # extension name -> [since ms, next delay s, reported upstream, recovered at ms or None]
        self._spells = {}
        self.phases = {}    # phase -> bytes allocated after a collection (snapshot())
        self._tracing = False

    def snapshot(self, phase, log=False):
        """Collect garbage and keep (and with log, log) the heap in use at this phase."""
        if _mem_alloc is None:
            return
        gc.collect()
        alloc = self.phases[phase] = _mem_alloc()
        free = self.free()
        if log:
            _quiet_log(_log.info, "%s: alloc %d free %d low %d", phase, alloc, free,
                       self.low_water)

    def start_trace(self):
        """APP.heap_trace: log the import figure, this one (load), then every health report
        (steady) and every connection (reconnect)."""
        if self._tracing:
            return
        self._tracing = True
        imports = self.phases.get("imports")
        if imports is not None:
            _quiet_log(_log.info, "imports: alloc %d", imports)
        self.snapshot("load", True)
        self.bus.subscribe("health", self._on_phase)
        self.bus.subscribe("tcp.connected", self._on_phase)

    def _on_phase(self, topic, data):
        self.snapshot("steady" if topic == "health" else "reconnect", True)

    def free(self):
        """gc.mem_free() now, also kept as the low-water mark when it is the lowest yet (None
        where the interpreter cannot tell)."""
        if _mem_free is None:
            return None
        free = _mem_free()
        if self.low_water is None or free < self.low_water:
            self.low_water = free
        return free

    def out_of_memory(self, name, exc=None):
        """Record a MemoryError in extension `name`; the seconds it should back off."""
        self.stats["memory_errors"] += 1
        gc.collect()
        now = utime.ticks_ms()
        spell = self._spell(name, now)
        if spell is None:
            spell = self._spells[name] = [now, self.backoff_s, False, None]
            _quiet_log(_log.error, "%s: out of memory (%s); collecting garbage, backing off",
                       name, exc)
        elif spell[3] is not None:          # relapse: the same spell goes on, unlogged
            spell[3] = None
            self.stats["relapses"] += 1
        delay = spell[1]
        spell[1] = min(delay * 2, self._cap_s())
        self.free()
        self._check(name, spell, now)
        return delay

    def _check(self, name, spell, now):
        """True when the spell is older than exhausted_s; reported upstream once."""
        if utime.ticks_diff(now, spell[0]) < self.exhausted_s * 1000:
            return False
        if not spell[2]:
            spell[2] = True
            self.stats["exhausted_reports"] += 1
            free = self.free()
            _quiet_log(_log.critical, "%s: heap exhausted for %d s (free %s)", name,
                       self.exhausted_s, free)
            self.bus.publish("heap.exhausted", {"extension": name, "free": free,
                                                "low_water": self.low_water})
        return True

    def recovered(self, name):
        """Extension `name` works again. Its spell ends once it stays well for the longest
        backoff (32 x APP.memory_backoff_s): a MemoryError before that continues it (a relapse,
        not logged again, the backoff keeps growing)."""
        spell = self._spells.get(name)
        if spell is not None and spell[3] is None:
            spell[3] = utime.ticks_ms()
            _quiet_log(_log.info, "%s: memory available again", name)

    def _cap_s(self):
        return self.backoff_s * 32

    def _spell(self, name, now):
        """name's spell, or None (a spell recovered for longer than the cap is over)."""
        spell = self._spells.get(name)
        if spell is not None and spell[3] is not None and \
                utime.ticks_diff(now, spell[3]) >= self._cap_s() * 1000:
            del self._spells[name]
            return None
        return spell

    def exhausted(self):
        """The name of an extension out of memory now, in a spell (relapses included) older
        than exhausted_s (reported upstream once, if it was not yet), or None. The watchdog
        asks every feed."""
        now = utime.ticks_ms()
        for name in sorted(self._spells):
            spell = self._spell(name, now)
            if spell is not None and spell[3] is None and self._check(name, spell, now):
                return name
        return None

    def status(self):
        free = self.free()
        report = dict(self.stats)
        report["free"] = free
        report["alloc"] = _mem_alloc() if _mem_alloc is not None else None
        report["low_water"] = self.low_water
        report["short_of_memory"] = sorted(name for name in self._spells
                                           if self._spells[name][3] is None)
        return report


def _quiet_log(method, fmt, *args):
    """Log without letting a second MemoryError (formatting the line) escape."""
    try:
        method(fmt, *args)
    except MemoryError:
        pass
