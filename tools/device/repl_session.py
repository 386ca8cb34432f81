"""A session with a MicroPython device over mpremote's serial transport, QuecPython-safe.

QuecPython has only the u-names (`uos`, `usys`, `uhashlib`...), so mpremote's `fs` commands
(which `import os`) fail there. This module drives the device with its own small snippets that
import u-names only (DEVICE_IMPORTS; tests/host/tooling/test_deploy.py checks it), through mpremote's
raw REPL entered *without* a soft reset (mpremote `resume`): a reset would restart the old app
in the middle of a copy.

    with Device("/dev/ttyUSB0") as dev:
        dev.hashes(["/usr/main.py"])      # {"/usr/main.py": "9f86..." or None}
        dev.write_file("/usr/main.py", data)
"""
import ast
import base64
import contextlib
import hashlib
import io
import os
import signal
import struct
import time

try:
    from mpremote.transport import TransportError, TransportExecError
    from mpremote.transport_serial import SerialTransport
    from serial.tools import list_ports
except ImportError:  # pragma: no cover - only without the dev venv
    raise SystemExit("mpremote is not installed: run `make venv` (it pins mpremote)")



def _env_timeout(default=5.0):
    """Seconds a device command waits for the device (QFRAME_PORT_TIMEOUT, make PORT_TIMEOUT)."""
    text = os.environ.get("QFRAME_PORT_TIMEOUT") or ""
    try:
        value = float(text) if text.strip() else default
    except ValueError:
        value = -1
    if not value > 0:
        raise SystemExit("QFRAME_PORT_TIMEOUT (make PORT_TIMEOUT) must be a positive number of "
                         "seconds, got %r" % text)
    return value


DEFAULT_TIMEOUT = _env_timeout()

DEVICE_IMPORTS = ("uos", "usys", "utime", "ubinascii", "uhashlib")

# Defined once per session in the device's REPL namespace; every name starts with _qd_.
HELPERS = """\
import uos, usys, utime, ubinascii, uhashlib
def _qd_say(*parts):
    print('\\x1e' + ' '.join([str(p) for p in parts]) + '\\n', end='')
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
        _qd_say(_qd_hash(p) or '-', p)
def _qd_read(p, at, n):
    try:
        f = open(p, 'rb')
    except OSError:
        _qd_say(None)
        return
    try:
        f.seek(at)
        _qd_say(repr(f.read(n)))
    finally:
        f.close()
def _qd_mpy():
    i = getattr(usys, 'implementation', None)
    _qd_say(getattr(i, '_mpy', getattr(i, 'mpy', 0)))
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
def _qd_cat(p, off, n):
    f = open(p, 'rb')
    try:
        f.seek(off)
        b = f.read(n)
    finally:
        f.close()
    _qd_say(uos.stat(p)[6], ubinascii.b2a_base64(b).decode().strip())
def _qd_size(p):
    try:
        _qd_say(uos.stat(p)[6])
    except OSError:
        _qd_say(-1)
def _qd_tree(d):
    for e in uos.ilistdir(d):
        p = d + '/' + e[0]
        if e[1] == 0x4000:
            _qd_say('d', 0, p)
            _qd_tree(p)
        else:
            _qd_say('f', uos.stat(p)[6], p)
def _qd_rm(paths):
    for p in paths:
        try:
            uos.remove(p)
            _qd_say(p)
        except OSError:
            pass
def _qd_rmdirs(dirs):
    for d in dirs:
        try:
            if not uos.listdir(d):
                uos.rmdir(d)
                _qd_say(d)
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
    t0 = utime.ticks_ms()
    why = 'the app stopped by itself'
    try:
        print('run: %s returned; following the app' % path)
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


# MicroPython unix drops what does not fit in the pty's buffer (about 4 KB) when the host is
# slow to read, so no single exec prints more than that: hashes in batches, files in pieces.
HASH_BATCH = 16             # paths per _qd_hashes call (about 1.6 KB of output)
READ_PIECE = 1024           # octets of a file per _qd_read call (at most 4 KB as a repr)


class DeviceError(Exception):
    """A port that cannot be used, or a device-side failure (message says which)."""


class DeadlineSerial(object):
    """The port, with a deadline on every read: mpremote's own waits restart their clock on
    each byte, so a device that keeps printing (an app logging every second) would hold a
    command forever. start(seconds) begins one device call's time; None: no limit."""

    def __init__(self, serial):
        self._serial = serial
        self._deadline = None

    def start(self, seconds):
        self._deadline = None if seconds is None else time.monotonic() + seconds

    def _check(self):
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise TransportError("no answer in time")

    def read(self, size=1):
        self._check()
        return self._serial.read(size)

    def inWaiting(self):                # noqa: N802 (pyserial's name, used by mpremote)
        self._check()
        return self._serial.in_waiting

    @property
    def in_waiting(self):
        self._check()
        return self._serial.in_waiting

    def __getattr__(self, name):
        return getattr(self._serial, name)

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._serial, name, value)


RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
SAID = b"\x1e"            # starts each line a helper says (_qd_say): app text never holds it
TRACEBACK = b"Traceback (most recent call last):"   # how every device exception report starts
PASTE_YES, PASTE_NO = b"R\x01", b"R\x00"


class SharedLineTransport(SerialTransport):
    """mpremote's serial transport, reading the raw-REPL protocol out of a line the running
    app also prints to (its log lines can arrive between any two protocol bytes). mpremote
    expects each reply at a fixed place and gives up - or, counting each byte of app output
    as progress, waits forever. Here each marker is looked for in the stream (the app's text
    never holds the control bytes 0x01/0x04), and DeadlineSerial bounds every wait."""

    def _read_to(self, *endings):
        data = b""
        while not data.endswith(endings):
            data += self.serial.read(1)
        return data

    def exec_raw_no_follow(self, command):
        code = command if isinstance(command, bytes) else command.encode("utf8")
        self._read_to(b">")
        if self.use_raw_paste:
            self.serial.write(b"\x05A\x01")
            reply = self._read_to(PASTE_YES, PASTE_NO, b"w REPL; CTRL-B to exit\r\n>")
            if reply.endswith(PASTE_YES):
                return self._paste(code)
            self.use_raw_paste = False        # 1.13 and older: the plain raw REPL
        for at in range(0, len(code), 256):
            self.serial.write(code[at:at + 256])
            time.sleep(0.01)
        self.serial.write(b"\x04")
        self._read_to(b"OK")

    def _paste(self, code):
        window = struct.unpack("<H", self.serial.read(2))[0]
        room = window
        at = 0
        while at < len(code):
            while room == 0 or self.serial.in_waiting:
                got = self.serial.read(1)
                if got == b"\x01":
                    room += window
                elif got == b"\x04":            # the device ended the paste
                    self.serial.write(b"\x04")
                    return
            piece = code[at:at + room]
            self.serial.write(piece)
            room -= len(piece)
            at += len(piece)
        self.serial.write(b"\x04")
        self._read_to(b"\x04")


def recover_raw_repl(line, attempt_s=1.0):
    """Bring the device to a fresh raw-REPL prompt whatever the last tool left (killed
    mid-command, mid-paste, in the friendly REPL, with the app printing): Ctrl-C (stops
    running code, abandons a raw paste), drain what is pending, Ctrl-A, and look for the
    banner; Ctrl-B between tries. The line's deadline ends it (TransportError)."""
    while True:
        line.write(b"\r\x03")
        _drain(line, 0.1)
        line.write(b"\x03")
        _drain(line, 0.1)
        line.write(b"\r\x01")
        got = b""
        until = time.monotonic() + attempt_s
        while time.monotonic() < until:
            got += line.read(1)     # one at a time: the ">" after the banner is mpremote's
            if got.endswith(RAW_BANNER):    # to read, as after its own enter_raw_repl
                return
        line.write(b"\r\x02")


def _drain(line, quiet_s, longest_s=0.3):
    """Read and drop what the device sends until it is quiet for quiet_s (at most longest_s:
    an app that prints all the time is never quiet; the banner is found among its lines)."""
    until = time.monotonic() + longest_s
    quiet_from = time.monotonic()
    while time.monotonic() < until and time.monotonic() - quiet_from < quiet_s:
        if line.in_waiting:
            line.read(line.in_waiting)
            quiet_from = time.monotonic()
        else:
            time.sleep(0.01)


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


