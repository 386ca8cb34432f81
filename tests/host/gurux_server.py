"""A third-party DLMS/COSEM meter for the interop tests: gurux-dlms's own server classes (GPL,
a test-only peer: subclassed and driven here, none of its code copied) with a realistic object
set, served on loopback over HDLC-over-TCP, WRAPPER (TCP) or HDLC on a pty.

    meter = GuruxMeter("hdlc")          # or "wrapper"
    port = meter.listen_tcp()           # loopback, port 0: the port the OS chose
    path = meter.listen_pty()           # HDLC on a pty the meter owns: clients open `path`
    meter.stop()

Client SAP 16 associates without authentication; any other client SAP needs LLS with
PASSWORD. One client at a time per listener (as an HDLC meter serves its line); a client that
leaves without releasing does not block the next one (the server is reset on disconnect and
on every SNRM).
"""
import datetime
import os
import socket
import threading

from gurux_dlms import GXDLMS, GXByteBuffer, GXDateTime, GXDLMSServer, GXServerReply
from gurux_dlms.ConnectionState import ConnectionState
from gurux_dlms.GXDLMSLongTransaction import GXDLMSLongTransaction
from gurux_dlms.internal._GXCommon import _GXCommon
from gurux_dlms.ValueEventArgs import ValueEventArgs
from gurux_dlms.enums import (AccessMode, Authentication, DataType, InterfaceType,
                              MethodAccessMode, SourceDiagnostic, Unit)
from gurux_dlms.objects import (GXDLMSAssociationLogicalName, GXDLMSCaptureObject, GXDLMSClock,
                                GXDLMSData, GXDLMSDemandRegister, GXDLMSExtendedRegister,
                                GXDLMSProfileGeneric, GXDLMSRegister)

from tools.simulators.pump import pump_fd, pump_socket

# the object list's encoder reads this attribute, which the package's ValueEventArgs lacks:
# the whole list in one value (block transfer splits it)
ValueEventArgs.isSkipMaxPduSize = True


def _keep_rest(transaction, data):
    """What is left of a long GET after a block (the package's transaction lacks setData)."""
    rest = GXByteBuffer()
    rest.set(data)
    transaction.data = rest


GXDLMSLongTransaction.setData = _keep_rest

PASSWORD = "12345678"
PUBLIC_CLIENT = 16
START = datetime.datetime(2024, 1, 1, 0, 0, 0)
METER_TIME = datetime.datetime(2024, 3, 1, 12, 30, 15)
PROFILE_ROWS = 96                   # one day of 15-minute rows
EVENT_ROWS = 12
SHORT_ROWS = 5
MAX_INFO = 128


def _when(octets):
    """datetime of a COSEM date-time's 12 octets (selective access parameters)."""
    b = bytes(octets)
    return datetime.datetime((b[0] << 8) | b[1], b[2], b[3], b[5], b[6], b[7])


class _Profile(GXDLMSProfileGeneric):
    """A profile generic that answers selective access by range and by entry itself (the
    package's server answers both with an error), and encodes each row with as many values
    as the row holds (a meter may store rows shorter than its capture objects)."""

    def getValue(self, settings, e):
        if e.index != 2:
            return GXDLMSProfileGeneric.getValue(self, settings, e)
        rows = self.buffer
        if e.selector == 1:
            start, end = _when(e.parameters[1]), _when(e.parameters[2])
            rows = [r for r in rows if start <= r[0].value.replace(tzinfo=None) <= end]
        elif e.selector == 2:
            first, last = e.parameters[0], e.parameters[1]
            rows = rows[max(first, 1) - 1:last or len(rows)]
        out = GXByteBuffer()
        out.setUInt8(DataType.ARRAY)
        _GXCommon.setObjectCount(len(rows), out)
        types = [obj.getDataType(co.attributeIndex) for obj, co in self.captureObjects]
        for row in rows:
            out.setUInt8(DataType.STRUCTURE)
            _GXCommon.setObjectCount(len(row), out)
            for tp, value in zip(types, row):
                _GXCommon.setData(settings, out, tp, value)
        e.byteArray = True
        settings.index = settings.count = 0     # all rows are here (and an earlier long read
        return out.array()                      # must not make the server look for more)


