"""usocket/ussl over real loopback sockets, with shimctl's faults (DNS, network down, reset).

The peer (the HES) is a plain host socket made here, so the faults hit only the device side.
"""
import _thread

import ubinascii
import utime
import shimctl
import usocket
import ussl
from checks import EVENT_MS, captured, host_addr, listen_on_free_port, raises
from shimlib import firmware
try:
    import uselect          # E3 only
    uselect.poll            # (MicroPython: the stand-in for a hidden built-in raises here)
except ImportError:
    uselect = None

ECONNRESET = 104
ECONNABORTED = 103
ENETUNREACH = 101

# A throw-away self-signed EC certificate for CN=localhost / 127.0.0.1 (test data only).
_KEY = """-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIF/fJjhc5fCd9bAeoio9U1q+jGBjbD+mNSaod9iiysNLoAoGCCqGSM49
AwEHoUQDQgAE4Vo4+Lui7Ga8wevsCCW13Hbq4aKEhscXUr58qF+sUljo73GmSR4f
b1PLp5fI5sYpAiPEbL0AWsRvQSFE3FJnVA==
-----END EC PRIVATE KEY-----
"""
_CERT = """-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIUNzg+kGXgsN8gNxPmlU2tH2muatswCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzEwMjEzMFoYDzIxMjYxMDMw
MTAyMTMwWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAThWjj4u6LsZrzB6+wIJbXcdurhooSGxxdSvnyoX6xSWOjvcaZJHh9v
U8unl8jmxikCI8RsvQBaxG9BIUTcUmdUo28wbTAdBgNVHQ4EFgQUHm6OYkXy/9pN
LzUwJHMybUDtJ3UwHwYDVR0jBBgwFoAUHm6OYkXy/9pNLzUwJHMybUDtJ3UwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDRwAwRAIgWvOgIcs8S52PYk/CDeUvAChFRyhti05rZm0O1dCQMCUCIBrJ
5gyCaa4f+UH6KQBaDMemxUeGJC+tm2FDMzm0abkl
-----END CERTIFICATE-----
"""


def _der(pem):
    body = "".join(line for line in pem.split("\n") if line and not line.startswith("-----"))
    return ubinascii.a2b_base64(body)


def test_uselect_only_on_the_line_that_has_it():
    assert (uselect is not None) == (firmware.LINE == "E3")


def test_unknown_socket_options_warn_and_do_not_raise():
    shimctl.reset()
    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    try:
        for name in ("TCP_NODELAY", "SO_KEEPALIVE", "IPPROTO_TCP_SER", "error", "timeout"):
            assert not hasattr(usocket, name), name
        assert hasattr(usocket, "TCP_KEEPALIVE") == (firmware.LINE != "E1")
        with captured() as out:
            assert sock.setsockopt(usocket.IPPROTO_TCP, 1, 1) is None        # TCP_NODELAY
            assert sock.setsockopt(usocket.SOL_SOCKET, usocket.SO_REUSEADDR, 1) is None
        assert out.lines == ["Warning: lwip.setsockopt() option not implemented"]
    finally:
        sock.close()


def _connected_pair():
    """(device usocket, peer host socket, listener)."""
    listener, port = listen_on_free_port()
    client = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    client.settimeout(5)
    client.connect(usocket.getaddrinfo("127.0.0.1", port)[0][-1])
    peer = listener.accept()[0]
    peer.settimeout(5)
    return client, peer, listener


def _errno(exc):
    return exc.args[0]


def test_getaddrinfo_shape():
    shimctl.reset()
    info = usocket.getaddrinfo("localhost", 4059)
    assert info[0][0] == usocket.AF_INET and info[0][-1] == ("127.0.0.1", 4059)
    assert usocket.getaddrinfo("10.1.2.3", 80)[0][-1] == ("10.1.2.3", 80)


