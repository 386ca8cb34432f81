"""DLMS benchmark: ours against gurux-dlms on CPython, ours on MicroPython, and the heap a
500-row load profile read needs on MicroPython.

    python -m tools.benches.dlms          (the driver; prints figures, ends with a JSON line)
    micropython tools/benches/dlms.py ROOT SHIMS speed|heap

Workloads (per operation, best of 5 rounds):
  get       a GET exchange: the client encodes the HDLC I frame of a GET request for a
            Register's value and decodes the meter's reply frame to the value
  profile   a 100-row load profile (clock, two double-long-unsigned) in one WRAPPER reply:
            decoded into rows, the clock column as a date-time
gurux does the same with its client (read(), getData(), updateValue()); the ratio is gurux
time / ours (target >= 3). The heap proof reads a 500-row profile through the association,
GET with block transfer over HDLC frames a lazy in-process meter makes one block at a time,
rows handed over one by one, inside -X heapsize; the device code precompiled to .mpy (as
`make deploy MPY=1` ships it) so the figure is the read's, not the compiler's; the smallest of
HEAPS that completes is reported, with the live heap the read holds above what its imports
keep (sampled with gc every 25 rows).
"""
import sys

ROUNDS = 5
GET_N = 300
PROFILE_N = 20
HEAP_ROWS = 500
HEAPS = (48, 64, 80, 96, 112, 128, 160, 192, 256)


def _setup(root, shims):
    for path in list(reversed(shims.split(":"))) + [root]:
        sys.path.insert(0, path)


def _clock():
    try:
        import utime
        return lambda: utime.ticks_us() / 1e6
    except ImportError:
        import time
        return time.perf_counter


def _best(fn, n):
    now = _clock()
    best = None
    for _ in range(ROUNDS):
        start = now()
        for _ in range(n):
            fn()
        took = (now() - start) / n
        best = took if best is None or took < best else best
    return best