class Device(object):
    """A raw-REPL session (no soft reset) with the device on PORT."""

    def __init__(self, port, timeout=None):
        self.port = port
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.transport = None

    def open(self):
        """Open the port and enter the raw REPL, waiting at most `timeout` s for the device."""
        if not port_exists(self.port):
            present = sorted(p.device for p in list_ports.comports())
            raise DeviceError("cannot open %s: no such port (is the module plugged in? ports "
                              "present: %s; `make board` starts a virtual one)"
                              % (self.port, ", ".join(present) or "none"))
        try:
            self.transport = SharedLineTransport(self.port, baudrate=115200,
                                             timeout=min(self.timeout, 0.5))
        except TransportError as exc:
            raise DeviceError("cannot open %s: %s (another program - QPYcom, a terminal, "
                              "make shell - may be holding it)"
                              % (self.port, exc.args[0] if exc.args else exc))
        self.transport.serial = self.line = DeadlineSerial(self.transport.serial)
        try:
            self.line.start(self.timeout)
            recover_raw_repl(self.line)
            self.transport.in_raw_repl = True
        except (TransportError, OSError):
            self.close()
            raise DeviceError("%s did not answer as a MicroPython REPL within %g s (QuecPython "
                              "modules have several USB serial ports: use the REPL one; "
                              "--timeout or QFRAME_PORT_TIMEOUT waits longer)"
                              % (self.port, self.timeout))
        self.exec(HELPERS)
        return self

    def close(self):
        if self.transport is None:
            return
        try:
            self.line.start(self.timeout)
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
        except (TransportError, OSError):
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
        """Run code on the device; what it said through _qd_say, one line each, as text (the
        running app's own console lines can land anywhere in the reply: they are left out).
        A device exception -> DeviceError."""
        try:
            self.line.start(self.timeout)
            out, err = self.transport.exec_raw(code, timeout=self.timeout)
        except (TransportError, OSError) as exc:
            raise DeviceError("lost the device on %s (no answer within %g s: %s)"
                              % (self.port, self.timeout, exc))
        at = err.find(TRACEBACK)
        if at >= 0:
            raise DeviceError("device error:\n%s" % err[at:].decode("utf-8", "replace").strip())
        return "".join(line[line.find(SAID) + 1:].rstrip(b"\r").decode("utf-8", "replace") + "\n"
                       for line in out.split(b"\n") if SAID in line)

    def mpy(self):
        """The device's sys.implementation.mpy (or _mpy): .mpy version in the low byte, then
        1.13's feature flags (0 when it does not say)."""
        return int(self.exec("_qd_mpy()").strip() or 0)

    def mpy_version(self):
        """The .mpy major version the device loads (0 when it does not say)."""
        return self.mpy() & 0xFF

    def hashes(self, paths):
        """{path: sha256 hex of the device file, or None when it does not exist}."""
        if not paths:
            return {}
        found = {}
        paths = list(paths)
        for start in range(0, len(paths), HASH_BATCH):
            batch = paths[start:start + HASH_BATCH]
            for line in self.exec("_qd_hashes(%r)" % (batch,)).splitlines():
                digest, _, path = line.strip().partition(" ")
                if path:
                    found[path] = None if digest == "-" else digest
        missing = [p for p in paths if p not in found]
        if missing:
            raise DeviceError("device did not report %s" % ", ".join(missing))
        return found

    def read_text(self, path):
        """The text of a device file, or None when it does not exist."""
        data = b""
        while True:                     # READ_PIECE octets per exec (see HASH_BATCH)
            piece = ast.literal_eval(self.exec("_qd_read(%r, %d, %d)" % (
                path, len(data), READ_PIECE)).strip())
            if piece is None:
                return None
            data += piece
            if len(piece) < READ_PIECE:
                return data.decode()

    def read_bytes(self, path, start=0, chunk=4096):
        """(bytes of path from offset start, file size); DeviceError if it does not exist."""
        if int(self.exec("_qd_size(%r)" % path).strip()) < 0:
            raise DeviceError("%s: no such file on the device" % path)
        data = bytearray()
        while True:
            size, _, b64 = self.exec("_qd_cat(%r, %d, %d)" % (path, start + len(data), chunk)
                                     ).strip().partition(" ")
            piece = base64.b64decode(b64)
            data.extend(piece)
            if not piece or start + len(data) >= int(size):
                return bytes(data), int(size)

    def size(self, path):
        """Size of a device file in bytes, or None when it does not exist."""
        size = int(self.exec("_qd_size(%r)" % path).strip())
        return None if size < 0 else size

    def tree(self, folder):
        """[(kind 'd' or 'f', size, path)] of everything under folder, depth first."""
        entries = []
        for line in _lines(self.exec("_qd_tree(%r)" % folder)):
            kind, size, path = line.split(" ", 2)
            entries.append((kind, int(size), path))
        return entries

    def restart(self):
        """Send misc.Power.powerRestart() (QuecPython's reboot) without waiting for an answer:
        the module reboots and its USB ports go away for a while."""
        try:
            self.line.start(self.timeout)
            self.transport.exec_raw_no_follow("from misc import Power\nPower.powerRestart()")
        except (TransportError, OSError) as exc:
            raise DeviceError("lost the device on %s: %s" % (self.port, exc))
        self.transport.in_raw_repl = False

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
        self.line.start(self.timeout)
        try:
            self.transport.exec_raw_no_follow("_qd_run(%r, %d)" % (path,
                                                                  int(duration_s * 1000)))
        except (TransportError, OSError) as exc:
            raise DeviceError("lost the device on %s: %s" % (self.port, exc))
        self.line.start(None)          # the app's output: as long as it runs
        serial = self.line
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


def port_exists(port):
    """False only when port is a file path that is not there (COM5 and URLs pass)."""
    if "://" in port or "/" not in port and os.sep not in port:
        return True
    return os.path.exists(port)


def _lines(text):
    return [line.strip() for line in text.splitlines() if line.strip()]
