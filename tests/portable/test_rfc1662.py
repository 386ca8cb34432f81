"""qframe.rfc1662: FCS-16, encoder and streaming decoder, both dialects (runs on CPython and
MicroPython)."""
import ubinascii

from checks import raises
from usr.qframe.codecs import rfc1662
from usr.qframe.codecs.rfc1662 import Decoder, Frame, LEGACY, STANDARD

# METER_LINK.md vectors (legacy dialect)
V_HELLO = "7eff0300210006bf68656c6c6f37e97e"
V_GET_2801 = "7eff0300220003c0012891f57e"
V_GET_CSQ = "7eff0300220003c003808b077e"
VECTORS = ((V_HELLO, 0x2100, 0xBF, b"hello"),
           (V_GET_2801, 0x2200, 0xC0, b"\x01\x28"),
           (V_GET_CSQ, 0x2200, 0xC0, b"\x03\x80"))


def _b(text):
    return ubinascii.unhexlify(text)


def _hex(data):
    return ubinascii.hexlify(data).decode()


def _swap_fcs(legacy_frame):
    """The standard (ACCM 0) form of a legacy frame without 7E/7D inside: FCS octets swapped."""
    return legacy_frame[:-3] + bytes((legacy_frame[-2], legacy_frame[-3])) + legacy_frame[-1:]


def _frames():
    """A few frames covering awkward octets: flags, escapes, control characters, odd/even."""
    return [Frame(0x2100, 0xBF, b"hello"),
            Frame(0x2200, 0xC0, b"\x03\x80"),
            Frame(0x2100, 0xBF, bytes(range(256))),
            Frame(0x7E7D, 0x7E, b"\x7e\x7d\x7e\x00\x11\x13"),
            Frame(0x2200, 0xC4, b"\x03\x80\x01\x15")]


def _stream(frames, dialect, accm=rfc1662.TX_ACCM):
    return b"".join(rfc1662.encode(f.protocol, f.cmd, f.payload, dialect, accm) for f in frames)


def _shared(frames, dialect):
    """Back-to-back frames sharing one flag between them."""
    out = rfc1662.encode(frames[0].protocol, frames[0].cmd, frames[0].payload, dialect)
    for f in frames[1:]:
        out += rfc1662.encode(f.protocol, f.cmd, f.payload, dialect)[1:]
    return out


def _feed(decoder, data, step):
    out = []
    for i in range(0, len(data), step):
        out += decoder.feed(data[i:i + step])
    return out


def _errors(decoder):
    return dict((k, v) for k, v in decoder.stats.items() if v and k != "frames")


def _good():
    return rfc1662.encode(0x2100, 0xBF, b"after")


def _good_std():
    return rfc1662.encode(0x2100, 0xBF, b"after", STANDARD)


AFTER = Frame(0x2100, 0xBF, b"after")


# -- FCS -----------------------------------------------------------------------------------

def test_fcs16_check_value_and_running_value():
    assert rfc1662.fcs16(b"123456789") ^ 0xFFFF == 0x906E  # CRC-16/X.25 check value
    data = bytes(range(200)) + b"\x7e\x7d"
    whole = rfc1662.fcs16(data)
    for cut in (0, 1, 2, 3, 77, 201, len(data)):
        assert rfc1662.fcs16(data[cut:], rfc1662.fcs16(data[:cut])) == whole
    assert rfc1662.fcs16(bytearray(data)) == whole
    assert rfc1662.fcs16(memoryview(data)) == whole
    big = bytes(range(256)) * 9 + b"\x01"  # longer than one block, odd length
    assert rfc1662.fcs16(big) == rfc1662.fcs16(big[1000:], rfc1662.fcs16(big[:1000]))


def test_good_fcs_residue():
    body = b"\xff\x03\x00\x21\x00\x06\xbf" + b"hello"
    fcs = rfc1662.fcs16(body) ^ 0xFFFF
    sent = body + bytes((fcs & 0xFF, fcs >> 8))
    assert rfc1662.fcs16(sent) == rfc1662.GOOD_FCS == 0xF0B8
    assert rfc1662.fcs_good(sent)
    damaged = bytearray(sent)
    damaged[5] ^= 0x01
    assert not rfc1662.fcs_good(damaged)
    assert fcs == 0x37E9


