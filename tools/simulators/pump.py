"""The serve loops of the simulated peers: read what arrives on a connection or a pty, hand it
to `answer(data)` and write back the bytes it returns, until `stop` (a threading.Event) is set
or the peer goes away."""
import os
import select
import socket


def pump_socket(conn, stop, answer, poll_s=0.2):
    """Serve a connected socket; returns when the peer closes it or an I/O error ends it."""
    conn.settimeout(poll_s)
    while not stop.is_set():
        try:
            data = conn.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            return
        if not data:
            return
        try:
            out = answer(data)
            if out:
                conn.sendall(out)
        except OSError:
            return


def pump_fd(fd, stop, answer, poll_s=0.2):
    """Serve a file descriptor (a pty master); returns when reading it fails."""
    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], poll_s)
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            return
        out = answer(data) if data else b""
        if out:
            os.write(fd, out)
