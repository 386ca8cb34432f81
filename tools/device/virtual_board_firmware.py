"""Firmware of the virtual board: a QuecPython-like console, run by MicroPython unix on a pty.

    micropython tools/device/virtual_board_firmware.py ROOT SHIM_PATHS [--no-autorun] [--allow-std]

tools/device/virtual_board.py starts it with the pty as its controlling terminal (raw, ONLCR on,
VMIN 0).
What it gives a host tool, as the module does:
- Filesystem: /usr and /bak are ROOT/usr and ROOT/bak (mounted as by shimctl.install_fs, with a
  working rename), cwd is '/'; sys.path is [ROOT, SHIM_PATHS...], so `import usr.qframe` loads
  ROOT/usr/qframe as the module loads /usr/qframe.
- Modules: only the u-names exist for device and REPL code: `import os`, `time`, `json`... raise
  ImportError as on QuecPython, unless the name is already in sys.modules (the alias that
  mpremote's `fs` commands need). Shim modules (host glue) are exempt. --allow-std lifts this.
- Console: friendly REPL (`>>> `), raw REPL (Ctrl-A) with raw-paste mode, Ctrl-B back to the
  friendly REPL, Ctrl-C interrupts running code (ISIG is on only while code runs, so the tty
  turns 0x03 into SIGINT), Ctrl-D on an empty line soft-resets.
- mpremote mount: mpremote's filesystem hook (RemoteFS) is host tooling; the board runs it with
  its imports mapped to u-names and `micropython.kbd_intr` switching the tty's Ctrl-C (so the
  binary protocol's 0x03 bytes are data), and '' ends sys.path, so code under /remote imports.
- Reset: `misc.Power.powerRestart()` typed at a REPL (what `make reset` sends) reboots the board:
  a soft reset that runs /usr/main.py, then the friendly REPL. From an app thread it stays the
  shim's (counted, returns).
- Boot: /usr/main.py runs at power-on (as QuecPython's firmware does) and after a soft reset
  from the friendly REPL. A soft reset from the raw REPL does not run it, so a tool's reset
  never starts the old app in the middle of a copy. A soft reset stops a running qframe app,
  forgets every module imported since boot and clears the REPL namespace.
"""
import builtins
import gc
import termios
import uselect as select
import uos
import ustruct
import usys

BLOCKED = ("os", "time", "json", "struct", "binascii", "hashlib", "zlib", "socket", "select",
           "io", "collections", "ssl", "errno", "random", "re", "asyncio", "uasyncio")
MAIN_PY = "/usr/main.py"
RAW_BANNER = "raw REPL; CTRL-B to exit\n"
PASTE_WINDOW = 4096  # little-endian bytes 00 10: no 0x0a for ONLCR to rewrite
ISIG = 0o1           # termios lflag bit (Linux); the module has no constant for it
CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5
FRIENDLY, RAW = "friendly", "raw"


# mpremote's fs hook (transport_serial.fs_hook_code) as QuecPython would need it: u-names.
HOOK_MARK = b"class RemoteFS"
HOOK_REWRITES = ((b"import os, io, struct, micropython",
                  b"import uos as os, uio as io, ustruct as struct, micropython"),
                 (b"import select, sys", b"import uselect as select, usys as sys"),
                 (b"micropython.kbd_intr(", b"_qvb_kbd_intr("))


class Hangup(Exception):
    """The host side of the pty went away."""


class Reboot(BaseException):
    """misc.Power.powerRestart() called from REPL code: the board reboots."""