def test_data_both_ways_and_poll_names_the_wrapper():
    shimctl.reset()
    client, peer, listener = _connected_pair()
    try:
        assert client.getsocketsta() == 4
        assert client.send(b"hello ") == 6
        client.write(b"HES")
        assert _recv_exactly(peer, 9) == b"hello HES"
        if uselect is not None:
            poller = uselect.poll()
            poller.register(client, uselect.POLLIN)
            assert not poller.poll(0)           # (1.13 returns a tuple)
        peer.send(b"line one\nrest")
        if uselect is not None:
            events = poller.poll(2000)
            assert events and events[0][0] is client and events[0][1] & uselect.POLLIN
        assert client.readline() == b"line one\n"
        assert client.recv(10) == b"rest"
        client.settimeout(0.05)
        exc = raises(OSError, client.recv, 10)
        assert _errno(exc) in (11, 110)
        peer.close()
        client.settimeout(2)
        assert client.recv(10) == b""
    finally:
        client.close()
        listener.close()
    assert client.getsocketsta() == -1
    assert shimctl.live_sockets() == []


def _recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "peer closed early"
        data += chunk
    return data


def test_reset_sockets_resets_both_ends():
    shimctl.reset()
    client, peer, listener = _connected_pair()
    try:
        assert shimctl.reset_sockets() == 1
        assert _errno(raises(OSError, client.recv, 10)) == ECONNRESET
        assert _errno(raises(OSError, client.send, b"x")) == ECONNRESET
        assert client.getsocketsta() == 0
        assert _errno(raises(OSError, peer.recv, 10)) == ECONNRESET
        assert shimctl.state["socket_resets"] == 1
    finally:
        client.close()
        peer.close()
        listener.close()


def test_a_blocked_recv_wakes_up_on_reset():
    shimctl.reset()
    client, peer, listener = _connected_pair()
    outcome = []

    def reader():
        try:
            outcome.append(client.recv(10))
        except OSError as exc:
            outcome.append(_errno(exc))

    _thread.start_new_thread(reader, ())
    utime.sleep_ms(50)          # let the reader block in recv (a reset before is fine too)
    start = utime.ticks_ms()
    shimctl.reset_sockets()
    assert shimctl.wait_for(lambda: outcome, EVENT_MS)
    assert outcome == [ECONNRESET]
    assert utime.ticks_diff(utime.ticks_ms(), start) < 1000
    client.close()
    peer.close()
    listener.close()


def test_network_down_aborts_sockets_and_refuses_connects():
    shimctl.reset()
    client, peer, listener = _connected_pair()
    try:
        shimctl.set_network(False)
        assert _errno(raises(OSError, client.send, b"x")) == ECONNABORTED
        assert _errno(raises(OSError, peer.recv, 1)) == ECONNRESET
        other = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
        assert _errno(raises(OSError, other.connect, ("127.0.0.1", 1))) == ENETUNREACH
        other.close()
        raises(OSError, usocket.getaddrinfo, "hes.example.com", 4059)
        assert usocket.getaddrinfo("127.0.0.1", 4059)[0][-1] == ("127.0.0.1", 4059)
        shimctl.set_network(True)
        again, peer2, _l = _connected_pair()
        again.send(b"back")
        assert _recv_exactly(peer2, 4) == b"back"
        again.close()
        peer2.close()
        _l.close()
    finally:
        client.close()
        peer.close()
        listener.close()
        shimctl.reset()


def test_dns_failure():
    shimctl.reset()
    shimctl.set_dns_fail(True)
    exc = raises(OSError, usocket.getaddrinfo, "127.0.0.1", 80)
    assert _errno(exc) == shimctl.state["dns_errno"]
    raises(OSError, usocket.getaddrinfo, "localhost", 80)
    assert usocket.getaddrinfo("0.0.0.0", 80)[0][-1] == ("0.0.0.0", 80)
    shimctl.set_dns_fail(False)
    assert usocket.getaddrinfo("localhost", 80)
    shimctl.reset()


