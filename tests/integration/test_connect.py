"""The gateway's CONNECT listener (h2c, prior knowledge) driven by python3-h2, an
HTTP/2 implementation independent of the gateway's nghttp2, through the QUIC
tunnel to warren-heartbeat and on to backend.py."""

import os
import time

import pytest

import backend
import harness
from harness import Setup, StreamReset, Timeout, http_over, http_response, http_send

MB100 = 100 << 20
HELLO = b"hello from the laptop\n"


@pytest.fixture(scope="module")
def tun(request):
    closed = "127.0.0.1:%d" % harness.free_port("tcp")  # exposed, but nothing listens
    s = Setup("connect", edge=False, extra_expose=[closed])
    s.closed_target = closed
    yield from harness.fixture_setup(request, s)


@pytest.fixture
def client(tun):
    c = tun.h2()
    try:
        yield c
    finally:
        c.close()


def get(client, tun, path, node_addr=None, timeout=30.0):
    st = client.connect(tun.target, tun.agent_id, node_addr=node_addr)
    status = st.wait_response(timeout)
    assert status == 200, "CONNECT answered %s %s" % (status, st.headers)
    return st, http_over(st, "GET", path, host=tun.host, timeout=timeout)


def test_simple_request(tun, client):
    st, r = get(client, tun, "/")
    assert r.status == 200
    assert r.read() == HELLO
    # the stream ends cleanly after the backend closes (Connection: close)
    assert st.recv(timeout=10) == b""
    assert st.reset is None


def test_node_addr_header(tun, client):
    """x-warren-node-addr names the agent's UDP address explicitly."""
    st, r = get(client, tun, "/", node_addr=tun.agent_addr)
    assert r.status == 200 and r.read() == HELLO


def test_download_100mb(tun, client):
    t0 = time.monotonic()
    st, r = get(client, tun, "/bytes?n=%d" % MB100, timeout=120)
    assert r.status == 200
    assert int(r.getheader("Content-Length")) == MB100
    digest, n = harness.sha256_of_response(r)
    took = time.monotonic() - t0
    assert n == MB100
    assert digest == backend.expected_sha256(MB100)
    print("100 MB download through CONNECT in %.2fs (%.1f MB/s)" % (took, 100 / took))


def test_upload_100mb(tun, client):
    t0 = time.monotonic()
    st = client.connect(tun.target, tun.agent_id)
    assert st.wait_response() == 200
    http_send(st, "POST", "/sha256", host=tun.host, body=backend.gen_chunks(MB100), timeout=120)
    r = http_response(st, "POST", timeout=120)
    took = time.monotonic() - t0
    assert r.status == 200
    assert r.getheader("X-Body-Length") == str(MB100)
    assert r.read().decode().strip() == backend.expected_sha256(MB100)
    print("100 MB upload through CONNECT in %.2fs (%.1f MB/s)" % (took, 100 / took))


def test_1000_concurrent_streams_one_quic_connection(tun, client):
    n = 1000
    assert client.peer_max_concurrent >= n, (
        "gateway advertises SETTINGS_MAX_CONCURRENT_STREAMS=%d" % client.peer_max_concurrent)
    t0 = time.monotonic()
    streams = [client.connect(tun.target, tun.agent_id, timeout=30) for _ in range(n)]
    assert client.max_open == n
    statuses = [st.wait_response(60) for st in streams]
    bad = [(st.id, s, st.header("x-warren-error")) for st, s in zip(streams, statuses) if s != 200]
    assert not bad, "%d of %d CONNECTs failed, first: %s" % (len(bad), n, bad[:5])
    # every tunnel is open at once before the first request goes out
    for i, st in enumerate(streams):
        http_send(st, "GET", "/bytes?n=%d" % (1000 + i), host=tun.host)
    for i, st in enumerate(streams):
        r = http_response(st, timeout=60)
        assert r.status == 200
        body = r.read()
        assert body == b"".join(backend.gen_chunks(1000 + i)), "stream %d: wrong body" % st.id
    took = time.monotonic() - t0
    print("%d concurrent CONNECT streams in %.2fs" % (n, took))
    assert tun.quic_connections() == 1, tun.gateway.log()[-4000:]


def test_sse_through_connect(tun, client):
    t0 = time.monotonic()
    st, r = get(client, tun, "/sse?n=5&interval=0.25")
    assert r.status == 200
    assert r.getheader("Content-Type") == "text/event-stream"
    first = None
    for _ in range(100):  # bounded: each readline is bounded by the stream's timeout
        line = r.readline()
        assert line, "stream ended before the first event"
        if line.startswith(b"data: event 0"):
            first = time.monotonic() - t0
            break
    rest = r.read()
    total = time.monotonic() - t0
    assert rest.count(b"data: event") == 4, rest
    assert first < 1.0, "first event after %.2fs" % first
    assert total - first >= 0.9, "first event at %.2fs, stream done at %.2fs" % (first, total)


def test_websocket_through_connect(tun, client):
    st = client.connect(tun.target, tun.agent_id)
    assert st.wait_response() == 200
    ws = harness.WSClient(harness.StreamTransport(st), tun.host)
    for i in range(20):
        msg = "message %d" % i
        ws.send_text(msg)
        assert ws.recv_message() == (1, msg.encode())
    blob = os.urandom(1 << 20)
    ws.send_binary(blob)
    op, data = ws.recv_message(timeout=30)
    assert op == 2 and data == blob
    assert ws.close()


