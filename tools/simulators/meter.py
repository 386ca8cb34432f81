"""The meter side of the meter link, over a real pty (CPython, host only).

Library:
    sim = MeterSim(dialect="legacy", link="/tmp/meter.tty").start()
    sim.path                    # the pty slave (or link) the app's UART opens
    sim.send_transparent(b"apdu")
    frame = sim.request(meter.get_request(0x8003))   # waits for the module's answer
    sim.wait_for(lambda: sim.transparent, timeout=2)
    sim.stop()

It answers the module's GET/SET of the meter's own parameters (`params`: 28xx/30xx, e.g.
0x2801 clock, 0x3001 serial), answers EVENT/ACTION, records what it receives (`frames`,
`transparent` payloads from the HES, `responses`: the module's answers to our requests) and
injects faults: garbage, a frame split over several writes, frames joined in one write,
corrupted frames (bad FCS, bad length, truncated, lost closing flag), a noisy line (`garbage_rate`:
a burst of random octets before that share of the frames it sends) and unplugging the device (the link path disappears; replug() makes a new pty and relinks it). With `dlms` (a
tools/simulators/dlms_server.Session) it is a DLMS meter: HDLC in transparent payloads, from
the module's own client or from the HES through the module, is answered by its DLMS server.

CLI (`make sim` starts it; the first line is `PTY <path>`, then one line per event):
    python -m tools.simulators.meter [--dialect legacy|standard] [--link PATH] [--echo]
                              [--every S --payload HEX] [--dlms] [--dlms-wrapper-port N]
                              [--garbage RATE] [--seed N]
Commands on stdin: send HEX | get PID | set PID TEXT | event PID HEX | garbage [N] |
split HEX [N] | join N | corrupt fcs|length|truncate|flag | unplug | replug | stats | quit
(PID in hex, e.g. 8003).
"""
import argparse
import binascii
import os
import random
import select
import sys
import threading
import time
import tty

from tools.simulators.condwait import wait_on


def _import_codec():
    try:
        from usr.qframe.codecs import meter, rfc1662
    except ImportError:
        from tools.hostrun import board_root
        root = board_root.stage()
        for path in reversed([root] + board_root.shim_paths("cpython")):
            if path not in sys.path:
                sys.path.insert(0, path)
        from usr.qframe.codecs import meter, rfc1662
    return meter, rfc1662


meter, rfc1662 = _import_codec()

DEFAULT_PARAMS = {
    0x2801: bytes((0x07, 0xE8, 6, 1, 6, 12, 0, 0, 0, 0x80, 0, 0)),   # clock (date-time)
    0x3001: b"MTR00000001",                                            # meter serial
    0x3002: b"qframe meter sim",                                        # model
}
GARBAGE = b"\x00\x13noise\xff\x55\xaa\x03"
GARBAGE_BURST = 24          # a garbage burst is 1..GARBAGE_BURST random octets (flags, FF 03 too)
GARBAGE_GAP_S = 0.004       # between the pieces of a noisy send (the app's reader polls each 2 ms)
RESPONSES = (meter.CMD_GET_RESPONSE, meter.CMD_SET_RESPONSE, meter.CMD_EVENT_RESPONSE,
             meter.CMD_ACTION_RESPONSE, meter.CMD_GET_ERROR)


def raw_frame(message, dialect, fcs_xor=0, length=None, close=True, with_fcs=True):
    """Frame a message, optionally damaged: FCS XORed with fcs_xor, a forged length field,
    no closing flag, no FCS (cut after the payload)."""
    protocol, cmd, payload = message
    true_length = len(payload) + 1
    length = true_length if length is None else length
    head = bytes((0xFF, 0x03, protocol & 0xFF, protocol >> 8, length >> 8, length & 0xFF, cmd))
    fcs = rfc1662.frame_fcs(protocol, true_length, cmd, payload) ^ fcs_xor
    tail = b"\x7e" if close else b""
    if not with_fcs:
        fcs_octets = b""
    elif dialect == rfc1662.LEGACY:
        fcs_octets = bytes((fcs >> 8, fcs & 0xFF))
    else:
        fcs_octets = bytes((fcs & 0xFF, fcs >> 8))
    if dialect == rfc1662.LEGACY:
        return b"\x7e" + head + payload + fcs_octets + tail
    body = head + payload + fcs_octets
    return b"\x7e" + rfc1662.stuff(body) + tail


