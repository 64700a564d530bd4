"""harness.py - helpers for warren's integration tests (run by /usr/bin/python3 -m pytest).

- where the binaries are (WARREN_BUILD_DIR, default <repo>/build)
- Proc: a child process with its output in a log file, "ready" detection with a
  timeout, bounded stop/kill, log tails for failure messages
- identities (temp dir 0700, keys 0600 created by the binaries themselves)
- free TCP/UDP ports, routes files in the HTTPProxy/Connector shape
- H2Client: an HTTP/2 client over prior-knowledge h2c built on python3-h2
  (an implementation independent of nghttp2), with many concurrent CONNECT
  streams on one connection, end-to-end flow control and bounded waits
- http_over(): HTTP/1.1 through a tunnel stream, parsed by http.client
- WSClient: a WebSocket client (python3-websockets' sans-I/O protocol) over a
  TCP socket or a tunnel stream
- Setup: backend + agent + gateway wired together, for the tests' fixtures

Environment: WARREN_BUILD_DIR, WARREN_TEST_LOG_LEVEL (info), WARREN_TEST_TRACE (--trace
list), WARREN_KEEP_LOGS=1 (keep the logs of passing setups too), WARREN_H2_DEBUG=1
(print every h2 event).
"""

import collections
import contextlib
import hashlib
import http.client
import io
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get("WARREN_BUILD_DIR", os.path.join(REPO, "build")))
GATEWAY = os.path.join(BUILD, "gateway", "warren-gateway")
HEARTBEAT = os.path.join(BUILD, "heartbeat", "warren-heartbeat")
PYTHON = "/usr/bin/python3"  # Debian's, with python3-h2 and python3-websockets
BACKEND = os.path.join(HERE, "backend.py")
LOG_LEVEL = os.environ.get("WARREN_TEST_LOG_LEVEL", "info")
TRACE = os.environ.get("WARREN_TEST_TRACE", "")
LOG_ROOT = os.path.join(BUILD, "test-logs", "integration")
KEEP_LOGS = os.environ.get("WARREN_KEEP_LOGS", "") not in ("", "0")

if HERE not in sys.path:  # for "import backend" from scripts outside pytest
    sys.path.insert(0, HERE)


SANITIZER_RX = re.compile(r"ERROR: (?:Address|Leak|Memory|Thread)Sanitizer[^\n]*|runtime error:[^\n]*")


class Timeout(AssertionError):
    pass


def deadline_after(seconds):
    return time.monotonic() + seconds


def remaining(deadline):
    return max(0.0, deadline - time.monotonic())


# --------------------------------------------------------------------------
# ports and files


def free_port(kind="tcp", host="127.0.0.1"):
    """A port free right now on |host| (TCP or UDP). Small race, as usual."""
    t = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, t) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_logdir(name):
    """A fresh directory for one setup's logs, kept after the run for CI."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]
    os.makedirs(LOG_ROOT, exist_ok=True)
    return tempfile.mkdtemp(prefix=safe + ".", dir=LOG_ROOT)


def make_secret_dir():
    d = tempfile.mkdtemp(prefix="warren-it.")
    os.chmod(d, 0o700)
    return d


def _raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass


# 1,000 concurrent tunnels need more descriptors than a default soft limit of
# 1024 in the agent and the backend; children inherit this (no preexec_fn,
# which is unsafe with the h2 client's thread running).
_raise_nofile()


def require_binaries():
    missing = [p for p in (GATEWAY, HEARTBEAT) if not os.access(p, os.X_OK)]
    if missing:
        raise AssertionError("missing binaries (build first, or set WARREN_BUILD_DIR): %s" % missing)


# --------------------------------------------------------------------------
# processes


class Proc:
    """A child process whose stdout+stderr go to <logdir>/<name>.log."""

    def __init__(self, name, argv, logdir, env=None):
        self.name = name
        self.argv = list(argv)
        self.logpath = os.path.join(logdir, name + ".log")
        self.env = env
        self.p = None
        self.starts = 0

    def start(self, ready=r"\bready\b", timeout=10.0):
        """Starts (or restarts) the process; waits for |ready| (a regex) in the new
        output and returns its match (None without |ready|)."""
        assert self.p is None or self.p.poll() is not None, "%s already running" % self.name
        self.starts += 1
        with open(self.logpath, "ab") as f:
            f.write(b"=== start %d: %s\n" % (self.starts, " ".join(self.argv).encode()))
            f.flush()
            self.mark = f.tell()
            env = dict(os.environ)
            if self.env:
                env.update(self.env)
            self.p = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                env=env,
            )
        if ready:
            return self.wait_log(ready, timeout=timeout, since=self.mark)
        return None

    @property
    def pid(self):
        return self.p.pid if self.p else None

    def running(self):
        return self.p is not None and self.p.poll() is None

    def log(self, since=0):
        try:
            with open(self.logpath, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.logpath)
        except OSError:
            return 0

    def tail(self, n=40):
        lines = self.log().splitlines()
        return "\n".join("  %s| %s" % (self.name, l) for l in lines[-n:])

    def wait_log(self, pattern, timeout=10.0, since=0, count=1):
        """Waits until |pattern| (regex) matched |count| times in the log after
        offset |since|; returns the last match. Fails fast if the process exits."""
        rx = re.compile(pattern)
        dl = deadline_after(timeout)
        while True:
            m = list(rx.finditer(self.log(since)))
            if len(m) >= count:
                return m[count - 1]
            if self.p is not None and self.p.poll() is not None:
                time.sleep(0.05)  # let the last lines land
                m = list(rx.finditer(self.log(since)))
                if len(m) >= count:
                    return m[count - 1]
                raise AssertionError(
                    "%s exited (%s) before logging %r\n%s"
                    % (self.name, self.p.returncode, pattern, self.tail())
                )
            if time.monotonic() > dl:
                raise Timeout("%s: no %r within %.1fs\n%s" % (self.name, pattern, timeout, self.tail()))
            time.sleep(0.02)

    def count(self, pattern, since=0):
        return len(re.findall(pattern, self.log(since)))

    def signal(self, sig):
        if self.running():
            self.p.send_signal(sig)

    def kill(self):
        """SIGKILL and reap."""
        if self.p is not None and self.p.poll() is None:
            self.p.kill()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after |timeout|. Returns the exit code."""
        if self.p is None:
            return None
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        return self.p.returncode


