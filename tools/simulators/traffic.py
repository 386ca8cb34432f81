"""The meter traffic of `make sim`: unique payloads from the simulated meter at a steady rate,
and HES downlink payloads, each one counted so the summary can find what was lost."""
import threading
import time


class Traffic(object):
    """Meter payloads at a steady rate (and HES downlink), each one unique and counted."""

    def __init__(self, system, rate, size, downlink_rate, stop_event, log):
        self.system = system
        self.rate = rate
        self.size = size
        self.downlink_rate = downlink_rate
        self.stop_event = stop_event
        self.log = log
        self.sent = []
        self.sent_at = []         # time.monotonic() of each payload in sent
        self.downlink_sent = []
        self.errors = 0
        self.threads = []

    def start(self):
        if self.system.meter is not None and self.rate > 0:
            self.threads.append(threading.Thread(target=self._uplink, daemon=True))
        if self.downlink_rate > 0:
            self.threads.append(threading.Thread(target=self._downlink, daemon=True))
        for thread in self.threads:
            thread.start()
        return self

    def payload(self, index, prefix=b"M"):
        text = prefix + b"%07d" % index
        return text + b"." * max(0, self.size - len(text))

    def _uplink(self):
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            payload = self.payload(len(self.sent))
            try:
                self.system.meter.send_transparent(payload)
                self.sent_at.append(time.monotonic())
                self.sent.append(payload)
            except OSError as exc:
                self.errors += 1
                self.log("meter", "send failed: %s" % exc)
            next_at += period
            self.stop_event.wait(max(0, next_at - time.monotonic()))

    def _downlink(self):
        period = 1.0 / self.downlink_rate
        while not self.stop_event.wait(period):
            payload = self.payload(len(self.downlink_sent), b"D")
            if self.system.hes.send_data(payload):
                self.downlink_sent.append(payload)

    def join(self):
        for thread in self.threads:
            thread.join(5)