class Console(object):
    """Bytes in from stdin (whatever is available, never blocking past the first byte) and
    text or bytes out to stdout."""

    def __init__(self):
        self._in = usys.stdin.buffer
        self._poll = select.poll()
        self._poll.register(self._in, select.POLLIN)
        self._buf = bytearray(1024)
        self._pending = b""
        self._pos = 0

    def chunk(self):
        """The unread input received so far (at least one byte; waits for it)."""
        if self._pos < len(self._pending):
            data = self._pending[self._pos:]
            self._pending, self._pos = b"", 0
            return data
        while True:
            events = self._poll.poll(-1)
            try:
                n = self._in.readinto(self._buf)
            except OSError:
                raise Hangup()
            if n:
                return bytes(self._buf[:n])
            if events and events[0][1] & (select.POLLHUP | select.POLLERR):
                raise Hangup()

    def getc(self):
        if self._pos >= len(self._pending):
            self._pending, self._pos = self.chunk(), 0
        c = self._pending[self._pos]
        self._pos += 1
        return c

    def take_interrupt(self):
        """True if a Ctrl-C came in before interrupts were on (it is then consumed with what
        preceded it); other input stays queued for the REPL, as in a UART ring buffer."""
        if self._poll.poll(0):
            try:
                n = self._in.readinto(self._buf)
            except OSError:
                n = 0
            if n:
                self._pending = self._pending[self._pos:] + bytes(self._buf[:n])
                self._pos = 0
        at = self._pending.rfind(b"\x03", self._pos)
        if at < 0:
            return False
        self._pos = at + 1
        return True

    def unread(self, data):
        self._pending = data + self._pending[self._pos:]
        self._pos = 0

    def write(self, text):
        usys.stdout.write(text)

    def write_bytes(self, data):
        usys.stdout.buffer.write(data)


def set_interrupts(on):
    """Let the tty turn Ctrl-C into SIGINT (KeyboardInterrupt) only while user code runs."""
    try:
        attrs = termios.tcgetattr(0)
        attrs[3] = (attrs[3] | ISIG) if on else (attrs[3] & ~ISIG)
        termios.tcsetattr(0, termios.TCSANOW, attrs)
    except OSError:
        pass


def kbd_intr(char):
    """micropython.kbd_intr for host tooling: -1 also stops the tty raising SIGINT on 0x03."""
    set_interrupts(char >= 0)


def host_tool_code(code):
    """code with mpremote's fs hook made QuecPython-clean (u-names), else code unchanged."""
    if HOOK_MARK not in code:
        return code
    code = bytes(code)
    for old, new in HOOK_REWRITES:
        code = code.replace(old, new)
    return code


def _raise_pending():
    """A few VM steps, where MicroPython raises a KeyboardInterrupt still pending."""
    for _ in range(2):
        pass


def install_import_guard(exempt_prefixes):
    """Make the non-u standard names unimportable for device and REPL code."""
    real_import = builtins.__import__

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        top = name.split(".")[0]
        if level == 0 and top in BLOCKED and top not in usys.modules:
            importer = globals.get("__file__", "") if isinstance(globals, dict) else ""
            exempt = False
            for prefix in exempt_prefixes:
                if importer.startswith(prefix):
                    exempt = True
            if not exempt:
                raise ImportError("no module named '%s'" % name)
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = guarded_import