def test_a_device_side_server_accepts():
    shimctl.reset()
    from shimlib.hostio import socket                     # the host's socket module
    from shimlib.hostio import bound_port
    server = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    server.setsockopt(usocket.SOL_SOCKET, usocket.SO_REUSEADDR, 1)
    server.bind(usocket.getaddrinfo("0.0.0.0", 0)[0][-1])
    server.listen(1)
    port = bound_port(server)
    server.settimeout(5)
    assert server.getsocketsta() == 1
    hes = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hes.connect(host_addr(port))
    conn, addr = server.accept()
    assert addr[0] == "127.0.0.1" and isinstance(addr[1], int)
    hes.send(b"cmd")
    conn.settimeout(2)
    assert conn.read(3) == b"cmd"
    if firmware.has("usocket", "TCP_KEEPALIVE"):
        conn.setsockopt(usocket.SOL_SOCKET, usocket.TCP_KEEPALIVE, 2)
        assert conn._keepalive_min == 2
    conn.close()
    hes.close()
    server.close()
    shimctl.reset()


def test_tls_round_trip_and_reset():
    shimctl.reset()
    listener, port = listen_on_free_port()
    served = []

    def serve():
        try:
            raw = listener.accept()[0]
            raw.settimeout(5)
            peer = usocket.socket(_host=raw)          # a wrapper only to reach ussl
            tls = ussl.wrap_socket(peer, server_side=True, key=_KEY, cert=_CERT)
            served.append(tls.read(5))
            tls.write(b"world")
            served.append(tls)
        except Exception as exc:
            served.append(exc)

    _thread.start_new_thread(serve, ())
    client = _connected(port)
    tls = ussl.wrap_socket(client, server_hostname="localhost")
    try:
        assert tls.getpeercert(True) == _der(_CERT)
        tls.write(b"hello")
        assert tls.read(5) == b"world"
        assert shimctl.wait_for(lambda: len(served) == 2, EVENT_MS)
        assert served[0] == b"hello"
        assert tls in shimctl.live_sockets() and client not in shimctl.live_sockets()
        shimctl.reset_sockets()
        raises(OSError, tls.read, 1)
    finally:
        tls.close()
        if len(served) == 2:
            served[1].close()
        listener.close()
        shimctl.reset()


def test_tls_verifies_nothing_and_takes_only_the_firmware_arguments():
    """The firmware's ussl: no CA arguments, no verification (any server is accepted: pin its
    certificate with getpeercert(True)), and a TLS socket without send/recv/settimeout."""
    shimctl.reset()
    for name in ("CERT_REQUIRED", "CERT_NONE", "CERT_OPTIONAL"):
        assert not hasattr(ussl, name)
    listener, port = listen_on_free_port()
    served = []

    def serve():
        raw = listener.accept()[0]
        raw.settimeout(5)
        try:
            served.append(ussl.wrap_socket(usocket.socket(_host=raw), server_side=True,
                                           key=_KEY, cert=_CERT))
        except Exception as exc:
            served.append(exc)

    _thread.start_new_thread(serve, ())
    client = _connected(port)
    assert raises(TypeError, ussl.wrap_socket, client, None, None)     # keyword-only
    assert raises(TypeError, ussl.wrap_socket, client, cadata=_CERT)
    assert raises(TypeError, ussl.wrap_socket, client, cert_reqs=2)
    tls = ussl.wrap_socket(client, server_hostname="not-the-name-in-the-certificate")
    try:
        assert tls.getpeercert(True) == _der(_CERT)
        for name in ("send", "recv", "sendall", "settimeout", "connect", "fileno"):
            assert not hasattr(tls, name), name
        assert hasattr(tls, "getsocketsta") == (firmware.LINE != "E1")
    finally:
        tls.close()
        assert shimctl.wait_for(lambda: served, EVENT_MS)
        if not isinstance(served[0], Exception):
            served[0].close()
        listener.close()
        shimctl.reset()


def _connected(port):
    """A plain client socket connected to 127.0.0.1:port (5 s timeout)."""
    client = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    client.settimeout(5)
    client.connect(("127.0.0.1", port))
    return client
