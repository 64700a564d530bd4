"""The gateway's edge listener (HTTP/1.1, h2c, HTTPS) driven by curl and
http.client, routed by Host from a routes file, through the QUIC tunnel to
warren-heartbeat and on to backend.py."""

import hashlib
import http.client
import os
import socket
import socketserver
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
    s = Setup("edge", edge=True, tls=True, extra_hosts=["*.wild.localhost"],
              extra_routes=[("refused", ["refused.localhost"], "http://127.0.0.1:1")])
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
    """curl -Z multiplexes 1,000 requests on one h2 connection, 100 at a time
    (libcurl's CURLMOPT_MAX_CONCURRENT_STREAMS default; beyond it curl opens more
    connections). Over TLS: Debian's curl 7.88.1 fails every request but the first
    when it reuses a --http2-prior-knowledge connection (curl/curl#10634, fixed in 8.0)."""
    r = curl(edge, "--http2", "--cacert", edge.cert, "-Z", "--parallel-max", "100",
             "-w", "%{http_code} %{num_connects} %{http_version}\n", "-o", "/dev/null",
             "https://%s:%d/bytes?n=2000&i=[1-1000]" % (edge.host, edge.tls_port), timeout=180)
    out = r.stdout.decode().split()  # (-Z draws its progress meter on stderr even with -s)
    codes, connects, versions = out[0::3], out[1::3], out[2::3]
    assert len(codes) == 1000
    assert codes.count("200") == 1000, {c: codes.count(c) for c in set(codes)}
    assert set(versions) == {"2"}
    assert sum(int(c) for c in connects) == 1, "curl opened %s TCP connections" % sum(map(int, connects))
    assert edge.quic_connections() == 1, edge.gateway.log()[-4000:]


def test_1000_concurrent_h2c_streams(edge):
    """1,000 requests open at once on one h2c connection (python3-h2), each a
    tunnel of its own, all over the one QUIC connection to the agent."""
    n = 1000
    with harness.H2Client("127.0.0.1", edge.edge_port) as c:
        c.wait_settings()
        assert c.peer_max_concurrent >= n, c.peer_max_concurrent
        t0 = time.monotonic()
        streams = []
        for i in range(n):  # /slow keeps every stream open until all are
            path = "/slow?seconds=2&i=%d" % i if i % 2 else "/bytes?n=%d&i=%d" % (1000 + i, i)
            streams.append(c.request([(":method", "GET"), (":scheme", "http"),
                                      (":authority", edge.host), (":path", path)], end_stream=True))
        for i, st in enumerate(streams):
            assert st.wait_response(60) == 200, (i, st.headers)
            want = b"slept 2\n" if i % 2 else b"".join(backend.gen_chunks(1000 + i))
            assert st.read_all(timeout=60) == want, "stream %d: wrong body" % st.id
        took = time.monotonic() - t0
        assert c.max_open >= n // 2 + 1, c.max_open  # every /slow stream overlapped
    print("%d concurrent h2c requests through the edge in %.2fs" % (n, took))
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


def test_refused_target_403(edge):
    """A route to a target the agent does not expose: the agent's refusal."""
    for extra in (["--http1.1"], ["--http2-prior-knowledge"]):
        r = curl(edge, *extra, "-D", "-", "-H", "Host: refused.localhost",
                 "http://127.0.0.1:%d/" % edge.edge_port)
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        assert head.split()[1] == b"403", head
        assert b"x-warren-error:" in head.lower(), head
        assert body.strip(), "refusal without a text body"
    # the agent said no; the QUIC connection is still the one
    assert edge.quic_connections() == 1


def test_untrusted_gateway_key_rejected():
    other = os.path.join(harness.make_secret_dir(), "other.key")
    other_id, _ = harness.run_id(harness.GATEWAY, other)
    try:
        with harness.started(Setup("edge-untrusted", trust_override=other_id)) as s:
            mark = s.agent.log_size()
            r = curl(s, "-D", "-", s.edge_url("/"))
            head = r.stdout.partition(b"\r\n\r\n")[0]
            assert head.split()[1] == b"502", head
            s.agent.wait_log(r"(?i)reject|untrusted|not trusted", timeout=10, since=mark)
            assert s.quic_connections() == 0
    finally:
        os.unlink(other)
        os.rmdir(os.path.dirname(other))


