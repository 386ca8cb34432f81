"""Module parameters the meter asks for over the meter link (0x2200).

  8002 module state   GET: one octet (below)                       SET: refused (ACK 0C)
  8003 CSQ            GET: one octet from net.csqQueryPoll(), 0..31 or 99 (unknown);
                      a failed query answers a GET error            SET: refused (ACK 0C)
  8005 meter serial   GET: the serial's ASCII octets                SET: stores it
  8007 device name    GET: the name's ASCII octets                  SET: stores it

Module state, from the bus: 0 starting (nothing heard yet), 1 network down, 2 network up
(no HES link), 3 connected to the HES.

Serial and name: the meter owns its identity, so a value the meter SETs wins; it is kept in
RAM and written to METER.store (a small JSON file on flash, "" to keep RAM only) so it is
known again after a module restart before the meter repeats it. Until then METER.serial and
METER.device_name from dev.json are used; an empty value answers a GET error. A SET VALUE is
typed (RID, A-XDR octet-string 09 or visible-string 0A) or, failing that, plain printable
ASCII; anything else, or longer than MAX_TEXT octets, is refused with ACK 0C.
A SET of any other module parameter is refused by the resolver (ACK 0C).
"""
import ujson

from usr.qframe import AppExtension, Field
from usr.qframe.codecs import meter
from usr.qframe.logging import getLogger

_log = getLogger("params")

STATE_STARTING = 0
STATE_NETWORK_DOWN = 1
STATE_NETWORK_UP = 2
STATE_CONNECTED = 3
MAX_TEXT = 64
_STATE_TOPICS = {"network.down": STATE_NETWORK_DOWN, "network.up": STATE_NETWORK_UP,
                 "tcp.connected": STATE_CONNECTED, "tcp.disconnected": STATE_NETWORK_UP,
                 "mqtt.connected": STATE_CONNECTED, "mqtt.disconnected": STATE_NETWORK_UP}
_TEXT_KEYS = {meter.PID_METER_SERIAL: "serial", meter.PID_DEVICE_NAME: "device_name"}


class ModuleParams(AppExtension):
    """Answers the meter's GET/SET of 8002/8003/8005/8007 through `app.<link>.resolver`."""

    name = "params"
    config_section = "METER"
    config_fields = {
        "serial": Field(str, ""),
        "device_name": Field(str, ""),
        "store": Field(str, "/usr/meter_ids.json"),
    }

    def __init__(self, name=None, app=None, link="uart"):
        self.link = link
        self.state = STATE_STARTING
        self.values = {}
        self.stats = {"gets": 0, "sets": 0, "set_refused": 0, "csq_errors": 0,
                      "store_errors": 0}
        AppExtension.__init__(self, name, app)

    def load(self):
        self.values = {"serial": self.config["serial"],
                       "device_name": self.config["device_name"]}
        self._restore()
        self._announce()
        for topic in _STATE_TOPICS:
            self.subscribe(topic, self._on_state)
        register = getattr(self.app, self.link).resolver.register
        get = meter.CMD_GET
        register(meter.PROTO_PARAMETERS, cmd=get, pid=meter.PID_MODULE_STATE)(self.get_state)
        register(meter.PROTO_PARAMETERS, cmd=get, pid=meter.PID_CSQ)(self.get_csq)
        for pid in (meter.PID_METER_SERIAL, meter.PID_DEVICE_NAME):
            register(meter.PROTO_PARAMETERS, cmd=get, pid=pid)(self.get_text)
            register(meter.PROTO_PARAMETERS, cmd=meter.CMD_SET, pid=pid)(self.set_text)

    def stop(self, timeout=2.0):
        self.unsubscribe_all()
        return True

    def status(self):
        report = dict(self.stats)
        report["state"] = self.state
        return report

    def _on_state(self, topic, data):
        self.state = _STATE_TOPICS[topic]

    # -- handlers (run on the app's worker pool) -------------------------------------------

    def get_state(self, frame):
        self.stats["gets"] += 1
        return meter.get_response(meter.PID_MODULE_STATE, bytes((self.state,)))

    def get_csq(self, frame):
        self.stats["gets"] += 1
        import net
        try:
            csq = net.csqQueryPoll()
        except Exception as exc:
            _log.exception("csqQueryPoll failed", exc)
            csq = -1
        if not (0 <= csq <= 31 or csq == 99):
            self.stats["csq_errors"] += 1
            _log.warning("CSQ query returned %r: answering a GET error", csq)
            return meter.get_error(meter.PID_CSQ)
        return meter.get_response(meter.PID_CSQ, bytes((csq,)))

    def get_text(self, frame):
        self.stats["gets"] += 1
        pid = meter.parse_get_request(frame.payload)
        text = self.values.get(_TEXT_KEYS[pid]) or ""
        if not text:
            _log.warning("GET 0x%04x: no %s known yet", pid, _TEXT_KEYS[pid])
            return meter.get_error(pid)
        return meter.get_response(pid, text.encode())

    def set_text(self, frame):
        self.stats["sets"] += 1
        pid, value = meter.parse_set_request(frame.payload)
        text = text_value(value)
        if text is None:
            self.stats["set_refused"] += 1
            _log.warning("SET 0x%04x refused: value %r is not a string of 1..%d octets",
                         pid, value, MAX_TEXT)
            return meter.set_response(pid, meter.ACK_FAILURE)
        key = _TEXT_KEYS[pid]
        if self.values.get(key) != text:
            self.values[key] = text
            _log.info("meter set %s to %r", key, text)
            self._save()
            self._announce()
        return meter.set_response(pid, meter.ACK_SUCCESS)

    def _announce(self):
        """Retain what is known of the meter's identity on the bus (`meter.serial`,
        `meter.device_name`), so other extensions read it without importing this one."""
        bus = self.app.bus
        for key in ("serial", "device_name"):
            if self.values.get(key) and bus.retained("meter." + key) != self.values[key]:
                bus.publish("meter." + key, self.values[key], retain=True)

    # -- persistence -----------------------------------------------------------------------

    def _restore(self):
        path = self.config["store"]
        if not path:
            return
        try:
            with open(path) as f:
                saved = ujson.load(f)
        except OSError:
            return                      # nothing stored yet
        except ValueError as exc:
            self.stats["store_errors"] += 1
            _log.exception("%s is not valid JSON; ignored", exc, path)
            return
        for key in ("serial", "device_name"):
            if isinstance(saved, dict) and isinstance(saved.get(key), str) and saved[key]:
                self.values[key] = saved[key]

    def _save(self):
        path = self.config["store"]
        if not path:
            return
        try:
            with open(path, "w") as f:
                f.write(ujson.dumps(self.values))
        except OSError as exc:
            self.stats["store_errors"] += 1
            _log.exception("cannot store meter identity in %s", exc, path)


def text_value(value):
    """The text of a SET VALUE (typed 09/0A string, or plain printable ASCII), or None."""
    try:
        rid, tag, data = meter.parse_typed_value(value)
        if tag == meter.TAG_VISIBLE_STRING:
            text = _ascii(data.encode())
        elif tag == meter.TAG_OCTET_STRING:
            text = _ascii(data)
        else:
            text = None
    except (ValueError, IndexError):
        text = _ascii(value)
    if text is None or not 0 < len(text) <= MAX_TEXT:
        return None
    return text


def _ascii(data):
    for octet in data:
        if not 0x20 <= octet <= 0x7E:
            return None
    return bytes(data).decode()