class MeterSim(object):
    """A simulated meter MCU on a pty; see the module docstring."""

    def __init__(self, dialect=rfc1662.LEGACY, link=None, params=None, answer=True,
                 echo=False, on_event=None, write_timeout=10.0, dlms=None,
                 garbage_rate=0.0, seed=1):
        self.dialect = rfc1662.check_dialect(dialect)
        if not 0.0 <= garbage_rate <= 1.0:
            raise ValueError("garbage_rate is a share of frames, 0..1")
        # the share of frames sent after a burst of random octets (drawn from seed)
        self.garbage_rate = garbage_rate
        self._garbage_rng = random.Random(seed)
        # dlms: a dlms_server.Session (HDLC) answering transparent payloads, or None
        self.dlms = dlms
        self.link = link
        self.params = dict(DEFAULT_PARAMS if params is None else params)
        self.answer = answer
        self.echo = echo
        self.on_event = on_event
        self.write_timeout = write_timeout
        self.frames = []
        self.transparent = []
        self.responses = []
        self.requests = []
        self.stats = {"rx_bytes": 0, "tx_bytes": 0, "rx_frames": 0, "tx_frames": 0,
                      "answers": 0, "unplugs": 0, "read_errors": 0, "garbage_bursts": 0,
                      "garbage_bytes": 0}
        self.decoder = rfc1662.Decoder(self.dialect)
        self.path = None
        self._master = self._slave = None
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._noisy_lock = threading.Lock()     # one noisy send's pieces stay together
        self._running = False
        self._thread = None
        self._close_requests = []
        self._wake_r = self._wake_w = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self):
        self._plug()
        self._running = True
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._read_loop, name="meter-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._running = False
        if self._thread is not None:
            os.write(self._wake_w, b"!")
            self._thread.join(2)
            self._thread = None
            os.close(self._wake_r)
            os.close(self._wake_w)
        self._unplug_fds()
        if self.link and os.path.islink(self.link):
            os.remove(self.link)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _plug(self):
        master, slave = os.openpty()
        tty.setraw(slave)           # no echo, no line discipline: bytes pass unchanged
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.tty_path = os.ttyname(slave)
        self.decoder.reset()
        if self.link:
            tmp = self.link + ".new"
            if os.path.lexists(tmp):
                os.remove(tmp)
            os.symlink(self.tty_path, tmp)
            os.replace(tmp, self.link)
            self.path = self.link
        else:
            self.path = self.tty_path

    def _unplug_fds(self):
        with self._write_lock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._master = self._slave = None

    def unplug(self):
        """The device disappears: the pty is closed and the link path removed."""
        self.stats["unplugs"] += 1
        if self.link and os.path.lexists(self.link):
            os.remove(self.link)
        self._close_fds()
        self._event("unplugged")

    def replug(self):
        """A new pty appears at the link path."""
        self._plug()
        self._event("PTY %s" % self.path)

    # -- receive ---------------------------------------------------------------------------

    def _close_fds(self):
        """Close the pty from the reader thread, so no select() still holds it open."""
        thread = self._thread
        if thread is None or threading.current_thread() is thread:
            self._unplug_fds()
            return
        done = threading.Event()
        self._close_requests.append(done)
        os.write(self._wake_w, b"!")
        done.wait(2)

    def _read_loop(self):
        while self._running:
            while self._close_requests:
                self._unplug_fds()
                self._close_requests.pop(0).set()
            fd = self._master
            watch = [self._wake_r] if fd is None else [self._wake_r, fd]
            try:
                ready = select.select(watch, [], [], 0.5)[0]
                if self._wake_r in ready:
                    os.read(self._wake_r, 64)
                    continue
                data = os.read(fd, 4096) if fd in ready else b""
            except OSError:
                self.stats["read_errors"] += 1
                time.sleep(0.01)
                continue
            if not data:
                continue
            self.stats["rx_bytes"] += len(data)
            for frame in self.decoder.feed(data):
                self._received(frame)

    def _received(self, frame):
        self.stats["rx_frames"] += 1
        reply = None
        if frame.protocol == meter.PROTO_TRANSPARENT:
            self._event("rx transparent %s" % frame.payload.hex())
            if self.dlms is not None:
                self._dlms_answer(frame.payload)
            elif self.echo:
                reply = meter.transparent(frame.payload)
        elif frame.protocol == meter.PROTO_PARAMETERS and frame.cmd in RESPONSES:
            self._event("rx %s %s" % (meter.CMD_NAMES[frame.cmd], frame.payload.hex()))
        else:
            self._event("rx request 0x%04x 0x%02x %s" % (frame.protocol, frame.cmd,
                                                         frame.payload.hex()))
            reply = self.answer_for(frame) if self.answer else None
        with self._cond:
            self.frames.append(frame)
            if frame.protocol == meter.PROTO_TRANSPARENT:
                self.transparent.append(frame.payload)
            elif frame.cmd in RESPONSES:
                self.responses.append(frame)
            else:
                self.requests.append(frame)
            self._cond.notify_all()
        if reply is not None:
            self.stats["answers"] += 1
            self.send(reply)

    def _dlms_answer(self, payload):
        """HDLC from the module (or the HES through it) to the DLMS server; its frames back
        as transparent payloads."""
        out = self.dlms.feed(payload)
        if out and self.dlms.faults.delay_s:
            time.sleep(self.dlms.faults.delay_s)
        for data in out:
            self.send_transparent(data)

    def answer_for(self, frame):
        """The meter's answer to a request from the module (its own 28xx/30xx parameters)."""
        cmd = frame.cmd
        try:
            if cmd == meter.CMD_GET:
                pid = meter.parse_get_request(frame.payload)
                if pid in self.params:
                    return meter.get_response(pid, self.params[pid])
                return meter.get_error(pid)
            if cmd == meter.CMD_SET:
                pid, value = meter.parse_set_request(frame.payload)
                if pid in self.params:
                    self.params[pid] = value
                    return meter.set_response(pid, meter.ACK_SUCCESS)
                return meter.set_response(pid, meter.ACK_FAILURE)
            if cmd == meter.CMD_EVENT:
                meter.parse_event(frame.payload)
                return meter.event_response(meter.ACK_SUCCESS)
            if cmd == meter.CMD_ACTION:
                pid, _value = meter.parse_action(frame.payload)
                return meter.action_response(pid, meter.ACK_SUCCESS)
        except ValueError as exc:
            self._event("bad request: %s" % exc)
        if frame.protocol == meter.PROTO_PARAMETERS:
            return meter.failure_response(cmd, frame.payload)
        return None

    def wait_for(self, predicate, timeout=5.0):
        """Wait until predicate() is true (re-checked on every received frame); its value."""
        return wait_on(self._cond, predicate, timeout)

    def request(self, message, timeout=5.0):
        """Send a 0x2200 request and wait for the module's answer to it (or None)."""
        protocol, cmd, payload = message
        pid = meter.pid_of(payload) if cmd != meter.CMD_EVENT else None
        start = len(self.responses)

        def answer():
            for frame in self.responses[start:]:
                if pid is None or meter.pid_of(frame.payload) == pid:
                    return frame
            return None
        self.send(message)
        return self.wait_for(answer, timeout)

    # -- transmit and faults ---------------------------------------------------------------

    def write(self, data):
        """Write raw octets to the module."""
        with self._write_lock:
            if self._master is None:
                raise OSError("meter sim is unplugged")
            view = memoryview(data)
            deadline = time.monotonic() + self.write_timeout
            while view:
                try:
                    written = os.write(self._master, view)
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise OSError("meter sim: the module reads nothing (write timed out)")
                    select.select([], [self._master], [], 0.05)
                    continue
                view = view[written:]
                deadline = time.monotonic() + self.write_timeout
        self.stats["tx_bytes"] += len(data)
        return data

    def frame(self, message):
        protocol, cmd, payload = message
        return rfc1662.encode(protocol, cmd, payload, self.dialect)

    def send(self, message):
        """Frame and write a (protocol, cmd, payload) message; returns the octets written.
        On a noisy line (garbage_rate) a drawn share of frames comes after a garbage burst,
        the burst and two pieces of the frame (cut at a random octet) written a few ms apart,
        so the receiver also meets garbage behind octets it holds back."""
        self.stats["tx_frames"] += 1
        data = self.frame(message)
        burst, cut = self._garbage_burst(len(data))
        if not burst:
            return self.write(data)
        with self._noisy_lock:
            for piece in (burst, data[:cut], data[cut:]):
                self.write(piece)
                time.sleep(GARBAGE_GAP_S)
        return burst + data

    def _garbage_burst(self, size):
        """(random octets to send before a frame of size octets, where to cut the frame):
        (b"", 0) unless drawn at garbage_rate. Any octet may come, 7E and FF 03 too: a burst
        can look like the start of a frame."""
        with self._write_lock:
            rng = self._garbage_rng
            if not self.garbage_rate or rng.random() >= self.garbage_rate:
                return b"", 0
            burst = bytes(rng.randrange(256) for _ in range(rng.randint(1, GARBAGE_BURST)))
            self.stats["garbage_bursts"] += 1
            self.stats["garbage_bytes"] += len(burst)
            return burst, rng.randint(1, size - 1)

    def send_transparent(self, payload):
        return self.send(meter.transparent(payload))

    def send_numbered(self, tag, first, count, size):
        """Send `count` payloads tag + index (6 digits, from `first`) padded with dots to `size`
        octets, each one unique; return them in the order sent."""
        payloads = [(tag + b"%06d" % index).ljust(size, b".")
                    for index in range(first, first + count)]
        for payload in payloads:
            self.send_transparent(payload)
        return payloads

    def garbage(self, data=GARBAGE):
        self.stats["garbage_bytes"] += len(data)
        return self.write(data)

    def send_split(self, message, pieces=3, gap_s=0.02):
        """One frame written in `pieces` parts with a pause between them."""
        data = self.frame(message)
        step = max(1, -(-len(data) // pieces))
        for index in range(0, len(data), step):
            self.write(data[index:index + step])
            time.sleep(gap_s)
        self.stats["tx_frames"] += 1
        return data

    def send_joined(self, messages, shared_flag=False):
        """Several frames in one write (shared_flag: one flag between two frames)."""
        parts = [self.frame(m) for m in messages]
        if shared_flag:
            parts = [parts[0]] + [p[1:] for p in parts[1:]]
        self.stats["tx_frames"] += len(parts)
        return self.write(b"".join(parts))

    def send_corrupt(self, message, kind="fcs"):
        """A damaged frame: kind fcs (wrong FCS), length (length field too large), truncate
        (cut after its payload: no FCS, no closing flag), flag (good frame, closing flag
        lost: the receiver recovers it after an idle gap or at the next frame's flag)."""
        if kind == "fcs":
            data = raw_frame(message, self.dialect, fcs_xor=0x0101)
        elif kind == "length":
            data = raw_frame(message, self.dialect, length=len(message[2]) + 40)
        elif kind == "truncate":
            data = raw_frame(message, self.dialect, close=False, with_fcs=False)
        elif kind == "flag":
            data = raw_frame(message, self.dialect, close=False)
        else:
            raise ValueError("kind must be fcs, length, truncate or flag")
        return self.write(data)

    def _event(self, text):
        if self.on_event is not None:
            self.on_event(text)


# -- CLI -----------------------------------------------------------------------------------

def _command(sim, line):
    words = line.split()
    if not words:
        return True
    cmd, args = words[0], words[1:]
    if cmd == "quit":
        return False
    if cmd == "send":
        sim.send_transparent(binascii.unhexlify("".join(args)))
    elif cmd == "get":
        frame = sim.request(meter.get_request(int(args[0], 16)), 3)
        print("answer %s" % (_describe(frame),))
    elif cmd == "set":
        value = meter.typed_value(0, meter.TAG_VISIBLE_STRING, " ".join(args[1:]))
        frame = sim.request(meter.set_request(int(args[0], 16), value), 3)
        print("answer %s" % (_describe(frame),))
    elif cmd == "event":
        sim.send(meter.event(int(args[0], 16), binascii.unhexlify("".join(args[1:]))))
    elif cmd == "garbage":
        sim.garbage(GARBAGE * (int(args[0]) if args else 1))
    elif cmd == "split":
        sim.send_split(meter.transparent(binascii.unhexlify(args[0])),
                       int(args[1]) if len(args) > 1 else 3)
    elif cmd == "join":
        count = int(args[0]) if args else 2
        sim.send_joined([meter.transparent(b"joined %d" % i) for i in range(count)])
    elif cmd == "corrupt":
        sim.send_corrupt(meter.transparent(b"corrupt"), args[0] if args else "fcs")
    elif cmd == "unplug":
        sim.unplug()
    elif cmd == "replug":
        sim.replug()
    elif cmd == "stats":
        print("stats %s decoder %s" % (sim.stats, sim.decoder.stats))
    else:
        print("error: unknown command %r" % cmd)
    return True


def _describe(frame):
    if frame is None:
        return "none (timeout)"
    try:
        fields = meter.describe(frame.protocol, frame.cmd, frame.payload)
    except ValueError as exc:
        return "%r (%s)" % (frame, exc)
    return " ".join("%s=%s" % (k, fields[k].hex() if isinstance(fields[k], bytes) else fields[k])
                    for k in sorted(fields))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialect", choices=rfc1662.DIALECTS, default=rfc1662.LEGACY)
    parser.add_argument("--link", help="symlink to the pty slave (a stable path for dev.json)")
    parser.add_argument("--echo", action="store_true",
                        help="answer each transparent payload with the same payload")
    parser.add_argument("--every", type=float, default=0,
                        help="send --payload as transparent data every S seconds")
    parser.add_argument("--payload", default="", help="hex payload for --every")
    parser.add_argument("--dlms", action="store_true",
                        help="a DLMS server answers HDLC in transparent payloads")
    parser.add_argument("--dlms-wrapper-port", type=int, default=0,
                        help="the same meter's DLMS server on a TCP port (WRAPPER)")
    parser.add_argument("--garbage", type=float, default=0.0, metavar="RATE",
                        help="share of frames (0..1) sent after a burst of random octets")
    parser.add_argument("--seed", type=int, default=1, help="seed of the garbage")
    args = parser.parse_args(argv)
    dlms = server = None
    if args.dlms or args.dlms_wrapper_port:
        from tools.simulators import dlms_server
        server = dlms_server.Server()
        dlms = server.session("hdlc") if args.dlms else None
    sim = MeterSim(args.dialect, args.link, echo=args.echo,
                   on_event=lambda text: print(text, flush=True), dlms=dlms,
                   garbage_rate=args.garbage, seed=args.seed)
    sim.start()
    print("PTY %s" % sim.path, flush=True)
    if args.dlms_wrapper_port:
        print("DLMS WRAPPER port %d" % server.listen("wrapper", args.dlms_wrapper_port), flush=True)
    stop = threading.Event()
    if args.every > 0:
        payload = binascii.unhexlify(args.payload) if args.payload else b"meter reading"

        def periodic():
            while not stop.wait(args.every):
                try:
                    sim.send_transparent(payload)
                except OSError:
                    pass
        threading.Thread(target=periodic, daemon=True).start()
    try:
        for line in sys.stdin:
            try:
                if not _command(sim, line):
                    break
            except (ValueError, IndexError, OSError, binascii.Error) as exc:
                print("error: %s" % exc, flush=True)
            sys.stdout.flush()
        else:
            while True:         # stdin closed: keep serving until killed
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        sim.stop()
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