def test_agent_killed_mid_download_then_restarted():
    """curl sees the transfer fail when the agent dies, and once the agent is
    back (same key, same port) the next request succeeds, gateway untouched."""
    with harness.started(Setup("edge-agent-restart")) as s:
        gw_pid = s.gateway.pid
        p = subprocess.Popen(
            ["curl", "-sS", "--max-time", "120", "--resolve", "%s:%d:127.0.0.1" % (s.host, s.edge_port),
             s.edge_url("/bytes?n=%d" % (4 << 30))], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            got = 0
            while got < (4 << 20):
                d = p.stdout.read1(1 << 16)
                assert d, "download ended early: %s" % p.stderr.read()
                got += len(d)
            s.agent.kill()
            t0 = time.monotonic()
            while p.stdout.read1(1 << 20):  # bounded by curl's --max-time
                pass
            rc = p.wait(30)
            took = time.monotonic() - t0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        err = p.stderr.read().decode()
        assert rc not in (0, 28), "curl exit %d (28: no error before --max-time): %s" % (rc, err)
        print("curl failed %.1fs after the kill: exit %d %s" % (took, rc, err.strip()))

        s.start_agent()
        r = curl(s, s.edge_url("/"), timeout=60)
        assert r.stdout == HELLO
        assert s.gateway.running() and s.gateway.pid == gw_pid
        assert s.quic_connections() == 2


# --------------------------------------------------------------------------
# HTTP/2 on the edge (gateway/http2.c), h2c and h2 by ALPN: bodies, TLS,
# 100 MB each way, resets, and what the edge makes of the service's HTTP/1.1
# (a scripted service below).


def h2_get(c, host, path, method="GET", extra=()):
    """A request without a body on H2Client |c|; returns the stream."""
    return c.request([(":method", method), (":scheme", "http"), (":authority", host),
                      (":path", path)] + list(extra), end_stream=True)


def test_h2c_get_bodies(edge):
    with harness.H2Client("127.0.0.1", edge.edge_port) as c:
        c.wait_settings()
        st = h2_get(c, edge.host, "/")
        assert st.wait_response() == 200
        assert st.read_all() == HELLO
        assert st.header("content-length") == str(len(HELLO))
        # a chunked response arrives de-chunked, without transfer-encoding
        n = 300000
        st = h2_get(c, edge.host, "/bytes?n=%d&chunked=1" % n)
        assert st.wait_response() == 200
        assert st.read_all() == b"".join(backend.gen_chunks(n))
        assert st.header("transfer-encoding") is None
        # HEAD: the length is announced, no body follows
        st = h2_get(c, edge.host, "/bytes?n=1000", method="HEAD")
        assert st.wait_response() == 200
        assert st.header("content-length") == "1000"
        assert st.read_all() == b""
        # a body with a length (no chunking towards the service)
        body = os.urandom(3 << 20)
        st = c.request([(":method", "POST"), (":scheme", "http"), (":authority", edge.host),
                        (":path", "/sha256"), ("content-length", str(len(body)))])
        st.send(body, end=True)
        assert st.wait_response(30) == 200
        assert st.header("x-body-length") == str(len(body))
        assert st.read_all().decode().strip() == hashlib.sha256(body).hexdigest()


def test_h2_tls_alpn(edge):
    url = "https://%s:%d/" % (edge.host, edge.tls_port)
    r = curl(edge, "--http2", "--cacert", edge.cert, "-w", "%{stderr}%{http_code} %{http_version}", url)
    assert r.stdout == HELLO
    assert w_out(r) == ["200", "2"]
    # a client that offers only http/1.1 still gets it
    r = curl(edge, "--http1.1", "--cacert", edge.cert, "-w", "%{stderr}%{http_code} %{http_version}", url)
    assert w_out(r) == ["200", "1.1"]


def test_h2_unknown_host_404_text(edge):
    r = curl(edge, "--http2-prior-knowledge", "-H", "Host: nope.localhost", "-D", "-",
             "http://127.0.0.1:%d/" % edge.edge_port)
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 404"), head
    assert b"x-warren-error: no route for host nope.localhost" in head
    assert body == b"no route for host nope.localhost\n"






def test_h2_client_reset_stream(edge):
    """RST_STREAM from the client ends that stream only; the connection goes on."""
    with harness.H2Client("127.0.0.1", edge.edge_port) as c:
        c.wait_settings()
        st = h2_get(c, edge.host, "/sse?n=100&interval=0.1")
        assert st.wait_response() == 200
        assert b"data:" in st.recv(timeout=10)
        st.cancel()
        c.ping()
        st2 = h2_get(c, edge.host, "/")
        assert st2.wait_response() == 200 and st2.read_all() == HELLO
    assert edge.gateway.running()


def _curl_stream(argv, feed=None):
    """Runs curl; returns (exit code, sha256 hex and length of stdout, stderr)."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t = None
    if feed:
        def run():
            try:
                for chunk in feed:
                    p.stdin.write(chunk)
                p.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
        t = threading.Thread(target=run, daemon=True)
        t.start()
    try:
        h = hashlib.sha256()
        out = bytearray()
        n = 0
        while True:
            d = p.stdout.read(1 << 20)
            if not d:
                break
            h.update(d)
            n += len(d)
            if len(out) < 4096:
                out += d[:4096]
        err = p.stderr.read()
        rc = p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if t is not None:
        t.join(10)
    return rc, h.hexdigest(), n, bytes(out), err


def test_h2_tls_100mb_both_ways(edge):
    """100 MB each way over h2 in TLS, streamed with end-to-end flow control
    (the upload without a length: chunked towards the service)."""
    base = ["curl", "-sS", "--max-time", "180", "--http2", "--cacert", edge.cert,
            "--resolve", "%s:%d:127.0.0.1" % (edge.host, edge.tls_port)]
    url = "https://%s:%d" % (edge.host, edge.tls_port)
    t0 = time.monotonic()
    rc, digest, n, _, err = _curl_stream(base + [url + "/bytes?n=%d" % MB100])
    assert rc == 0, err
    assert n == MB100 and digest == backend.expected_sha256(MB100)
    t1 = time.monotonic()
    rc, _, _, out, err = _curl_stream(base + ["-X", "POST", "-T", "-", "-D", "-", url + "/sha256"],
                                      feed=backend.gen_chunks(MB100))
    assert rc == 0, err
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 200"), head
    assert b"x-body-length: %d" % MB100 in head
    assert body.decode().strip() == backend.expected_sha256(MB100)
    print("h2 over TLS: 100 MB down in %.2fs, up in %.2fs" % (t1 - t0, time.monotonic() - t1))


# A service with scripted HTTP/1.1 answers, to check what the h2 edge makes
# of them. Each answer is chosen by the request's path.

RAW_HOST = "raw.localhost"
RAW_ANSWERS = {
    "/no-content": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
    "/not-modified": b'HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: "x"\r\n\r\n',
    "/continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                 b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "/close-delimited": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 300000,
    "/hop": b"HTTP/1.1 200 OK\r\nConnection: close, X-Private\r\nX-Private: secret\r\n"
            b"Keep-Alive: timeout=5\r\nUpgrade: foo\r\nX-Kept: yes  \r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",
    "/big-head": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Big-%d: %s\r\n" % (i, b"a" * 1000) for i in range(70))
                 + b"Content-Length: 0\r\n\r\n",
    "/cut": b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"y" * 1000,
    "/garbage": b"SSH-2.0-nope\r\n\r\n",
    "/silent": b"",
    "/switch": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
}


class _RawHandler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(10)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                d = sock.recv(65536)
                if not d:
                    return
                buf += d
            head, _, rest = buf.partition(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode().split("?")[0]
            if path == "/head":  # answers the request head, and the body if chunked
                body = b""
                if b"transfer-encoding: chunked" in head.lower():
                    while not rest.endswith(b"0\r\n\r\n"):
                        d = sock.recv(65536)
                        if not d:
                            break
                        rest += d
                    body = rest
                out = head + b"\r\n\r\n" + body
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(out) + out)
            else:
                sock.sendall(RAW_ANSWERS.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        except OSError:
            pass


class _RawSetup(Setup):
    """The usual setup plus a route for RAW_HOST to the scripted service."""

    def __init__(self, raw_target):
        super().__init__("edge-h2-raw", edge=True, extra_expose=[raw_target])
        self.raw_target = raw_target

    def write_routes(self):
        path = os.path.join(self.logdir, "routes.yaml")
        proxies = [("app", [self.host], "http://" + self.target),
                   ("raw", [RAW_HOST], "http://" + self.raw_target)]
        with open(path, "w") as f:
            f.write(harness.routes_yaml("laptop", self.agent_id, self.agent_addr, proxies))
        return path


class _RawServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    request_queue_size = 128


@pytest.fixture(scope="module")
def raw_edge(request):
    srv = _RawServer(("127.0.0.1", 0), _RawHandler)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    try:
        yield from harness.fixture_setup(request, _RawSetup("127.0.0.1:%d" % srv.server_address[1]))
    finally:
        srv.shutdown()
        srv.server_close()


def test_h2_request_as_http1(raw_edge):
    """What the service receives: HTTP/1.1 with Host from :authority, cookies
    joined, hop-by-hop and client X-Forwarded-* fields replaced, and
    Connection: close; a body without a length is chunked."""
    with harness.H2Client("127.0.0.1", raw_edge.edge_port) as c:
        c.wait_settings()
        st = h2_get(c, RAW_HOST, "/head?q=1", extra=[
            ("cookie", "a=1"), ("cookie", "b=2"), ("te", "trailers"),
            ("x-forwarded-for", "6.6.6.6"), ("x-custom", "v")])
        assert st.wait_response() == 200
        lines = st.read_all().split(b"\r\n")
        assert lines[0] == b"GET /head?q=1 HTTP/1.1"
        fields = [tuple(l.split(b": ", 1)) for l in lines[1:] if l]
        names = [k.lower() for k, _ in fields]
        got = {k.lower(): v for k, v in fields}
        assert got[b"host"] == RAW_HOST.encode() and names.count(b"host") == 1
        assert got[b"cookie"] == b"a=1; b=2"
        assert got[b"x-custom"] == b"v"
        assert got[b"x-forwarded-for"] == b"127.0.0.1" and names.count(b"x-forwarded-for") == 1
        assert got[b"x-forwarded-proto"] == b"http"
        assert got[b"x-forwarded-host"] == RAW_HOST.encode()
        assert got[b"connection"] == b"close"
        assert b"te" not in got and b"transfer-encoding" not in got
        st = c.request([(":method", "POST"), (":scheme", "http"), (":authority", RAW_HOST),
                        (":path", "/head")])
        st.send(b"abc")
        st.send(b"defgh", end=True)
        assert st.wait_response() == 200
        head, _, body = st.read_all().partition(b"\r\n\r\n")
        assert b"\r\nTransfer-Encoding: chunked\r\n" in head
        assert _dechunk(body) == b"abcdefgh"


def _dechunk(b):
    out = b""
    while True:
        size, _, b = b.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            return out
        out += b[:n]
        assert b[n:n + 2] == b"\r\n"
        b = b[n + 2:]


def test_h2_response_fields_and_bodies(raw_edge):
    with harness.H2Client("127.0.0.1", raw_edge.edge_port) as c:
        c.wait_settings()
        st = h2_get(c, RAW_HOST, "/hop")
        assert st.wait_response() == 200
        assert st.read_all() == b"hello"
        names = [k for k, _ in st.headers]
        assert st.header("x-kept") == "yes"
        for hop in ("connection", "keep-alive", "upgrade", "transfer-encoding", "x-private"):
            assert hop not in names, st.headers
        # no body after 204/304 even with a Content-Length
        for path, status in (("/no-content", 204), ("/not-modified", 304)):
            st = h2_get(c, RAW_HOST, path)
            assert st.wait_response() == status
            assert st.read_all(timeout=10) == b""
        st = h2_get(c, RAW_HOST, "/continue")  # interim answers, then the final one
        assert st.wait_response() == 200 and st.read_all() == b"ok"
        st = h2_get(c, RAW_HOST, "/close-delimited")  # ends with the connection
        assert st.wait_response() == 200 and st.read_all() == b"x" * 300000


@pytest.mark.parametrize("path,why", [
    ("/big-head", "response head too large"),
    ("/garbage", ""),
    ("/silent", "closed before a response"),
    ("/switch", "protocol switch"),
])
def test_h2_bad_response_502(raw_edge, path, why):
    with harness.H2Client("127.0.0.1", raw_edge.edge_port) as c:
        c.wait_settings()
        st = h2_get(c, RAW_HOST, path)
        assert st.wait_response() == 502
        assert why in st.header("x-warren-error")
        assert st.read_all().startswith(b"bad response from the service")


def test_h2_response_cut_resets_stream(raw_edge):
    with harness.H2Client("127.0.0.1", raw_edge.edge_port) as c:
        c.wait_settings()
        st = h2_get(c, RAW_HOST, "/cut")
        assert st.wait_response() == 200
        with pytest.raises(harness.StreamReset) as e:
            st.read_all(timeout=10)
        assert e.value.code == 2  # INTERNAL_ERROR
        c.ping()
