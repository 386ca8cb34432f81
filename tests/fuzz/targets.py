"""Fuzz targets: every decoder and parser the module exposes to the outside.

A target is a function taking the fuzzer's bytes; it drives one decoder and asserts its
contract: only the documented exception escapes, memory and work stay bounded, and a valid
frame after the garbage still decodes. Add one with `@target("name")`; run.py (atheris, long
runs) and test_fuzz.py (hypothesis, a few seconds in `make test`) pick every target up.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def setup_paths():
    """Stage the board root and put it and the shim on sys.path (as tests/conftest.py)."""
    if REPO not in sys.path:
        sys.path.append(REPO)
    from tools.hostrun import board_root
    board_root.stage()
    for path in reversed([board_root.DEFAULT_ROOT] + board_root.shim_paths("cpython")
                         + [os.path.join(REPO, "tests", "portable")]):
        if path not in sys.path:
            sys.path.insert(0, path)
    import shimctl
    shimctl.install_fs(board_root.DEFAULT_ROOT)


TARGETS = {}


def target(name):
    def register(fn):
        TARGETS[name] = fn
        return fn
    return register


def _chunks(data, seed):
    """Split data into pieces of 1..64 octets chosen by seed (deterministic)."""
    out = []
    at = 0
    while at < len(data):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        size = 1 + (seed >> 16) % 64
        out.append(data[at:at + size])
        at += size
    return out


def _rfc1662(data, dialect):
    from usr.qframe.codecs import rfc1662
    max_frame = 256
    decoder = rfc1662.Decoder(dialect, max_frame, accm=data[0] if data else 0)
    body = data[2:]
    for chunk in _chunks(body, data[1] if len(data) > 1 else 0):
        for frame in decoder.feed(chunk):
            assert type(frame.payload) is bytes
            assert 0 <= frame.protocol <= 0xFFFF and 0 <= frame.cmd <= 0xFF
        assert decoder.buffered <= 2 * max_frame + 64, decoder.buffered
        held = len(getattr(decoder, "_cands", ())) + len(getattr(decoder, "_failed", ()))
        assert held <= max_frame, "bookkeeping grows"       # the legacy decoder's own state
    # work stays linear: searches about once per octet, FCS within the budget
    assert decoder.work <= (rfc1662.WORK_PER_OCTET + 4) * len(body) + \
        (rfc1662.WORK_BANK + 1) * max_frame, (decoder.work, len(body))
    # resync probe: a valid frame after the garbage still decodes
    probe = rfc1662.Frame(0x2100, 0xBF, b"probe")
    wire = b"\x7e" + rfc1662.encode(0x2100, 0xBF, b"probe", dialect)
    got = []
    for chunk in _chunks(wire, len(body)):
        got += decoder.feed(chunk)
    assert got and got[-1] == probe, (got, decoder.stats, decoder.last_error)
    decoder.flush()
    assert decoder.buffered == 0


@target("rfc1662_legacy")
def rfc1662_legacy(data):
    _rfc1662(data, "legacy")


@target("rfc1662_standard")
def rfc1662_standard(data):
    _rfc1662(data, "standard")


@target("meter")
def meter_messages(data):
    """0x2200 payloads through describe() and the typed-value parser: ValueError only."""
    from usr.qframe.codecs import meter
    if len(data) < 1:
        return
    cmd = data[0]
    payload = data[1:]
    for protocol in (meter.PROTO_PARAMETERS, meter.PROTO_TRANSPARENT):
        try:
            fields = meter.describe(protocol, cmd, payload)
        except ValueError:
            continue
        assert isinstance(fields, dict) and "kind" in fields
    try:
        meter.parse_typed_value(payload)
    except ValueError:
        pass


@target("hes_framed")
def hes_framed(data):
    """HES -> module frames (ack, data, command, pong): ProtocolError only, bounded buffer;
    every COMMAND body gets a reply from the command registry, which never raises."""
    from usr.qframe.codecs import hes
    proto = hes.FramedProtocol(max_frame=1024)
    for chunk in _chunks(data[1:], data[0] if data else 0):
        try:
            events = proto.feed(chunk)
        except hes.ProtocolError:
            return              # the link resets the connection
        for event in events:
            assert isinstance(event, (hes.Acked, hes.Downlink, hes.Command, hes.Pong)), event
            if isinstance(event, hes.Command):
                _check_reply(_commands().execute(event.body))
        assert len(proto._buffer) <= 1024 + hes.HEADER_SIZE + 64


@target("command_gate")
def command_gate(data):
    """Command bodies at the gate (qframe/protocols/auth.py): never raises, admits nothing
    unsigned or under a wrong key, and a refused body still gets a registry reply."""
    from usr.qframe.codecs import authkeys
    from usr.qframe.protocols.auth import CommandGate, Keyring
    key = bytes(range(1, 33))
    gate = CommandGate("fuzz-dev", Keyring({"k1": key}, "k1"), 5)
    signed = authkeys.seal_command(key, "fuzz-dev", "k1", 6, data.decode("latin-1"))
    for index, body in enumerate((data, signed, signed)):   # unsigned, signed, replayed
        verdict = gate.admit(body)
        assert verdict.ok == (index == 1), "admitted: unsigned or replayed"
        if verdict.ok:
            reply = _commands().execute(verdict.request)
            _check_reply(reply)
            opened = authkeys.open_json(key, "res", "fuzz-dev", gate.seal(reply, verdict))
            assert opened is not None and opened[1] == 6
        else:
            _check_reply(_commands().refuse(verdict.request, verdict.error))
    assert gate.last_ctr == 6 and gate.stats["refused_replay"] == 1


@target("mqtt_session")
def mqtt_session(data):
    """A broker sending anything after its CONNACK: MqttError only (the session is then
    closed with a reason), only the five event types, the buffer bounded by max_packet;
    inbound QoS 1 messages carry a pid the caller can acknowledge."""
    from usr.qframe.codecs import mqtt as codec
    from usr.qframe.protocols import mqtt_session as ms
    max_packet = 256
    session = ms.MqttSession("fuzz", keepalive_s=10, max_packet=max_packet)
    session.connect()
    session.receive(codec.connack(0), 0)
    for index in range(3):              # acks for these may come in the garbage
        session.publish("t/%d" % index, b"x", qos=1)
    now = 0
    for chunk in _chunks(data[1:], data[0] if data else 0):
        now += 700
        try:
            events = session.receive(chunk, now)
        except codec.MqttError as exc:
            assert session.state == "closed" and session.close_reason, exc
            return
        for event in events:
            assert isinstance(event, (ms.ConnAck, ms.Publish, ms.PubAck, ms.SubAck,
                                      ms.PingResp)), event
            if isinstance(event, ms.Publish) and event.qos:
                assert 1 <= event.pid <= 0xFFFF
                session.puback(event.pid)
        assert len(session._parser._buffer) <= max_packet + 5
        session.tick(now)
        if session.state == "closed":
            return


_COMMANDS = []


def _commands():
    """The app's command registry with the built-in commands and one that fails."""
    if not _COMMANDS:
        from usr.qframe import Application
        from usr.qframe.protocols.commands import commands_of
        registry = commands_of(Application("fuzz-commands"))

        @registry.register("boom")
        def boom(args):
            raise RuntimeError("handler bug")
        _COMMANDS.append(registry)
    return _COMMANDS[0]


