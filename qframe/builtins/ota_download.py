"""The OTA extension's download: a manifest and update files over HTTP(S), resumed with Range.

    run = Download(config, stats, stop_event, on_progress)  # one run, its deadline starts now
    blob = run.manifest(url)                   # retried `retries` times, `retry_s` apart
    run.file(url, part_path, size, done, total) # appends to part_path from where it stopped

One run is bounded by `download_s` (OtaFailed "deadline") and by the stop event; a cut
connection is retried from the byte it reached (a server that ignores Range starts over).
Counted in the stats dict it is given: `bytes`, `download_errors`. `on_progress(bytes, total)`
follows every chunk. A reply head is read a byte at a time up to MAX_HEAD octets, a manifest
up to MAX_MANIFEST: a hostile or dripping server cannot hold the job or the heap.
"""
import utime

from ..codecs import http
from ..codecs.ota_manifest import Refused
from ..logging import getLogger
from ..store import ota_files as files
from .sockets import open_socket

_log = getLogger("ota")

MAX_MANIFEST = 40000
MAX_HEAD = 4096             # bytes of an HTTP reply head; more is a hostile server
ENOSPC = 28


class OtaFailed(Exception):
    """An update that stops here; `reason` names why (no_space, download, file_tampered...)."""

    def __init__(self, reason, text):
        super().__init__("%s: %s" % (reason, text))
        self.reason = reason
        self.text = text


class Download(object):
    """One download run of the OTA extension (see the module docstring)."""

    def __init__(self, config, stats, stop, on_progress):
        self.config = config
        self.stats = stats
        self._stop = stop
        self._on_progress = on_progress
        self._deadline = utime.ticks_add(utime.ticks_ms(), int(config["download_s"] * 1000))

    def check_deadline(self):
        if utime.ticks_diff(utime.ticks_ms(), self._deadline) >= 0:
            raise OtaFailed("deadline", "download not done within %s s"
                            % self.config["download_s"])

    def manifest(self, url):
        """The manifest's bytes (at most MAX_MANIFEST); OtaFailed or Refused."""
        attempts = 0
        while True:
            try:
                return self._manifest_once(url)
            except http.HttpError as exc:
                raise OtaFailed("download", "%s: %s" % (url, exc))
            except OSError as exc:
                attempts += 1
                self.stats["download_errors"] += 1
                self.check_deadline()
                if attempts > self.config["retries"] or self._stop.wait(self.config["retry_s"]):
                    raise OtaFailed("download", "%s: %s" % (url, exc))

    def _manifest_once(self, url):
        status, headers, sock = self._request(url)
        try:
            if status != 200:
                raise OtaFailed("download", "HTTP %d for %s" % (status, url))
            length = http.content_length(headers)
            if length is not None and length > MAX_MANIFEST:
                raise Refused("malformed", "manifest of %d bytes" % length)
            blob = bytearray()
            while length is None or len(blob) < length:
                self.check_deadline()
                data = sock.read(2048)
                if not data:
                    break
                blob.extend(data)
                if len(blob) > MAX_MANIFEST:
                    raise Refused("malformed", "manifest over %d bytes" % MAX_MANIFEST)
            if length is not None and len(blob) < length:
                raise OSError(5, "manifest cut at %d of %d bytes" % (len(blob), length))
            return bytes(blob)
        finally:
            sock.close()

    def file(self, url, part, size, done, total):
        """Bring `part` to `size` bytes from url, resuming; OtaFailed when it cannot."""
        attempts = 0
        while True:
            have = files.size(part)
            if have > size:
                files.remove(part)
                have = 0
            if have == size:
                return
            try:
                self._get_range(url, part, max(0, have), size, done, total)
            except http.HttpError as exc:
                raise OtaFailed("download", "%s: %s" % (url, exc))
            except OSError as exc:
                if exc.args and exc.args[0] == ENOSPC:
                    raise
                self.stats["download_errors"] += 1
                attempts += 1
                _log.warning("OTA: %s cut at %d bytes (%s), attempt %d", url,
                             max(0, files.size(part)), exc, attempts)
                if attempts > self.config["retries"]:
                    raise OtaFailed("interrupted", "%s: %s" % (url, exc))
                self.check_deadline()
                if self._stop.wait(self.config["retry_s"]):
                    raise OtaFailed("interrupted", "app stopping")

    def _get_range(self, url, part, start, size, done, total):
        status, headers, sock = self._request(url, start)
        try:
            if status == 206:
                first, _total = http.content_range(headers)
                if first != start:
                    raise http.HttpError("asked for byte %d, got %d" % (start, first))
                mode = "ab"
            elif status == 200:
                start, mode = 0, "wb"               # the server ignored Range: from the start
            else:
                raise http.HttpError("HTTP %d" % status)
            got = start
            chunk = self.config["chunk"]
            with open(part, mode) as f:
                while got < size and not self._stop.is_set():
                    self.check_deadline()
                    data = sock.read(min(chunk, size - got))
                    if not data:
                        break
                    f.write(data)
                    got += len(data)
                    self.stats["bytes"] += len(data)
                    self._on_progress(done + got, total)
            if got < size:
                raise OSError(5, "body cut at %d of %d bytes" % (got, size))
        finally:
            sock.close()

    def _request(self, url, start=0):
        """(status, headers, socket positioned at the body)."""
        scheme, host, port, path = http.split_url(url)
        sock = open_socket(host, port, self.config["http_timeout_s"])
        try:
            if scheme == "https":
                from .tls import wrap
                sock = wrap(sock, host)
            sock.write(http.get_request(host, path, start))
            status, headers = http.parse_head(self._read_head(sock))
            return status, headers, sock
        except Exception:
            sock.close()
            raise

    def _read_head(self, sock):
        """The reply head's lines, read a byte at a time up to MAX_HEAD bytes and the deadline
        (a server that drips bytes or never ends its head does not hold the job)."""
        lines, line, total = [], b"", 0
        while True:
            byte = sock.read(1)
            if not byte:
                raise OSError(5, "connection closed in the reply head")
            total += 1
            if total > MAX_HEAD:
                raise http.HttpError("reply head over %d bytes" % MAX_HEAD)
            self.check_deadline()
            line += byte
            if byte == b"\n":
                if line in (b"\r\n", b"\n"):
                    return lines
                lines.append(line)
                line = b""