def test_refused_target_403(tun, client):
    st = client.connect("127.0.0.1:1", tun.agent_id)
    assert st.wait_response(30) == 403
    assert st.header("x-warren-error"), st.headers
    body = st.read_all(timeout=10)
    assert body.strip(), "refusal without a text body"
    # the connection stays usable
    st2, r = get(client, tun, "/")
    assert r.read() == HELLO


def test_exposed_target_down_502(tun, client):
    st = client.connect(tun.closed_target, tun.agent_id)
    assert st.wait_response(30) == 502
    assert st.header("x-warren-error"), st.headers
    assert st.read_all(timeout=10).strip(), "refusal without a text body"


def test_unknown_agent_502(tun, client):
    unknown = os.urandom(32).hex()
    st = client.connect(tun.target, unknown)  # no address known for it anywhere
    assert st.wait_response(30) == 502
    assert st.header("x-warren-error"), st.headers
    assert st.read_all(timeout=10).strip(), "refusal without a text body"


def test_unreachable_agent_502(tun, client):
    unknown = os.urandom(32).hex()
    nobody = "127.0.0.1:%d" % harness.free_port("udp")
    t0 = time.monotonic()
    st = client.connect(tun.target, unknown, node_addr=nobody)
    # nothing answers at that address: 502, or 504 when the gateway gave up
    # waiting for the handshake (gateway/tunnel.h)
    status = st.wait_response(60)
    assert status in (502, 504), st.headers
    assert st.header("x-warren-error"), st.headers
    assert st.read_all(timeout=10).strip(), "refusal without a text body"
    print("unreachable agent answered %d after %.1fs" % (status, time.monotonic() - t0))


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([(":method", "CONNECT"), (":authority", "{target}")], id="no-endpoint-id"),
        pytest.param([(":method", "CONNECT"), (":authority", "{target}"),
                      ("x-warren-endpoint-id", "not-hex")], id="bad-endpoint-id"),
        pytest.param([(":method", "CONNECT"), (":authority", "127.0.0.1"),
                      ("x-warren-endpoint-id", "{agent}")], id="authority-without-port"),
        pytest.param([(":method", "CONNECT"), (":authority", "{target}"), ("x-warren-endpoint-id", "{agent}"),
                      ("x-warren-node-addr", "not an address")], id="bad-node-addr"),
    ],
)
def test_malformed_400(tun, client, headers):
    hdrs = [(k, v.format(target=tun.target, agent=tun.agent_id)) for k, v in headers]
    st = client.request(hdrs)
    assert st.wait_response(10) == 400
    assert st.header("x-warren-error"), st.headers
    client.ping()  # no GOAWAY, the connection is still fine


def test_connect_over_unix_socket():
    with harness.started(Setup("connect-unix", edge=False, unix=True)) as s:
        with s.h2() as c:
            st = c.connect(s.target, s.agent_id)
            assert st.wait_response(30) == 200
            r = http_over(st, "GET", "/", host=s.host)
            assert r.status == 200 and r.read() == HELLO


def test_untrusted_gateway_key_rejected():
    other = os.path.join(harness.make_secret_dir(), "other.key")
    other_id, _ = harness.run_id(harness.GATEWAY, other)
    try:
        with harness.started(Setup("untrusted", edge=False, trust_override=other_id)) as s:
            mark = s.agent.log_size()
            with s.h2() as c:
                st = c.connect(s.target, s.agent_id)
                assert st.wait_response(60) == 502
                assert st.header("x-warren-error"), st.headers
                c.ping()  # only that stream failed
            s.agent.wait_log(r"(?i)reject|untrusted|not trusted", timeout=10, since=mark)
            assert s.quic_connections() == 0
    finally:
        os.unlink(other)
        os.rmdir(os.path.dirname(other))


def test_agent_killed_mid_transfer_then_restarted():
    with harness.started(Setup("agent-restart", edge=False)) as s:
        gw_pid = s.gateway.pid
        with s.h2() as c:
            st = c.connect(s.target, s.agent_id)
            assert st.wait_response(30) == 200
            n = 4 << 30  # far more than the test will read
            r = http_over(st, "GET", "/bytes?n=%d" % n, host=s.host)
            assert r.status == 200
            got = 0
            while got < (4 << 20):
                d = r.read(1 << 16)
                assert d, "stream ended early"
                got += len(d)
            s.agent.kill()
            t0 = time.monotonic()
            with pytest.raises((StreamReset, ConnectionError, Timeout)) as ei:
                while True:  # bounded: ends with the reset, or recv's own timeout
                    d = st.recv(timeout=90)
                    got += len(d)
                    assert d, "stream ended cleanly after the agent was killed (%d bytes)" % got
                    assert got < n
            assert not isinstance(ei.value, Timeout), "no error within 90s of killing the agent"
            print("client saw %r %.2fs after the kill" % (ei.value, time.monotonic() - t0))
            # only that stream fails: the h2 connection (Envoy's, shared by every
            # tunnel) must survive the agent's death
            assert c.error is None, "the gateway dropped the whole h2 connection: %s" % c.error
            assert isinstance(ei.value, StreamReset) and ei.value.remote, ei.value
            c.ping()

            s.start_agent()  # same identity, same UDP port
            st2 = c.connect(s.target, s.agent_id)
            assert st2.wait_response(60) == 200, st2.headers
            r2 = http_over(st2, "GET", "/", host=s.host)
            assert r2.status == 200 and r2.read() == HELLO
        assert s.gateway.running() and s.gateway.pid == gw_pid
        assert s.quic_connections() == 2