# -- vectors and encoder -------------------------------------------------------------------

def test_spec_vectors_legacy():
    for text, protocol, cmd, payload in VECTORS:
        assert _hex(rfc1662.encode(protocol, cmd, payload)) == text
        assert _hex(rfc1662.encode(protocol, cmd, payload, LEGACY)) == text
        assert rfc1662.decode_frame(_b(text)) == Frame(protocol, cmd, payload)
        assert rfc1662.decode_frame(_b(text), LEGACY) == Frame(protocol, cmd, payload)


def test_spec_vectors_standard():
    assert (_hex(rfc1662.encode(0x2100, 0xBF, b"hello", STANDARD, 0))
            == "7eff0300210006bf68656c6c6fe9377e")
    for text, protocol, cmd, payload in VECTORS:
        standard = _swap_fcs(_b(text))
        assert rfc1662.encode(protocol, cmd, payload, STANDARD, 0) == standard
        assert rfc1662.decode_frame(standard, STANDARD) == Frame(protocol, cmd, payload)
        # the default transmit ACCM escapes every control character; still the same frame
        escaped = rfc1662.encode(protocol, cmd, payload, STANDARD)
        assert rfc1662.decode_frame(escaped, STANDARD) == Frame(protocol, cmd, payload)


def test_default_accm_escapes_control_characters():
    assert (_hex(rfc1662.encode(0x2100, 0xBF, b"hello", STANDARD))
            == "7eff7d237d20217d207d26bf68656c6c6fe9377e")


def test_stuffing_of_flag_escape_and_accm_characters():
    payload = b"\x7e\x7d\x00\x11\x13\x1f\x20\x5d\x5e"
    for accm in (rfc1662.TX_ACCM, 0, (1 << 0x11) | (1 << 0x13)):
        frame = rfc1662.encode(0x2100, 0xBF, payload, STANDARD, accm)
        inner = frame[1:-1]
        assert frame[0] == 0x7E and frame[-1] == 0x7E and 0x7E not in inner
        i = 0
        while i < len(inner):  # every 7D escapes one octet, which must have needed it
            if inner[i] == 0x7D:
                plain = inner[i + 1] ^ 0x20
                assert plain in (0x7E, 0x7D) or (plain < 0x20 and (accm >> plain) & 1)
                i += 2
            else:
                octet = inner[i]
                assert not (octet < 0x20 and (accm >> octet) & 1)
                i += 1
        assert rfc1662.decode_frame(frame, STANDARD) == Frame(0x2100, 0xBF, payload)
    assert b"\x7d\x5e\x7d\x5d" in rfc1662.encode(0x2100, 0xBF, payload, STANDARD, 0)
    assert b"\x00\x7d\x31\x7d\x33\x1f" in rfc1662.encode(0x2100, 0xBF, payload, STANDARD,
                                                           (1 << 0x11) | (1 << 0x13))


def test_legacy_does_not_stuff():
    frame = rfc1662.encode(0x2100, 0xBF, b"\x7e\x7d\x00", LEGACY)
    assert frame[8:11] == b"\x7e\x7d\x00"
    assert rfc1662.decode_frame(frame) == Frame(0x2100, 0xBF, b"\x7e\x7d\x00")


def test_unstuff_many_escapes_and_unusual_escape():
    payload = bytes(range(256)) * 2
    frame = rfc1662.encode(0x2100, 0xBF, payload, STANDARD)  # 70 escapes
    assert rfc1662.decode_frame(frame, STANDARD).payload == payload
    # a peer may escape any octet: 7D A0 is 0x80; 7D 7D is 0x5D
    plain = rfc1662.encode(0x2100, 0xBF, b"\x80\x5d" * 6, STANDARD, 0)
    odd = plain[:8] + b"\x7d\xa0\x7d\x7d" * 6 + plain[-3:]
    assert rfc1662.decode_frame(odd, STANDARD).payload == b"\x80\x5d" * 6
    assert rfc1662.unstuff(b"a\x7d\x5eb\x7d\x5d\x7d\x20") == b"a\x7eb\x7d\x00"