def run_id(binary, identity):
    """Runs `<binary> id --identity PATH`; returns (hex, z32)."""
    r = subprocess.run(
        [binary, "id", "--identity", identity], capture_output=True, text=True, timeout=20
    )
    assert r.returncode == 0, "%s id failed (%d): %s" % (binary, r.returncode, r.stderr)
    lines = r.stdout.split()
    assert len(lines) >= 2, "unexpected id output: %r" % r.stdout
    hexid, z32 = lines[0], lines[1]
    assert re.fullmatch(r"[0-9a-f]{64}", hexid), "bad hex id %r" % hexid
    assert re.fullmatch(r"[a-z0-9]{52}", z32), "bad z32 id %r" % z32
    st = os.stat(identity)
    assert st.st_mode & 0o077 == 0, "%s is mode %o, expected 0600" % (identity, st.st_mode & 0o777)
    return hexid, z32


def routes_yaml(connector, agent_id, agent_addr, proxies):
    """A standalone routes file: one Connector and one HTTPProxy per
    (name, [hostnames], "http://host:port") entry of |proxies|."""
    host, port = agent_addr.rsplit(":", 1)
    docs = [
        "apiVersion: networking.datumapis.com/v1alpha1\n"
        "kind: Connector\n"
        "metadata: {name: %s}\n"
        "spec: {connectorClassName: standalone}\n"
        "status:\n"
        "  connectionDetails:\n"
        "    type: PublicKey\n"
        "    publicKey:\n"
        "      id: %s\n"
        "      addresses: [{address: %s, port: %s}]\n"
        '      homeRelay: ""\n' % (connector, agent_id, host, port)
    ]
    for name, hostnames, endpoint in proxies:
        docs.append(
            "apiVersion: networking.datumapis.com/v1alpha\n"
            "kind: HTTPProxy\n"
            "metadata: {name: %s}\n"
            "spec:\n"
            "  hostnames: [%s]\n"
            "  rules:\n"
            "  - backends:\n"
            "    - endpoint: %s\n"
            "      connector: {name: %s}\n"
            % (name, ", ".join('"%s"' % h for h in hostnames), endpoint, connector)
        )
    return "---\n".join(docs)


