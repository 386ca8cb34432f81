"""Assertion helpers for portable tests (no pytest on MicroPython)."""

# The longest a test waits for something that must happen; a wait returns as soon as it does,
# so this only matters on a loaded machine, which stretches every thread's turn.
EVENT_MS = 20000


def raises(exc_type, fn, *args, **kwargs):
    """Call fn and return the exc_type it raised; fail if it raised nothing."""
    try:
        fn(*args, **kwargs)
    except exc_type as exc:
        return exc
    raise AssertionError("expected %s" % exc_type)


def wait_until(predicate, timeout_ms=EVENT_MS, step_ms=2):
    """Poll predicate until true or timeout; return its last value."""
    import utime
    deadline = utime.ticks_add(utime.ticks_ms(), timeout_ms)
    while True:
        value = predicate()
        if value or utime.ticks_diff(deadline, utime.ticks_ms()) <= 0:
            return value
        utime.sleep_ms(step_ms)


def closed_port():
    """A loopback port nobody listens on: a free one, listened on and closed again."""
    sock, port = listen_on_free_port()
    sock.close()
    return port


def host_addr(port):
    """127.0.0.1:port in the form this interpreter's socket.bind/connect take."""
    from shimlib.hostio import IS_MICROPYTHON, socket     # the host's socket module
    if IS_MICROPYTHON:
        return socket.getaddrinfo("127.0.0.1", port)[0][-1]
    return ("127.0.0.1", port)


def listen_on_free_port(backlog=2):
    """A host socket listening on 127.0.0.1 and its port (bound to port 0, read back)."""
    from shimlib.hostio import bound_port, socket         # the host's socket module
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(host_addr(0))
    sock.listen(backlog)
    sock.settimeout(5)
    return sock, bound_port(sock)


class captured(object):
    """Keeps what a test provokes on purpose off the console: qframe log lines and shim notes
    (tools/shim/shimlib/notes.py) written inside the block.

        with captured() as out:
            ...inject the fault...
        assert out.has("thread failing died")

    Nests (tools/testing/run_portable.py wraps every test in one and prints `lines` only when
    the test fails, as pytest does on CPython)."""

    def __enter__(self):
        from usr.qframe import logging as qlog
        from shimlib import notes
        self.lines = []
        self._qlog, self._notes = qlog, notes
        self._token = qlog.add_listener(self._add)
        self._console = qlog._output.console
        qlog.basicConfig(console=False)
        notes.quiet(True)
        self._mark = notes.mark()
        return self

    def _add(self, level, line):
        self.lines.append(line)

    def __exit__(self, *exc):
        self._qlog.remove_listener(self._token)
        self._qlog.basicConfig(console=self._console)
        self._notes.quiet(False)
        self.lines.extend(self._notes.since(self._mark))
        return False

    def has(self, text):
        for line in self.lines:
            if text in line:
                return True
        return False


def fresh_folder(root, name):
    """root/name as an empty folder (created if missing); its path."""
    import uos
    path = root + "/" + name
    for folder in (root, path):
        try:
            uos.mkdir(folder)
        except OSError:
            pass
    for entry in uos.listdir(path):
        uos.remove(path + "/" + entry)
    return path
