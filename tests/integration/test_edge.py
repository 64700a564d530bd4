"""The gateway's edge listener (HTTP/1.1, h2c, HTTPS) driven by curl and
http.client, routed by Host from a routes file, through the QUIC tunnel to
warren-heartbeat and on to backend.py."""

import hashlib
import http.client
import os
import socket
import subprocess
import threading
import time

import pytest

import backend
import harness
from harness import Setup

MB100 = 100 << 20
HELLO = b"hello from the laptop\n"


@pytest.fixture(scope="module")
def edge(request):
    s = Setup("edge", edge=True, tls=True, extra_hosts=["*.wild.localhost"])
    yield from harness.fixture_setup(request, s)


def curl(edge, *args, timeout=60, check=True):
    """Runs curl with app.localhost resolved to loopback; returns CompletedProcess
    (stdout bytes). -w output goes to stderr through %{stderr}."""
    argv = ["curl", "-sS", "--max-time", str(timeout),
            "--resolve", "%s:%d:127.0.0.1" % (edge.host, edge.edge_port)]
    if edge.tls_port:
        argv += ["--resolve", "%s:%d:127.0.0.1" % (edge.host, edge.tls_port)]
    argv += list(args)
    r = subprocess.run(argv, capture_output=True, timeout=timeout + 10)
    if check:
        assert r.returncode == 0, "curl %s: exit %d: %s" % (args, r.returncode, r.stderr.decode())
    return r


def w_out(r):
    """The -w '%{stderr}...' part of curl's stderr."""
    return r.stderr.decode().strip().split()


def test_http1(edge):
    r = curl(edge, "--http1.1", "-w", "%{stderr}%{http_code} %{http_version}", edge.edge_url("/"))
    assert r.stdout == HELLO
    assert w_out(r) == ["200", "1.1"]


def test_http1_keepalive_two_requests(edge):
    r = curl(edge, "--http1.1", "-w", "%{stderr}%{http_code} %{num_connects}\n",
             edge.edge_url("/"), edge.edge_url("/bytes?n=5"))
    assert r.stdout == HELLO + b"".join(backend.gen_chunks(5))
    assert w_out(r) == ["200", "1", "200", "0"]  # the second request reused the connection


def test_h2c_prior_knowledge(edge):
    r = curl(edge, "--http2-prior-knowledge", "-w", "%{stderr}%{http_code} %{http_version}",
             edge.edge_url("/"))
    assert r.stdout == HELLO
    assert w_out(r) == ["200", "2"]


@pytest.mark.parametrize("version", ["--http1.1", "--http2"])
def test_https_self_signed(edge, version):
    url = "https://%s:%d/" % (edge.host, edge.tls_port)
    r = curl(edge, version, "--cacert", edge.cert, "-w", "%{stderr}%{http_code} %{http_version}", url)
    assert r.stdout == HELLO
    code, ver = w_out(r)
    assert code == "200"
    if version == "--http1.1":
        assert ver == "1.1"
    # without the CA the handshake must fail verification
    r = curl(edge, version, url, check=False)
    assert r.returncode == 60, r.stderr  # CURLE_PEER_FAILED_VERIFICATION


def test_wildcard_host(edge):
    r = curl(edge, "-H", "Host: anything.wild.localhost", "-w", "%{stderr}%{http_code}",
             "http://127.0.0.1:%d/" % edge.edge_port)
    assert r.stdout == HELLO and w_out(r) == ["200"]


def test_unknown_host_404(edge):
    for extra in (["--http1.1"], ["--http2-prior-knowledge"]):
        r = curl(edge, *extra, "-H", "Host: nope.localhost", "-w", "%{stderr}%{http_code}",
                 "http://127.0.0.1:%d/" % edge.edge_port)
        assert w_out(r) == ["404"], (extra, r.stdout)


