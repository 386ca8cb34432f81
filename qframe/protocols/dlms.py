"""A DLMS/COSEM client association, sans I/O: what to send next, what a received frame means,
timeouts as inputs. HDLC (IEC 62056-46) or WRAPPER (IEC 62056-47) below, ACSE and xDLMS above.

    assoc = Association(Settings(client_sap=16, server_upper=1, transport=HDLC, password=...))
    op = assoc.open()                      # SNRM/UA (HDLC) then AARQ/AARE
    value = drive(op, send, recv)          # send(bytes); recv() -> bytes, or None on timeout
    op = assoc.get(cosem.REGISTER, obis, 2); op = assoc.get_list(...); assoc.set(...);
    assoc.action(...); assoc.close()

An Operation is driven by three inputs: start() -> bytes to send; receive(data) -> bytes to
send (b"" when it waits); timeout() -> the last bytes again, until Settings.retries are spent
(then it fails with DlmsTimeout and the association is marked broken: open() starts over).
op.done, op.result, op.error (an exception: DataAccessError, ServiceError,
AssociationRejected, DlmsTimeout, ProtocolError) tell the outcome.

A GET answered in blocks asks for the next block until the last (at most Settings.max_blocks);
with on_row, the elements of an array result are handed over one by one as blocks arrive
(a load profile never sits whole in memory). Counters in Association.stats. COSEM-level reads
and writes as JSON-ready dicts over an association: protocols/dlms_client.py.
"""
from ..codecs import acse, axdr, cosem, hdlc, wrapper, xdlms
from ..codecs.acse import AssociationRejected
from ..codecs.xdlms import DataAccessError, ServiceError

HDLC = "hdlc"
WRAPPER = "wrapper"
TRANSPORTS = (HDLC, WRAPPER)
HEAP_SHARE = 8          # a whole response may take 1/HEAP_SHARE of the free heap (see bench)
# errors of one request: the association stays usable (link-level errors break it)
REQUEST_ERRORS = (DataAccessError, ServiceError, xdlms.XdlmsError, axdr.AxdrError,
                  cosem.CosemError)


class ProtocolError(Exception):
    """The meter answered something this client cannot accept."""


class DlmsTimeout(Exception):
    """No answer after every retry."""


class Settings(object):
    """Association settings (the extension fills them from config, the CLI from flags)."""

    def __init__(self, transport=HDLC, client_sap=16, server_upper=1, server_lower=None,
                 server_address_size=None, logical_device=1, password=None, max_info=128,
                 window=1, retries=2, max_pdu=1024, max_blocks=1000, max_response=65536,
                 max_element=4096, heap_share=HEAP_SHARE):
        if transport not in TRANSPORTS:
            raise ValueError("transport is hdlc or wrapper, not %r" % (transport,))
        self.transport = transport
        self.client_sap = client_sap
        self.server_upper = server_upper
        self.server_lower = server_lower
        self.server_address_size = server_address_size
        self.logical_device = logical_device
        self.password = password
        self.max_info = max_info
        self.window = window
        self.retries = retries
        self.max_pdu = max_pdu
        self.max_blocks = max_blocks
        self.max_response = max_response
        self.max_element = max_element
        self.heap_share = heap_share


