"""qframe.codecs.acse and xdlms: association and service APDUs both ways (vectors checked
against Gurux's client)."""
import ubinascii

from checks import raises
from usr.qframe.codecs import acse, axdr, cosem, xdlms

AARQ_GURUX = "601da109060760857405080101be10040e01000000065f1f0400401e5dffff"
AARE_OK = ("6129a109060760857405080101a203020100a305a103020100"
           "be10040e0800065f1f040000501f01f40007")


def _b(t):
    return ubinascii.unhexlify(t)


def _hex(d):
    return ubinascii.hexlify(d).decode()


def test_aarq_vectors():
    assert _hex(acse.aarq(conformance=0x401E5D)) == AARQ_GURUX
    lls = acse.aarq(password="12345678")
    parsed = acse.parse_aarq(lls)
    assert parsed["password"] == b"12345678" and parsed["mechanism"] == acse.MECH_LLS
    assert parsed["context"] == acse.LN_NO_CIPHER and parsed["max_pdu"] == 0xFFFF
    assert acse.parse_aarq(_b(AARQ_GURUX))["conformance"] == 0x401E5D


def test_aare_accepted_and_rejected():
    info = acse.parse_aare(_b(AARE_OK))
    assert info["result"] == 0 and info["max_pdu"] == 0x01F4 and info["conformance"] == 0x501F
    ours = acse.parse_aare(acse.aare(0, 0, 0x1E1D, 1024))
    assert ours["max_pdu"] == 1024 and ours["conformance"] == 0x1E1D
    err = raises(acse.AssociationRejected, acse.parse_aare, acse.aare(1, 13))
    assert err.result == 1 and err.diagnostic == "authentication-failure"
    assert "rejected-permanent" in str(err)
    assert acse.parse_aare(acse.aare(1, 13), check=False)["diagnostic"] == 13


def test_release():
    assert acse.parse_release(acse.rlrq(), acse.RLRQ) == 0
    assert acse.parse_release(acse.rlre(), acse.RLRE) == 0
    assert acse.parse_release(b"\x63\x00", acse.RLRE) is None
    raises(acse.AcseError, acse.parse_release, b"\x62\x00", acse.RLRE)


def test_malformed_acse():
    for text in ("", "61", "6105a203020100", "6103a20100", "61ffa1", "6000"):
        raises((acse.AcseError, acse.AssociationRejected), acse.parse_aare, _b(text))
    raises(acse.AcseError, acse.parse_aarq, _b("6000"))


def test_get_request_vectors():
    energy = cosem.obis("1.0.1.8.0.255")
    assert _hex(xdlms.get(3, energy, 2)) == "c001c100030100010800ff0200"
    assert _hex(xdlms.get_next(1)) == "c002c100000001"
    req = xdlms.parse_request(xdlms.get_list([(3, energy, 2), (8, cosem.CLOCK_OBIS, 2)]))
    assert req.service == "get-list" and [i[0] for i in req.items] == [3, 8]
    sel = cosem.by_entry(1, 10)
    req = xdlms.parse_request(xdlms.get(7, cosem.obis("1.0.99.1.0.255"), 2, sel))
    assert req.items[0][3][0] == 2 and cosem.parse_entry(req.items[0][3][1]) == (1, 10)


def test_set_action_requests():
    req = xdlms.parse_request(xdlms.set_(8, cosem.CLOCK_OBIS, 2, axdr.encode(b"x" * 12)))
    assert req.service == "set" and req.value == b"x" * 12
    req = xdlms.parse_request(xdlms.action(70, cosem.obis("0.0.96.3.10.255"), 1, b"\x0f\x00"))
    assert req.service == "action" and req.items[0][2] == 1 and req.value == 0
    assert xdlms.parse_request(xdlms.action(70, cosem.obis("0.0.96.3.10.255"), 2)).value is None


def test_responses_both_ways():
    r = xdlms.parse_response(xdlms.get_response(axdr.encode(12345)))
    assert r.service == "get" and axdr.decode(r.data) == 12345 and r.error is None
    r = xdlms.parse_response(xdlms.get_response(error=4))
    assert r.error.name == "object-undefined" and r.error.code == 4
    r = xdlms.parse_response(xdlms.get_block(2, b"\x01\x02", False))
    assert (r.service, r.block, r.last, r.raw) == ("get-block", 2, False, b"\x01\x02")
    r = xdlms.parse_response(xdlms.get_block(3, b"", True, error=19))
    assert r.error.name == "data-block-number-invalid"
    r = xdlms.parse_response(xdlms.get_list_response([(axdr.encode(1), 0), (None, 3)]))
    assert r.items[0][0] == axdr.encode(1) and r.items[1][1].name == "read-write-denied"
    assert xdlms.parse_response(xdlms.set_response()).error is None
    assert xdlms.parse_response(xdlms.set_response(3)).error.name == "read-write-denied"
    r = xdlms.parse_response(xdlms.action_response(0, axdr.encode(5)))
    assert axdr.decode(r.data) == 5
    assert xdlms.parse_response(xdlms.action_response(11)).error.name == "object-unavailable"


def test_exception_and_service_errors():
    e = raises(xdlms.ServiceError, xdlms.parse_response, xdlms.exception(1, 2))
    assert "service-not-allowed" in str(e) and "service-not-supported" in str(e)
    raises(xdlms.ServiceError, xdlms.parse_response, b"\x0e\x01\x06\x00")


def test_malformed_xdlms():
    for text in ("", "c4", "c401c1", "c401c100", "c401c10005", "c402c1000000", "c499c100",
                 "c403c1ff", "c402c10000000001000a01"):
        raises(xdlms.XdlmsError, xdlms.parse_response, _b(text))
    for text in ("c0", "c001c10003", "c003c1ff", "c001c100030100010800ff020000", "c7"):
        raises(xdlms.XdlmsError, xdlms.parse_request, _b(text))