def _objects():
    """The meter's COSEM objects (the association's object list is built from them)."""
    clock = GXDLMSClock("0.0.1.0.0.255")
    clock.time = GXDateTime(METER_TIME)
    clock.timeZone = 60
    imported = GXDLMSRegister("1.0.1.8.0.255")
    imported.value, imported.scaler, imported.unit = 1234567, 0.001, Unit.ACTIVE_ENERGY
    imported.setDataType(2, DataType.UINT32)
    exported = GXDLMSRegister("1.0.2.8.0.255")
    exported.value, exported.scaler, exported.unit = 4200, 0.01, Unit.ACTIVE_ENERGY
    exported.setDataType(2, DataType.UINT32)
    voltage = GXDLMSRegister("1.0.32.7.0.255")
    voltage.value, voltage.scaler, voltage.unit = 2301, 0.1, Unit.VOLTAGE
    voltage.setDataType(2, DataType.UINT16)
    peak = GXDLMSExtendedRegister("1.0.1.6.0.255")
    peak.value, peak.scaler, peak.unit = 5230, 1, Unit.ACTIVE_POWER
    peak.setDataType(2, DataType.UINT32)
    peak.status = 0
    peak.captureTime = GXDateTime(datetime.datetime(2024, 2, 14, 18, 15, 0))
    demand = GXDLMSDemandRegister("1.0.31.4.0.255")
    demand.currentAverageValue, demand.lastAverageValue = 1234, 1180
    demand.setDataType(2, DataType.UINT16)
    demand.setDataType(3, DataType.UINT16)
    demand.scaler, demand.unit = 0.01, Unit.CURRENT
    demand.period, demand.numberOfPeriods = 900, 1
    serial = GXDLMSData("0.0.96.1.0.255")
    serial.value = b"GRX00000042"
    serial.setDataType(2, DataType.OCTET_STRING)
    device = GXDLMSData("0.0.42.0.0.255")
    device.value = b"GRX\x00\x01\x02\xff"          # not printable: shown as hex
    device.setDataType(2, DataType.OCTET_STRING)
    tariff = GXDLMSData("0.0.96.14.0.255")
    tariff.value = 2
    tariff.setDataType(2, DataType.UINT8)
    event_code = GXDLMSData("0.0.96.11.0.255")
    event_code.value = 0
    event_code.setDataType(2, DataType.UINT16)

    profile = _Profile("1.0.99.1.0.255")
    profile.capturePeriod = 900
    for obj in (clock, imported, exported):
        profile.captureObjects.append((obj, GXDLMSCaptureObject(2, 0)))
    for i in range(PROFILE_ROWS):
        when = GXDateTime(START + datetime.timedelta(minutes=15 * i))
        profile.buffer.append([when, 1000000 + 25 * i, 4000 + i])
    profile.entriesInUse = profile.profileEntries = PROFILE_ROWS

    events = _Profile("0.0.99.98.0.255")
    for obj in (clock, event_code):
        events.captureObjects.append((obj, GXDLMSCaptureObject(2, 0)))
    for i in range(EVENT_ROWS):
        when = GXDateTime(START + datetime.timedelta(hours=7 * i, minutes=3))
        events.buffer.append([when, 1 + (i * 7) % 40])
    events.entriesInUse = events.profileEntries = EVENT_ROWS

    daily = _Profile("1.0.98.1.0.255")          # rows stored before a column was added
    for obj in (clock, imported, exported, voltage):
        daily.captureObjects.append((obj, GXDLMSCaptureObject(2, 0)))
    for i in range(SHORT_ROWS):
        when = GXDateTime(START + datetime.timedelta(days=i))
        daily.buffer.append([when, 1000000 + 2400 * i, 4000 + 96 * i])
    daily.entriesInUse = daily.profileEntries = SHORT_ROWS
    return [clock, imported, exported, voltage, peak, demand, serial, device, tariff,
            event_code, profile, events, daily, GXDLMSAssociationLogicalName("0.0.40.0.0.255")]


class _Reply(GXServerReply):
    """The reply holder the server's handleRequest expects (the package's GXServerReply
    lacks these accessors)."""

    def setReply(self, value):
        self.reply = value

    def getConnectionInfo(self):
        return self.connectionInfo

    def setCount(self, value):
        self.count = value


