#!/usr/bin/env python3
"""An image server that misbehaves, for the download-limit tests.

  badhttp.py PORT        listens on 127.0.0.1:PORT (threaded), logs requests to stderr

  /trickle[?rate=N]      Content-Length 48 MiB, N bytes a second (default 4096: above
                         sf-blob's stall limit of 1 KiB/s, so only the total limit stops it)
  /endless               200 without Content-Length, data at up to ~8 MiB/s, forever
  /huge                  Content-Length 100 GiB, then one byte a second
  /redirect?to=URL       302 to URL
"""
import http.server
import sys
import time
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))
        sys.stderr.flush()

    def body(self, length, chunk, delay):
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        sent = 0
        try:
            while length is None or sent < length:
                self.wfile.write(chunk)
                self.wfile.flush()
                sent += len(chunk)
                if delay:
                    time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.log_message("%s: client gone after %d bytes", self.path, sent)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/trickle":
            rate = int(q.get("rate", ["4096"])[0])
            self.body(48 << 20, b"t" * max(1, rate // 4), 0.25)
        elif url.path == "/endless":
            self.body(None, b"e" * 65536, 0.008)
        elif url.path == "/huge":
            self.body(100 << 30, b"h", 1)
        elif url.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", q["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404)


http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