def response_limit(settings, free=None):
    """Octets one whole (not streamed) response may take: settings.max_response, and at most
    the free heap divided by heap_share (decoded values take several times their octets,
    and the octets sit in the reply, the reassembly and the value at once). free: the free
    heap, gc.mem_free() when not given (no heap bound where gc cannot tell)."""
    limit = settings.max_response
    if free is None:
        free = _free_heap()
    if free is not None and settings.heap_share:
        limit = min(limit, free // settings.heap_share)
    return limit


def _free_heap():
    try:
        import gc
    except ImportError:
        return None
    mem_free = getattr(gc, "mem_free", None)
    if mem_free is None:
        return None                 # CPython: no heap to bound by (and no collection to pay)
    gc.collect()
    return mem_free()


def _value_of(exc):
    return exc.args[0] if exc.args else None


class Operation(object):
    """One exchange (open, get, set, action, close) of an Association; see the module doc."""

    def __init__(self, assoc, gen, label):
        self.assoc = assoc
        self.label = label
        self._gen = gen
        self._last = b""
        self._tries = 0
        self.done = False
        self.result = None
        self.error = None

    def _step(self, frame):
        try:
            out = self._gen.send(frame)
        except StopIteration as stop:
            self._finish(_value_of(stop), None)
            return b""
        except (ProtocolError, DataAccessError, ServiceError, AssociationRejected,
                acse.AcseError, xdlms.XdlmsError, axdr.AxdrError, hdlc.HdlcError,
                wrapper.WrapperError, ValueError) as exc:
            self._finish(None, exc)
            return b""
        except MemoryError:
            self._gen = None
            self._finish(None, ProtocolError("%s: response does not fit the heap" % self.label))
            return b""
        if out:
            self._last = out
            self._tries = 0
        return out

    def _finish(self, result, error):
        self.done = True
        self.result = result
        self.error = error
        stats = self.assoc.stats
        if error is None:
            stats["ok"] += 1
        else:
            stats["errors"] += 1
            if isinstance(error, (ProtocolError, hdlc.HdlcError, wrapper.WrapperError,
                                  acse.AcseError, DlmsTimeout)):
                self.assoc.broken = True

    def start(self):
        """The first bytes to send."""
        return self._step(None)

    def receive(self, data):
        """Bytes from the wire; the bytes to send next (b"" while waiting or when done)."""
        if self.done:
            return b""
        try:
            frames = self.assoc._frames(data)
        except wrapper.WrapperError as exc:
            self._finish(None, exc)
            return b""
        out = b""
        for frame in frames:
            if self.done:
                break
            if not self.assoc._ours(frame):
                continue
            sent = self._step(frame)
            if sent:
                out = out + sent if out else sent
        return out

    def expire(self, why="deadline passed"):
        """The caller's deadline for the whole job passed: fail with DlmsTimeout (noise,
        foreign frames or a meter answering RR for ever cannot keep an operation alive)."""
        if not self.done:
            self._gen = None
            self.assoc.stats["expired"] += 1
            self._finish(None, DlmsTimeout("%s: %s" % (self.label, why)))
            self.assoc.associated = False

    def timeout(self):
        """No answer within the timeout: the last bytes again, or a DlmsTimeout."""
        if self.done:
            return b""
        self._tries += 1
        self.assoc.stats["timeouts"] += 1
        if self._tries > self.assoc.settings.retries or not self._last:
            self._gen = None
            self._finish(None, DlmsTimeout("%s: no answer after %d tries" % (self.label, self._tries)))
            self.assoc.broken = True
            self.assoc.associated = False
            return b""
        self.assoc.stats["retransmits"] += 1
        return self._last


def drive(op, send, recv, expired=None):
    """Run op to the end with blocking callables: send(bytes); recv() -> bytes or None on
    timeout; expired() -> True once the job's deadline has passed. Returns op.result or
    raises op.error."""
    out = op.start()
    while True:
        if out:
            send(out)
        if op.done:
            break
        if expired is not None and expired():
            op.expire()
            break
        data = recv()
        out = op.timeout() if data is None else op.receive(data)
    if op.error is not None:
        raise op.error
    return op.result


class Association(object):
    """Client side of one association with one meter (see the module doc)."""

    def __init__(self, settings):
        self.settings = settings
        self.stats = {"ok": 0, "errors": 0, "timeouts": 0, "retransmits": 0, "frames_in": 0,
                      "ignored_frames": 0, "segments_in": 0, "segments_out": 0, "blocks": 0,
                      "trailing_octets": 0, "expired": 0, "too_large": 0, "unflagged_last": 0}
        if settings.transport == HDLC:
            self.client = hdlc.client_address(settings.client_sap)
            self.server = hdlc.server_address(settings.server_upper, settings.server_lower,
                                              settings.server_address_size)
        self.reset()

    def reset(self):
        """Forget the link state (after a broken association, or to start over)."""
        s = self.settings
        self.associated = False
        self.connected = False
        self.broken = False
        self.ns = 0
        self.nr = 0
        self.max_info_tx = s.max_info
        self.max_info_rx = s.max_info
        self.max_pdu = s.max_pdu
        self.conformance = 0
        self.last_trailing = 0
        if s.transport == HDLC:
            self.receiver = hdlc.Receiver(max(2048, s.max_info + 32))
        else:
            self.receiver = wrapper.Receiver(s.max_pdu + 64)

    # --- frames ----------------------------------------------------------------------------

    def _frames(self, data):
        frames = self.receiver.feed(data)
        self.stats["frames_in"] += len(frames)
        return frames

    def _ours(self, frame):
        if self.settings.transport == HDLC:
            ok = frame.dest == self.client and frame.src == self.server
        else:
            ok = frame.dst == self.settings.client_sap and frame.src == self.settings.logical_device
        if not ok:
            self.stats["ignored_frames"] += 1
        return ok

    def _hdlc(self, control, info=b"", segmented=False):
        return hdlc.encode(self.server, self.client, control, info, segmented)

    def _exchange(self, apdu):
        """Generator: send one APDU, return the reply APDU (segments and RRs handled)."""
        if self.settings.transport == WRAPPER:
            packet = yield wrapper.encode(self.settings.client_sap, self.settings.logical_device, apdu)
            return packet.apdu
        parts = hdlc.segments(hdlc.LLC_REQUEST + apdu, self.max_info_tx)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            frame = yield self._hdlc(hdlc.i_control(self.ns, self.nr), part, not last)
            self.ns = (self.ns + 1) & 7
            if not last:
                self.stats["segments_out"] += 1
                while True:
                    kind = self._link_check(frame)
                    if kind == "RR" and hdlc.nr_of(frame.control) == self.ns:
                        break
                    frame = yield b""
        chunks = []
        size = 0
        limit = response_limit(self.settings)
        while True:
            kind = self._link_check(frame)
            if kind == "I" and hdlc.ns_of(frame.control) == self.nr:
                self.nr = (self.nr + 1) & 7
                info = frame.info
                if not chunks:
                    if info[:3] != hdlc.LLC_RESPONSE:
                        raise ProtocolError("reply without the LLC header")
                    info = info[3:]
                    while info[:3] == hdlc.LLC_RESPONSE:     # a meter that repeats it
                        self.stats["trailing_octets"] += 3
                        info = info[3:]
                size += len(info)
                if size > limit:
                    self.stats["too_large"] += 1
                    raise ProtocolError("reply above %d octets" % limit)
                chunks.append(info)
                if not frame.segmented:
                    return b"".join(chunks)
                self.stats["segments_in"] += 1
                frame = yield self._hdlc(hdlc.rr_control(self.nr))
            else:
                self.stats["ignored_frames"] += 1
                frame = yield b""

    def _link_check(self, frame):
        """The frame's kind; DM and FRMR end the association with a ProtocolError."""
        kind = frame.kind
        if kind == "DM" or kind == "FRMR":
            self.associated = False
            self.connected = False
            raise ProtocolError("meter answered %s: link not connected" % kind)
        return kind

    # --- services --------------------------------------------------------------------------

    def open(self):
        """SNRM/UA (HDLC) then AARQ/AARE; the result is the AARE's dict."""
        return Operation(self, self._open(), "open")

    def _open(self):
        s = self.settings
        self.reset()
        if s.transport == HDLC:
            params = hdlc.encode_params(s.max_info, s.max_info, s.window, s.window)
            frame = yield self._hdlc(hdlc.SNRM | hdlc.POLL, params)
            while frame.kind != "UA":
                self._link_check(frame)
                frame = yield b""
            theirs = hdlc.swap(hdlc.decode_params(frame.info))
            self.max_info_tx = min(s.max_info, theirs["max_info_rx"]) if frame.info else 128
            self.max_info_rx = theirs["max_info_tx"]
            self.connected = True
        reply = yield from self._exchange(acse.aarq(s.password, max_pdu=s.max_pdu))
        info = acse.parse_aare(reply)
        self.max_pdu = info["max_pdu"] or s.max_pdu
        self.conformance = info["conformance"]
        self.associated = True
        return info

    def close(self):
        """RLRQ/RLRE (a refusal is ignored; skipped when the association is broken) then
        DISC/UA (HDLC), so the meter is free for the next client."""
        return Operation(self, self._close(), "close")

    def _close(self):
        if self.associated and not self.broken:
            try:
                reply = yield from self._exchange(acse.rlrq())
                acse.parse_release(reply, acse.RLRE)
            except (acse.AcseError, ProtocolError):
                pass
        self.associated = False
        if self.settings.transport == HDLC and self.connected:
            frame = yield self._hdlc(hdlc.DISC | hdlc.POLL)
            while frame.kind not in ("UA", "DM"):
                frame = yield b""
        self.connected = False
        return True

    def _service(self, apdu, expect):
        reply = yield from self._exchange(apdu)
        resp = xdlms.parse_response(reply)
        self._trailing(resp.trailing)
        if resp.service not in expect:
            if resp.service == "get" and resp.error is not None and "get-block" in expect:
                raise resp.error            # a refusal in place of the next block
            raise ProtocolError("%s response to a %s request" % (resp.service, expect[0]))
        return resp

    def _trailing(self, count):
        """Octets after a complete value or response: tolerated, counted."""
        if count:
            self.stats["trailing_octets"] += count
            self.last_trailing = count

    def get(self, cls, obis, attr, access=None, on_row=None, typed=False):
        """GET one attribute: the decoded value (or, with on_row, the count of array elements
        handed to on_row(element) as they arrive)."""
        return Operation(self, self._get(cls, obis, attr, access, on_row, typed), "get")

    def _get(self, cls, obis, attr, access, on_row, typed):
        resp = yield from self._service(xdlms.get(cls, obis, attr, access), ("get", "get-block"))
        if resp.service == "get":
            if resp.error is not None:
                raise resp.error
            if on_row is None:
                return self._value(resp.data, typed)
            stream = axdr.ArrayStream(self.settings.max_element)
            for item in stream.feed(resp.data):
                on_row(item)
            self._trailing(stream.trailing)
            return stream.seen
        if on_row is None:
            chunks, take = self._collector()
            yield from self._blocks(resp, take)
            return self._value(b"".join(chunks), typed)
        stream = axdr.ArrayStream(self.settings.max_element)

        def rows(raw):
            for item in stream.feed(raw):
                on_row(item)
        yield from self._blocks(resp, rows, lambda: stream.done)
        if not stream.done:
            raise ProtocolError("last block ends inside the array")
        self._trailing(stream.trailing)
        return stream.seen

    def _value(self, data, typed):
        value, trailing = axdr.decode_first(data, typed)
        self._trailing(trailing)
        return value

    def _collector(self):
        """(chunks, take): take(raw) appends to chunks, at most response_limit() in all."""
        chunks = []
        size = [0]
        limit = response_limit(self.settings)

        def take(raw):
            size[0] += len(raw)
            if size[0] > limit:
                self.stats["too_large"] += 1
                raise ProtocolError("response above %d octets" % limit)
            chunks.append(raw)
        return chunks, take

    def _blocks(self, resp, consume, complete=None):
        """Generator: consume(raw) for each block of a GET answered in blocks, asking for the
        next one until the last (at most max_blocks, numbered 1, 2, ...), or until
        complete() says the value is whole (a meter that does not flag its last block)."""
        expected = 1
        while True:
            if resp.error is not None:
                raise resp.error
            if resp.block != expected:
                raise ProtocolError("block %d, expected %d" % (resp.block, expected))
            self.stats["blocks"] += 1
            consume(resp.raw)
            if resp.last:
                return
            if complete is not None and complete():
                self.stats["unflagged_last"] += 1
                return
            if expected >= self.settings.max_blocks:
                raise ProtocolError("block transfer longer than %d blocks" % self.settings.max_blocks)
            expected += 1
            resp = yield from self._service(xdlms.get_next(resp.block), ("get-block",))

    def get_list(self, items, typed=False):
        """GET with list: [(cls, obis, attr[, access])] -> [(value, error)] in order."""
        return Operation(self, self._get_list(items, typed), "get-list")

    def _get_list(self, items, typed):
        resp = yield from self._service(xdlms.get_list(items), ("get-list", "get-block"))
        if resp.service == "get-block":
            chunks, take = self._collector()
            yield from self._blocks(resp, take)
            resp = xdlms.parse_response(bytes((xdlms.GET_RESPONSE, xdlms.WITH_LIST, xdlms.INVOKE))
                                        + b"".join(chunks))
        if len(resp.items) != len(items):
            raise ProtocolError("%d results for %d attributes" % (len(resp.items), len(items)))
        return [(None if raw is None else self._value(raw, typed), err) for raw, err in resp.items]

    def set(self, cls, obis, attr, value):
        """SET one attribute; value as A-XDR octets or anything axdr.encode takes."""
        if not isinstance(value, (bytes, bytearray)):
            value = axdr.encode(value)
        return Operation(self, self._set(cls, obis, attr, bytes(value)), "set")

    def _set(self, cls, obis, attr, value):
        resp = yield from self._service(xdlms.set_(cls, obis, attr, value), ("set",))
        if resp.error is not None:
            raise resp.error
        return True

    def action(self, cls, obis, method, params=None):
        """ACTION; params as A-XDR octets, a value, or None. Result: the return value or None."""
        if params is not None and not isinstance(params, (bytes, bytearray)):
            params = axdr.encode(params)
        return Operation(self, self._action(cls, obis, method, params), "action")

    def _action(self, cls, obis, method, params):
        resp = yield from self._service(xdlms.action(cls, obis, method, params), ("action",))
        if resp.error is not None:
            raise resp.error
        return None if resp.data is None else self._value(resp.data, False)
