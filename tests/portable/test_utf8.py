"""qframe/codecs/utf8.py: text from the wire is checked the same way on every interpreter
(QuecPython's str has no unicode, so its bytes.decode() accepts anything)."""
from checks import raises
from usr.qframe.codecs import utf8


def test_well_formed_text_decodes():
    for data in (b"", b"plain ascii", b"\xc3\xa9t\xc3\xa9", b"\xe2\x82\xac", b"\xef\xbf\xbd",
                 b"\xf0\x9f\x98\x80", b"\xf4\x8f\xbf\xbf", b"\xed\x9f\xbf", b"\xe0\xa0\x80"):
        assert utf8.is_utf8(data), data
        assert utf8.decode(bytearray(data)).encode() == data


def test_ill_formed_octets_are_refused():
    bad = (b"\xff", b"\xfe\xff", b"\x80", b"a\xbfb", b"\xc0\x80", b"\xc1\xbf",      # overlong
           b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf",                # overlong
           b"\xed\xa0\x80", b"\xed\xbf\xbf",                                     # surrogates
           b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",                             # > U+10FFFF
           b"\xc3", b"ok\xe2\x82", b"\xf0\x9f\x98", b"\xc3\x28", b"\xe2\x28\xa1")  # cut, broken
    for data in bad:
        assert not utf8.is_utf8(data), data
        assert "not UTF-8" in str(raises(ValueError, utf8.decode, data))
