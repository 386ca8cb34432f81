"""A toy meter protocol and a handler registry in the style of QFrame solutions' resolvers.

Frame: 7E <protocol:1> <length:1> <payload:length> 7E. The registry registers itself as an
app extension through `app.extensions[...]`, like the electricity-meter solution's resolver.
"""
import ustruct as struct
from usr.qframe.logging import getLogger

FLAG = 0x7E
logger = getLogger(__name__)


class Frame(object):
    def __init__(self, protocol, payload):
        self.protocol = protocol
        self.payload = payload

    @classmethod
    def parse(cls, data):
        """One frame from a complete 7E..7E chunk; ValueError if it does not add up."""
        if len(data) < 4 or data[0] != FLAG or data[-1] != FLAG:
            raise ValueError("not a frame: %r" % (data,))
        protocol, length = struct.unpack("BB", data[1:3])
        payload = data[3:-1]
        if len(payload) != length:
            raise ValueError("length %d but %d octets" % (length, len(payload)))
        return cls(protocol, payload)

    @staticmethod
    def build(protocol, payload):
        return struct.pack("BBB", FLAG, protocol, len(payload)) + payload + bytes((FLAG,))


class FrameResolver(object):
    """protocol -> handler, per instance."""

    def __init__(self, app=None):
        self.handlers = {}
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        app.extensions["framer"] = self

    def register(self, protocol):
        def wrapper(fn):
            if protocol in self.handlers:
                raise ValueError("protocol 0x%02x already registered" % protocol)
            self.handlers[protocol] = fn
            return fn
        return wrapper

    def resolve(self, frame):
        handler = self.handlers.get(frame.protocol)
        if handler is None:
            logger.warn("no handler for protocol", hex(frame.protocol))
            return
        handler(frame)