def self_signed_cert(directory, names):
    """Writes cert.pem/key.pem (P-256, SAN=names) with openssl; returns the paths."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    san = ",".join("DNS:" + n for n in names)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + names[0],
         "-addext", "subjectAltName=" + san],
        check=True, capture_output=True, timeout=30,
    )
    os.chmod(key, 0o600)
    return cert, key


# --------------------------------------------------------------------------
# HTTP/2 client (python3-h2) for the CONNECT listener


class StreamReset(ConnectionError):
    def __init__(self, stream_id, code, remote=True):
        super().__init__("stream %d reset by %s: %s" % (stream_id, "peer" if remote else "us", _errname(code)))
        self.stream_id = stream_id
        self.code = code
        self.remote = remote


def _errname(code):
    try:
        return "%s(%d)" % (h2.errors.ErrorCodes(code).name, code)
    except ValueError:
        return str(code)


class H2Stream:
    """One request stream. All state is guarded by the client's lock."""

    OUT_HIGH = 4 << 20  # send() blocks while this much is queued

    def __init__(self, client, sid):
        self.c = client
        self.id = sid
        self.status = None
        self.headers = None  # response headers (list of (str, str)), pseudo-headers included
        self.trailers = None
        self.inbuf = bytearray()
        self.ended = False  # END_STREAM received
        self.reset = None  # StreamReset
        self.out = bytearray()
        self.out_fin = False
        self.out_done = False
        self.received = 0

    def header(self, name):
        for k, v in self.headers or ():
            if k == name:
                return v
        return None

    def _err(self):
        if self.reset is not None:
            return self.reset
        if self.c.error is not None:
            return ConnectionError("h2 connection failed: %s" % self.c.error)
        return None

    def wait_response(self, timeout=10.0):
        """Waits for the response headers; returns the status (int)."""
        dl = deadline_after(timeout)
        with self.c.cv:
            while self.headers is None:
                e = self._err()
                if e is not None:
                    raise e
                if self.ended:
                    raise ConnectionError("stream %d ended without headers" % self.id)
                if not self.c.cv.wait(remaining(dl)) and time.monotonic() >= dl:
                    raise Timeout("stream %d: no response headers within %.1fs" % (self.id, timeout))
            return self.status

    def send(self, data, end=False, timeout=30.0):
        """Queues |data| (flow control is applied by the I/O thread); blocks
        while too much is queued."""
        dl = deadline_after(timeout)
        with self.c.cv:
            while len(self.out) > self.OUT_HIGH:
                e = self._err()
                if e is not None:
                    raise e
                if not self.c.cv.wait(remaining(dl)) and time.monotonic() >= dl:
                    raise Timeout("stream %d: send blocked for %.1fs" % (self.id, timeout))
            e = self._err()
            if e is not None:
                raise e
            assert not self.out_fin, "send after end"
            self.out += data
            if end:
                self.out_fin = True
        self.c._wake()

    def end(self):
        with self.c.cv:
            if not self.out_fin:
                self.out_fin = True
        self.c._wake()

    def flush(self, timeout=30.0):
        """Waits until everything queued (and the FIN, if requested) went to h2."""
        dl = deadline_after(timeout)
        with self.c.cv:
            while self.out or (self.out_fin and not self.out_done):
                e = self._err()
                if e is not None:
                    raise e
                if not self.c.cv.wait(remaining(dl)) and time.monotonic() >= dl:
                    raise Timeout("stream %d: flush blocked for %.1fs" % (self.id, timeout))

    def recv(self, maxlen=1 << 20, timeout=30.0):
        """Returns up to |maxlen| bytes; b"" at END_STREAM. Raises StreamReset,
        ConnectionError or Timeout. Consumed bytes are acknowledged (WINDOW_UPDATE)."""
        dl = deadline_after(timeout)
        with self.c.cv:
            while not self.inbuf:
                if self.ended:  # all data arrived; a later RST_STREAM(NO_ERROR) changes nothing
                    return b""
                if self.reset is not None:
                    raise self.reset
                if self.c.error is not None:
                    raise ConnectionError("h2 connection failed: %s" % self.c.error)
                if not self.c.cv.wait(remaining(dl)) and time.monotonic() >= dl:
                    raise Timeout("stream %d: no data within %.1fs" % (self.id, timeout))
            n = min(maxlen, len(self.inbuf))
            data = bytes(self.inbuf[:n])
            del self.inbuf[:n]
            self.c._ack(self.id, n)
        self.c._wake()
        return data

    def read_all(self, timeout=30.0, limit=1 << 30):
        dl = deadline_after(timeout)
        out = bytearray()
        while True:
            d = self.recv(timeout=remaining(dl))
            if not d:
                return bytes(out)
            out += d
            assert len(out) <= limit, "stream %d: more than %d bytes" % (self.id, limit)

    def cancel(self, code=h2.errors.ErrorCodes.CANCEL):
        with self.c.cv:
            if self.reset is None and not (self.ended and self.out_done):
                try:
                    self.c.conn.reset_stream(self.id, code)
                except h2.exceptions.StreamClosedError:
                    pass
                self.reset = StreamReset(self.id, code, remote=False)
            self.c.cv.notify_all()
        self.c._wake()

    def makefile(self, mode="rb", buffering=None, timeout=30.0):
        """A binary file object reading this stream's data (for http.client)."""
        return io.BufferedReader(_StreamRaw(self, timeout), 65536)