def test_download_100mb(edge):
    for proto in ("--http1.1", "--http2-prior-knowledge"):
        t0 = time.monotonic()
        p = subprocess.Popen(
            ["curl", "-sS", "--max-time", "180", proto, "--resolve",
             "%s:%d:127.0.0.1" % (edge.host, edge.edge_port),
             edge.edge_url("/bytes?n=%d" % MB100)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            h = hashlib.sha256()
            n = 0
            while True:
                d = p.stdout.read(1 << 20)
                if not d:
                    break
                h.update(d)
                n += len(d)
            rc = p.wait(200)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        took = time.monotonic() - t0
        assert rc == 0, p.stderr.read()
        assert n == MB100
        assert h.hexdigest() == backend.expected_sha256(MB100)
        print("100 MB download through the edge (%s) in %.2fs" % (proto, took))


def test_upload_100mb(edge):
    """curl streams the body from stdin (-T -: chunked on HTTP/1.1, DATA frames on h2)."""
    for proto in ("--http1.1", "--http2-prior-knowledge"):
        t0 = time.monotonic()
        p = subprocess.Popen(
            ["curl", "-sS", "--max-time", "180", proto, "--resolve",
             "%s:%d:127.0.0.1" % (edge.host, edge.edge_port), "-X", "POST", "-T", "-",
             "-H", "Content-Type: application/octet-stream", "-D", "-", edge.edge_url("/sha256")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def feed():
            try:
                for c in backend.gen_chunks(MB100):
                    p.stdin.write(c)
                p.stdin.close()
            except (BrokenPipeError, ValueError):
                pass

        t = threading.Thread(target=feed, daemon=True)
        t.start()
        try:
            # not communicate(): it would close stdin under the feeding thread.
            # Bounded by curl's --max-time.
            out = p.stdout.read()
            err = p.stderr.read()
            p.wait(30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        t.join(10)
        took = time.monotonic() - t0
        assert p.returncode == 0, err
        rest = out
        for _ in range(5):  # skip "100 Continue" (curl sends Expect: 100-continue)
            head, _, rest = rest.partition(b"\r\n\r\n")
            if not head.split()[1].startswith(b"1"):
                break
        assert head.split()[1] == b"200", head
        assert b"x-body-length: %d" % MB100 in head.lower()
        assert rest.decode().strip() == backend.expected_sha256(MB100)
        print("100 MB upload through the edge (%s) in %.2fs" % (proto, took))


def test_1000_requests_h2_one_connection(edge):
    r = curl(edge, "--http2-prior-knowledge", "-Z", "--parallel-max", "300",
             "-w", "%{http_code} %{num_connects}\n", "-o", "/dev/null",
             edge.edge_url("/bytes?n=2000&i=[1-1000]"), timeout=180)
    out = r.stdout.decode().split()  # (-Z draws its progress meter on stderr even with -s)
    codes, connects = out[0::2], out[1::2]
    assert len(codes) == 1000
    assert codes.count("200") == 1000, {c: codes.count(c) for c in set(codes)}
    assert sum(int(c) for c in connects) == 1, "curl opened %s TCP connections" % sum(map(int, connects))
    assert edge.quic_connections() == 1, edge.gateway.log()[-4000:]


def test_websocket_echo(edge):
    sock = socket.create_connection(("127.0.0.1", edge.edge_port), timeout=10)
    try:
        ws = harness.WSClient(harness.SocketTransport(sock), edge.host)
        assert ws.response.headers.get("Upgrade", "").lower() == "websocket"
        for i in range(20):
            ws.send_text("hello %d" % i)
            assert ws.recv_message() == (1, b"hello %d" % i)
        blob = os.urandom(1 << 20)
        ws.send_binary(blob)
        op, data = ws.recv_message(timeout=30)
        assert op == 2 and data == blob
        assert ws.close()
    finally:
        sock.close()


def test_sse_first_event_before_end(edge):
    conn = http.client.HTTPConnection("127.0.0.1", edge.edge_port, timeout=10)
    try:
        t0 = time.monotonic()
        conn.request("GET", "/sse?n=6&interval=0.25", headers={"Host": edge.host})
        r = conn.getresponse()
        assert r.status == 200
        assert r.getheader("Content-Type") == "text/event-stream"
        first = None
        events = 0
        for _ in range(1000):  # bounded; each readline is bounded by the socket timeout
            line = r.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                events += 1
                if first is None:
                    first = time.monotonic() - t0
        total = time.monotonic() - t0
    finally:
        conn.close()
    assert events == 6
    assert first is not None and first < 1.0, "first event after %s s" % first
    assert total >= 1.2, "stream lasted only %.2fs" % total
    assert total - first >= 1.0, "first event at %.2fs, end at %.2fs: buffered?" % (first, total)
    print("SSE: first event after %.3fs, stream ended after %.3fs" % (first, total))


def test_sse_h2_first_event_before_end(edge):
    """Same through the h2c edge, with python3-h2 as the client."""
    with harness.H2Client("127.0.0.1", edge.edge_port) as c:
        c.wait_settings()
        t0 = time.monotonic()
        st = c.request([(":method", "GET"), (":scheme", "http"), (":authority", edge.host),
                        (":path", "/sse?n=6&interval=0.25")], end_stream=True)
        assert st.wait_response(10) == 200
        assert st.header("content-type") == "text/event-stream"
        buf = b""
        first = None
        for _ in range(1000):  # bounded; each recv is bounded too
            d = st.recv(timeout=10)
            if not d:
                break
            buf += d
            if first is None and b"data:" in buf:
                first = time.monotonic() - t0
        total = time.monotonic() - t0
    assert buf.count(b"data: event") == 6
    assert first is not None and first < 1.0, "first event after %s s" % first
    assert total - first >= 1.0, "first event at %.2fs, end at %.2fs: buffered?" % (first, total)
