"""Property tests of the DLMS codecs on hostile input: random and mutated octets give the
codec's own clear error (never another exception), streams stay bounded, and A-XDR values
round-trip. (These decoders are the ones to add to the fuzz harness.)"""
from hypothesis import given, settings
from hypothesis import strategies as st

from usr.qframe.codecs import acse, axdr, cosem, hdlc, wrapper, xdlms
from usr.qframe.protocols import dlms

VALID_HDLC = hdlc.encode(b"\x21", b"\x03", hdlc.i_control(0, 1),
                         hdlc.LLC_RESPONSE + xdlms.get_response(axdr.encode([1, (b"ab", "x")])))
VALID_APDUS = [acse.aare(0, 0), acse.aare(1, 13), xdlms.get_response(axdr.encode(5)),
               xdlms.get_block(1, b"\x01\x02", False), xdlms.get_list_response([(b"\x00", 0)]),
               xdlms.action_response(0, axdr.encode(1)), xdlms.get(3, b"\x01" * 6, 2, cosem.by_entry(1, 2))]


def _mutate(data, flips):
    out = bytearray(data)
    for pos, value in flips:
        if out:
            out[pos % len(out)] = value
    return bytes(out)


FLIPS = st.lists(st.tuples(st.integers(0, 10000), st.integers(0, 255)), max_size=4)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), FLIPS)
def test_hdlc_decode_only_raises_hdlc_error(data, flips):
    for candidate in (data, _mutate(VALID_HDLC, flips), VALID_HDLC[:len(data) % len(VALID_HDLC)]):
        try:
            hdlc.decode(candidate)
        except hdlc.HdlcError:
            pass
        try:
            hdlc.decode_params(candidate)
        except hdlc.HdlcError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=12))
def test_hdlc_receiver_bounded(chunks):
    r = hdlc.Receiver(max_frame=256)
    for chunk in chunks + [VALID_HDLC]:
        r.feed(chunk)
        assert r.buffered <= 258


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=100), max_size=8))
def test_wrapper_receiver_errors_are_clear(chunks):
    r = wrapper.Receiver(max_apdu=512)
    for chunk in chunks:
        try:
            r.feed(chunk)
        except wrapper.WrapperError:
            assert r.buffered == 0
        assert r.buffered <= 512 + 8


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=200))
def test_axdr_decode_only_raises_axdr_error(data):
    for typed in (False, True):
        try:
            axdr.decode(data, typed)
        except axdr.AxdrError:
            pass
    stream = axdr.ArrayStream(max_element=64)
    try:
        for i in range(0, len(data), 7):
            stream.feed(data[i:i + 7])
    except axdr.AxdrError:
        pass


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(VALID_APDUS), FLIPS, st.integers(0, 100))
def test_apdu_parsers_only_raise_their_errors(apdu, flips, cut):
    for candidate in (_mutate(apdu, flips), apdu[:cut]):
        for parse, errors in ((xdlms.parse_response, (xdlms.XdlmsError, xdlms.ServiceError)),
                              (xdlms.parse_request, (xdlms.XdlmsError,)),
                              (acse.parse_aare, (acse.AcseError, acse.AssociationRejected)),
                              (acse.parse_aarq, (acse.AcseError,))):
            try:
                parse(candidate)
            except errors:
                pass


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 31, 2 ** 31 - 1), st.binary(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    st.builds(lambda t, v: axdr.Typed(t, v), st.just(axdr.LONG_UNSIGNED), st.integers(0, 65535)),
    st.builds(lambda t, v: axdr.Typed(t, v), st.just(axdr.INTEGER), st.integers(-128, 127)),
    st.builds(lambda t, v: axdr.Typed(t, v), st.just(axdr.LONG64), st.integers(-2 ** 63, 2 ** 63 - 1)))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                       st.lists(inner, max_size=5).map(tuple)),
                      max_leaves=20)


def _plain(v):
    if isinstance(v, axdr.Typed):
        return v.value
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, tuple):
        return tuple(_plain(x) for x in v)
    return v


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_axdr_round_trip(value):
    data = axdr.encode(value)
    assert axdr.decode(data) == _plain(value)
    assert axdr.encode(axdr.decode(data, typed=True)) == data


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=10))
def test_association_survives_any_reply(chunks):
    a = dlms.Association(dlms.Settings(retries=0))
    op = a.open()
    op.start()
    for chunk in chunks + [VALID_HDLC]:
        op.receive(chunk)
        if op.done:
            break
    if not op.done:
        op.timeout()
    assert op.done