class _StreamRaw(io.RawIOBase):
    def __init__(self, stream, timeout):
        self.s = stream
        self.timeout = timeout

    def readable(self):
        return True

    def readinto(self, b):
        d = self.s.recv(len(b), timeout=self.timeout)
        b[: len(d)] = d
        return len(d)


class H2Client:
    """An h2c (prior knowledge) client; one I/O thread owns the socket.

    Callers only touch the H2Connection under the lock and wake the I/O thread,
    which writes, reads, dispatches events and moves queued stream data out as
    the peer's flow-control windows allow. Every wait is bounded."""

    def __init__(self, host, port, timeout=10.0, window=16 << 20, unix=None):
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix)
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        # h2 4.1 insists on :scheme/:path in every request, which RFC 9113 §8.5
        # forbids for CONNECT: outbound validation is off, we write the headers.
        cfg = h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        self.conn.update_settings(
            {
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: 1 << 20,
            }
        )
        self.conn.increment_flow_control_window(window * 4)
        self.lock = threading.Lock()
        self.cv = threading.Condition(self.lock)
        self.streams = {}
        self.error = None
        self.goaway = None
        self.settings_acked = False
        self.remote_settings_seen = False
        self.max_open = 0  # the most streams we had open at once
        self._closing = False
        self._outbuf = bytearray()
        self._rwake, self._wwake = socket.socketpair()
        self._rwake.setblocking(False)
        self._wwake.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="h2-io", daemon=True)
        self._thread.start()
        self._wake()

    # -- public -----------------------------------------------------------
    def wait_settings(self, timeout=10.0):
        dl = deadline_after(timeout)
        with self.cv:
            while not self.remote_settings_seen:
                if self.error is not None:
                    raise ConnectionError("h2 connection failed: %s" % self.error)
                if not self.cv.wait(remaining(dl)) and time.monotonic() >= dl:
                    raise Timeout("no SETTINGS from the server within %.1fs" % timeout)

    @property
    def peer_max_concurrent(self):
        with self.lock:
            return self.conn.remote_settings.max_concurrent_streams

    def request(self, headers, end_stream=False, timeout=30.0):
        """Opens a stream with |headers| ([(name, value)]); waits while the peer's
        SETTINGS_MAX_CONCURRENT_STREAMS is reached. Returns an H2Stream."""
        dl = deadline_after(timeout)
        with self.cv:
            while True:
                if self.error is not None:
                    raise ConnectionError("h2 connection failed: %s" % self.error)
                if self.goaway is not None:
                    raise ConnectionError("server sent GOAWAY: %s" % self.goaway)
                if self.conn.open_outbound_streams < self.conn.remote_settings.max_concurrent_streams:
                    break
                if not self.cv.wait(remaining(dl)) and time.monotonic() >= dl:
                    raise Timeout("no stream slot within %.1fs" % timeout)
            sid = self.conn.get_next_available_stream_id()
            st = H2Stream(self, sid)
            self.streams[sid] = st
            self.conn.send_headers(sid, headers, end_stream=end_stream)
            if end_stream:
                st.out_fin = st.out_done = True
            self.max_open = max(self.max_open, self.conn.open_outbound_streams)
        self._wake()
        return st

    def connect(self, target, endpoint_id, node_addr=None, extra=(), timeout=30.0):
        """Opens a CONNECT stream to |target| ("host:port") on the agent |endpoint_id|."""
        hdrs = [(":method", "CONNECT"), (":authority", target), ("x-warren-endpoint-id", endpoint_id)]
        if node_addr:
            hdrs.append(("x-warren-node-addr", node_addr))
        hdrs.extend(extra)
        return self.request(hdrs, timeout=timeout)

    def ping(self, timeout=10.0):
        """Round-trips a PING; proves the connection is alive."""
        with self.cv:
            self._pong = False
            self.conn.ping(b"warren!!")
        self._wake()
        dl = deadline_after(timeout)
        with self.cv:
            while not self._pong:
                if self.error is not None:
                    raise ConnectionError("h2 connection failed: %s" % self.error)
                if not self.cv.wait(remaining(dl)) and time.monotonic() >= dl:
                    raise Timeout("no PING ack within %.1fs" % timeout)

    def close(self):
        with self.cv:
            if not self._closing and self.error is None:
                try:
                    self.conn.close_connection()
                except h2.exceptions.ProtocolError:
                    pass
            self._closing = True
        self._wake()
        self._thread.join(5)
        for s in (self.sock, self._rwake, self._wwake):
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- internals (lock held where noted) --------------------------------
    def _wake(self):
        try:
            self._wwake.send(b"x")
        except (BlockingIOError, OSError):
            pass

    def _ack(self, sid, n):  # lock held
        try:
            self.conn.acknowledge_received_data(n, sid)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            pass

    def _fail(self, why):  # lock held
        if self.error is None:
            self.error = why
        self.cv.notify_all()

    def _pump(self):  # lock held: move queued stream data into h2 as windows allow
        progress = True
        while progress and len(self._outbuf) < (1 << 20):
            progress = False
            for st in list(self.streams.values()):
                if st.out_done or st.reset is not None:
                    continue
                if st.out:
                    try:
                        win = self.conn.local_flow_control_window(st.id)
                    except (h2.exceptions.StreamClosedError, KeyError):
                        st.out.clear()
                        st.out_done = True
                        continue
                    n = min(win, len(st.out), self.conn.max_outbound_frame_size)
                    if n > 0:
                        fin = st.out_fin and n == len(st.out)
                        self.conn.send_data(st.id, bytes(st.out[:n]), end_stream=fin)
                        del st.out[:n]
                        if fin:
                            st.out_done = True
                        progress = True
                        self.cv.notify_all()
                elif st.out_fin and not st.out_done:
                    try:
                        self.conn.end_stream(st.id)
                    except h2.exceptions.StreamClosedError:
                        pass
                    st.out_done = True
                    progress = True
                    self.cv.notify_all()
        self._outbuf += self.conn.data_to_send()

    def _on_events(self, events):  # lock held
        if os.environ.get("WARREN_H2_DEBUG"):
            for ev in events:
                print("h2 event: %r" % ev, file=sys.stderr)
        for ev in events:
            if isinstance(ev, h2.events.ResponseReceived):
                st = self.streams.get(ev.stream_id)
                if st is not None:
                    st.headers = list(ev.headers)
                    st.status = int(dict(ev.headers).get(":status", "0"))
            elif isinstance(ev, h2.events.InformationalResponseReceived):
                pass
            elif isinstance(ev, h2.events.DataReceived):
                st = self.streams.get(ev.stream_id)
                if st is None or st.reset is not None:
                    self._ack(ev.stream_id, ev.flow_controlled_length)
                    continue
                st.inbuf += ev.data
                st.received += len(ev.data)
                pad = ev.flow_controlled_length - len(ev.data)
                if pad > 0:
                    self._ack(ev.stream_id, pad)
            elif isinstance(ev, h2.events.TrailersReceived):
                st = self.streams.get(ev.stream_id)
                if st is not None:
                    st.trailers = list(ev.headers)
            elif isinstance(ev, h2.events.StreamEnded):
                st = self.streams.get(ev.stream_id)
                if st is not None:
                    st.ended = True
            elif isinstance(ev, h2.events.StreamReset):
                st = self.streams.get(ev.stream_id)
                if st is not None and st.reset is None:
                    st.reset = StreamReset(ev.stream_id, ev.error_code, ev.remote_reset)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = "%s last_stream_id=%s %r" % (
                    _errname(ev.error_code), ev.last_stream_id, ev.additional_data)
                for sid, st in self.streams.items():
                    if sid > (ev.last_stream_id or 0) and not st.ended and st.reset is None:
                        st.reset = StreamReset(sid, ev.error_code)
                if ev.error_code != 0:
                    self._fail("GOAWAY " + self.goaway)
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                self.remote_settings_seen = True
            elif isinstance(ev, h2.events.SettingsAcknowledged):
                self.settings_acked = True
            elif isinstance(ev, h2.events.PingAckReceived):
                self._pong = True
        self.cv.notify_all()

    def _run(self):
        sel = selectors.DefaultSelector()
        sel.register(self._rwake, selectors.EVENT_READ)
        sel.register(self.sock, selectors.EVENT_READ)
        want_write = False
        try:
            while True:
                with self.cv:
                    self._pump()
                    closing = self._closing
                    if self.error is not None:
                        return
                    if closing and not self._outbuf:
                        return
                    need = bool(self._outbuf)
                if need != want_write:
                    ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if need else 0)
                    sel.modify(self.sock, ev)
                    want_write = need
                for key, mask in sel.select(timeout=1.0):
                    if key.fileobj is self._rwake:
                        try:
                            while self._rwake.recv(4096):
                                pass
                        except BlockingIOError:
                            pass
                        continue
                    if mask & selectors.EVENT_WRITE:
                        with self.cv:
                            buf = bytes(self._outbuf[: 1 << 20])
                        try:
                            n = self.sock.send(buf)
                        except BlockingIOError:
                            n = 0
                        with self.cv:
                            del self._outbuf[:n]
                    if mask & selectors.EVENT_READ:
                        try:
                            data = self.sock.recv(1 << 20)
                        except BlockingIOError:
                            continue
                        with self.cv:
                            if not data:
                                self._fail("connection closed by the server (goaway=%s)" % self.goaway)
                                return
                            try:
                                events = self.conn.receive_data(data)
                            except h2.exceptions.ProtocolError as e:
                                self._fail("protocol error: %r" % e)
                                self._outbuf += self.conn.data_to_send()
                                return
                            self._on_events(events)
        except (OSError, ValueError) as e:
            with self.cv:
                self._fail("socket error: %r" % e)
        finally:
            with self.cv:
                if self.error is None:
                    self.error = "client closed"
                self.cv.notify_all()
            sel.close()


