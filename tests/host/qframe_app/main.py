"""A DTU written against QuecPython's QFrame API only (no qframe extras): UART <-> TCP relay.

tests/host/architecture/test_qframe_compat.py boots it unchanged as /usr/main.py of a board root.
"""
from usr.qframe import Application, CurrentApp, TcpClient, Uart
from usr.qframe.logging import getLogger

logger = getLogger(__name__)


class ServerLink(TcpClient):

    def recv_callback(self, data):
        logger.info("server -> uart: %d bytes" % len(data))
        CurrentApp().uart.write(data)


class MeterPort(Uart):

    def recv_callback(self, data):
        logger.info("uart -> server: %d bytes" % len(data))
        CurrentApp().client.send(data)


def create_app(name="DTU", config_path="/usr/dev.json"):
    _app = Application(name)
    _app.config.from_json(config_path)
    client = ServerLink("client")
    client.init_app(_app)
    uart = MeterPort("uart")
    uart.init_app(_app)
    return _app


app = create_app()

if __name__ == "__main__":
    app.mainloop()
