"""The simulated meter's DLMS/COSEM server (host only): HDLC or WRAPPER framing, ACSE with no
security or a low-level password, GET (normal, with list, block transfer), SET, ACTION, and a
small object model: clock, energy registers with scaler/unit, data objects, a disconnector and
a load profile of a few hundred rows. Faults on command: slow answers, forced segmentation,
dropped and malformed frames.

Used by tools/simulators/meter.py (HDLC inside transparent meter-link frames on its pty) and
standalone:

    python -m tools.simulators.dlms_server [--wrapper-port 4059] [--hdlc-port 4060]
                                           [--pty PATH] [--password PW] [--rows N]

Session (one per connection) is sans I/O: feed(data) -> [bytes to send].
"""
import argparse
import os
import socket
import sys
import threading
import time

from tools.hostrun import board_root
from tools.simulators.pump import pump_fd, pump_socket

board_root.use_device_code()

from usr.qframe.codecs import acse, axdr, cosem, hdlc, wrapper, xdlms  # noqa: E402
from usr.qframe.codecs.axdr import Typed, DateTime  # noqa: E402

PUBLIC_CLIENT = 16
PASSWORD = "12345678"
PROFILE = "1.0.99.1.0.255"
PROFILE_START = DateTime(2024, 1, 1, 0, 0, 0, 0, None, 0).epoch()
PROFILE_PERIOD = 900


def _t(tag, value):
    return Typed(tag, value)


