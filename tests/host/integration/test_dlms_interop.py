"""DLMS interop with a real peer: Gurux's client and translator (gurux-dlms, test-only).
Our frames parse in gurux; gurux's frames decode in ours; gurux's client reads our simulated
meter end to end over HDLC and WRAPPER."""
import datetime

import pytest

from tools.hostrun import board_root

board_root.use_device_code()

from gurux_dlms import GXByteBuffer, GXDLMSTranslator, GXReplyData  # noqa: E402
from gurux_dlms.enums import Conformance, RequestTypes, TranslatorOutputType  # noqa: E402
from gurux_dlms.objects import (GXDLMSClock, GXDLMSData, GXDLMSDisconnectControl,  # noqa: E402
                                GXDLMSProfileGeneric, GXDLMSRegister)

from gurux_peer import GuruxSession, client as gurux_client  # noqa: E402
from tools.simulators import dlms_server  # noqa: E402
from usr.qframe.codecs import acse, axdr, cosem, hdlc, wrapper, xdlms  # noqa: E402

SRV = hdlc.server_address(1)
CL = hdlc.client_address(16)
ENERGY = cosem.obis("1.0.1.8.0.255")
PROFILE = cosem.obis(dlms_server.PROFILE)


def _xml(frame):
    return GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML).messageToXml(GXByteBuffer(frame))


def _i(apdu, ns=0, nr=0):
    return hdlc.encode(SRV, CL, hdlc.i_control(ns, nr), hdlc.LLC_REQUEST + apdu)


def test_gurux_parses_our_frames():
    cases = [
        (hdlc.encode(SRV, CL, hdlc.SNRM | hdlc.POLL, hdlc.encode_params(256, 256)),
         ["<Snrm>", '<MaxInfoTX Value="256" />', '<WindowSizeRX Value="1" />']),
        (_i(acse.aarq()), ["<AssociationRequest>", '<ApplicationContextName Value="LN" />',
                           '<ConformanceBit Name="Get" />', '<ProposedMaxPduSize Value="FFFF" />']),
        (_i(acse.aarq("12345678")), ['<MechanismName Value="Low" />',
                                     '<CallingAuthentication Value="3132333435363738" />']),
        (_i(xdlms.get(3, ENERGY, 2), 1, 1), ["<GetRequestNormal>", '<ClassId Value="0003" />',
                                             '<InstanceId Value="0100010800FF" />']),
        (_i(xdlms.get(7, PROFILE, 2, cosem.by_range(axdr.DateTime(2024, 1, 1, 0, 0, 0),
                                                     axdr.DateTime(2024, 1, 2, 0, 0, 0)))),
         ['<AccessSelector Value="01" />', '<OctetString Value="0000010000FF" />']),
        (_i(xdlms.get_next(2), 2, 2), ["<GetRequestForNextDataBlock>", '<BlockNumber Value="00000002" />']),
        (_i(xdlms.set_(8, cosem.CLOCK_OBIS, 2, axdr.encode(axdr.DateTime(2024, 5, 6, 7, 8, 9)))),
         ["<SetRequestNormal>", "<OctetString"]),
        (_i(xdlms.action(70, cosem.obis("0.0.96.3.10.255"), 1, axdr.encode(axdr.Typed(axdr.INTEGER, 0)))),
         ["<ActionRequestNormal>", '<MethodId Value="01" />', '<Int8 Value="00" />']),
        (_i(xdlms.get_list([(3, ENERGY, 2), (8, cosem.CLOCK_OBIS, 2)])), ["<GetRequestWithList>"]),
        (hdlc.encode(SRV, CL, hdlc.rr_control(3)), ['<FrameType Value="71" />']),
        (hdlc.encode(SRV, CL, hdlc.DISC | hdlc.POLL), ["<Disc"]),
        (_i(acse.rlrq()), ["<ReleaseRequest>"]),
        (wrapper.encode(16, 1, xdlms.get(3, ENERGY, 2)), ["<WRAPPER", "<GetRequestNormal>"]),
    ]
    for frame, wanted in cases:
        xml = _xml(frame)
        for text in wanted:
            assert text in xml, (text, xml)


def _decode_hdlc(frame):
    f = hdlc.decode(bytes(frame))
    assert f.dest == SRV and f.src == CL
    return f