def test_receive_accm_drops_unescaped_control_characters():
    frame = rfc1662.encode(0x2100, 0xBF, b"\x11data\x13", STANDARD)
    noisy = frame[:4] + b"\x11" + frame[4:9] + b"\x13\x11" + frame[9:]
    decoder = Decoder(STANDARD, accm=(1 << 0x11) | (1 << 0x13))
    assert decoder.feed(noisy) == [Frame(0x2100, 0xBF, b"\x11data\x13")]
    assert decoder.stats["accm_dropped"] == 3
    # with the default receive ACCM (0) nothing is dropped: the same octets break the frame
    decoder = Decoder(STANDARD)
    assert decoder.feed(noisy) == []
    assert decoder.stats["accm_dropped"] == 0


def test_encode_rejects_bad_arguments():
    assert "dialect" in str(raises(ValueError, rfc1662.encode, 0x2100, 0xBF, b"", "hdlc"))
    raises(ValueError, rfc1662.encode, 0x10000, 0xBF, b"")
    raises(ValueError, rfc1662.encode, -1, 0xBF, b"")
    raises(ValueError, rfc1662.encode, 0x2100, 0x100, b"")
    raises(ValueError, rfc1662.encode, 0x2100, 0xBF, bytes(0xFFFF))
    raises(ValueError, Decoder, "hdlc")
    raises(ValueError, Decoder, LEGACY, 5)


def test_frame_object():
    frame = Frame(0x2100, 0xBF, b"x")
    assert frame.protocol == 0x2100 and frame.cmd == 0xBF and frame.payload == b"x"
    assert frame.message() == (0x2100, 0xBF, b"x")
    assert frame == Frame(0x2100, 0xBF, b"x") and frame != Frame(0x2100, 0xBF, b"y")
    assert "0x2100" in repr(frame)


# -- streaming: splits, many frames, shared flags ------------------------------------------

def test_one_octet_feeds_and_many_frames_per_feed():
    frames = _frames()
    for dialect in (LEGACY, STANDARD):
        data = _stream(frames, dialect)
        for step in (1, 2, 3, 7, 64, len(data)):
            decoder = Decoder(dialect)
            assert _feed(decoder, data, step) == frames, (dialect, step)
            assert decoder.stats["frames"] == len(frames)
            assert _errors(decoder) == {}, _errors(decoder)
            assert decoder.buffered == 0


def test_feed_accepts_bytearray_and_memoryview():
    data = _stream(_frames(), LEGACY)
    decoder = Decoder()
    out = decoder.feed(bytearray(data[:50])) + decoder.feed(memoryview(data)[50:])
    assert out == _frames()
    assert decoder.feed(b"") == []


def test_shared_flags_between_frames():
    frames = _frames()
    for dialect in (LEGACY, STANDARD):
        for step in (1, 5, 1000):
            decoder = Decoder(dialect)
            assert _feed(decoder, _shared(frames, dialect), step) == frames
            assert _errors(decoder) == {}


def test_idle_flags_between_frames():
    for dialect in (LEGACY, STANDARD):
        one = rfc1662.encode(0x2100, 0xBF, b"a", dialect)
        data = b"\x7e\x7e" + one + b"\x7e\x7e\x7e" + one + b"\x7e"
        decoder = Decoder(dialect)
        assert len(_feed(decoder, data, 1)) == 2
        assert _errors(decoder) == {}


# -- bad input: counted, dropped, the next good frame survives -----------------------------

