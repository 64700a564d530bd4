#!/usr/bin/python3
"""Writes the seed corpus for fuzz_reqlog into corpus/reqlog/.

Each input is a sequence of chunks: a control byte (bit 7: client -> service,
else service -> client; bit 6: one second passes, else 1 ms; bits 0-5: length
- 1), then up to 64 bytes. The output is deterministic, so re-running the
script leaves the committed files unchanged.
"""

import os

UP, DOWN = 0x80, 0x00


def chunks(direction, data, slow=False):
    out = b""
    for i in range(0, len(data), 64):
        part = data[i:i + 64]
        out += bytes([direction | (0x40 if slow and i == 0 else 0) | (len(part) - 1)]) + part
    return out


def bytewise(direction, data):
    return b"".join(bytes([direction]) + data[i:i + 1] for i in range(len(data)))


GET = b"GET /index.html?q=1 HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
SEEDS = {
    "get": chunks(UP, GET) + chunks(DOWN, OK, slow=True),
    "keepalive": chunks(UP, GET) + chunks(DOWN, OK) + chunks(UP, b"POST /p HTTP/1.1\r\nHost: h\r\n"
                 b"Content-Length: 3\r\n\r\nabc") + chunks(DOWN, b"HTTP/1.1 201 Created\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
    "bytewise": bytewise(UP, GET) + bytewise(DOWN, OK),
    "pipelined-head": chunks(UP, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n")
                      + chunks(DOWN, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
                               b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 NF\r\nContent-Length: 0\r\n\r\n"),
    "websocket": chunks(UP, b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x82ab\x00\x00")
                 + chunks(DOWN, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\n\r\n\x81\x02hi"),
    "connect": chunks(UP, b"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n\x00\x00\x00\x08")
               + chunks(DOWN, b"HTTP/1.1 200 Connection established\r\n\r\nR\x00"),
    "tls": chunks(UP, bytes([0x16, 0x03, 0x01, 0x00, 0x30]) + bytes(range(48)))
           + chunks(DOWN, bytes([0x16, 0x03, 0x03, 0x00, 0x10]) + bytes(16)),
    "h2-preface": chunks(UP, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"),
    "server-first": chunks(DOWN, b"SSH-2.0-OpenSSH_9.2\r\n") + chunks(UP, b"SSH-2.0-client\r\n"),
    "early-408": chunks(UP, b"GET / HTTP/1.1\r\nX: ") + chunks(DOWN, b"HTTP/1.1 408 Request Timeout\r\n"
                                                            b"Connection: close\r\n\r\n"),
    "eof-body": chunks(UP, GET) + chunks(DOWN, b"HTTP/1.0 200 OK\r\n\r\nuntil the end"),
    "no-response": chunks(UP, GET + GET, slow=True),
    "status-2-digits": chunks(UP, GET) + chunks(DOWN, b"HTTP/1.1 10\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"),
    "long-target": chunks(UP, b"GET /" + b"a\xc3\xa9\t" * 300 + b" HTTP/1.1\r\n\r\n") + chunks(DOWN, OK),
}

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "reqlog")
os.makedirs(here, exist_ok=True)
for name, data in sorted(SEEDS.items()):
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)