# --------------------------------------------------------------------------
# HTTP/1.1 through a tunnel stream


class _FakeSock:
    def __init__(self, stream, timeout):
        self.stream = stream
        self.timeout = timeout

    def makefile(self, mode="rb", *a, **k):
        return self.stream.makefile(timeout=self.timeout)


def http_send(stream, method, path, host="localhost", headers=(), body=None, timeout=30.0,
              half_close=True):
    """Writes one HTTP/1.1 request (Connection: close) into |stream|. |body| is
    bytes, or an iterable of bytes sent with chunked encoding."""
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: " + host, "Connection: close"]
    lines += ["%s: %s" % kv for kv in headers]
    if isinstance(body, (bytes, bytearray)):
        lines.append("Content-Length: %d" % len(body))
    elif body is not None:
        lines.append("Transfer-Encoding: chunked")
    stream.send(("\r\n".join(lines) + "\r\n\r\n").encode(), timeout=timeout)
    if isinstance(body, (bytes, bytearray)):
        stream.send(bytes(body), timeout=timeout)
    elif body is not None:
        for c in body:
            if c:
                stream.send(b"%x\r\n" % len(c) + c + b"\r\n", timeout=timeout)
        stream.send(b"0\r\n\r\n", timeout=timeout)
    if half_close:
        stream.end()