class Board(object):
    """The boot sequence and the two REPLs."""

    def __init__(self, console, autorun):
        self.console = console
        self.autorun = autorun
        self.boot_modules = list(usys.modules)
        self.namespace = None
        self.reset_namespace()

    def reset_namespace(self):
        self.namespace = {"__name__": "__main__"}

    # -- running code -------------------------------------------------------------------------

    def run(self, source, filename, mode="exec"):
        """Compile and run source in the REPL namespace; return the exception it raised."""
        error = None
        try:
            set_interrupts(True)
            if self.console.take_interrupt():
                raise KeyboardInterrupt()
            exec(compile(source, filename, mode), self.namespace)
        except SystemExit:
            pass
        except BaseException as exc:
            error = exc
        try:
            set_interrupts(False)
            _raise_pending()
        except KeyboardInterrupt:
            # A Ctrl-C that came in as the code ended: MicroPython ports drop it too.
            pass
        return error

    def run_main(self):
        try:
            uos.stat(MAIN_PY)
        except OSError:
            return
        with open(MAIN_PY) as f:
            source = f.read()
        exc = self.run(source, MAIN_PY)
        if exc is not None:
            usys.print_exception(exc)

    def soft_reset(self, run_main):
        self.stop_app()
        for name in list(usys.modules):
            if name not in self.boot_modules:
                del usys.modules[name]
        self.reset_namespace()
        gc.collect()
        self.console.write("MPY: soft reboot\n")
        if run_main:
            self.run_main()

    def reboot(self):
        """What a power restart looks like from the console: reset, main.py, banner next."""
        self.console.write("\n")
        self.soft_reset(run_main=True)

    def stop_app(self):
        """A real reset ends the app's threads; here the running qframe app is stopped."""
        qframe = usys.modules.get("usr.qframe")
        if qframe is None:
            return
        try:
            app = qframe.CurrentApp()
            if app.running:
                app.stop()
        except Exception as exc:
            usys.print_exception(exc)

    # -- friendly REPL ------------------------------------------------------------------------

    def banner(self):
        self.console.write("MicroPython v%s on qframe-vboard; virtual QuecPython module\n"
                           "Type \"help()\" for more information.\n"
                           % ".".join(str(v) for v in usys.implementation.version[:3]))

    def read_line(self, prompt):
        """One edited line, or a control code (int) typed on an empty line."""
        console = self.console
        console.write(prompt)
        line = bytearray()
        last = 0
        while True:
            c = console.getc()
            if c in (CTRL_A, CTRL_B, CTRL_D) and not line:
                return c
            if c == CTRL_C:
                console.write("\n")
                return CTRL_C
            if c == 0x0A and last == 0x0D:
                last = c
                continue
            last = c
            if c in (0x0D, 0x0A):
                console.write("\n")
                return bytes(line).decode()
            if c in (0x08, 0x7F):
                if line:
                    line.pop()
                    console.write("\b \b")
            elif c == 0x1B:
                self.skip_escape()
            elif c >= 0x20 or c == 0x09:
                line.append(c)
                console.write_bytes(bytes((c,)))

    def skip_escape(self):
        """Drop a terminal escape sequence (arrow keys...): no history or cursor movement."""
        if self.console.getc() != ord("["):
            return
        while True:
            c = self.console.getc()
            if 0x40 <= c <= 0x7E:
                return

    def friendly(self):
        self.banner()
        while True:
            line = self.read_line(">>> ")
            if line == CTRL_A:
                self.console.write("\n")
                return RAW
            if line == CTRL_B:
                self.console.write("\n")
                self.banner()
                continue
            if line == CTRL_D:
                self.console.write("\n")
                self.soft_reset(run_main=True)
                self.banner()
                continue
            if line == CTRL_C or not line.strip():
                continue
            source = line
            while source.rstrip().endswith(":") or "\n" in source:
                more = self.read_line("... ")
                if more == CTRL_C:
                    source = ""
                    break
                if not isinstance(more, str) or not more.strip():
                    break
                source += "\n" + more
            if source:
                exc = self.run(source + "\n", "<stdin>", "single")
                if isinstance(exc, Reboot):
                    self.reboot()
                    self.banner()
                elif exc is not None:
                    usys.print_exception(exc)

    # -- raw REPL -----------------------------------------------------------------------------

    def raw(self):
        console = self.console
        console.write(RAW_BANNER)
        while True:
            console.write(">")
            kind, code = self.read_raw_command()
            if kind == FRIENDLY:
                return FRIENDLY
            if kind == "reset":
                self.soft_reset(run_main=False)
                console.write(RAW_BANNER)
                continue
            if kind == "code":
                console.write("OK")
            self.namespace["_qvb_kbd_intr"] = kbd_intr
            exc = self.run(host_tool_code(code).decode(), "<stdin>")
            if isinstance(exc, Reboot):
                self.reboot()
                return FRIENDLY
            console.write("\x04")
            if exc is not None:
                usys.print_exception(exc)
            console.write("\x04")

    def read_raw_command(self):
        """(kind, code): kind is "code" (ended by Ctrl-D), "paste" (raw-paste mode), "reset"
        (Ctrl-D on an empty line) or FRIENDLY (Ctrl-B)."""
        console = self.console
        code = bytearray()
        while True:
            c = console.getc()
            if c == CTRL_A:
                console.write("\n" + RAW_BANNER + ">")
                code = bytearray()
            elif c == CTRL_B:
                console.write("\n")
                return FRIENDLY, None
            elif c == CTRL_C:
                code = bytearray()
            elif c == CTRL_D:
                return ("code", code) if code else ("reset", None)
            elif c == CTRL_E and not code:
                pasted = self.raw_paste()
                if pasted is not None:
                    return "paste", pasted
            else:
                code.append(c)

    def raw_paste(self):
        """After Ctrl-E on an empty raw line: 'A' 0x01 starts raw-paste mode (flow-controlled
        by windows of PASTE_WINDOW bytes, acknowledged with 0x01, ended by Ctrl-D). Returns the
        code, or None when the request was not a raw-paste request; a Ctrl-C in the data
        abandons it (KeyboardInterrupt: serve() shows the raw prompt again)."""
        console = self.console
        if console.getc() != ord("A") or console.getc() != CTRL_A:
            console.write("R\x00")
            return None
        console.write_bytes(b"R\x01" + ustruct.pack("<H", PASTE_WINDOW))
        code = bytearray()
        unacked = 0
        while True:
            data = console.chunk()
            end = data.find(b"\x04")
            abort = data.find(b"\x03")
            if abort >= 0 and (end < 0 or abort < end):
                # As MicroPython's raw paste: Ctrl-C ends it unrun (a host killed mid-paste
                # leaves the board waiting for the rest; the next tool's Ctrl-C frees it).
                console.write_bytes(b"\x04")
                raise KeyboardInterrupt()
            body = data if end < 0 else data[:end]
            code.extend(body)
            unacked += len(body)
            while unacked >= PASTE_WINDOW:
                console.write_bytes(b"\x01")
                unacked -= PASTE_WINDOW
            if end >= 0:
                if end + 1 < len(data):
                    console.unread(data[end + 1:])
                break
        console.write_bytes(b"\x04")
        return code

    # -- main loop ----------------------------------------------------------------------------

    def serve(self):
        boot = self.autorun
        mode = FRIENDLY
        while True:
            try:
                if boot:
                    boot = False
                    self.run_main()
                mode = self.raw() if mode == RAW else self.friendly()
            except KeyboardInterrupt:
                # A Ctrl-C that raced the start or end of user code: as if typed at the prompt.
                pass