def test_garbage_before_and_between_frames():
    garbage = b"\x00\x11junk\x03"
    for dialect in (LEGACY, STANDARD):
        good = rfc1662.encode(0x2100, 0xBF, b"hello", dialect)
        data = garbage + good + garbage + good + garbage
        for step in (1, 4, 1000):
            decoder = Decoder(dialect)
            assert _feed(decoder, data, step) == [Frame(0x2100, 0xBF, b"hello")] * 2
            # standard: octets after the last flag may still be a frame until the burst ends
            assert decoder.flush() == []
            assert decoder.stats["garbage_bytes"] == 3 * len(garbage), decoder.stats
            assert _errors(decoder) == {"garbage_bytes": 3 * len(garbage)}


def test_garbage_holding_flags():
    for dialect in (LEGACY, STANDARD):
        good = rfc1662.encode(0x2100, 0xBF, b"hello", dialect)
        decoder = Decoder(dialect)
        out = _feed(decoder, good + b"ab\x7ecd" + good, 1)
        assert out == [Frame(0x2100, 0xBF, b"hello")] * 2
        assert decoder.stats["garbage_bytes"] == 4


def test_bad_fcs_then_good_frame():
    for dialect, good in ((LEGACY, _good()), (STANDARD, _good_std())):
        for offset in (-2, -3, -4):  # FCS octets, then a payload octet
            bad = bytearray(rfc1662.encode(0x2100, 0xBF, b"hello", dialect))
            bad[offset] ^= 0x40
            for step in (1, 1000):
                decoder = Decoder(dialect)
                assert _feed(decoder, bytes(bad) + good, step) == [AFTER]
                assert _errors(decoder) == {"bad_fcs": 1}, (dialect, _errors(decoder))
                assert "bad_fcs" in decoder.last_error


def test_lost_closing_flag_then_garbage_then_good_frame():
    for dialect, good in ((LEGACY, _good()), (STANDARD, _good_std())):
        first = rfc1662.encode(0x2100, 0xBF, b"first", dialect)[:-1]
        for step in (1, 1000):
            decoder = Decoder(dialect)
            out = _feed(decoder, first + b"zz" + good, step)
            assert out == [Frame(0x2100, 0xBF, b"first"), AFTER], (dialect, out)
            assert _errors(decoder) == {"missing_flag": 1, "garbage_bytes": 2}


def test_lost_shared_flag_keeps_both_frames():
    frames = [Frame(0x2100, 0xBF, b"one"), Frame(0x2200, 0xC0, b"\x03\x80"),
              Frame(0x2100, 0xBF, b"three")]
    for dialect in (LEGACY, STANDARD):
        data = _shared(frames, dialect)
        first_len = len(rfc1662.encode(0x2100, 0xBF, b"one", dialect))
        data = data[:first_len - 1] + data[first_len:]  # the flag between 1 and 2 is lost
        for step in (1, 1000):
            decoder = Decoder(dialect)
            assert _feed(decoder, data, step) == frames, dialect
            assert _errors(decoder) == {"missing_flag": 1}


def test_length_running_past_the_data():
    for dialect, good in ((LEGACY, _good()), (STANDARD, _good_std())):
        bad = bytearray(rfc1662.encode(0x2100, 0xBF, b"hello", dialect, 0))
        bad[6] += 40  # length low octet: the frame claims 40 more octets
        for step in (1, 3, 1000):
            decoder = Decoder(dialect)
            assert _feed(decoder, bytes(bad) + good, step) == [AFTER], (dialect, step)
            assert decoder.stats["bad_length"] == 1, (dialect, step, decoder.stats)
            assert decoder.stats["frames"] == 1


def test_length_too_short():
    for dialect, good in ((LEGACY, _good()), (STANDARD, _good_std())):
        bad = bytearray(rfc1662.encode(0x2100, 0xBF, b"hello", dialect, 0))
        bad[6] -= 3
        decoder = Decoder(dialect)
        assert _feed(decoder, bytes(bad) + good, 1) == [AFTER]
        assert decoder.stats["bad_length"] == 1, decoder.stats


def test_zero_length():
    for dialect, good in ((LEGACY, _good()), (STANDARD, _good_std())):
        decoder = Decoder(dialect)
        zero = b"\x7e\xff\x03\x00\x21\x00\x00\x12\x34\x7e"
        assert decoder.feed(zero + good) == [AFTER]
        assert decoder.stats["bad_length"] == 1