class MeterModel(object):
    """COSEM objects by (class, OBIS octets): attribute -> value (Typed) or callable."""

    def __init__(self, rows=300, serial="MTR00000001"):
        self.clock_offset = 0.0
        self.rows = rows
        self.disconnected = False
        self.objects = {}
        self.writable = set()
        reg = cosem.REGISTER
        self._add(reg, "1.0.1.8.0.255", {2: _t(axdr.DOUBLE_LONG_UNSIGNED, 12345),
                                         3: (_t(axdr.INTEGER, -1), _t(axdr.ENUM, 30))})
        self._add(reg, "1.0.2.8.0.255", {2: _t(axdr.DOUBLE_LONG_UNSIGNED, 678),
                                         3: (_t(axdr.INTEGER, 0), _t(axdr.ENUM, 30))})
        self._add(reg, "1.0.32.7.0.255", {2: _t(axdr.LONG_UNSIGNED, 2301),
                                          3: (_t(axdr.INTEGER, -1), _t(axdr.ENUM, 35))})
        self._add(cosem.EXTENDED_REGISTER, "1.0.1.6.0.255", {
            2: _t(axdr.DOUBLE_LONG_UNSIGNED, 4200), 3: (_t(axdr.INTEGER, 0), _t(axdr.ENUM, 27)),
            4: _t(axdr.UNSIGNED, 0),
            5: _t(axdr.OCTET_STRING, DateTime(2024, 1, 1, 8, 15, 0, 0, None, 0).encode())})
        self._add(cosem.DATA, "0.0.96.1.0.255", {2: _t(axdr.OCTET_STRING, serial.encode())})
        self._add(cosem.DATA, "0.0.42.0.0.255", {2: _t(axdr.OCTET_STRING, b"QFR" + serial.encode())})
        self._add(cosem.DATA, "0.0.96.1.1.255", {2: _t(axdr.VISIBLE_STRING, "qframe sim 1.0")})
        self.writable.add((cosem.DATA, cosem.obis("0.0.96.1.1.255"), 2))
        self._add(cosem.CLOCK, "0.0.1.0.0.255", {2: self._clock_value, 3: _t(axdr.LONG, 0),
                                                 4: _t(axdr.UNSIGNED, 0)})
        self.writable.add((cosem.CLOCK, cosem.CLOCK_OBIS, 2))
        self._add(70, "0.0.96.3.10.255", {2: lambda: _t(axdr.BOOLEAN, not self.disconnected),
                                          3: lambda: _t(axdr.ENUM, 0 if self.disconnected else 1)})
        self.columns = [(cosem.CLOCK, cosem.CLOCK_OBIS, 2), (reg, cosem.obis("1.0.1.8.0.255"), 2),
                        (reg, cosem.obis("1.0.2.8.0.255"), 2)]
        self._add(cosem.PROFILE_GENERIC, PROFILE, {
            2: self._buffer,
            3: _t(axdr.ARRAY, [_t(axdr.STRUCTURE, (_t(axdr.LONG_UNSIGNED, c), _t(axdr.OCTET_STRING, o),
                                                   _t(axdr.INTEGER, a), _t(axdr.LONG_UNSIGNED, 0)))
                               for c, o, a in self.columns]),
            4: _t(axdr.DOUBLE_LONG_UNSIGNED, PROFILE_PERIOD), 5: _t(axdr.ENUM, 1),
            7: lambda: _t(axdr.DOUBLE_LONG_UNSIGNED, self.rows),
            8: lambda: _t(axdr.DOUBLE_LONG_UNSIGNED, self.rows)})

    def _add(self, cls, ln, attrs):
        octets = cosem.obis(ln)
        attrs[1] = _t(axdr.OCTET_STRING, octets)
        self.objects[(cls, octets)] = attrs

    def now(self):
        return DateTime.from_epoch(time.time() + self.clock_offset)

    def _clock_value(self):
        return _t(axdr.OCTET_STRING, self.now().encode())

    def row(self, index):
        """Profile entry index (0-based)."""
        when = DateTime.from_epoch(PROFILE_START + index * PROFILE_PERIOD)
        return _t(axdr.STRUCTURE, (_t(axdr.OCTET_STRING, when.encode()),
                                   _t(axdr.DOUBLE_LONG_UNSIGNED, 100000 + index * 25),
                                   _t(axdr.DOUBLE_LONG_UNSIGNED, 5000 + index)))

    def _buffer(self, access=None):
        first, last = 0, self.rows - 1
        if access is not None:
            selector, params = access
            if selector == 1:
                start, end = cosem.parse_range(params)
                first = max(0, -(-(start.epoch() - PROFILE_START) // PROFILE_PERIOD))
                last = min(self.rows - 1, (end.epoch() - PROFILE_START) // PROFILE_PERIOD)
            elif selector == 2:
                a, b = cosem.parse_entry(params)
                first = max(0, a - 1)
                last = self.rows - 1 if b == 0 else min(self.rows - 1, b - 1)
            else:
                raise ValueError("selector %d" % selector)
        return _t(axdr.ARRAY, [self.row(i) for i in range(first, last + 1)])

    def read(self, cls, ln, attr, access=None):
        """(value octets, 0) or (None, data-access-result)."""
        attrs = self.objects.get((cls, ln))
        if attrs is None:
            return None, 4 if not any(k[1] == ln for k in self.objects) else 9
        if attr not in attrs:
            return None, 4
        value = attrs[attr]
        try:
            if callable(value):
                value = value(access) if attr == 2 and cls == cosem.PROFILE_GENERIC else value()
            elif access is not None:
                return None, 13
        except (ValueError, cosem.CosemError, axdr.AxdrError):
            return None, 250
        return axdr.encode(value), 0

    def write(self, cls, ln, attr, value):
        if (cls, ln, attr) not in self.writable:
            return 3
        if cls == cosem.CLOCK:
            try:
                when = cosem.as_datetime(value)
            except cosem.CosemError:
                return 12
            self.clock_offset = when.epoch() - time.time()
            return 0
        current = self.objects[(cls, ln)][attr]
        if not isinstance(value, type(current.value)):
            return 12
        self.objects[(cls, ln)][attr] = _t(current.tag, value)
        return 0

    def act(self, cls, ln, method, params):
        if cls == 70 and ln == cosem.obis("0.0.96.3.10.255") and method in (1, 2):
            self.disconnected = method == 1
            return 0, None
        return 11, None


class Faults(object):
    """Faults the next answers suffer: delay_s each, drop N frames, corrupt N frames,
    force max_info (segmentation), max_pdu (block transfer)."""

    def __init__(self):
        self.delay_s = 0.0
        self.drop = 0
        self.corrupt = 0
        self.max_info = None
        self.max_pdu = None
        self.mute = False           # answer nothing at all (a meter that stopped)


class Session(object):
    """One client connection: feed(data) -> [bytes to send]."""

    def __init__(self, model, transport="hdlc", upper=1, password=PASSWORD, max_pdu=1024,
                 max_info=128, faults=None, logical_device=1, log=None):
        self.model = model
        self.transport = transport
        self.upper = upper
        self.password = password
        self.server_max_pdu = max_pdu
        self.server_max_info = max_info
        self.faults = faults or Faults()
        self.logical_device = logical_device
        self.log = log or (lambda text: None)
        self.stats = {"frames": 0, "apdus": 0, "bad": 0, "ignored": 0}
        self.receiver = hdlc.Receiver() if transport == "hdlc" else wrapper.Receiver()
        self._reset_link()

    def _reset_link(self):
        self.connected = False
        self.associated = False
        self.client_sap = None
        self.ns = 0
        self.nr = 0
        self.max_info_tx = 128
        self.rx_parts = []
        self.tx_pending = []
        self.last_sent = []
        self.max_pdu = self.server_max_pdu
        self.blocks = None
        self.our_address = None
        self.client_address = None

    # --- input ----------------------------------------------------------------------------

    def feed(self, data):
        try:
            units = self.receiver.feed(data)
        except wrapper.WrapperError as exc:
            self.log("bad WRAPPER stream: %s" % exc)
            self.stats["bad"] += 1
            return []
        out = []
        for unit in units:
            self.stats["frames"] += 1
            if self.transport == "hdlc":
                out += self._hdlc(unit)
            else:
                out += self._wrapper(unit)
        return self._apply_faults(out)

    def _apply_faults(self, frames):
        f = self.faults
        if f.mute:
            return []
        out = []
        for frame in frames:
            if f.drop > 0:
                f.drop -= 1
                self.log("dropped a frame")
                continue
            if f.corrupt > 0:
                f.corrupt -= 1
                frame = frame[:-3] + bytes((frame[-3] ^ 0xFF,)) + frame[-2:]
                self.log("corrupted a frame")
            out.append(frame)
        return out

    def _wrapper(self, packet):
        if packet.dst != self.logical_device:
            self.stats["ignored"] += 1
            return []
        self.client_sap = packet.src
        reply = self._apdu(packet.apdu)
        return [wrapper.encode(self.logical_device, packet.src, reply)] if reply else []

    def _hdlc(self, frame):
        try:
            upper, _lower = hdlc.parse_address(frame.dest)
        except hdlc.HdlcError:
            upper = None
        if upper != self.upper or len(frame.src) != 1:
            self.stats["ignored"] += 1
            return []
        kind = frame.kind
        self.our_address, self.client_address = frame.dest, frame.src
        if kind == "SNRM":
            self._reset_link()
            self.our_address, self.client_address = frame.dest, frame.src
            self.client_sap = frame.src[0] >> 1
            try:
                theirs = hdlc.decode_params(frame.info)
            except hdlc.HdlcError:
                return [self._frame(hdlc.FRMR | hdlc.POLL)]
            limit = self.faults.max_info or self.server_max_info
            self.max_info_tx = min(limit, theirs["max_info_rx"])
            max_rx = min(limit, theirs["max_info_tx"])
            self.connected = True
            return [self._frame(hdlc.UA | hdlc.POLL, hdlc.encode_params(self.max_info_tx, max_rx, 1, 1))]
        if kind == "DISC":
            was = self.connected
            self._reset_link()
            self.our_address, self.client_address = frame.dest, frame.src
            return [self._frame((hdlc.UA if was else hdlc.DM) | hdlc.POLL)]
        if not self.connected:
            return [self._frame(hdlc.DM | hdlc.POLL)]
        if kind == "RR":
            if self.tx_pending:
                return [self._next_segment()]
            return [self._frame(hdlc.rr_control(self.nr))]
        if kind != "I":
            return [self._frame(hdlc.FRMR | hdlc.POLL)]
        ns = hdlc.ns_of(frame.control)
        if ns == (self.nr - 1) & 7 and self.last_sent:
            self.log("repeated I frame: answering again")
            return list(self.last_sent)
        if ns != self.nr:
            return [self._frame(hdlc.FRMR | hdlc.POLL)]
        self.nr = (self.nr + 1) & 7
        self.rx_parts.append(frame.info)
        if frame.segmented:
            return [self._frame(hdlc.rr_control(self.nr))]
        info = b"".join(self.rx_parts)
        self.rx_parts = []
        if info[:3] != hdlc.LLC_REQUEST:
            self.stats["bad"] += 1
            return [self._frame(hdlc.FRMR | hdlc.POLL)]
        reply = self._apdu(info[3:])
        if not reply:
            return []
        self.tx_pending = hdlc.segments(hdlc.LLC_RESPONSE + reply, self.max_info_tx)
        return [self._next_segment()]

    def _next_segment(self):
        part = self.tx_pending.pop(0)
        frame = self._frame(hdlc.i_control(self.ns, self.nr), part, bool(self.tx_pending))
        self.ns = (self.ns + 1) & 7
        self.last_sent = [frame]
        return frame

    def _frame(self, control, info=b"", segmented=False):
        return hdlc.encode(self.client_address, self.our_address, control, info, segmented)

    # --- APDUs ----------------------------------------------------------------------------

    def _apdu(self, apdu):
        self.stats["apdus"] += 1
        if not apdu:
            return xdlms.exception(2, 2)
        tag = apdu[0]
        try:
            if tag == acse.AARQ:
                return self._aarq(apdu)
            if tag == acse.RLRQ:
                acse.parse_release(apdu, acse.RLRQ)
                self.associated = False
                return acse.rlre()
            if not self.associated:
                return xdlms.exception(1, 1)
            req = xdlms.parse_request(apdu)
        except (acse.AcseError, xdlms.XdlmsError) as exc:
            self.log("bad APDU: %s" % exc)
            self.stats["bad"] += 1
            return xdlms.exception(2, 2)
        return self._service(req)

    def _aarq(self, apdu):
        info = acse.parse_aarq(apdu)
        self.associated = False
        if info["context"] != acse.LN_NO_CIPHER:
            return acse.aare(1, 2)
        if self.client_sap != PUBLIC_CLIENT:
            if info["mechanism"] != acse.MECH_LLS:
                return acse.aare(1, 14)
            if info["password"] != self.password.encode():
                return acse.aare(1, 13)
        self.max_pdu = min(self.faults.max_pdu or self.server_max_pdu, info["max_pdu"] or 0xFFFF)
        self.associated = True
        return acse.aare(0, 0, info["conformance"] & acse.CONFORMANCE, self.max_pdu)

    def _service(self, req):
        m = self.model
        inv = req.invoke
        if req.service == "get":
            cls, ln, attr, access = req.items[0]
            value, err = m.read(cls, ln, attr, access)
            if err:
                return xdlms.get_response(error=err, invoke=inv)
            if len(value) + 4 <= self.max_pdu:
                return xdlms.get_response(value, invoke=inv)
            return self._start_blocks(value, inv)
        if req.service == "get-list":
            results = [m.read(c, ln, a, acc) for c, ln, a, acc in req.items]
            full = xdlms.get_list_response(results, inv)
            if len(full) <= self.max_pdu:
                return full
            return self._start_blocks(full[3:], inv)
        if req.service == "get-next":
            if self.blocks is None:
                return xdlms.get_block(req.block, b"", True, inv, error=16)
            data, sent = self.blocks
            if req.block != sent:
                self.blocks = None
                return xdlms.get_block(req.block, b"", True, inv, error=19)
            return self._block(data, sent + 1, inv)
        if req.service == "set":
            cls, ln, attr, _access = req.items[0]
            return xdlms.set_response(m.write(cls, ln, attr, req.value), inv)
        if req.service == "action":
            cls, ln, method, _access = req.items[0]
            err, value = m.act(cls, ln, method, req.value)
            return xdlms.action_response(err, value, inv)
        return xdlms.exception(2, 2)

    def _block_size(self):
        return max(16, self.max_pdu - 16)

    def _start_blocks(self, data, inv):
        return self._block(data, 1, inv)

    def _block(self, data, number, inv):
        size = self._block_size()
        start = (number - 1) * size
        chunk = data[start:start + size]
        last = start + size >= len(data)
        self.blocks = None if last else (data, number)
        return xdlms.get_block(number, chunk, last, inv)


# --- I/O: TCP and pty ----------------------------------------------------------------------

class Server(object):
    """Serves Sessions on TCP ports (WRAPPER and/or HDLC) and optionally a pty (HDLC)."""

    def __init__(self, model=None, password=PASSWORD, faults=None, max_pdu=1024, max_info=128,
                 log=None):
        self.model = model or MeterModel()
        self.password = password
        self.faults = faults or Faults()
        self.max_pdu = max_pdu
        self.max_info = max_info
        self.log = log or (lambda text: None)
        self._stop = threading.Event()
        self._threads = []
        self._socks = []
        self.ports = {}

    def session(self, transport):
        return Session(self.model, transport, password=self.password, max_pdu=self.max_pdu,
                       max_info=self.max_info, faults=self.faults, log=self.log)

    def listen(self, transport, port=0, host="127.0.0.1"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(4)
        sock.settimeout(0.2)
        self._socks.append(sock)
        self.ports[transport] = sock.getsockname()[1]
        self._spawn(self._accept_loop, sock, transport)
        return self.ports[transport]

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept_loop(self, sock, transport):
        while not self._stop.is_set():
            try:
                conn, _peer = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._spawn(self._serve_conn, conn, transport)

    def _answer(self, session, data):
        out = session.feed(data)
        if out and self.faults.delay_s:
            time.sleep(self.faults.delay_s)
        return b"".join(out)

    def _serve_conn(self, conn, transport):
        session = self.session(transport)
        with conn:
            pump_socket(conn, self._stop, lambda data: self._answer(session, data))

    def serve_fd(self, fd):
        """HDLC on a file descriptor (a pty master) until stop()."""
        session = self.session("hdlc")
        self._spawn(pump_fd, fd, self._stop, lambda data: self._answer(session, data))

    def stop(self):
        self._stop.set()
        for sock in self._socks:
            sock.close()
        for t in self._threads:
            t.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description="simulated meter: DLMS/COSEM server")
    ap.add_argument("--wrapper-port", type=int, default=4059)
    ap.add_argument("--hdlc-port", type=int, default=4060)
    ap.add_argument("--pty", help="also serve HDLC on a new pty, linked at this path")
    ap.add_argument("--password", default=PASSWORD)
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--max-pdu", type=int, default=1024)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    log = (lambda text: print(text, file=sys.stderr)) if args.verbose else None
    server = Server(MeterModel(args.rows), args.password, max_pdu=args.max_pdu, log=log)
    print("wrapper port %d" % server.listen("wrapper", args.wrapper_port))
    print("hdlc port %d" % server.listen("hdlc", args.hdlc_port))
    if args.pty:
        import pty
        import tty
        master, slave = pty.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        if os.path.lexists(args.pty):
            os.remove(args.pty)
        os.symlink(name, args.pty)
        server.serve_fd(master)
        print("hdlc pty %s -> %s" % (args.pty, name))
    sys.stdout.flush()
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
