"""Property tests of the meter-link codec: random frames, random read boundaries, random garbage
between frames, both dialects."""
from hypothesis import given, settings
from hypothesis import strategies as st

from usr.qframe.codecs import rfc1662
from usr.qframe.codecs.rfc1662 import Decoder, Frame, LEGACY, STANDARD

DIALECTS = st.sampled_from([LEGACY, STANDARD])
ACCMS = st.one_of(st.just(0), st.just(rfc1662.TX_ACCM), st.integers(0, 0xFFFFFFFF))
FRAMES = st.builds(Frame, st.integers(0, 0xFFFF), st.integers(0, 0xFF),
                   st.binary(max_size=300))
# garbage that cannot be taken for a frame or its start: no flag, no escape, no address first
CLEAN_GARBAGE = st.binary(max_size=40).filter(
    lambda g: b"\x7e" not in g and b"\x7d" not in g and not g.startswith(b"\xff"))


def _encode(frame, dialect, accm):
    return rfc1662.encode(frame.protocol, frame.cmd, frame.payload, dialect, accm)


def _feed(decoder, data, cuts):
    points = sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]
    out = []
    start = 0
    for point in points:
        out += decoder.feed(data[start:point])
        start = point
    return out + decoder.flush()


@settings(max_examples=300, deadline=None)
@given(FRAMES, DIALECTS, ACCMS)
def test_round_trip_one_frame(frame, dialect, accm):
    wire = _encode(frame, dialect, accm)
    assert rfc1662.decode_frame(wire, dialect) == frame
    assert wire[0] == 0x7E and wire[-1] == 0x7E
    if dialect == STANDARD:
        assert 0x7E not in wire[1:-1]
        assert all(not (octet < 0x20 and (accm >> octet) & 1) for octet in wire[1:-1])


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAMES, min_size=1, max_size=6), DIALECTS, ACCMS,
       st.lists(st.integers(0, 5000), max_size=12))
def test_any_read_boundaries(frames, dialect, accm, cuts):
    wire = b"".join(_encode(f, dialect, accm) for f in frames)
    decoder = Decoder(dialect)
    assert _feed(decoder, wire, cuts) == frames
    assert decoder.stats["frames"] == len(frames)
    assert all(decoder.stats[k] == 0 for k in rfc1662.ERROR_KINDS + ("garbage_bytes",))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(CLEAN_GARBAGE, FRAMES), min_size=1, max_size=5), CLEAN_GARBAGE,
       DIALECTS, st.lists(st.integers(0, 5000), max_size=12), st.booleans())
def test_clean_garbage_between_frames_is_counted_exactly(pairs, tail, dialect, cuts, shared):
    wire = b""
    for garbage, frame in pairs:
        encoded = _encode(frame, dialect, rfc1662.TX_ACCM)
        if shared and wire.endswith(b"\x7e") and not garbage:
            encoded = encoded[1:]
        wire += garbage + encoded
    wire += tail
    decoder = Decoder(dialect)
    assert _feed(decoder, wire, cuts) == [f for _, f in pairs]
    garbage_total = sum(len(g) for g, _ in pairs) + len(tail)
    assert decoder.stats["garbage_bytes"] == garbage_total
    assert all(decoder.stats[k] == 0 for k in rfc1662.ERROR_KINDS)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=60), FRAMES), min_size=1, max_size=5),
       DIALECTS, st.lists(st.integers(0, 5000), max_size=12))
def test_any_garbage_between_frames_loses_no_good_frame(pairs, dialect, cuts):
    wire = b"".join(g + _encode(f, dialect, rfc1662.TX_ACCM) for g, f in pairs)
    decoder = Decoder(dialect)
    assert _feed(decoder, wire, cuts) == [f for _, f in pairs]
    assert decoder.buffered == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(FRAMES, min_size=2, max_size=5), DIALECTS, st.data())
def test_one_damaged_frame_costs_only_itself(frames, dialect, data):
    encoded = [_encode(f, dialect, rfc1662.TX_ACCM) for f in frames]
    victim = data.draw(st.integers(0, len(frames) - 1))
    inner = len(encoded[victim]) - 2
    at = data.draw(st.integers(1, inner))
    damaged = bytearray(encoded[victim])
    damaged[at] ^= data.draw(st.integers(1, 255))
    if 0x7E in damaged[1:-1] and dialect == STANDARD:
        return  # the damage made a flag: two broken pieces, covered elsewhere
    encoded[victim] = bytes(damaged)
    decoder = Decoder(dialect)
    cuts = data.draw(st.lists(st.integers(0, 5000), max_size=8))
    out = _feed(decoder, b"".join(encoded), cuts)
    assert out == [f for i, f in enumerate(frames) if i != victim]
    assert sum(decoder.stats[k] for k in rfc1662.ERROR_KINDS + ("garbage_bytes",)) >= 1