def test_truncated_frames():
    # standard: too short between two flags
    decoder = Decoder(STANDARD)
    assert decoder.feed(b"\x7e\xff\x03\x00\x21\x7e" + _good_std()) == [AFTER]
    assert _errors(decoder) == {"truncated": 1}
    # either dialect: a frame cut off by the end of a burst
    for dialect, good in ((LEGACY, _good()), (STANDARD, _good_std())):
        decoder = Decoder(dialect)
        cut = rfc1662.encode(0x2100, 0xBF, b"hello", dialect)[:9]
        assert decoder.feed(cut) == []
        assert decoder.buffered > 0
        assert decoder.flush() == []
        assert decoder.buffered == 0
        assert _errors(decoder) == {"truncated": 1}, decoder.stats
        assert decoder.feed(good) == [AFTER]


def test_flush_keeps_a_frame_missing_only_its_closing_flag():
    for dialect in (LEGACY, STANDARD):
        decoder = Decoder(dialect)
        assert decoder.feed(rfc1662.encode(0x2100, 0xBF, b"hello", dialect)[:-1]) == []
        assert decoder.flush() == [Frame(0x2100, 0xBF, b"hello")]
        assert _errors(decoder) == {"missing_flag": 1}
        assert decoder.stats["frames"] == 1


def test_abort_sequence():
    decoder = Decoder(STANDARD)
    start = rfc1662.encode(0x2100, 0xBF, b"hello", STANDARD)[:10]
    assert _feed(decoder, start + b"\x7d\x7e" + _good_std(), 1) == [AFTER]
    assert _errors(decoder) == {"aborted": 1}


def test_oversize_frames():
    # length field above max_frame
    for dialect, good in ((LEGACY, _good()), (STANDARD, _good_std())):
        big = rfc1662.encode(0x2100, 0xBF, bytes(100), dialect, 0)
        decoder = Decoder(dialect, max_frame=64)
        assert _feed(decoder, big + good, 7) == [AFTER]
        assert decoder.stats["oversize"] == 1, decoder.stats
        assert decoder.feed(rfc1662.encode(0x2100, 0xBF, bytes(55), dialect, 0)) != []
    # standard: no closing flag for more than twice max_frame
    decoder = Decoder(STANDARD, max_frame=64)
    assert _feed(decoder, b"\x7e\xff\x03" + b"\x55" * 500 + _good_std(), 10) == [AFTER]
    assert _errors(decoder) == {"oversize": 1}


def test_buffer_stays_bounded_on_endless_bad_input():
    for dialect in (LEGACY, STANDARD):
        decoder = Decoder(dialect, max_frame=256)
        peak = 0
        claim = b"\x7e\xff\x03\x00\x21\x00\xf0"  # header claiming 240 octets
        for i in range(300):
            decoder.feed(b"\x55" * 37 if i % 3 else claim + b"\x55" * 30)
            if decoder.buffered > peak:
                peak = decoder.buffered
        assert peak <= 2 * 256 + 37 + 40, (dialect, peak)
        assert decoder.stats["frames"] == 0
        assert decoder.feed(_good() if dialect == LEGACY else b"\x7e" + _good_std()) == [AFTER]
    decoder = Decoder(LEGACY, max_frame=256)
    for _ in range(200):
        decoder.feed(b"\x00\x7e\x01" * 50)  # flags never followed by a header
        assert decoder.buffered <= 2
    assert decoder.stats["garbage_bytes"] == 200 * 100
    decoder = Decoder(STANDARD, max_frame=256)
    decoder.feed(b"\x7e")
    for _ in range(300):  # a frame that never ends
        decoder.feed(b"\xff\x03" * 20)
        assert decoder.buffered <= 2 * 256 + 40
    assert _errors(decoder) == {"oversize": 1}
    assert decoder.feed(_good_std()) == [AFTER]


