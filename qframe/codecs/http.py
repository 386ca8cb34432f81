"""HTTP/1.0 GET with Range, as bytes in and out (no I/O): the OTA downloader's wire format.

    scheme, host, port, path = split_url("http://h:8080/pkg/manifest.ota")
    sock.write(get_request(host, path, start=1024))          # Range: bytes=1024-
    status, headers = parse_head(lines)                       # lines: the head, one per item
    start, total = content_range(headers)                     # for a 206 reply
"""
from . import utf8


class HttpError(ValueError):
    """A URL or a reply the downloader cannot use."""


def split_url(url):
    """(scheme, host, port, path) of an http:// or https:// URL."""
    cut = url.find("://") if isinstance(url, str) else -1
    if cut < 0:
        raise HttpError("not a URL: %r" % (url,))
    scheme, rest = url[:cut], url[cut + 3:]
    if scheme not in ("http", "https"):
        raise HttpError("only http:// and https:// URLs: %r" % url)
    slash = rest.find("/")
    hostport, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    colon = hostport.rfind(":")
    if colon >= 0:
        port_text = hostport[colon + 1:]
        if not port_text.isdigit():
            raise HttpError("bad port in %r" % url)
        host, port = hostport[:colon], int(port_text)
    else:
        host, port = hostport, 443 if scheme == "https" else 80
    if not host:
        raise HttpError("no host in %r" % url)
    return scheme, host, port, path


def join_url(base, path):
    """base's folder + path: join_url("http://h/p/manifest.ota", "/usr/a.py") ->
    "http://h/p/usr/a.py"."""
    folder = base[:base.rfind("/")]
    return folder + path


def get_request(host, path, start=0):
    """The request bytes; start > 0 asks for the body from that offset on."""
    text = "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n" % (path, host)
    if start:
        text += "Range: bytes=%d-\r\n" % start
    return (text + "\r\n").encode()


def parse_head(lines):
    """(status, {lower-case name: value}) from the reply's head lines (bytes, CRLF kept or
    not); HttpError if the status line is not HTTP or the head is not text."""
    if not lines:
        raise HttpError("no reply")
    texts = []
    for line in lines:
        try:
            texts.append(utf8.decode(line))
        except ValueError:
            raise HttpError("reply head is not text: %r" % lines[0][:60])
    first = texts[0].split()
    if len(first) < 2 or not first[0].startswith("HTTP/") or not first[1].isdigit():
        raise HttpError("not an HTTP status line: %r" % lines[0][:60])
    headers = {}
    for text in texts[1:]:
        text = text.strip()
        colon = text.find(":")
        if colon > 0:
            headers[text[:colon].strip().lower()] = text[colon + 1:].strip()
    return int(first[1]), headers


def content_length(headers):
    """Content-Length as an int, or None."""
    value = headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def content_range(headers):
    """(first byte, total size or None) of a 206 reply's Content-Range; HttpError if absent."""
    value = headers.get("content-range", "")
    if not value.startswith("bytes "):
        raise HttpError("206 without a byte Content-Range: %r" % value)
    rest = value[6:]
    slash = rest.find("/")
    span, total = (rest, "") if slash < 0 else (rest[:slash], rest[slash + 1:])
    return _range_start(span), (int(total) if total.isdigit() else None)


def _range_start(span):
    dash = span.find("-")
    first = span[:dash] if dash > 0 else ""
    if not first.isdigit():
        raise HttpError("bad Content-Range span %r" % span)
    return int(first)