class _Meter(GXDLMSServer):
    """gurux's server with this meter's policy (the abstract hooks)."""

    def __init__(self, interface):
        GXDLMSServer.__init__(self, True, interface)
        objects = _objects()
        for obj in objects:
            self.items.append(obj)
        for obj in objects:                  # initialize() would append the list itself
            objects[-1].objectList.append(obj)
        self.initialize()
        self.client = None
        self.settings.gbtWndowSize = 1       # the command handler reads it under this name

    def find(self, ln):
        for obj in self.items:
            if obj.logicalName == ln:
                return obj
        return None

    def isTarget(self, serverAddress, clientAddress):
        self.client = clientAddress
        return True

    def onValidateAuthentication(self, authentication, password):
        if self.client == PUBLIC_CLIENT:
            return SourceDiagnostic.NONE if authentication == Authentication.NONE else \
                SourceDiagnostic.AUTHENTICATION_FAILURE
        if authentication != Authentication.LOW:
            return SourceDiagnostic.AUTHENTICATION_REQUIRED
        given = bytes(password or b"").decode("ascii", "replace")
        return SourceDiagnostic.NONE if given == PASSWORD else SourceDiagnostic.AUTHENTICATION_FAILURE

    def onGetAttributeAccess(self, arg):
        if arg.index == 1 or self.client == PUBLIC_CLIENT:
            return AccessMode.READ
        return AccessMode.READ_WRITE

    def onGetMethodAccess(self, arg):
        return MethodAccessMode.ACCESS

    def onFindObject(self, objectType, sn, ln):
        return None

    def onPreRead(self, args):
        pass

    def onPostRead(self, args=None):
        pass

    def onPreWrite(self, args):
        pass

    def onPostWrite(self, args):
        pass

    def onPreGet(self, args):
        pass

    def onPostGet(self, args):
        pass

    def onPreAction(self, args):
        pass

    def onPostAction(self, args):
        pass

    # hooks the package's command handler calls but its server class does not define
    def notifyRead(self):
        pass

    def notifyConnected(self, connectionInfo):
        pass

    def getTransaction(self):
        return self.transaction

    def setTransaction(self, value):
        self.transaction = value

    def handleSnrmRequest(self, data):
        """UA with this meter's limits (the package's own handler fails without a setup
        object of a shape it does not define)."""
        link = self.settings.hdlc
        link.maxInfoTX = link.maxInfoRX = MAX_INFO
        link.windowSizeTX = link.windowSizeRX = 1
        GXDLMS.parseSnrmUaResponse(data, link)
        link.maxInfoTX = min(link.maxInfoTX, MAX_INFO)
        link.maxInfoRX = min(link.maxInfoRX, MAX_INFO)
        link.windowSizeTX = link.windowSizeRX = 1
        self.reset(True)
        group = bytes((0x05, 2)) + link.maxInfoTX.to_bytes(2, "big") \
            + bytes((0x06, 2)) + link.maxInfoRX.to_bytes(2, "big") \
            + bytes((0x07, 4, 0, 0, 0, 1, 0x08, 4, 0, 0, 0, 1))
        self.replyData.set(bytes((0x81, 0x80, len(group))) + group)
        self.settings.connected = ConnectionState.HDLC

    def generateDisconnectRequest(self):
        """The UA that answers a DISC carries no parameters (the package's needs the same
        missing setup object)."""

    def onConnected(self, connectionInfo):
        pass

    def onInvalidConnection(self, connectionInfo):
        pass

    def onDisconnected(self, connectionInfo):
        pass


class GuruxMeter(object):
    """A gurux-dlms server on loopback TCP and/or a pty (see the module doc)."""

    def __init__(self, transport="hdlc"):
        kind = InterfaceType.WRAPPER if transport == "wrapper" else InterfaceType.HDLC
        self.transport = transport
        self.server = _Meter(kind)
        self.lock = threading.Lock()         # the listeners share one meter
        self.requests = 0
        self.failures = 0
        self.connections = 0
        self._stop = threading.Event()
        self._threads = []
        self._closers = []

    def listen_tcp(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        sock.settimeout(0.1)
        self._closers.append(sock.close)
        self._spawn(self._accept, sock)
        return sock.getsockname()[1]

    def listen_pty(self):
        if self.transport != "hdlc":
            raise ValueError("a pty carries HDLC")
        master, slave = os.openpty()
        import tty
        tty.setraw(slave)
        path = os.ttyname(slave)
        self._closers.append(lambda: os.close(master))
        self._closers.append(lambda: os.close(slave))
        self._spawn(lambda fd: pump_fd(fd, self._stop, self._answer, 0.1), master)
        return path

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        for close in self._closers:
            try:
                close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, target, arg):
        thread = threading.Thread(target=target, args=(arg,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _answer(self, data):
        """The server's reply to data; a request the package's server chokes on is dropped
        (counted in failures) and the server reset, as a meter would restart its stack."""
        with self.lock:
            self.requests += 1
            reply = _Reply(bytearray(data))
            try:
                self.server.handleRequest(reply)
            except Exception:               # the package's own bugs: keep serving
                self.failures += 1
                self.server.reset()
                return b""
            return bytes(reply.reply) if reply.reply else b""

    def _reset(self):
        with self.lock:
            self.server.reset()

    def _accept(self, sock):
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            try:
                pump_socket(conn, self._stop, self._answer, 0.1)
            finally:
                conn.close()
                self._reset()