class HostDirVfs(uos.VfsPosix):
    """VfsPosix over a host folder, with a rename that works: MicroPython 1.29's VfsPosix
    builds both rename paths in one buffer when it has a root, so it renames the new path onto
    itself (ENOENT). Renaming the host paths through the port's '/' mount is correct."""

    def __init__(self, host_dir):
        super().__init__(host_dir)
        self.host_dir = host_dir

    def rename(self, old, new):
        uos.rename(self.host_dir + old, self.host_dir + new)


def install_reboot():
    """powerRestart() from the REPL's thread raises Reboot; other threads keep the shim's."""
    import _thread
    import misc
    shim_restart = misc.Power.powerRestart
    repl_thread = _thread.get_ident()

    def power_restart():
        if _thread.get_ident() == repl_thread:
            raise Reboot()
        return shim_restart()

    misc.Power.powerRestart = staticmethod(power_restart)


def _setup(root, shim_paths, allow_std):
    # Imports read ROOT/usr through the port's native '/' mount: MicroPython cannot import
    # through a Python subclass of a VFS (HostDirVfs), which file operations on /usr use.
    usys.path[:] = [root] + [p for p in shim_paths.split(":") if p] + [""]
    from shimlib import devicefs
    devicefs.install_fs(root)
    for top in devicefs.DEVICE_DIRS:
        uos.umount(top)
        uos.mount(HostDirVfs(devicefs.board_root + top), top)
    uos.chdir("/")
    install_reboot()
    if not allow_std:
        install_import_guard([p for p in shim_paths.split(":") if p] + [__file__])


def main(argv):
    if len(argv) < 2:
        print("usage: micropython virtual_board_firmware.py ROOT SHIM_PATHS [--no-autorun] "
              "[--allow-std]")
        usys.exit(2)
    flags = argv[2:]
    _setup(argv[0], argv[1], "--allow-std" in flags)
    board = Board(Console(), autorun="--no-autorun" not in flags)
    try:
        board.serve()
    except Hangup:
        pass


main(usys.argv[1:])
