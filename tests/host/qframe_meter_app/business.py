"""The gateway's business: meter frames to the server and back, QFrame style."""
import usys
from usr.qframe import CurrentApp, TcpClient, Uart
from usr.qframe.logging import getLogger
from usr.qframe.threading import Thread
from usr.framing import FLAG, Frame, FrameResolver

logger = getLogger(__name__)
UPLINK = 0x21
PING = 0x22


class ServerClient(TcpClient):

    def recv_callback(self, data):
        logger.info("server sent", len(data), "octets")
        CurrentApp().uart.write(Frame.build(UPLINK, data))


class MeterUart(Uart):

    def __init__(self, name, app=None):
        self.buffer = b""
        super().__init__(name, app)

    def recv_callback(self, data):
        self.buffer += data
        while True:
            start = self.buffer.find(bytes((FLAG,)))
            if start < 0:
                self.buffer = b""
                return
            end = self.buffer.find(bytes((FLAG,)), start + 1)
            if end < 0:
                self.buffer = self.buffer[start:]
                return
            chunk, self.buffer = self.buffer[start:end + 1], self.buffer[end + 1:]
            try:
                frame = Frame.parse(chunk)
            except Exception as e:
                usys.print_exception(e)
                logger.warn("dropped", "bad", "frame")
                continue
            Thread(target=CurrentApp().framer.resolve, args=(frame,)).start()


client = ServerClient("client")
uart = MeterUart("uart")
resolver = FrameResolver()


@resolver.register(UPLINK)
def to_server(frame):
    CurrentApp().client.send(frame.payload)


@resolver.register(PING)
def pong(frame):
    CurrentApp().uart.write(Frame.build(PING, b"pong"))