def _check_reply(reply):
    import json
    assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), reply
    assert ("result" in reply) if reply["ok"] else isinstance(reply.get("error"), str), reply
    json.dumps(reply)           # the uplink can always send it


@target("commands")
def commands(data):
    """Any COMMAND body (bytes): a reply dict with ok true/false, never an exception."""
    _check_reply(_commands().execute(data))


@target("hes_raw")
def hes_raw(data):
    from usr.qframe.codecs import hes
    proto = hes.RawProtocol({})
    for chunk in _chunks(data, 7):
        for event in proto.feed(chunk):
            assert isinstance(event, hes.Downlink) and event.data == chunk


_RESOLVER = []


def _resolver():
    """A resolver wired like the app's: parameter handlers that parse, one that fails."""
    if _RESOLVER:
        return _RESOLVER[0]
    from usr.qframe.codecs import meter
    from usr.qframe.protocols.resolver import Resolver
    resolver = Resolver()

    @resolver.register(meter.PROTO_TRANSPARENT)
    def transparent(frame):
        return None

    @resolver.register(meter.PROTO_PARAMETERS, meter.CMD_GET, 0x2801)
    def get_2801(frame):
        return meter.get_response(meter.parse_get_request(frame.payload), b"\x01")

    @resolver.register(meter.PROTO_PARAMETERS, meter.CMD_SET, 0x8002)
    def set_8002(frame):
        pid, value = meter.parse_set_request(frame.payload)
        return meter.set_response(pid)

    @resolver.register(meter.PROTO_PARAMETERS, meter.CMD_ACTION, 0x8005)
    def fails(frame):
        raise RuntimeError("handler bug")

    _RESOLVER.append(resolver)
    return resolver


@target("resolver")
def resolver_dispatch(data):
    """Any frame dispatched: never raises; the reply is None or (protocol, cmd, payload)."""
    from usr.qframe.codecs import rfc1662
    if len(data) < 3:
        return
    frame = rfc1662.Frame(0x2200 if data[0] & 1 else (data[0] << 8) | data[1], data[2],
                          data[3:])
    reply = _resolver().dispatch(frame)
    if reply is not None:
        protocol, cmd, payload = reply
        rfc1662.encode(protocol, cmd, payload)  # a reply the link can send


