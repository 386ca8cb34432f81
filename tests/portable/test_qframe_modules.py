"""QFrame's helper modules on the shim: serial (loop://), qsocket (a loopback server), led
(GPIO levels), ota (a local firmware package)."""
import uos
import shimctl
from checks import EVENT_MS, listen_on_free_port, raises, wait_until

from usr.qframe.led import Led
from usr.qframe.ota import FileDecode, Fota
from usr.qframe.qsocket import TcpSocket
from usr.qframe.serial import Serial


def test_serial_reads_what_was_written_and_times_out():
    shimctl.reset()
    port = Serial("loop://")
    raises(TypeError, getattr, port, "uart")             # not open yet
    port.open()
    try:
        assert port.write(b"ping") in (4, None)
        got = b""
        while len(got) < 4:
            got += port.read(16, timeout=2)
        assert got == b"ping"
        raises(Serial.TimeoutError, port.read, 16, 0.02)
    finally:
        port.close()
    raises(TypeError, port.read, 16, 0.02)               # closed: fails, never hangs


def test_serial_rs485_needs_a_firmware_with_control_485():
    import machine
    shimctl.reset()
    port = Serial("loop://", rs485_config={"gpio_num": 7, "direction": 1})
    if hasattr(machine.UART, "control_485"):          # E3 firmware
        port.open()
        port.close()
        return
    error = raises(ValueError, port.open)               # E1/E2: a clear error, port closed
    assert "control_485" in str(error)
    raises(TypeError, port.read, 16, 0.02)


def test_tcp_socket_round_trip_timeout_and_status():
    shimctl.reset()
    listener, port = listen_on_free_port()
    sock = TcpSocket("127.0.0.1", port, timeout=0.05)
    assert sock.status_code == 99
    try:
        sock.connect()
        peer = listener.accept()[0]
        peer.settimeout(5)
        assert sock.status_code == 4
        assert sock.write(b"x" * 3000) is True
        got = b""
        while len(got) < 3000:
            got += peer.recv(4096)
        raises(TcpSocket.TimeoutError, sock.read, 10)
        peer.send(b"back")
        assert wait_until(lambda: _read_some(sock)) == b"back"
        peer.close()
    finally:
        sock.disconnect()
        listener.close()
    raises(ValueError, getattr, sock, "sock")


def _read_some(sock):
    try:
        return sock.read(10)
    except TcpSocket.TimeoutError:
        return None


def test_led_blinks_and_stops():
    shimctl.reset()
    led = Led(12)
    led.on()
    assert shimctl.gpio[12] == 1
    levels = []

    def _watch():
        levels.append(shimctl.gpio[12])
        return len(levels) > 1 and levels[-1] == 1 and 0 in levels
    led.off()
    led.blink(5, 5, 1000)
    assert wait_until(_watch, EVENT_MS, 1)
    assert led.stop()
    assert shimctl.gpio[12] == 0


def test_fota_local_upgrade_writes_flushes_and_verifies():
    shimctl.reset()
    path = "/usr/fw_test.bin"
    with open(path, "wb") as f:
        f.write(b"\x5a" * 9000)
    progress = []
    try:
        assert Fota(progress_callback=progress.append).local_upgrade(path) == (True, 0)
    finally:
        uos.remove(path)
    record = shimctl.state["fota"]
    assert record["written"] == 9000 and record["flushed"] and record["verified"]
    assert progress[-1] == 100 and record["reset_disable"] == 1


def test_sms_client_reads_each_message_and_stops():
    from usr.qframe import Application, SmsClient
    got = []

    class _Inbox(SmsClient):
        def recv_callback(self, phone, msg, length):
            got.append((phone, msg, length))

    app = Application("a")
    inbox = _Inbox("sms", app)
    app.load()
    shimctl.sms_receive("+8613800000000", "hello")
    shimctl.sms_receive("+8613800000001", "second")
    assert wait_until(lambda: len(got) == 2)
    assert got == [("+8613800000000", "hello", 5), ("+8613800000001", "second", 6)]
    assert app.sms.sendTextMsg("+86", "reply") == 0 and shimctl.sms_sent()[-1][1] == "reply"
    assert app.stop() and inbox.stats["received"] == 2


# app/ (a folder), app/a.txt ("alpha\n" x 100) and b.py, as a gzip'd ustar archive
_TAR_GZ = ("H4sIAAAAAAACA+3VOw7CMBBF0alZRbpAE/yJw3omFUgIjYKRYPdYKQMlSRRxT/HGnYsne9TsKDNzRde24yym88u5SyFIlWQBj3vWoVwp/0lL/9rkZ16vf+/jtP9Tcl4qR//z93+1s+5I8rcp2IS+sdfq+9/Hj/0fA///Emy43PK+7usDTxYAAAAAAAAAAAAAtuwN03GROAAoAAA=")


def test_file_decode_unpacks_a_tar_gz():
    import ubinascii
    archive = "/usr/files_test.tar.gz"
    target = "/usr/unpacked_test/"
    with open(archive, "wb") as f:
        f.write(ubinascii.a2b_base64(_TAR_GZ))
    decoder = FileDecode(archive, parent_dir=target)
    decoder.unzip()
    try:
        assert decoder.unpack() is True
        with open(target + "app/a.txt") as f:
            assert f.read() == "alpha\n" * 100
        with open(target + "b.py") as f:
            assert f.read() == "print('b')\n"
        assert decoder.get_update_files() == [{"file_name": "app/a.txt", "size": 600},
                                              {"file_name": "b.py", "size": 11}]
    finally:
        for path in (target + "app/a.txt", target + "b.py", target + "app", target[:-1],
                     archive):
            try:
                uos.remove(path)
            except OSError:
                uos.rmdir(path)