def http_response(stream, method="GET", timeout=30.0):
    """Parses the HTTP/1.1 response coming back on |stream| (http.client);
    returns the HTTPResponse with its body still unread."""
    resp = http.client.HTTPResponse(_FakeSock(stream, timeout), method=method)
    resp.begin()
    return resp


def http_over(stream, method, path, timeout=30.0, **kw):
    """http_send() then http_response()."""
    http_send(stream, method, path, timeout=timeout, **kw)
    return http_response(stream, method, timeout=timeout)


def sha256_of_response(resp, limit=1 << 31):
    h = hashlib.sha256()
    n = 0
    while True:
        d = resp.read(1 << 20)
        if not d:
            return h.hexdigest(), n
        h.update(d)
        n += len(d)
        assert n <= limit


# --------------------------------------------------------------------------
# WebSocket client (sans-I/O websockets over any byte transport)


class SocketTransport:
    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.sock.settimeout(timeout)

    def send(self, data):
        self.sock.sendall(data)

    def recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            return self.sock.recv(65536)
        except socket.timeout:
            raise Timeout("websocket: no data within %.1fs" % timeout)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class StreamTransport:
    def __init__(self, stream):
        self.s = stream

    def send(self, data):
        self.s.send(data)

    def recv(self, timeout):
        return self.s.recv(timeout=timeout)

    def close(self):
        self.s.end()