@target("config")
def config_file(data):
    """dev.json of any bytes: ConfigError only; load(repair_config=True)-style repair never
    crashes and leaves every declared value valid."""
    from usr.qframe import Application, ConfigError
    from usr.qframe.builtins.uart import Uart
    from usr.qframe.builtins.clients import TcpClient
    from usr.qframe.builtins.netwatch import NetWatch
    path = "/usr/fuzz_dev.json"
    with open(path, "wb") as f:
        f.write(data)
    app = Application("fuzz")
    exts = [Uart(app=app), TcpClient(app=app), NetWatch(app=app)]
    try:
        app.config.from_json(path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and path in str(exc)
        return
    app.check_config(repair=True)
    for ext in exts:
        for key, field in ext.config_fields.items():
            assert field.problem(app.config[ext.config_section][key]) is None, key
    assert app.config["APP"]["workers"] >= 2


# --- DLMS (docs/DLMS.md) --------------------------------------------------------------------

@target("hdlc")
def hdlc_stream(data):
    """HDLC frames from a stream: nothing but Frames out, the buffer bounded, one-frame decode
    and SNRM/UA parameters raise HdlcError only; a valid frame after the garbage decodes."""
    from usr.qframe.codecs import hdlc
    receiver = hdlc.Receiver(max_frame=256)
    for chunk in _chunks(data[1:], data[0] if data else 0):
        for frame in receiver.feed(chunk):
            assert isinstance(frame.info, bytes) and 0 <= frame.control <= 0xFF
        assert receiver.buffered <= 256 + 2, receiver.buffered
    for parse in (hdlc.decode, hdlc.decode_params):
        try:
            parse(data)
        except hdlc.HdlcError:
            pass
    probe = hdlc.encode(b"\x21", b"\x03", hdlc.i_control(0, 1), b"\xe6\xe7\x00probe")
    got = receiver.feed(b"\x7e" + probe)
    assert got and got[-1].info == b"\xe6\xe7\x00probe", (got, receiver.stats)


@target("wrapper")
def wrapper_stream(data):
    """WRAPPER packets from a TCP stream: WrapperError only (the buffer is then empty)."""
    from usr.qframe.codecs import wrapper
    receiver = wrapper.Receiver(max_apdu=512)
    for chunk in _chunks(data, 3):
        try:
            for packet in receiver.feed(chunk):
                assert len(packet.apdu) <= 512
        except wrapper.WrapperError:
            assert receiver.buffered == 0
            return
        assert receiver.buffered <= 512 + wrapper.HEADER


@target("axdr")
def axdr_data(data):
    """A-XDR of any octets: AxdrError only, plain and typed; ArrayStream bounded."""
    from usr.qframe.codecs import axdr
    for typed in (False, True):
        try:
            value = axdr.decode(data, typed)
        except axdr.AxdrError:
            continue
        if typed:                   # re-encoding is stable (NaN-safe: compares octets)
            canonical = axdr.encode(value)
            assert axdr.encode(axdr.decode(canonical, True)) == canonical, value
    stream = axdr.ArrayStream(max_element=128)
    try:
        for chunk in _chunks(data, 5):
            stream.feed(chunk)
            assert len(stream._buf) <= 128 + 64
    except axdr.AxdrError:
        pass


@target("dlms_apdu")
def dlms_apdu(data):
    """xDLMS and ACSE APDUs of any octets: each parser raises its own errors only."""
    from usr.qframe.codecs import acse, xdlms
    for parse, errors in ((xdlms.parse_response, (xdlms.XdlmsError, xdlms.ServiceError)),
                          (xdlms.parse_request, (xdlms.XdlmsError,)),
                          (acse.parse_aare, (acse.AcseError, acse.AssociationRejected)),
                          (acse.parse_aarq, (acse.AcseError,))):
        try:
            parse(data)
        except errors:
            pass


@target("dlms_association")
def dlms_association(data):
    """A meter answering anything to a GET: the operation ends (result or a clear error) by
    its retries, and never raises."""
    from usr.qframe.codecs import hdlc
    from usr.qframe.protocols import dlms
    assoc = dlms.Association(dlms.Settings(retries=1, max_blocks=4, max_response=2048))
    assoc.connected = assoc.associated = True
    op = assoc.get(3, b"\x01\x00\x01\x08\x00\xff", 2)
    op.start()
    for chunk in _chunks(data, 11):
        if op.done:
            break
        if chunk[:1] == b"\x00":
            op.timeout()
        else:
            body = hdlc.encode(b"\x21", b"\x03", hdlc.i_control(assoc.nr, assoc.ns),
                               hdlc.LLC_RESPONSE + chunk) if chunk[:1] == b"\x01" else chunk
            op.receive(body)
    while not op.done:
        op.timeout()
    assert op.error is None or isinstance(op.error, Exception)


@target("pqueue_files")
def pqueue_files(data):
    """The flash queue's files damaged as data says (tests/portable/pqueue_corrupt.py): open
    never raises, intact records are delivered, lost ones counted exactly, no seq reused."""
    import pqueue_corrupt
    from checks import fresh_folder
    seed = 1
    for octet in data[:4]:
        seed = (seed << 8) | octet
    kinds = pqueue_corrupt.KINDS + ("multi",)
    kind = kinds[data[4] % len(kinds)] if len(data) > 4 else None
    figures = pqueue_corrupt.run_case(fresh_folder("/usr/fuzz", "pqueue"), seed, kind)
    assert figures["uncounted"] == 0 and figures["overcounted"] == 0, figures
