"""Meter-link framing (docs METER_LINK.md): FCS-16, an encoder and a streaming decoder.

    7E | FF 03 | protocol (low first) | length (high first) | CMD DATA | FCS | 7E

Two dialects:
- STANDARD (RFC 1662): octet stuffing (7D escape, XOR 20) of 7E, 7D and the ACCM's control
  characters; FCS low octet first. The transmit ACCM defaults to 0xFFFFFFFF (every control
  character escaped, RFC 1662's default). The receive ACCM defaults to 0: escapes are always
  undone, and only control characters flagged in the receive ACCM are discarded when they
  arrive unescaped (RFC 1662 4.2); peers that escape nothing but 7E/7D decode as well.
- LEGACY: no stuffing, the length field delimits the frame; FCS high octet first.

API: fcs16(data, fcs=0xFFFF) running value; fcs_good(data) residue check; frame_fcs(...);
encode(protocol, cmd, payload, dialect, accm) -> bytes; stuff/unstuff; Frame(protocol, cmd,
payload); Decoder(dialect, max_frame, accm) with feed(data) -> [Frame], flush() -> [Frame],
reset(), stats, last_error, buffered; decode_frame(data, dialect) -> Frame or ValueError.

Files: this one is the face; rfc1662_base.py holds what both dialects share (constants, Frame,
frame_fcs, stuffing, the decoder's skeleton), rfc1662_legacy.py and rfc1662_standard.py the
two decoders. Decoder(dialect) imports only the dialect it makes.

`max_frame` bounds a frame from address to FCS (payload + 9 octets). The FCS reads the
payload two octets at a time through a 256-entry table pair (about 12x a bit-by-bit loop on
MicroPython); payloads are copied once into their Frame, nothing else grows with the stream.

Decoder counters (`Decoder.stats`):
  frames         good frames decoded
  garbage_bytes  octets outside any frame (also the body of a dropped frame whose extent is
                 unknown, scanned while resynchronising)
  bad_fcs        frame delimited as its length says, FCS wrong
  bad_length     length field disagrees with the frame: zero, runs past the data (the frame
                 ends early or a later good frame starts inside it), or no closing flag where
                 the length puts it and the FCS there is wrong
  oversize       length (or the octets between two flags) above max_frame
  truncated      a frame shorter than its header and FCS, or cut off by flush()
  missing_flag   good frame whose closing flag was lost (accepted; the next frame may follow
                 without an opening flag)
  aborted        standard: abort sequence 7D 7E
  accm_dropped   standard: unescaped octets discarded by the receive ACCM
  overload       legacy: a frame start left unchecked (dropped as a bad frame) because hostile
                 input used up the FCS budget. Checking octets no check of the same kind
                 (following a good frame / resynchronising) has covered is free; checking
                 them again (overlapping starts) costs from a budget of WORK_PER_OCTET
                 octets per octet received, banked up to WORK_BANK frames. A start whose
                 FCS failed is not checked again.
"""
from .crc import fcs16  # noqa: F401  (part of this module's API)
from .rfc1662_base import (  # noqa: F401  (this module's API)
    ADDRESS, CONTROL, DIALECTS, ERROR_KINDS, ESCAPE, FLAG, GOOD_FCS, INIT_FCS, LEGACY,
    MAX_FRAME, OVERHEAD, RX_ACCM, STANDARD, STAT_KINDS, TX_ACCM, WORK_BANK, WORK_PER_OCTET,
    _FLAG_B, Frame, check_dialect, fcs_good, frame_fcs, stuff, unstuff)


def encode(protocol, cmd, payload=b"", dialect=LEGACY, accm=TX_ACCM):
    """Frame (protocol, cmd, payload) for the wire; returns bytes. accm: standard dialect only."""
    check_dialect(dialect)
    if type(payload) is not bytes:
        payload = bytes(payload)
    length = len(payload) + 1
    if not 0 <= protocol <= 0xFFFF:
        raise ValueError("protocol must be 0..0xFFFF, not %r" % (protocol,))
    if not 0 <= cmd <= 0xFF:
        raise ValueError("cmd must be 0..0xFF, not %r" % (cmd,))
    if length > 0xFFFF:
        raise ValueError("payload of %d octets does not fit the 16-bit length" % len(payload))
    head = bytes((ADDRESS, CONTROL, protocol & 0xFF, protocol >> 8, length >> 8, length & 0xFF,
                  cmd))
    fcs = frame_fcs(protocol, length, cmd, payload)
    if dialect == LEGACY:
        return b"".join((_FLAG_B, head, payload, bytes((fcs >> 8, fcs & 0xFF)), _FLAG_B))
    body = b"".join((head, payload, bytes((fcs & 0xFF, fcs >> 8))))
    return b"".join((_FLAG_B, stuff(body, accm), _FLAG_B))


def Decoder(dialect=LEGACY, max_frame=MAX_FRAME, accm=RX_ACCM):
    """The streaming decoder of dialect (rfc1662_legacy.LegacyDecoder or
    rfc1662_standard.StandardDecoder; the API is rfc1662_base.DecoderBase's)."""
    if check_dialect(dialect) == LEGACY:
        from .rfc1662_legacy import LegacyDecoder
        return LegacyDecoder(max_frame, accm)
    from .rfc1662_standard import StandardDecoder
    return StandardDecoder(max_frame, accm)


def decode_frame(data, dialect=LEGACY, accm=RX_ACCM, max_frame=MAX_FRAME):
    """Decode exactly one whole frame (flags included); raise ValueError saying what is wrong."""
    decoder = Decoder(dialect, max_frame, accm)
    frames = decoder.feed(data) + decoder.flush()
    stats = decoder.stats
    for kind in ERROR_KINDS:
        if stats[kind]:
            raise ValueError(decoder.last_error)
    if stats["garbage_bytes"]:
        raise ValueError("garbage: %d octets outside a frame" % stats["garbage_bytes"])
    if len(frames) != 1:
        raise ValueError("expected one frame, found %d" % len(frames))
    return frames[0]