def test_our_codecs_decode_gurux_frames():
    c = gurux_client()
    snrm = _decode_hdlc(c.snrmRequest())
    assert snrm.kind == "SNRM"
    aarq = _decode_hdlc(c.aarqRequest()[0])
    assert acse.parse_aarq(aarq.info[3:])["context"] == acse.LN_NO_CIPHER
    lls = gurux_client(password="12345678", client_sap=1)
    frame = hdlc.decode(bytes(lls.aarqRequest()[0]))
    assert acse.parse_aarq(frame.info[3:])["password"] == b"12345678"
    req = xdlms.parse_request(_decode_hdlc(c.read(GXDLMSRegister("1.0.1.8.0.255"), 2)[0]).info[3:])
    assert req.service == "get" and req.items[0][:3] == (3, ENERGY, 2)
    pg = GXDLMSProfileGeneric(dlms_server.PROFILE)
    pg.captureObjects.append((GXDLMSClock("0.0.1.0.0.255"), _capture()))
    req = xdlms.parse_request(_decode_hdlc(c.readRowsByEntry(pg, 1, 10)[0]).info[3:])
    assert req.items[0][3][0] == 2 and cosem.parse_entry(req.items[0][3][1]) == (1, 10)
    req = xdlms.parse_request(_decode_hdlc(c.readRowsByRange(
        pg, datetime.datetime(2024, 1, 1), datetime.datetime(2024, 1, 2))[0]).info[3:])
    start, end = cosem.parse_range(req.items[0][3][1])
    assert (start.year, start.month, start.day, end.day) == (2024, 1, 1, 2)
    clock = GXDLMSClock("0.0.1.0.0.255")
    clock.time = datetime.datetime(2024, 5, 6, 7, 8, 9)
    req = xdlms.parse_request(_decode_hdlc(c.write(clock, 2)[0]).info[3:])
    assert req.service == "set" and cosem.as_datetime(req.value).iso() == "2024-05-06T07:08:09"
    dc = GXDLMSDisconnectControl("0.0.96.3.10.255")
    req = xdlms.parse_request(_decode_hdlc(c.method(dc, 1, 0, 15)[0]).info[3:])
    assert req.service == "action" and req.items[0][:3] == (70, cosem.obis("0.0.96.3.10.255"), 1)
    c.setNegotiatedConformance(Conformance.MULTIPLE_REFERENCES | Conformance.GET)
    req = xdlms.parse_request(_decode_hdlc(c.readList(
        [(GXDLMSRegister("1.0.1.8.0.255"), 2), (clock, 2)])[0][0]).info[3:])
    assert req.service == "get-list" and len(req.items) == 2
    reply = GXReplyData()
    reply.moreData = RequestTypes.FRAME
    rr = _decode_hdlc(c.receiverReady(reply))
    assert rr.kind == "RR"
    w = gurux_client("wrapper")
    packet = wrapper.decode(bytes(w.read(GXDLMSRegister("1.0.1.8.0.255"), 2)[0]))
    assert (packet.src, packet.dst) == (16, 1) and xdlms.parse_request(packet.apdu).service == "get"


def _capture():
    from gurux_dlms.objects import GXDLMSCaptureObject
    return GXDLMSCaptureObject(2, 0)


@pytest.fixture(scope="module")
def server():
    with dlms_server.Server(dlms_server.MeterModel(rows=300)) as srv:
        srv.listen("hdlc")
        srv.listen("wrapper")
        yield srv


@pytest.mark.parametrize("transport", ["hdlc", "wrapper"])
def test_gurux_reads_our_meter(server, transport):
    s = GuruxSession("127.0.0.1", server.ports[transport], transport)
    s.open()
    try:
        reg = GXDLMSRegister("1.0.1.8.0.255")
        s.read(reg, 3)
        s.read(reg, 2)
        assert (reg.value, reg.scaler, int(reg.unit)) == (1234.5, 0.1, 30)
        clock = GXDLMSClock("0.0.1.0.0.255")
        s.read(clock, 2)
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        got = clock.time.value.replace(tzinfo=None)
        assert abs((got - now).total_seconds()) < 120
        data = GXDLMSData("0.0.96.1.0.255")
        s.read(data, 2)
        assert bytes(data.value) == b"MTR00000001"
        pg = GXDLMSProfileGeneric(dlms_server.PROFILE)
        s.read(pg, 3)
        assert len(pg.captureObjects) == 3
        s.read(pg, 2)                                    # all 300 rows, block transfer
        assert len(pg.buffer) == 300 and pg.buffer[-1][1:] == [100000 + 299 * 25, 5299]
        pg.buffer.clear()
        s.rows_by_entry(pg, 1, 5)
        assert [row[1] for row in pg.buffer] == [100000, 100025, 100050, 100075, 100100]
        pg.buffer.clear()
        s.rows_by_range(pg, datetime.datetime(2024, 1, 1, 1, 0), datetime.datetime(2024, 1, 1, 2, 0))
        assert [row[2] for row in pg.buffer] == [5004, 5005, 5006, 5007, 5008]
    finally:
        s.close()


def test_gurux_with_low_level_password(server):
    s = GuruxSession("127.0.0.1", server.ports["hdlc"], "hdlc", password="12345678", client_sap=1)
    s.open()
    reg = GXDLMSRegister("1.0.32.7.0.255")
    s.read(reg, 3)
    s.read(reg, 2)
    assert reg.value == pytest.approx(230.1)
    s.close()
