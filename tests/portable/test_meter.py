"""qframe.meter: 0x2100 / 0x2200 message building and parsing (CPython and MicroPython)."""
import ubinascii

from checks import raises
from usr.qframe.codecs import meter, rfc1662


def _hex(data):
    return ubinascii.hexlify(data).decode()


def test_constants():
    assert (meter.PROTO_TRANSPARENT, meter.PROTO_PARAMETERS) == (0x2100, 0x2200)
    assert (meter.CMD_TRANSPARENT, meter.CMD_GET, meter.CMD_SET, meter.CMD_EVENT,
            meter.CMD_ACTION) == (0xBF, 0xC0, 0xC1, 0xC2, 0xC3)
    assert (meter.CMD_GET_RESPONSE, meter.CMD_SET_RESPONSE, meter.CMD_EVENT_RESPONSE,
            meter.CMD_ACTION_RESPONSE, meter.CMD_GET_ERROR) == (0xC4, 0xC5, 0xC6, 0xC7, 0xC8)
    assert (meter.ACK_SUCCESS, meter.ACK_FAILURE) == (0x00, 0x0C)
    assert (meter.TAG_OCTET_STRING, meter.TAG_VISIBLE_STRING, meter.TAG_UNSIGNED8,
            meter.TAG_UNSIGNED16, meter.TAG_UNSIGNED32, meter.TAG_DATE_TIME) == (
        0x09, 0x0A, 0x11, 0x12, 0x06, 0x19)
    assert (meter.PID_MODULE_STATE, meter.PID_CSQ, meter.PID_METER_SERIAL,
            meter.PID_DEVICE_NAME) == (0x8002, 0x8003, 0x8005, 0x8007)


def test_spec_vectors():
    assert _hex(meter.tcp_to_meter_packet(b"hello")) == "7eff0300210006bf68656c6c6f37e97e"
    assert (_hex(meter.module_to_meter_packet(meter.CMD_GET, 0x2801))
            == "7eff0300220003c0012891f57e")
    assert _hex(meter.pack(meter.get_request(meter.PID_CSQ))) == "7eff0300220003c003808b077e"
    assert (_hex(meter.tcp_to_meter_packet(b"hello", rfc1662.STANDARD, 0))
            == "7eff0300210006bf68656c6c6fe9377e")
    frame = rfc1662.decode_frame(meter.module_to_meter_packet(meter.CMD_GET, 0x2801,
                                                              dialect=rfc1662.STANDARD),
                                 rfc1662.STANDARD)
    assert frame.message() == meter.get_request(0x2801)


def test_pid_low_octet_first():
    assert meter.get_request(0x8003) == (0x2200, 0xC0, b"\x03\x80")
    assert meter.parse_get_request(b"\x03\x80") == 0x8003
    assert meter.pid_of(b"\x05\x80\x00") == 0x8005
    assert meter.pid_of(b"\x05") is None


def test_get_round_trips():
    message = meter.get_response(meter.PID_CSQ, b"\x15")
    assert message == (0x2200, 0xC4, b"\x03\x80\x01\x15")
    assert meter.parse_get_response(message[2]) == (0x8003, b"\x15")
    assert meter.parse_get_response(meter.get_response(0x2801, b"")[2]) == (0x2801, b"")
    error = meter.get_error(0x2801)
    assert error == (0x2200, 0xC8, b"\x01\x28\x01\x0c")
    assert meter.parse_get_error(error[2]) == (0x2801, meter.ACK_FAILURE)


def test_set_event_action_round_trips():
    message = meter.set_request(meter.PID_METER_SERIAL, b"12345678")
    assert message == (0x2200, 0xC1, b"\x05\x80\x0812345678")
    assert meter.parse_set_request(message[2]) == (0x8005, b"12345678")
    response = meter.set_response(0x8005)
    assert response == (0x2200, 0xC5, b"\x05\x80\x01\x00")
    assert meter.parse_set_response(response[2]) == (0x8005, meter.ACK_SUCCESS)
    assert meter.parse_set_response(meter.set_response(0x8005, meter.ACK_FAILURE)[2])[1] == 0x0C
    assert meter.parse_event(meter.event(0x3001, b"\x01\x02")[2]) == (0x3001, b"\x01\x02")
    assert meter.event_response() == (0x2200, 0xC6, b"\x01\x00")
    assert meter.parse_event_response(b"\x01\x0c") == meter.ACK_FAILURE
    assert meter.parse_action(meter.action(0x3008, b"\xaa")[2]) == (0x3008, b"\xaa")
    assert meter.parse_action_response(meter.action_response(0x3008)[2]) == (0x3008, 0)
    assert meter.transparent(bytearray(b"apdu")) == (0x2100, 0xBF, b"apdu")


