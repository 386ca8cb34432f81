"""A broker made with qframe's MQTT codec for the portable tests (both interpreters): it accepts
one client on loopback and hands each packet the client sends to `on_packet`, which a test's
broker defines. Subclasses set their own attributes before calling OneClientBroker.__init__,
which starts serving."""
import _thread

from checks import listen_on_free_port
from usr.qframe.codecs import mqtt as codec


class OneClientBroker(object):

    def __init__(self):
        self.listener, self.port = listen_on_free_port(1)
        self.conn = None
        self.done = False
        self.lock = _thread.allocate_lock()
        _thread.start_new_thread(self._serve, ())

    def on_packet(self, packet):
        """Answer one packet from the client; return False to close the connection."""
        raise NotImplementedError

    def send(self, data):
        with self.lock:
            self.conn.send(data)

    def _serve(self):
        try:
            self.conn = self.listener.accept()[0]
            self.conn.settimeout(10)
            parser = codec.Parser(1 << 16)
            while True:
                data = self.conn.recv(512)
                if not data:
                    return
                for packet in parser.feed(data):
                    if self.on_packet(packet) is False:
                        self.conn.close()
                        return
        except OSError:
            pass
        finally:
            self.done = True
