#!/usr/bin/python3
"""backend.py - the sample "laptop" service for the demo and the integration tests.

Run with Debian's interpreter (/usr/bin/python3): the WebSocket endpoint uses
python3-websockets' sans-I/O protocol, on the same port as the HTTP routes.

    /usr/bin/python3 tests/integration/backend.py [--host 127.0.0.1] [--port 0]

prints "ready <port>" on stdout once listening (--port 0 picks a free port).

Routes (HTTP/1.1, keep-alive):
  GET  /                        "hello from the laptop\\n"
  GET  /bytes?n=N[&chunked=1]   N bytes of the deterministic stream gen_chunks(N),
                                generated incrementally (Content-Length, or chunked)
  POST /sha256                  streams the request body (Content-Length or chunked) and
                                answers "<sha256 hex>\\n" with header X-Body-Length
  POST /echo                    answers the request body (Content-Length bodies)
  GET  /sse?n=5&interval=0.2    text/event-stream, one event per interval, each flushed
  GET  /slow?seconds=N          sends the headers, waits N seconds, then "slept N\\n"
  GET  /ws                      WebSocket echo (text and binary, fragments preserved)
Anything else answers 404.

The module is also imported by the tests for gen_chunks()/expected_sha256().
"""

import argparse
import hashlib
import http.server
import random
import resource
import socket
import sys
import time
import urllib.parse

BLOCK = 64 * 1024
_BASE = random.Random(20240601).randbytes(BLOCK)


def gen_chunks(n, block=BLOCK):
    """Yields the deterministic n-byte stream in blocks of at most |block| bytes.
    Block k is its 8-byte big-endian index followed by a fixed pseudo-random tail,
    so loss, duplication and reordering all change the digest."""
    k = 0
    left = n
    while left > 0:
        chunk = k.to_bytes(8, "big") + _BASE[8:block]
        if len(chunk) > left:
            chunk = chunk[:left]
        left -= len(chunk)
        k += 1
        yield chunk


def expected_sha256(n):
    h = hashlib.sha256()
    for c in gen_chunks(n):
        h.update(c)
    return h.hexdigest()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "warren-backend/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("backend: %s %s\n" % (self.address_string(), fmt % args))

    # --- helpers -------------------------------------------------------
    def _query(self):
        u = urllib.parse.urlsplit(self.path)
        return u.path, urllib.parse.parse_qs(u.query)

    def _simple(self, code, body, ctype="text/plain; charset=utf-8", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
        self.wfile.flush()

    def _end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _body_chunks(self):
        """Yields the request body incrementally (Content-Length or chunked)."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(8192)
                        if t in (b"\r\n", b"\n", b""):
                            return
                left = size
                while left > 0:
                    d = self.rfile.read(min(left, BLOCK))
                    if not d:
                        raise ConnectionError("eof in chunk")
                    left -= len(d)
                    yield d
                self.rfile.readline(16)
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left > 0:
                d = self.rfile.read(min(left, BLOCK))
                if not d:
                    raise ConnectionError("eof in body")
                left -= len(d)
                yield d

    # --- methods -------------------------------------------------------
    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, ConnectionError, socket.timeout):
            self.close_connection = True

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path, q = self._query()
        if path == "/":
            self._simple(200, "hello from the laptop\n")
        elif path == "/bytes":
            self._bytes(int(q.get("n", ["0"])[0]), q.get("chunked", ["0"])[0] == "1")
        elif path == "/sse":
            self._sse(int(q.get("n", ["5"])[0]), float(q.get("interval", ["0.2"])[0]))
        elif path == "/slow":
            self._slow(float(q.get("seconds", ["1"])[0]))
        elif path == "/ws":
            self._websocket()
        else:
            self._simple(404, "not found: %s\n" % path)

    def do_POST(self):
        path, _ = self._query()
        if path == "/sha256":
            h = hashlib.sha256()
            n = 0
            for d in self._body_chunks():
                h.update(d)
                n += len(d)
            self._simple(200, h.hexdigest() + "\n", headers=[("X-Body-Length", str(n))])
        elif path == "/echo":
            body = b"".join(self._body_chunks())
            self._simple(200, body, ctype="application/octet-stream")
        else:
            for _ in self._body_chunks():
                pass
            self._simple(404, "not found: %s\n" % path)

    def _bytes(self, n, chunked):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(n))
        self.end_headers()
        if self.command == "HEAD":
            return
        for c in gen_chunks(n):
            if chunked:
                self.wfile.write(b"%x\r\n" % len(c) + c + b"\r\n")
            else:
                self.wfile.write(c)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _sse(self, n, interval):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for i in range(n):
            if i:
                time.sleep(interval)
            self._chunk(b"id: %d\ndata: event %d t=%.3f\n\n" % (i, i, time.time()))
        self._end_chunks()

    def _slow(self, seconds):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        time.sleep(seconds)
        self._chunk(b"slept %g\n" % seconds)
        self._end_chunks()

    def _websocket(self):
        from websockets.frames import OP_BINARY, OP_CONT, OP_TEXT
        from websockets.http11 import Request
        from websockets.server import ServerConnection

        ws = ServerConnection(max_size=None)
        # http.server already parsed the request; the protocol's parser starts
        # with the request, so hand it the same head again.
        head = "GET %s HTTP/1.1\r\n" % self.path
        head += "".join("%s: %s\r\n" % kv for kv in self.headers.items()) + "\r\n"
        ws.receive_data(head.encode("latin-1"))
        reqs = [e for e in ws.events_received() if isinstance(e, Request)]
        if not reqs:
            self._simple(400, "bad websocket request\n")
            return
        resp = ws.accept(reqs[0])
        ws.send_response(resp)
        self._ws_flush(ws)
        if resp.status_code != 101:
            self.close_connection = True
            return
        self.close_connection = True
        self.connection.settimeout(self.server.ws_idle)
        while True:
            try:
                data = self.rfile.read1(BLOCK)  # the buffered reader may hold early frames
            except (socket.timeout, OSError):
                return
            if data:
                ws.receive_data(data)
            else:
                ws.receive_eof()
            for ev in ws.events_received():
                op = getattr(ev, "opcode", None)
                if op == OP_TEXT:
                    ws.send_text(ev.data, ev.fin)
                elif op == OP_BINARY:
                    ws.send_binary(ev.data, ev.fin)
                elif op == OP_CONT:
                    ws.send_continuation(ev.data, ev.fin)
            if not self._ws_flush(ws) or not data:
                return

    def _ws_flush(self, ws):
        for out in ws.data_to_send():
            if out == b"":  # SEND_EOF
                self.wfile.flush()
                try:
                    self.connection.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return False
            self.wfile.write(out)
        self.wfile.flush()
        return True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 4096  # 1,000 concurrent tunnelled connections arrive at once
    allow_reuse_address = True
    verbose = False
    ws_idle = 300.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--verbose", action="store_true", help="log each request to stderr")
    a = ap.parse_args()
    raise_nofile()
    srv = Server((a.host, a.port), Handler)
    srv.verbose = a.verbose
    print("ready %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
