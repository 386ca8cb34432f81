"""This deployment's HES protocol: `"protocol": "usr.hes_protocol"` in dev.json's TCP_SERVER.

Our HES (tools/simulators/hes.py) speaks qframe's framed, acknowledged protocol
(usr.qframe.codecs.hes.FramedProtocol: REGISTER, HEARTBEAT, DATA with sequence numbers the HES
acks, RESPONSE, EVENT): every meter payload stays in the module's flash queue until the HES
confirms it. This plug-in only adds the deployment's kind to the registration, which already
carries the device id, the queue's epoch and the meter's serial (`meter`, once the meter link
knows it; the link registers again when it learns it). For a HES that expects raw transparent
bytes use `"protocol": "raw"` instead (at-least-once, best effort); for another format,
subclass usr.qframe.codecs.hes.Protocol and return it from create().
"""
from usr.qframe.codecs import hes

KIND = "smart-meter-module"


class DeploymentProtocol(hes.FramedProtocol):
    name = "ack"

    def registration(self, info):
        report = dict(info)
        report["kind"] = KIND
        return hes.FramedProtocol.registration(self, report)


def create(config):
    return DeploymentProtocol(config)