def _fixtures():
    from usr.qframe.codecs import axdr, cosem, hdlc, wrapper, xdlms
    energy = cosem.obis("1.0.1.8.0.255")
    reply = hdlc.encode(b"\x21", b"\x03", hdlc.i_control(0, 1), hdlc.LLC_RESPONSE + xdlms.get_response(
        axdr.encode(axdr.Typed(axdr.DOUBLE_LONG_UNSIGNED, 12345))))
    rows = [(axdr.DateTime(2024, 1, 1 + i // 96, (i // 4) % 24, (i % 4) * 15, 0, 0, None, 0).encode(),
             axdr.Typed(axdr.DOUBLE_LONG_UNSIGNED, 100000 + i),
             axdr.Typed(axdr.DOUBLE_LONG_UNSIGNED, 5000 + i)) for i in range(100)]
    profile = wrapper.encode(1, 16, xdlms.get_response(axdr.encode(rows)))
    return energy, reply, profile


def ours_speed():
    """(get seconds, profile seconds) per operation with our codecs."""
    from usr.qframe.codecs import axdr, cosem, hdlc, wrapper, xdlms
    energy, reply, profile = _fixtures()
    server = hdlc.server_address(1)
    client = hdlc.client_address(16)

    def get():
        hdlc.encode(server, client, hdlc.i_control(0, 0), hdlc.LLC_REQUEST + xdlms.get(3, energy, 2))
        frame = hdlc.decode(reply)
        value = axdr.decode(xdlms.parse_response(frame.info[3:]).data)
        assert value == 12345

    clocks = [0]

    def parse_profile():
        packet = wrapper.decode(profile)
        data = xdlms.parse_response(packet.apdu).data
        rows = [cosem.row(r, clocks) for r in axdr.decode(data)]
        assert len(rows) == 100 and rows[99][2] == 5099
    return _best(get, GET_N), _best(parse_profile, PROFILE_N)


def gurux_speed():
    from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
    from gurux_dlms.enums import Authentication, InterfaceType
    from gurux_dlms.objects import GXDLMSCaptureObject, GXDLMSClock, GXDLMSProfileGeneric, GXDLMSRegister
    energy, reply, profile = _fixtures()
    hdlc_client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.HDLC)
    reg = GXDLMSRegister("1.0.1.8.0.255")

    def get():
        hdlc_client.settings.resetFrameSequence()        # the first I frame each time: N(S)=0
        hdlc_client.read(reg, 2)
        data = GXReplyData()
        hdlc_client.getData(GXByteBuffer(reply), data, None)
        hdlc_client.updateValue(reg, 2, data.value)
        assert reg.value == 12345

    w = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    pg.captureObjects.append((GXDLMSClock("0.0.1.0.0.255"), GXDLMSCaptureObject(2, 0)))
    pg.captureObjects.append((GXDLMSRegister("1.0.1.8.0.255"), GXDLMSCaptureObject(2, 0)))
    pg.captureObjects.append((GXDLMSRegister("1.0.2.8.0.255"), GXDLMSCaptureObject(2, 0)))

    def parse_profile():
        data = GXReplyData()
        w.getData(GXByteBuffer(profile), data, None)
        pg.buffer = []
        w.updateValue(pg, 2, data.value)
        assert len(pg.buffer) == 100
    return _best(get, GET_N // 10), _best(parse_profile, 3)


class LazyMeter(object):
    """An HDLC meter whose 500-row profile is encoded one block at a time."""

    def __init__(self, rows, per_block=30):
        from usr.qframe.codecs import hdlc
        self.rows = rows
        self.per_block = per_block
        self.rx = hdlc.Receiver()
        self.ns = self.nr = 0
        self.pending = []
        self.parts = []

    def _rows(self, block):
        from usr.qframe.codecs import axdr
        first = (block - 1) * self.per_block
        out = []
        if block == 1:
            out.append(b"\x01" + axdr.encode_length(self.rows))
        for i in range(first, min(self.rows, first + self.per_block)):
            out.append(axdr.encode((axdr.DateTime.from_epoch(1704067200 + 900 * i).encode(),
                                    axdr.Typed(axdr.DOUBLE_LONG_UNSIGNED, i),
                                    axdr.Typed(axdr.DOUBLE_LONG_UNSIGNED, 2 * i))))
        return b"".join(out), first + self.per_block >= self.rows

    def feed(self, data):
        from usr.qframe.codecs import acse, hdlc, xdlms
        out = []
        for f in self.rx.feed(data):
            if f.kind == "SNRM":
                out.append(hdlc.encode(b"\x21", b"\x03", hdlc.UA | 0x10, hdlc.encode_params(128, 128)))
            elif f.kind == "DISC":
                out.append(hdlc.encode(b"\x21", b"\x03", hdlc.UA | 0x10))
            elif f.kind == "RR":
                out.append(self._next())
            elif f.kind == "I":
                self.nr = (self.nr + 1) & 7
                apdu = f.info[3:]
                if apdu[0] == acse.AARQ:
                    reply = acse.aare(0, 0, acse.CONFORMANCE, 1024)
                elif apdu[0] == acse.RLRQ:
                    reply = acse.rlre()
                else:
                    block = 1 if apdu[1] == 1 else ((apdu[3] << 24) | (apdu[4] << 16) | (apdu[5] << 8) | apdu[6]) + 1
                    raw, last = self._rows(block)
                    reply = xdlms.get_block(block, raw, last)
                self.pending = hdlc.segments(hdlc.LLC_RESPONSE + reply, 128)
                out.append(self._next())
        return b"".join(out)

    def _next(self):
        from usr.qframe.codecs import hdlc
        part = self.pending.pop(0)
        frame = hdlc.encode(b"\x21", b"\x03", hdlc.i_control(self.ns, self.nr), part, bool(self.pending))
        self.ns = (self.ns + 1) & 7
        return frame


def heap_read():
    """Read HEAP_ROWS rows through the association; rows are counted, not kept."""
    import gc
    from usr.qframe.codecs import cosem
    from usr.qframe.protocols import dlms
    meter = LazyMeter(HEAP_ROWS)
    assoc = dlms.Association(dlms.Settings())
    pending = [b""]

    def send(data):
        pending[0] = pending[0] + meter.feed(data)

    def recv():
        data, pending[0] = pending[0], b""
        return data or None
    dlms.drive(assoc.open(), send, recv)
    seen = [0]
    peak = [0]
    gc.collect()
    base = gc.mem_alloc()

    def on_row(row):
        seen[0] += 1
        if seen[0] % 25 == 0:
            gc.collect()
            peak[0] = max(peak[0], gc.mem_alloc() - base)
    count = dlms.drive(assoc.get(7, cosem.obis("1.0.99.1.0.255"), 2, on_row=on_row), send, recv)
    dlms.drive(assoc.close(), send, recv)
    assert count == HEAP_ROWS and seen[0] == HEAP_ROWS
    print("heap read ok %d rows, live peak %d bytes" % (count, peak[0]))


def device_main(argv):
    _setup(argv[1], argv[2])
    if argv[3] == "heap":
        heap_read()
    else:
        get_s, profile_s = ours_speed()
        print('{"get_us": %.1f, "profile_us": %.1f}' % (get_s * 1e6, profile_s * 1e6))


def _mpy_board():
    """A board root with the device code as .mpy for the venv's MicroPython."""
    import os
    import shutil
    from tools.device import deploy
    from tools.hostrun import board_root
    root = os.path.join(board_root.REPO, "build", "dlms-heap-board")
    shutil.rmtree(root, ignore_errors=True)
    files = [f for f in deploy.device_files() if f[0].startswith("/usr/qframe/")]
    for device_path, data in deploy.compile_mpy(files, deploy.find_mpy_cross(6)):
        path = os.path.join(root, device_path.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return root


def main():
    import json
    import os
    import subprocess
    from tools.hostrun import board_root
    root = board_root.stage()
    shims_mp = ":".join(board_root.shim_paths("micropython"))
    board_root.use_device_code()
    get_s, profile_s = ours_speed()
    g_get, g_profile = gurux_speed()
    out = {"cpython_get_us": round(get_s * 1e6, 1), "cpython_profile100_us": round(profile_s * 1e6, 1),
           "gurux_get_us": round(g_get * 1e6, 1), "gurux_profile100_us": round(g_profile * 1e6, 1),
           "get_ratio": round(g_get / get_s, 1), "profile100_ratio": round(g_profile / profile_s, 1)}
    print("  GET exchange      ours %8.1f us   gurux %8.1f us   ratio %.1fx" % (
        out["cpython_get_us"], out["gurux_get_us"], out["get_ratio"]))
    print("  100-row profile   ours %8.1f us   gurux %8.1f us   ratio %.1fx" % (
        out["cpython_profile100_us"], out["gurux_profile100_us"], out["profile100_ratio"]))
    me = os.path.abspath(__file__)
    mp = board_root.interpreter_command("micropython")
    result = subprocess.run(mp + [me, root, shims_mp, "speed"], capture_output=True, text=True)
    if result.returncode == 0:
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        out["micropython_get_us"] = figures["get_us"]
        out["micropython_profile100_us"] = figures["profile_us"]
        print("  MicroPython       GET %.1f us, 100-row profile %.1f us" % (
            figures["get_us"], figures["profile_us"]))
    else:
        print("micropython speed run failed: %s" % result.stderr[-500:])
        return 1
    mpy_root = _mpy_board()
    for heap_kb in HEAPS:
        run = subprocess.run(mp + ["-X", "heapsize=%dK" % heap_kb, me, mpy_root, shims_mp, "heap"],
                             capture_output=True, text=True)
        if run.returncode == 0 and "heap read ok" in run.stdout:
            out["profile500_min_heap_kb"] = heap_kb
            out["profile500_live_peak_bytes"] = int(run.stdout.split()[-2])
            print("  500-row profile read completes in a %d KB MicroPython heap (.mpy); the read "
                  "holds at most %d bytes live" % (heap_kb, out["profile500_live_peak_bytes"]))
            break
    else:
        print("500-row profile read did not complete in %d KB" % HEAPS[-1])
        return 1
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    if sys.implementation.name == "micropython":
        device_main(sys.argv)
    else:
        sys.exit(main())