def test_typed_values():
    cases = [(meter.TAG_UNSIGNED8, 0x15, b"\x11\x15"),
             (meter.TAG_UNSIGNED16, 0x1234, b"\x12\x12\x34"),
             (meter.TAG_UNSIGNED32, 0xDEADBEEF, b"\x06\xde\xad\xbe\xef"),
             (meter.TAG_OCTET_STRING, b"\x00\x7e", b"\x09\x02\x00\x7e"),
             (meter.TAG_VISIBLE_STRING, "EC200U", b"\x0a\x06EC200U"),
             (meter.TAG_DATE_TIME, bytes(range(12)), b"\x19" + bytes(range(12)))]
    for tag, value, wire in cases:
        encoded = meter.typed_value(0x0102, tag, value)
        assert encoded == b"\x01\x02" + wire, (tag, encoded)
        assert meter.parse_typed_value(encoded) == (0x0102, tag, value)
    payload = meter.set_typed(meter.PID_DEVICE_NAME, 1, meter.TAG_VISIBLE_STRING, "abc")[2]
    pid, value = meter.parse_set_request(payload)
    assert pid == 0x8007 and meter.parse_typed_value(value) == (1, 0x0A, "abc")
    assert meter.typed_value(1, meter.TAG_OCTET_STRING, "ab") == b"\x00\x01\x09\x02ab"


def test_builders_reject_bad_values():
    raises(ValueError, meter.get_request, 0x10000)
    raises(ValueError, meter.get_request, -1)
    assert "LEN" in str(raises(ValueError, meter.get_response, 1, bytes(256)))
    raises(ValueError, meter.set_response, 1, 0x100)
    raises(ValueError, meter.typed_value, 0x10000, meter.TAG_UNSIGNED8, 1)
    raises(ValueError, meter.typed_value, 1, meter.TAG_UNSIGNED8, 256)
    raises(ValueError, meter.typed_value, 1, meter.TAG_UNSIGNED16, -1)
    raises(ValueError, meter.typed_value, 1, meter.TAG_DATE_TIME, bytes(11))
    assert "0x42" in str(raises(ValueError, meter.typed_value, 1, 0x42, 1))
    raises(ValueError, meter.module_to_meter_packet, meter.CMD_GET, 1, b"x")
    raises(ValueError, meter.module_to_meter_packet, meter.CMD_GET_RESPONSE, 1, b"x")


def test_malformed_payloads_raise_value_error_naming_the_problem():
    cases = [(meter.parse_get_request, b"\x03", "GET request"),
             (meter.parse_get_request, b"\x03\x80\x00", "GET request"),
             (meter.parse_get_response, b"\x03\x80", "GET response"),
             (meter.parse_get_response, b"\x03\x80\x02\x15", "LEN says 2"),
             (meter.parse_get_error, b"\x03\x80\x01", "GET error"),
             (meter.parse_set_request, b"\x05\x80\x09abc", "SET request"),
             (meter.parse_set_response, b"\x05\x80\x02\x00", "LEN must be 1"),
             (meter.parse_event_response, b"\x02\x00", "EVENT response"),
             (meter.parse_event_response, b"\x01", "EVENT response"),
             (meter.parse_action_response, b"", "ACTION response"),
             (meter.parse_typed_value, b"\x00\x01\x11", "typed value"),
             (meter.parse_typed_value, b"\x00\x01\x42\x00", "tag 0x42"),
             (meter.parse_typed_value, b"\x00\x01\x12\x00", "unsigned16"),
             (meter.parse_typed_value, b"\x00\x01\x09\x05ab", "length octet"),
             (meter.parse_typed_value, b"\x00\x01\x19\x00\x00", "date-time")]
    for parse, payload, words in cases:
        message = str(raises(ValueError, parse, payload))
        assert words in message, (payload, message)


def test_failure_responses():
    assert meter.failure_response(meter.CMD_GET, b"\x03\x80") == meter.get_error(0x8003)
    assert (meter.failure_response(meter.CMD_SET, b"\x05\x80\x01x")
            == (0x2200, 0xC5, b"\x05\x80\x01\x0c"))
    assert meter.failure_response(meter.CMD_EVENT, b"") == (0x2200, 0xC6, b"\x01\x0c")
    assert (meter.failure_response(meter.CMD_ACTION, b"\x08\x30\x00")
            == (0x2200, 0xC7, b"\x08\x30\x01\x0c"))
    assert meter.failure_response(meter.CMD_GET_RESPONSE, b"\x03\x80\x01\x15") is None
    assert meter.failure_response(meter.CMD_GET, b"\x03") is None


def test_describe():
    assert meter.describe(0x2100, 0xBF, b"x") == {"kind": "transparent"}
    assert meter.describe(0x2200, 0xC0, b"\x03\x80") == {"kind": "GET", "pid": 0x8003}
    typed = meter.set_typed(0x8007, 2, meter.TAG_UNSIGNED16, 7)[2]
    fields = meter.describe(0x2200, 0xC1, typed)
    assert (fields["pid"], fields["rid"], fields["tag"], fields["data"]) == (0x8007, 2, 0x12, 7)
    assert meter.describe(0x2200, 0xC1, b"\x07\x80\x01\x00")["value"] == b"\x00"
    assert meter.describe(0x2200, 0xC5, b"\x07\x80\x01\x0c")["ack"] == 0x0C
    assert meter.describe(0x2200, 0xC6, b"\x01\x00") == {"kind": "EVENT response", "ack": 0}
    raises(ValueError, meter.describe, 0x2200, 0xC4, b"\x07")
