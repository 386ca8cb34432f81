"""A session with a MicroPython device over mpremote's serial transport, QuecPython-safe.

QuecPython has only the u-names (`uos`, `usys`, `uhashlib`...), so mpremote's `fs` commands
(which `import os`) fail there. This module drives the device with its own small snippets that
import u-names only (DEVICE_IMPORTS; tests/host/test_deploy.py checks it), through mpremote's
raw REPL entered *without* a soft reset (mpremote `resume`): a reset would restart the old app
in the middle of a copy.

    with Device("/dev/ttyUSB0") as dev:
        dev.hashes(["/usr/main.py"])      # {"/usr/main.py": "9f86..." or None}
        dev.write_file("/usr/main.py", data)
"""
import ast
import base64
import hashlib
import signal

try:
    from mpremote.transport import TransportError, TransportExecError
    from mpremote.transport_serial import SerialTransport
except ImportError:  # pragma: no cover - only without the dev venv
    raise SystemExit("mpremote is not installed: run `make venv` (it pins mpremote)")

DEVICE_IMPORTS = ("uos", "usys", "utime", "ubinascii", "uhashlib")
READ_CHUNK = 768      # bytes per read_text command: its repr() stays under 4 KB of output
HASH_BATCH = 24       # paths per hashes command: "<64 hex> <path>" lines under 4 KB

# Defined once per session in the device's REPL namespace; every name starts with _qd_.
HELPERS = """\
import uos, usys, utime, ubinascii, uhashlib
def _qd_hash(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = uhashlib.sha256()
    try:
        while True:
            b = f.read(1024)
            if not b:
                break
            h.update(b)
    finally:
        f.close()
    return ubinascii.hexlify(h.digest()).decode()
def _qd_hashes(paths):
    for p in paths:
        print(_qd_hash(p) or '-', p)
def _qd_read(p, start, n):
    try:
        f = open(p, 'rb')
    except OSError:
        print(None)
        return
    try:
        f.seek(start)
        print(repr(f.read(n)))
    finally:
        f.close()
def _qd_mpy():
    i = getattr(usys, 'implementation', None)
    print(getattr(i, '_mpy', getattr(i, 'mpy', 0)) & 0xff)
def _qd_mkdirs(dirs):
    for d in dirs:
        try:
            uos.mkdir(d)
        except OSError:
            pass
def _qd_put(p, mode, data):
    f = open(p, mode)
    try:
        f.write(ubinascii.a2b_base64(data))
    finally:
        f.close()
def _qd_commit(tmp, p, want):
    got = _qd_hash(tmp)
    if got != want:
        uos.remove(tmp)
        raise OSError('verify failed for %s: sha256 %s, sent %s' % (p, got, want))
    try:
        uos.rename(tmp, p)
    except OSError:
        uos.remove(p)
        uos.rename(tmp, p)
def _qd_rm(paths):
    for p in paths:
        try:
            uos.remove(p)
            print(p)
        except OSError:
            pass
def _qd_rmdirs(dirs):
    for d in dirs:
        try:
            if not uos.listdir(d):
                uos.rmdir(d)
                print(d)
        except OSError:
            pass
def _qd_run(path, ms):
    q = usys.modules.get('usr.qframe')
    if q is not None:
        try:
            old = q.CurrentApp()
        except Exception:
            old = None
        if old is not None and old.running:
            print('run: stopping the app that is running')
            old.stop()
    for n in list(usys.modules):
        if n == 'usr' or n.startswith('usr.'):
            del usys.modules[n]
    f = open(path)
    src = f.read()
    f.close()
    print('run: starting %s' % path)
    exec(src, {'__name__': '__main__', '__file__': path})
    q = usys.modules.get('usr.qframe')
    app = None
    if q is not None:
        try:
            app = q.CurrentApp()
        except Exception:
            app = None
    if app is None or not app.running:
        print('run: %s returned and no qframe app is running' % path)
        return
    print('run: %s returned; following the app' % path)
    t0 = utime.ticks_ms()
    why = 'the app stopped by itself'
    try:
        while app.running:
            if ms and utime.ticks_diff(utime.ticks_ms(), t0) >= ms:
                why = 'duration over'
                break
            utime.sleep_ms(50)
    except KeyboardInterrupt:
        why = 'interrupted'
    print('run: %s, stopping the app' % why)
    app.stop()
"""


class DeviceError(Exception):
    """A port that cannot be used, or a device-side failure (message says which)."""


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


