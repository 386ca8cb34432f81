"""A package server for tests and the simulation: real HTTP with Range, and faults.

    server = PackageServer(folder).start()      # serves folder on 127.0.0.1:server.port
    server.url("/manifest.ota")
    server.cut_after = 1000; server.cuts_left = 2   # the next 2 bodies end after 1000 bytes
    server.cut_prefix = "/usr/"                  # ... of paths starting with this
    server.requests                              # [(path, first byte asked)] as they came
    server.stop()

    python -m tools.ota.server FOLDER [--port N]   (serve a package by hand)
"""
import argparse
import http.server
import os
import re
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        owner = self.server.owner
        local = os.path.join(owner.root, self.path.split("?")[0].lstrip("/"))
        start = 0
        asked = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if asked and owner.ranges:
            start = int(asked.group(1))
        with owner.lock:
            owner.requests.append((self.path, start))
        if not os.path.isfile(local):
            self.send_error(404)
            return
        with open(local, "rb") as f:
            data = f.read()
        if start > len(data):
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1,
                                                                   len(data)))
        self.end_headers()
        body = data[start:]
        with owner.lock:
            cut = owner.cut_after if owner.cuts_left > 0 and len(body) > owner.cut_after \
                and self.path.startswith(owner.cut_prefix) else None
            if cut is not None:
                owner.cuts_left -= 1
                owner.cuts += 1
        if cut is None:
            self.wfile.write(body)
            return
        self.wfile.write(body[:cut])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)        # the link drops mid-file


class PackageServer(object):
    """Serves root over HTTP/1.0 on 127.0.0.1 (see the module docstring)."""

    def __init__(self, root, port=0):
        self.root = root
        self.lock = threading.Lock()
        self.requests = []
        self.ranges = True          # False: ignore Range (answer 200 with everything)
        self.cut_after = 0
        self.cuts_left = 0
        self.cuts = 0
        self.cut_prefix = "/"
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = None

    def url(self, path="/manifest.ota"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    server = PackageServer(args.root, args.port).start()
    print("serving %s at %s" % (args.root, server.url()), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
