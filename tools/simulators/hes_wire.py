"""The HES wire format's frame kinds and framing (kind, 16-bit length, body), shared by the
simulated HES (hes.py), its fleet view (fleet.py) and the dashboard, so none imports another."""

import struct

REGISTER, HEARTBEAT, DATA, RESPONSE, EVENT = 0x01, 0x02, 0x03, 0x04, 0x05
ACK, DOWN_DATA, COMMAND, PONG = 0x81, 0x82, 0x83, 0x84
NAMES = {REGISTER: "REGISTER", HEARTBEAT: "HEARTBEAT", DATA: "DATA", RESPONSE: "RESPONSE",
         EVENT: "EVENT"}


def frame(kind, body=b""):
    """One frame on the wire: kind, big-endian body length, body."""
    return struct.pack(">BH", kind, len(body)) + bytes(body)
