"""A one-request-at-a-time HTTP peer for the portable tests (both interpreters): each entry of
`replies` answers one connection, called with it once the request head is read."""
import _thread

from checks import listen_on_free_port


def http_peer(replies):
    """Serve one connection per entry of replies (reply(conn) writes what it likes), then close
    the listener; return the port."""
    sock, port = listen_on_free_port()

    def serve():
        try:
            for reply in replies:
                conn = sock.accept()[0]
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(512)
                    if not chunk:
                        break
                    request += chunk
                try:
                    reply(conn)
                except OSError:
                    pass
                conn.close()
        except OSError:
            pass
        sock.close()

    _thread.start_new_thread(serve, ())
    return port
