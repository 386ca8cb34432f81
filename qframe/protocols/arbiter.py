"""Arbitration of the meter link's transparent channel between the module's own DLMS client
and the HES's transparent traffic. Sans I/O: times are ticks_ms values passed in.

    arb = LinkArbiter(hes_hold_ms=2000, max_waiting=4096)
    arb.hes_data(data, now) -> True: send it to the meter now; False: it waits (or overflowed)
    arb.meter_data(now)     -> "dlms" or "hes": who gets a transparent payload from the meter
    arb.try_acquire(now)    -> True: the DLMS client holds the link until release()
    arb.release(now)        -> the HES payloads that waited, in order (send them now)

While DLMS holds the link, meter replies go to it and HES payloads wait in order, at most
max_waiting octets (beyond that they are dropped and counted: `hes_overflow`). While the HES
has an exchange in progress (its last payload or the meter's last reply less than hes_hold_ms
ago), DLMS waits. Counters in `stats`.
"""
import utime


class LinkArbiter(object):

    def __init__(self, hes_hold_ms=2000, max_waiting=4096):
        self.hes_hold_ms = hes_hold_ms
        self.max_waiting = max_waiting
        self.owner = None               # None, "dlms" or "hes"
        self._hes_until = 0
        self._waiting = []
        self._waiting_bytes = 0
        self.stats = {"hes_passed": 0, "hes_waited": 0, "hes_overflow": 0, "to_dlms": 0,
                      "to_hes": 0, "dlms_acquired": 0, "dlms_deferred": 0}

    @property
    def waiting(self):
        return len(self._waiting)

    def _hes_active(self, now):
        return self.owner == "hes" and utime.ticks_diff(self._hes_until, now) > 0

    def hes_data(self, data, now):
        if self.owner == "dlms":
            if self._waiting_bytes + len(data) > self.max_waiting:
                self.stats["hes_overflow"] += 1
                return False
            self._waiting.append(data)
            self._waiting_bytes += len(data)
            self.stats["hes_waited"] += 1
            return False
        self.owner = "hes"
        self._hes_until = utime.ticks_add(now, self.hes_hold_ms)
        self.stats["hes_passed"] += 1
        return True

    def meter_data(self, now):
        if self.owner == "dlms":
            self.stats["to_dlms"] += 1
            return "dlms"
        if self.owner == "hes":
            self._hes_until = utime.ticks_add(now, self.hes_hold_ms)
        self.stats["to_hes"] += 1
        return "hes"

    def try_acquire(self, now):
        if self.owner == "dlms":
            return True
        if self._hes_active(now):
            self.stats["dlms_deferred"] += 1
            return False
        self.owner = "dlms"
        self.stats["dlms_acquired"] += 1
        return True

    def release(self, now):
        waiting = self._waiting
        self._waiting = []
        self._waiting_bytes = 0
        if waiting:
            self.owner = "hes"
            self._hes_until = utime.ticks_add(now, self.hes_hold_ms)
            self.stats["hes_passed"] += len(waiting)
        else:
            self.owner = None
        return waiting