class WSClient:
    def __init__(self, transport, host, path="/ws", timeout=10.0):
        from websockets.client import ClientConnection
        from websockets.http11 import Response
        from websockets.uri import parse_uri

        self.t = transport
        self.ws = ClientConnection(parse_uri("ws://%s%s" % (host, path)), max_size=None)
        req = self.ws.connect()
        self.ws.send_request(req)
        self._flush()
        self.frames = collections.deque()
        dl = deadline_after(timeout)
        self.response = None
        while self.response is None:
            self._feed(remaining(dl))
            for ev in self.ws.events_received():
                if isinstance(ev, Response):
                    self.response = ev
                else:
                    self.frames.append(ev)
        if self.response.status_code != 101:
            raise AssertionError("websocket handshake: %d %r" % (self.response.status_code, self.response.body))
        if self.ws.handshake_exc is not None:
            raise AssertionError("websocket handshake failed: %r" % self.ws.handshake_exc)

    def _flush(self):
        for d in self.ws.data_to_send():
            if d:
                self.t.send(d)
            else:
                self.t.close()

    def _feed(self, timeout):
        if timeout <= 0:
            raise Timeout("websocket: timed out")
        d = self.t.recv(timeout)
        if d:
            self.ws.receive_data(d)
        else:
            self.ws.receive_eof()
        self._flush()
        if not d and not self.ws.events:
            raise ConnectionError("websocket: EOF")

    def send_text(self, s):
        self.ws.send_text(s.encode() if isinstance(s, str) else s)
        self._flush()

    def send_binary(self, b):
        self.ws.send_binary(b)
        self._flush()

    def recv_message(self, timeout=10.0):
        """Returns (opcode, bytes) of the next complete data message."""
        from websockets.frames import OP_BINARY, OP_CONT, OP_TEXT

        dl = deadline_after(timeout)
        parts, op = [], None
        while True:
            while not self.frames:
                self._feed(remaining(dl))
                self.frames.extend(self.ws.events_received())
            f = self.frames.popleft()
            if f.opcode in (OP_TEXT, OP_BINARY):
                op, parts = f.opcode, [f.data]
            elif f.opcode == OP_CONT and op is not None:
                parts.append(f.data)
            else:
                continue
            if f.fin:
                return op, b"".join(parts)

    def close(self, timeout=5.0):
        from websockets.frames import OP_CLOSE

        self.ws.send_close(1000, "bye")
        self._flush()
        dl = deadline_after(timeout)
        try:
            while True:
                while not self.frames:
                    self._feed(remaining(dl))
                    self.frames.extend(self.ws.events_received())
                if self.frames.popleft().opcode == OP_CLOSE:
                    return True
        except (ConnectionError, Timeout):
            return False


# --------------------------------------------------------------------------
# the standalone setup: backend + agent + gateway