class Device(object):
    """A raw-REPL session (no soft reset) with the device on PORT."""

    def __init__(self, port, read_timeout=2.0):
        self.port = port
        self.read_timeout = read_timeout
        self.transport = None

    def open(self):
        try:
            self.transport = SerialTransport(self.port, baudrate=115200,
                                             timeout=self.read_timeout)
        except TransportError as exc:
            raise DeviceError("cannot open %s (%s): is the module plugged in, is this its "
                              "REPL port, and is no other program (QPYcom, a terminal) "
                              "holding it? `make board` starts a virtual one"
                              % (self.port, exc.args[0] if exc.args else exc))
        try:
            self.transport.enter_raw_repl(soft_reset=False)
        except (TransportError, OSError) as exc:
            self.close()
            raise DeviceError("%s does not answer as a MicroPython REPL (%s): QuecPython "
                              "modules have several USB serial ports; use the REPL one"
                              % (self.port, exc))
        self.exec(HELPERS)
        return self

    def close(self):
        if self.transport is None:
            return
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
        except OSError:
            pass
        try:
            self.transport.close()
        except OSError:
            pass
        self.transport = None

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def exec(self, code):
        """Run code on the device; its stdout as text. A device exception -> DeviceError."""
        try:
            return self.transport.exec(code).decode("utf-8", "replace")
        except TransportExecError as exc:
            raise DeviceError("device error:\n%s" % exc.error_output.strip())
        except (TransportError, OSError) as exc:
            raise DeviceError("lost the device on %s: %s" % (self.port, exc))

    def mpy_version(self):
        """The .mpy major version the device loads (0 when it does not say)."""
        return int(self.exec("_qd_mpy()").strip() or 0)

    def hashes(self, paths):
        """{path: sha256 hex of the device file, or None when it does not exist}."""
        if not paths:
            return {}
        found = {}
        paths = list(paths)
        for first in range(0, len(paths), HASH_BATCH):      # output under 4 KB per command
            batch = paths[first:first + HASH_BATCH]
            for line in self.exec("_qd_hashes(%r)" % (batch,)).splitlines():
                digest, _, path = line.strip().partition(" ")
                if path:
                    found[path] = None if digest == "-" else digest
        missing = [p for p in paths if p not in found]
        if missing:
            raise DeviceError("device did not report %s" % ", ".join(missing))
        return found

    def read_text(self, path):
        """The text of a device file, or None when it does not exist. Read READ_CHUNK bytes
        per command: the port drops output the host has not read past a few KB (a virtual
        board's pty does at 4 KB), so one print of a long file arrives garbled."""
        data = b""
        while True:
            reply = ast.literal_eval(self.exec("_qd_read(%r, %d, %d)" % (
                path, len(data), READ_CHUNK)).strip())
            if reply is None:
                return None
            data += reply
            if len(reply) < READ_CHUNK:
                return data.decode("utf-8", "replace")

    def makedirs(self, dirs):
        """Create each folder (parents first in the list); existing ones are fine."""
        if dirs:
            self.exec("_qd_mkdirs(%r)" % (list(dirs),))

    def write_file(self, path, data, chunk=2048):
        """Write data to path: chunks into path.tmp, checked by sha256 on the device, then
        renamed over path, so an interrupted copy never leaves a truncated file at path."""
        tmp = path + ".tmp"
        calls = []
        for offset in range(0, max(len(data), 1), chunk):
            piece = base64.b64encode(data[offset:offset + chunk]).decode()
            calls.append("_qd_put(%r, %r, %r)" % (tmp, "wb" if offset == 0 else "ab", piece))
        calls[-1] += "\n_qd_commit(%r, %r, %r)" % (tmp, path, sha256_hex(data))
        for call in calls:
            self.exec(call)

    def remove(self, paths):
        """Remove the files that exist; return those removed."""
        if not paths:
            return []
        return _lines(self.exec("_qd_rm(%r)" % (list(paths),)))

    def remove_empty_dirs(self, dirs):
        """Remove each folder that is empty (deepest first in the list); return those removed."""
        if not dirs:
            return []
        return _lines(self.exec("_qd_rmdirs(%r)" % (list(dirs),)))

    def run(self, path, duration_s, out):
        """Start path as __main__ and stream the device output to out (a binary file) until it
        returns; the first Ctrl-C here is sent to the device (the app stops cleanly), a second
        one gives up. Returns (device error text, interrupted)."""
        self.transport.exec_raw_no_follow("_qd_run(%r, %d)" % (path, int(duration_s * 1000)))
        serial = self.transport.serial
        errors = bytearray()
        stage = 0
        presses = [0]

        def on_ctrl_c(signum, frame):
            # A handler, not KeyboardInterrupt: a press can land anywhere in the loop below.
            presses[0] += 1
            if presses[0] > 1:
                raise KeyboardInterrupt()
            serial.write(b"\x03")

        previous = signal.signal(signal.SIGINT, on_ctrl_c)
        try:
            while stage < 2:
                try:
                    data = serial.read(max(1, serial.in_waiting))
                except OSError as exc:
                    raise DeviceError("lost the device on %s: %s" % (self.port, exc))
                while data and stage < 2:
                    end = data.find(b"\x04")
                    piece, data = (data, b"") if end < 0 else (data[:end], data[end + 1:])
                    if stage == 0:
                        out.write(piece)
                        out.flush()
                    else:
                        errors.extend(piece)
                    if end >= 0:
                        stage += 1
        finally:
            signal.signal(signal.SIGINT, previous)
        interrupted = presses[0] > 0
        return errors.decode("utf-8", "replace").strip(), interrupted


def _lines(text):
    return [line.strip() for line in text.splitlines() if line.strip()]
