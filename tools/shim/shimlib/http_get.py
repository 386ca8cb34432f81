"""A small HTTP/1.0 GET over the shim's usocket (and ussl for https), so network faults apply.
Used by fota.httpDownload and app_fota.download."""


def _split_url(url):
    cut = url.find("://")
    if cut < 0:
        raise ValueError("not a URL: %r" % url)
    scheme, rest = url[:cut], url[cut + 3:]
    slash = rest.find("/")
    hostport, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    colon = hostport.rfind(":")
    if colon >= 0:
        host, port = hostport[:colon], int(hostport[colon + 1:])
    else:
        host, port = hostport, 443 if scheme == "https" else 80
    return scheme, host, port, path


def get(url, sink, timeout_s=10):
    """GET url, passing the body to sink(chunk) as it arrives; (status, body_bytes).
    OSError on network failures, ValueError on a bad URL or reply."""
    import usocket
    scheme, host, port, path = _split_url(url)
    if scheme not in ("http", "https"):
        raise ValueError("only http:// and https:// URLs: %r" % url)
    addr = usocket.getaddrinfo(host, port)[0][-1]
    sock = usocket.socket(usocket.AF_INET, usocket.SOCK_STREAM)
    try:
        sock.settimeout(timeout_s)
        sock.connect(addr)
        if scheme == "https":
            import ussl
            sock = ussl.wrap_socket(sock, server_hostname=host)
        sock.write(("GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n"
                    % (path, host)).encode())
        status_line = sock.readline().split()
        if len(status_line) < 2:
            raise ValueError("no HTTP status line from %s" % host)
        status = int(status_line[1])
        length = None
        while True:
            line = sock.readline()
            if not line or line in (b"\r\n", b"\n"):
                break
            text = line.decode()
            colon = text.find(":")
            if colon > 0 and text[:colon].strip().lower() == "content-length":
                length = int(text[colon + 1:].strip())
        got = 0
        while length is None or got < length:
            chunk = sock.read(4096 if length is None else min(4096, length - got))
            if not chunk:
                break
            if status == 200:
                sink(chunk)
            got += len(chunk)
        if length is not None and got < length:
            raise OSError(5, "HTTP body cut short: %d of %d bytes" % (got, length))
        return status, got
    finally:
        sock.close()