class Setup:
    """backend.py, warren-heartbeat and warren-gateway on loopback.

    Each part can be started separately; stop_all() is safe at any point."""

    def __init__(self, name, edge=True, tls=False, trust_override=None, extra_hosts=(),
                 unix=False, extra_expose=(), extra_routes=()):
        require_binaries()
        self.name = name
        self.logdir = make_logdir(name)
        self.secrets = make_secret_dir()
        self.gw_key = os.path.join(self.secrets, "gateway.key")
        self.agent_key = os.path.join(self.secrets, "agent.key")
        self.gw_id, self.gw_z32 = run_id(GATEWAY, self.gw_key)
        self.agent_id, self.agent_z32 = run_id(HEARTBEAT, self.agent_key)
        self.trust = trust_override or self.gw_id
        self.procs = []
        self.backend = None
        self.backend_port = None
        self.agent_port = free_port("udp")
        self.agent_addr = "127.0.0.1:%d" % self.agent_port
        self.connect_port = None if unix else free_port("tcp")
        self.connect_unix = os.path.join(self.secrets, "connect.sock") if unix else None
        self.extra_expose = list(extra_expose)
        self.extra_routes = list(extra_routes)  # more (name, [hostnames], endpoint URL) via the agent
        self.edge_port = free_port("tcp") if edge else None
        self.tls_port = free_port("tcp") if tls else None
        self.host = "app.localhost"
        self.extra_hosts = list(extra_hosts)
        self.cert = self.key = None
        self.agent = self.gateway = None

    # parts
    def start_backend(self):
        self.backend = Proc("backend", [PYTHON, BACKEND, "--port", "0"], self.logdir)
        self.procs.append(self.backend)
        m = self.backend.start(ready=r"ready (\d+)", timeout=10)
        self.backend_port = int(m.group(1))
        self.target = "127.0.0.1:%d" % self.backend_port
        return self.backend

    def agent_argv(self, trust=None):
        argv = [HEARTBEAT, "serve", "--identity", self.agent_key, "--listen", self.agent_addr,
                "--trust", trust or self.trust, "--expose", self.target, "--log-level", LOG_LEVEL]
        for e in self.extra_expose:
            argv += ["--expose", e]
        if TRACE:
            argv += ["--trace", TRACE]
        return argv

    def start_agent(self):
        if self.agent is None:
            self.agent = Proc("heartbeat", self.agent_argv(), self.logdir)
            self.procs.append(self.agent)
        return self.agent.start(timeout=15)

    def write_routes(self):
        path = os.path.join(self.logdir, "routes.yaml")
        proxies = [("app", [self.host] + self.extra_hosts, "http://" + self.target)]
        proxies += self.extra_routes
        with open(path, "w") as f:
            f.write(routes_yaml("laptop", self.agent_id, self.agent_addr, proxies))
        return path

    def start_gateway(self):
        argv = [GATEWAY, "serve", "--identity", self.gw_key,
                "--peer", "%s=%s" % (self.agent_id, self.agent_addr), "--log-level", LOG_LEVEL]
        if self.connect_unix:
            argv += ["--connect-unix", self.connect_unix]
        else:
            argv += ["--connect-tcp", "127.0.0.1:%d" % self.connect_port]
        if self.edge_port:
            argv += ["--edge", "127.0.0.1:%d" % self.edge_port, "--routes", self.write_routes()]
        if self.tls_port:
            self.cert, self.key = self_signed_cert(self.secrets, [self.host, "*.localhost"])
            argv += ["--edge-tls", "127.0.0.1:%d" % self.tls_port, "--tls-cert", self.cert,
                     "--tls-key", self.key]
        if TRACE:
            argv += ["--trace", TRACE]
        self.gateway = Proc("gateway", argv, self.logdir)
        self.procs.append(self.gateway)
        return self.gateway.start(timeout=15)

    def start(self):
        self.start_backend()
        self.start_agent()
        self.start_gateway()
        return self

    # clients
    def h2(self, **kw):
        c = H2Client("127.0.0.1", self.connect_port, unix=self.connect_unix, **kw)
        c.wait_settings()
        return c

    def edge_url(self, path="/", host=None):
        return "http://%s:%d%s" % (host or self.host, self.edge_port, path)

    def quic_connections(self, peer=None):
        """How many QUIC connections the gateway logged as established (to the
        agent, or to |peer| hex id)."""
        return self.gateway.count(r"quic connection established.*peer=%s" % (peer or self.agent_id)[:8])

    # teardown
    def logs(self, n=60):
        return "\n".join(p.tail(n) for p in self.procs) + "\n(logs in %s)" % self.logdir

    def stop_all(self):
        codes = {}
        for p in reversed(self.procs):
            try:
                codes[p.name] = p.stop()
            except Exception as e:  # keep tearing down the rest
                codes[p.name] = repr(e)
        shutil.rmtree(self.secrets, ignore_errors=True)
        return codes

    def drop_logs(self):
        """Removes the logs of a setup whose tests passed (WARREN_KEEP_LOGS=1 keeps them)."""
        if not KEEP_LOGS:
            shutil.rmtree(self.logdir, ignore_errors=True)

    def problems(self, codes):
        """Sanitizer reports in the logs, and warren binaries that did not exit
        cleanly on SIGTERM (0 or killed by it)."""
        out = []
        for p in self.procs:
            if p.name == "backend":
                continue
            for m in SANITIZER_RX.finditer(p.log()):
                out.append("%s: %s" % (p.name, m.group(0)))
            c = codes.get(p.name)
            if c not in (0, -signal.SIGTERM, None):
                out.append("%s exited with %s after SIGTERM" % (p.name, c))
        return out


@contextlib.contextmanager
def started(setup):
    """with started(Setup(...)) as s: starts everything, always stops it, prints
    the log tails when the block fails, and fails on sanitizer reports or
    unclean exits."""
    ok = False
    try:
        setup.start()
        yield setup
        ok = True
    finally:
        codes = setup.stop_all()
        problems = setup.problems(codes)
        if problems or not ok:
            print("exit codes: %s" % codes)
            print(setup.logs())
        else:
            setup.drop_logs()
    assert not problems, "after the test: %s" % problems


def fixture_setup(request, setup):
    """For module fixtures: like started(), and prints the log tails when a test
    that used the setup failed (pytest shows them with that failure)."""
    failed_before = request.session.testsfailed
    try:
        setup.start()
    except BaseException:
        print(setup.logs())
        setup.stop_all()
        raise
    try:
        yield setup
    finally:
        codes = setup.stop_all()
        problems = setup.problems(codes)
        if problems or request.session.testsfailed > failed_before:
            print("exit codes: %s" % codes)
            print(setup.logs())
        else:
            setup.drop_logs()
    assert not problems, "after the tests: %s" % problems