def test_decode_frame_reports_what_is_wrong():
    bad = bytearray(_b(V_HELLO))
    bad[-2] ^= 1
    assert "bad_fcs" in str(raises(ValueError, rfc1662.decode_frame, bytes(bad)))
    assert "truncated" in str(raises(ValueError, rfc1662.decode_frame, _b(V_HELLO)[:10]))
    assert "garbage" in str(raises(ValueError, rfc1662.decode_frame, b"xx" + _b(V_HELLO)))
    assert "missing_flag" in str(raises(ValueError, rfc1662.decode_frame, _b(V_HELLO)[:-1]))
    assert "one frame" in str(raises(ValueError, rfc1662.decode_frame, _b(V_HELLO) * 2))
    assert "one frame" in str(raises(ValueError, rfc1662.decode_frame, b""))


def test_reset_forgets_without_counting():
    decoder = Decoder()
    decoder.feed(_b(V_HELLO)[:8])
    decoder.reset()
    assert decoder.buffered == 0
    assert decoder.feed(_b(V_HELLO)) == [Frame(0x2100, 0xBF, b"hello")]
    assert _errors(decoder) == {}


# -- linear work on hostile streams (issue 9.3) ---------------------------------------------

def _hostile(kind, repeats):
    """Legacy-looking starts whose lengths reach far ahead: 'nested' is the issue's stream
    (a long frame full of shorter ones), 'flagged' puts a flag where every length ends."""
    if kind == "nested":
        unit = _b("7eff03002107f8") + _b("7eff030021029a") * 292
    else:
        unit = _b("7eff03002107f3") * 300
    return unit * repeats


def _work_per_octet(dialect, stream, step):
    decoder = Decoder(dialect)
    _feed(decoder, stream, step)
    return decoder, decoder.work / len(stream)


def test_work_stays_linear_on_hostile_streams():
    # Each octet is searched about twice at most; the FCS runs over each octet at most once
    # after a good frame, once while resynchronising, plus WORK_PER_OCTET budgeted re-checks
    # (the quadratic decoder rescanned every start per 8-octet read: work grew with the
    # buffered frame, hundreds of octets examined per octet fed).
    for kind in ("nested", "flagged"):
        for dialect in (LEGACY, STANDARD):
            for step in (8, 1, 1000):
                stream = _hostile(kind, 2)
                decoder, per_octet = _work_per_octet(dialect, stream, step)
                assert per_octet <= rfc1662.WORK_PER_OCTET + 4, (kind, dialect, step, per_octet)
                assert decoder.stats["frames"] == 0
                # the work per octet does not grow with the length of the stream
                longer = _work_per_octet(dialect, _hostile(kind, 6), step)[1]
                assert longer <= per_octet * 1.2 + 0.5, (kind, dialect, step, per_octet, longer)


def test_nested_stream_counts_as_before():
    # the exact accounting of the rescanning decoder is kept for the stream
    decoder, _ = _work_per_octet(LEGACY, _hostile("nested", 1), 8)
    assert _errors(decoder) == {"garbage_bytes": 1182, "bad_length": 197}, _errors(decoder)
    assert decoder.stats["overload"] == 0


def test_good_frame_after_hostile_streams_decodes():
    for kind in ("nested", "flagged"):
        for dialect, good in ((LEGACY, _good()), (STANDARD, _good_std())):
            for step in (8, 1000):
                decoder = Decoder(dialect)
                stream = _hostile(kind, 2) + good + good
                out = _feed(decoder, stream, step) + decoder.flush()
                assert out[-2:] == [AFTER, AFTER], (kind, dialect, step, out, decoder.stats)


def test_overload_is_counted_and_normal_traffic_never_overloads():
    decoder = Decoder(LEGACY)
    _feed(decoder, _hostile("flagged", 2), 8)
    assert decoder.stats["overload"] > 0
    assert "overload" in decoder.last_error
    decoder = Decoder(LEGACY)
    frames = [Frame(0x2100, 0xBF, bytes(2030))] * 3 + _frames()
    assert _feed(decoder, _stream(frames, LEGACY), 1) == frames
    assert _errors(decoder) == {}
