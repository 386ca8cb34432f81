"""Gurux's DLMS client (gurux-dlms, GPL, a test-only peer: used, never copied) driven over a
TCP socket, for the interop tests and benches."""
import os
import select
import socket
import tty

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType


def client(transport="hdlc", client_sap=16, server=1, password=None):
    auth = Authentication.LOW if password else Authentication.NONE
    kind = InterfaceType.HDLC if transport == "hdlc" else InterfaceType.WRAPPER
    return GXDLMSClient(True, client_sap, server, auth, password, kind)


class _PtyLink(object):
    """A serial line (pty) with the socket calls the session uses."""

    def __init__(self, path, timeout):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.timeout = timeout

    def sendall(self, data):
        os.write(self.fd, data)

    def recv(self, size):
        ready, _, _ = select.select([self.fd], [], [], self.timeout)
        if not ready:
            raise socket.timeout("no answer on the line")
        return os.read(self.fd, size)

    def close(self):
        os.close(self.fd)


class GuruxSession(object):
    """A gurux client talking to host:port (or, with host None, HDLC on the serial line at
    path `port`); open(), read(obj, attr), close()."""

    def __init__(self, host, port, transport="hdlc", password=None, client_sap=16, timeout=5.0):
        self.client = client(transport, client_sap, 1, password)
        self.transport = transport
        if host is None:
            self.sock = _PtyLink(port, timeout)
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)

    def _packet(self, data, reply):
        if data:
            self.sock.sendall(bytes(data))
        buf = GXByteBuffer()
        while not self.client.getData(buf, reply, None):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("closed")
            buf.set(chunk)

    def exchange(self, data, reply=None):
        reply = reply or GXReplyData()
        frames = data if isinstance(data, list) else [data]
        for frame in frames:
            reply.clear()
            self._packet(frame, reply)
            while reply.isMoreData():
                self._packet(self.client.receiverReady(reply), reply)
        return reply

    def open(self):
        if self.transport == "hdlc":
            reply = self.exchange(self.client.snrmRequest())
            self.client.parseUAResponse(reply.data)
        reply = self.exchange(self.client.aarqRequest())
        self.client.parseAareResponse(reply.data)

    def read(self, obj, attr):
        reply = self.exchange(self.client.read(obj, attr))
        return self.client.updateValue(obj, attr, reply.value)

    def raw(self, obj, attr):
        """The value gurux decoded, before it is matched to the object's attribute."""
        return self.exchange(self.client.read(obj, attr)).value

    def rows_by_entry(self, pg, index, count):
        reply = self.exchange(self.client.readRowsByEntry(pg, index, count))
        return self.client.updateValue(pg, 2, reply.value)

    def rows_by_range(self, pg, start, end):
        reply = self.exchange(self.client.readRowsByRange(pg, start, end))
        return self.client.updateValue(pg, 2, reply.value)

    def close(self):
        try:
            self.exchange(self.client.releaseRequest())
            if self.transport == "hdlc":
                self.exchange(self.client.disconnectRequest())
        finally:
            self.sock.close()
