"""The gateway's extensions and meter-frame handlers (/usr/gateway.py, `usr.gateway`).

Meter -> HES: every transparent frame (0x2100) the meter sends is queued for the HES.
HES -> meter: every payload the HES sends is written to the meter as a transparent frame.
The meter may also ask the module for its signal quality (GET of PID 0x8003).
"""
import net
from usr.qframe import CurrentApp, TcpClient, Uart
from usr.qframe.codecs import meter
from usr.qframe.logging import getLogger

log = getLogger("gateway")


class HesLink(TcpClient):
    """The HES link; what the HES sends goes to the meter."""

    def recv_callback(self, data):
        if not CurrentApp().uart.send_transparent(data):
            log.warning("the meter link is down: %d octets from the HES not delivered",
                        len(data))


uart = Uart("uart")
client = HesLink("client")


@uart.resolver.register(meter.PROTO_TRANSPARENT)
def meter_to_hes(frame):
    """A transparent frame from the meter: into the HES link's flash queue."""
    if not CurrentApp().client.send(frame.payload):
        log.error("the uplink queue refused %d octets", len(frame.payload))


@uart.resolver.register(meter.PROTO_PARAMETERS, cmd=meter.CMD_GET, pid=meter.PID_CSQ)
def signal_quality(frame):
    """GET CSQ: answered with the module's signal quality (0..31, 99: unknown)."""
    return meter.get_response(meter.PID_CSQ, bytes((net.csqQueryPoll() & 0xFF,)))
