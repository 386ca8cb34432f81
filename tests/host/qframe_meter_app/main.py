"""A meter gateway written against QuecPython's QFrame API only, modelled on the public
QFrame solutions (business module, resolver extension, Thread per frame, CurrentApp).
tests/host/architecture/test_qframe_compat.py boots it unchanged as /usr/main.py of a board root."""
from usr.qframe import Application, CurrentApp, G
from usr.qframe.collections import OrderedDict
from usr.qframe.logging import getLogger
from usr.business import client, resolver, uart

logger = getLogger(__name__)


def answer(value):
    return value * 2


def create_app(name="GATEWAY", config_path="/usr/dev.json"):
    _app = Application(name)
    _app.config.from_json(config_path)
    resolver.init_app(_app)
    uart.init_app(_app)
    client.init_app(_app)
    return _app


app = create_app()
early = app.submit(target=answer, args=(21,))      # the pool works before mainloop()


def check_api():
    seen = OrderedDict()
    for name, ext in app.extensions.items():
        seen[name] = ext
    assert list(seen.keys()) == ["network", "framer", "uart", "client"], list(seen.keys())
    assert "uart" in app.extensions and app.framer is resolver
    assert CurrentApp.get() is app and CurrentApp() is app and G.get() is G()
    assert early.get(timeout=5) == 42
    app.network.register_net_callback(lambda args: None)
    logger.warn("QFrame", "API", "check", "ok")


if __name__ == "__main__":
    app.mainloop()
    check_api()
