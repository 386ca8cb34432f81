"""This deployment's HES protocol: `"protocol": "usr.hes_protocol"` in dev.json's TCP_SERVER.

Our HES (tools/simulators/hes.py) speaks qframe's framed, acknowledged protocol
(qframe/codecs/hes.py: REGISTER, HEARTBEAT, DATA with sequence numbers the HES acks, RESPONSE,
EVENT): every meter payload stays in the module's flash queue until the HES confirms it. This
module only adds the deployment's identity to the registration. For a HES that expects raw
transparent bytes use `"protocol": "raw"` instead (at-least-once, best effort); for another
format, return an object with the same methods from create().
"""
from usr.qframe.codecs import hes as hesproto

KIND = "smart-meter-module"


class HesProtocol(hesproto.FramedProtocol):
    name = "ack"

    def registration(self, info):
        report = dict(info)
        report["kind"] = KIND
        report["meter"] = _meter_serial()
        return hesproto.FramedProtocol.registration(self, report)


def _meter_serial():
    """The meter's serial number as the meter link retained it on the bus, else ""."""
    from usr.qframe import CurrentApp
    try:
        return CurrentApp().bus.retained("meter.serial", "") or ""
    except RuntimeError:                # no app (the codec used alone)
        return ""


def create(config):
    return HesProtocol(config)
