"""qframe.codecs.wrapper: IEC 62056-47 packets and stream receiver."""
import ubinascii

from checks import raises
from usr.qframe.codecs import wrapper

GET = "0001001000010010c001c100030100010800ff0200"


def test_encode_decode_vector():
    apdu = ubinascii.unhexlify("c001c100030100010800ff0200")
    assert ubinascii.hexlify(wrapper.encode(16, 1, apdu)).decode() == GET[:12] + "000d" + GET[16:]
    p = wrapper.decode(wrapper.encode(16, 1, apdu))
    assert (p.src, p.dst, p.apdu) == (16, 1, apdu)


def test_receiver_split_and_joined():
    r = wrapper.Receiver()
    one = wrapper.encode(1, 16, b"\x61\x00")
    two = wrapper.encode(1, 16, b"x" * 300)
    assert r.feed(one[:3]) == []
    got = r.feed(one[3:] + two[:100]) + r.feed(two[100:])
    assert [len(p.apdu) for p in got] == [2, 300]
    assert r.buffered == 0


def test_bad_packets():
    raises(wrapper.WrapperError, wrapper.decode, b"\x00\x01\x00")
    raises(wrapper.WrapperError, wrapper.decode, b"\x00\x02\x00\x01\x00\x10\x00\x00")
    raises(wrapper.WrapperError, wrapper.decode, b"\x00\x01\x00\x01\x00\x10\x00\x05ab")
    r = wrapper.Receiver(max_apdu=100)
    raises(wrapper.WrapperError, r.feed, b"\x00\x01\x00\x01\x00\x10\x10\x00")
    assert r.buffered == 0
    raises(wrapper.WrapperError, r.feed, b"\x00\x07\x00\x01\x00\x10\x00\x00")
    assert r.buffered == 0
