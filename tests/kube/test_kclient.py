"""lib/kclient, lib/informer and lib/leader against a real kube-apiserver + etcd.

The control plane comes from hack/kube-up (built from Debian's kubernetes source by hack/kube-build);
the scenarios run in tests/kube/kube_check.c (path in $KUBE_CHECK). This file drives what the C side
cannot: restarting the apiserver, compacting etcd, killing processes, and checking the results
against the server's own state.
"""
import http.server
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse

import pytest

import kube

KUBE_CHECK = os.environ.get("KUBE_CHECK", os.path.join(kube.BUILD, "tests", "kube", "kube_check"))
WIDGETS = "/apis/test.warren.dev/v1"


def ok(cp, method, path, body=None, ctype="application/json"):
    """A request that must succeed; returns the decoded answer."""
    return cp.expect(method, path, (200, 201), body, content_type=ctype).json


def namespace(cp, name):
    cp.expect("POST", "/api/v1/namespaces", (201, 409),
              {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def check_env(cp, ns):
    """The environment kube_check reads: server, CA, tokens, the nobody kubeconfig, the namespace."""
    env = dict(os.environ)
    env.update({k: cp.env[k] for k in ("KUBE_SERVER", "KUBE_CA", "KUBE_ADMIN_TOKEN", "KUBE_NOBODY_TOKEN",
                                       "KUBE_KUBECONFIG_NOBODY")})
    env["KUBE_NS"] = ns
    return env


def run_check(cp, ns, *args, timeout=300):
    p = subprocess.run([KUBE_CHECK, *args], env=check_env(cp, ns), capture_output=True, text=True,
                       timeout=timeout)
    print(p.stdout)
    print(p.stderr)
    return p


@pytest.fixture(scope="module")
def cp(request):
    with kube.module_control_plane(request, "test_kclient") as c:
        p = run_check(c, "default", "crd", timeout=60)
        assert p.returncode == 0, "installing the test CRD failed"
        yield c


def widget(ns, name, size, color="red"):
    return {"apiVersion": "test.warren.dev/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": ns}, "spec": {"size": size, "color": color}}


def test_crud_conflict_patch_apply_status_delete(cp):
    p = run_check(cp, namespace(cp, "t-crud"), "crud")
    assert p.returncode == 0 and "crud: PASS" in p.stdout


def test_paged_list_of_1200(cp):
    p = run_check(cp, namespace(cp, "t-paging"), "paging", "1200")
    assert p.returncode == 0 and "paging: PASS" in p.stdout
    assert "1200 objects in 3 pages" in p.stdout


def test_token_without_rights_gets_403(cp):
    """Connected through the "nobody" kubeconfig (lib/kconfig: CA file, token, TLS verified)."""
    p = run_check(cp, namespace(cp, "t-rbac"), "rbac")
    assert p.returncode == 0 and "rbac: PASS" in p.stdout
    assert "ok: kubeconfig " in p.stdout


def test_429_with_retry_after_is_retried(cp):
    hits = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(time.monotonic())
            if len(hits) <= 2:
                body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                   "reason": "TooManyRequests", "message": "slow down", "code": 429}).encode()
                self.send_response(429)
                self.send_header("Retry-After", "1")
            else:
                body = b'{"kind":"WidgetList","items":[]}'
                self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        env = check_env(cp, "default")
        env["KUBE_SERVER"] = "http://127.0.0.1:%d" % srv.server_address[1]
        p = subprocess.run([KUBE_CHECK, "retry", "/apis/x/v1/widgets"], env=env, capture_output=True,
                           text=True, timeout=60)
        print(p.stdout, p.stderr)
        assert p.returncode == 0 and len(hits) == 3
        assert hits[1] - hits[0] >= 0.95 and hits[2] - hits[1] >= 0.95
    finally:
        srv.shutdown()


class Informer:
    """kube_check informer as a child process; its event lines collected by a thread."""

    def __init__(self, cp, ns, compact=False):
        env = check_env(cp, ns)
        if compact:
            env["KUBE_CHECK_COMPACT"] = "1"
        self.p = subprocess.Popen([KUBE_CHECK, "informer"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred(list(self.lines)):
                return
            assert self.p.poll() is None, "informer exited: " + self.p.stderr.read()
            time.sleep(0.05)
        raise AssertionError("timed out waiting for " + what + ":\n" + "\n".join(self.lines[-30:]))

    def events(self, kinds=("ADD", "UPDATE", "DELETE")):
        return [line.split() for line in list(self.lines) if line.split()[0] in kinds]

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=30)
        self.t.join(timeout=10)
        err = self.p.stderr.read()
        print("\n".join(self.lines[-40:]))
        print(err)
        assert self.p.returncode == 0, err
        final = {}
        for line in self.lines:
            f = line.split()
            if f[0] == "FINAL":
                final[f[1]] = (f[2], int(f[3]))
        stats = next(line for line in self.lines if line.startswith("STATS"))
        return final, dict(kv.split("=", 1) for kv in stats.split()[1:])


def server_state(cp, ns):
    items = ok(cp, "GET", f"{WIDGETS}/namespaces/{ns}/widgets")["items"]
    return {f"{ns}/{o['metadata']['name']}": (o["metadata"]["resourceVersion"], o["spec"].get("size", -1))
            for o in items}


def test_informer_watch_survives_apiserver_restart(cp):
    ns = namespace(cp, "t-inf-restart")
    for i in range(10):
        ok(cp, "POST", f"{WIDGETS}/namespaces/{ns}/widgets", widget(ns, f"w{i}", 0))
    inf = Informer(cp, ns)
    inf.wait_for(lambda ls: any(x.startswith("SYNCED 10") for x in ls), 30, "SYNCED 10")
    assert len(inf.events(("ADD-INITIAL",))) == 10
    ok(cp, "PATCH", f"{WIDGETS}/namespaces/{ns}/widgets/w0", {"spec": {"size": 1}},
          "application/merge-patch+json")
    inf.wait_for(lambda ls: any(x.startswith("UPDATE " + ns + "/w0") for x in ls), 20, "w0 update")

    cp.restart_apiserver()  # the watch stream breaks; the informer resumes from its last resourceVersion
    # Its first attempts may meet a 503 (Retry-After) while the new apiserver fills its watch cache,
    # and resuming may be answered 410 (a restarted watch cache starts at etcd's current revision)
    # and turn into a relist. With nothing changed in between, either way must yield no event. A
    # probe object tells when it is watching again; every change after that must arrive once.
    ok(cp, "POST", f"{WIDGETS}/namespaces/{ns}/widgets", widget(ns, "probe", 0))
    inf.wait_for(lambda ls: any(x.startswith("ADD " + ns + "/probe ") for x in ls), 60, "the probe")
    for i in range(10):
        ok(cp, "PATCH", f"{WIDGETS}/namespaces/{ns}/widgets/w{i}", {"spec": {"size": 2}},
              "application/merge-patch+json")
    for i in range(10, 15):
        ok(cp, "POST", f"{WIDGETS}/namespaces/{ns}/widgets", widget(ns, f"w{i}", 2))
    ok(cp, "DELETE", f"{WIDGETS}/namespaces/{ns}/widgets/w5")
    want = server_state(cp, ns)
    n = 1 + 1 + 10 + 5 + 1  # w0 before, the probe, 10 patches, 5 creates, 1 delete
    inf.wait_for(lambda ls: sum(1 for x in ls if x.startswith(("UPDATE", "ADD ", "DELETE"))) >= n,
                 60, "the changes made after the restart")
    time.sleep(1)  # anything extra (a duplicate) would arrive now
    final, stats = inf.stop()
    ev = inf.events()
    # no event lost or repeated: exactly one per change, and (key, rv) pairs unique
    assert len(ev) == n, ev
    assert len({(e[1], e[2]) for e in ev}) == len(ev)
    assert [e[1] for e in ev if e[0] == "DELETE"] == [ns + "/w5"]
    assert not any(e[-1] == "unknown" for e in ev)
    assert final == want
    assert int(stats["watches"]) >= 2 and int(stats["lists"]) == 1 + int(stats["expired"])


def test_informer_compact_cache(cp):
    """The same events and final cache with the cache kept as text (wr_informer_opts.compact)."""
    ns = namespace(cp, "t-inf-compact")
    for i in range(10):
        ok(cp, "POST", f"{WIDGETS}/namespaces/{ns}/widgets", widget(ns, f"w{i}", 0))
    inf = Informer(cp, ns, compact=True)
    inf.wait_for(lambda ls: any(x.startswith("SYNCED 10") for x in ls), 30, "SYNCED 10")
    ok(cp, "PATCH", f"{WIDGETS}/namespaces/{ns}/widgets/w0", {"spec": {"size": 7}},
       "application/merge-patch+json")
    ok(cp, "POST", f"{WIDGETS}/namespaces/{ns}/widgets", widget(ns, "w10", 3))
    ok(cp, "DELETE", f"{WIDGETS}/namespaces/{ns}/widgets/w5")
    inf.wait_for(lambda ls: any(x.startswith("DELETE " + ns + "/w5 ") for x in ls), 20, "w5 delete")
    final, stats = inf.stop()
    assert final == server_state(cp, ns)
    assert [e[:2] for e in inf.events()] == [["UPDATE", ns + "/w0"], ["ADD", ns + "/w10"],
                                             ["DELETE", ns + "/w5"]]
    # the DELETE carries the object (parsed back from the cache's text) with its spec
    assert inf.events(("DELETE",))[0][3] == "0"
    assert any(x.startswith("INDEX ") and (" namespace=%s 10" % ns) in x for x in inf.lines)


def test_informer_relists_after_compaction(cp):
    """A watch resumed from a compacted resourceVersion gets 410 and relists; the cache then equals the
    server's state and objects deleted meanwhile are reported with final state unknown."""
    ns = namespace(cp, "t-inf-410")
    for i in range(20):
        ok(cp, "POST", f"{WIDGETS}/namespaces/{ns}/widgets", widget(ns, f"w{i}", 0))
    inf = Informer(cp, ns)
    inf.wait_for(lambda ls: any(x.startswith("SYNCED 20") for x in ls), 30, "SYNCED 20")
    os.kill(inf.p.pid, signal.SIGSTOP)  # the informer misses everything from here
    try:
        # break its watch while nothing is in flight on it, so no event waits in its socket
        cp.restart_apiserver()
        for i in range(0, 20, 2):
            ok(cp, "DELETE", f"{WIDGETS}/namespaces/{ns}/widgets/w{i}")
        for i in range(1, 20, 2):
            ok(cp, "PATCH", f"{WIDGETS}/namespaces/{ns}/widgets/w{i}", {"spec": {"size": 7}},
                  "application/merge-patch+json")
        for i in range(20, 25):
            ok(cp, "POST", f"{WIDGETS}/namespaces/{ns}/widgets", widget(ns, f"w{i}", 7, "blue"))
        # compact etcd at its current revision, and restart the apiserver again so that its watch
        # cache no longer holds these events either: resuming from the informer's revision is 410
        rev = json.loads(subprocess.run(["etcdctl", "--endpoints", cp.env["ETCD_ENDPOINT"], "endpoint", "status",
                                         "-w", "json"], check=True, capture_output=True, text=True,
                                        env=dict(os.environ, ETCDCTL_API="3")).stdout)[0]["Status"]["header"]["revision"]
        subprocess.run(["etcdctl", "--endpoints", cp.env["ETCD_ENDPOINT"], "compact", str(rev)], check=True,
                       env=dict(os.environ, ETCDCTL_API="3"), timeout=30)
        cp.restart_apiserver()
    finally:
        os.kill(inf.p.pid, signal.SIGCONT)
    want = server_state(cp, ns)
    inf.wait_for(lambda ls: sum(1 for x in ls if x.startswith("DELETE")) >= 10, 90, "10 deletions after relist")
    time.sleep(1)
    final, stats = inf.stop()
    assert final == want
    assert int(stats["expired"]) == 1 and int(stats["lists"]) == 2
    deletes = [e for e in inf.events() if e[0] == "DELETE"]
    assert sorted(e[1] for e in deletes) == sorted(f"{ns}/w{i}" for i in range(0, 20, 2))
    assert all(e[-1] == "unknown" for e in deletes)
    adds = {e[1] for e in inf.events() if e[0] == "ADD"}
    assert adds == {f"{ns}/w{i}" for i in range(20, 25)}
    # the indexes followed: 5 blue widgets (a caller-supplied index), 15 in the namespace
    index = next(line for line in inf.lines if line.startswith("INDEX")).split()
    assert index[1:] == ["color=blue", "5", f"namespace={ns}", "15"], index


def test_informer_relists_on_http_410():
    """The other 410 path: the watch request itself answered 410 (here by a stand-in server on
    loopback, since the real v1.20 apiserver answers a too-old watch with a 200 stream carrying an
    ERROR event, which test_informer_relists_after_compaction covers)."""
    state = {"lists": 0, "watches": []}
    stop = threading.Event()

    def item(name, rv):
        return {"apiVersion": "test.warren.dev/v1", "kind": "Widget",
                "metadata": {"name": name, "namespace": "x", "resourceVersion": rv}, "spec": {"size": 1}}

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def send_json(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            if "watch" not in q:
                state["lists"] += 1
                if state["lists"] == 1:
                    self.send_json(200, {"kind": "WidgetList", "metadata": {"resourceVersion": "10"},
                                         "items": [item("w1", "5"), item("w2", "6")]})
                else:
                    self.send_json(200, {"kind": "WidgetList", "metadata": {"resourceVersion": "20"},
                                         "items": [item("w2", "6"), item("w3", "15")]})
                return
            state["watches"].append(q["resourceVersion"][0])
            if q["resourceVersion"][0] == "10":
                self.send_json(410, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
                                     "reason": "Expired", "message": "too old resource version: 10 (15)"})
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            ev = json.dumps({"type": "BOOKMARK", "object": {"kind": "Widget", "apiVersion": "test.warren.dev/v1",
                                                            "metadata": {"resourceVersion": "21"}}}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
            self.wfile.flush()
            stop.wait(30)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    env = dict(os.environ, KUBE_SERVER="http://127.0.0.1:%d" % srv.server_address[1], KUBE_CA="/dev/null",
               KUBE_ADMIN_TOKEN="t", KUBE_NS="x")
    p = subprocess.Popen([KUBE_CHECK, "informer"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        wait = time.monotonic() + 20
        while time.monotonic() < wait and state["watches"][-1:] != ["20"]:
            time.sleep(0.05)
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
    finally:
        stop.set()
        srv.shutdown()
        if p.poll() is None:
            p.kill()
    print(out, err)
    lines = out.splitlines()
    assert state["watches"][:2] == ["10", "20"], state
    assert "SYNCED 2" in lines
    assert "DELETE x/w1 5 1 unknown" in lines and "ADD x/w3 15 1" in lines
    assert not any(line.startswith("UPDATE") for line in lines)  # w2 is unchanged: no event
    stats = dict(kv.split("=", 1) for kv in next(line for line in lines if line.startswith("STATS")).split()[1:])
    assert stats["expired"] == "1" and stats["lists"] == "2" and stats["rv"] == "21", stats


def test_leader_hands_over_when_holder_is_killed(cp):
    ns = namespace(cp, "t-leader")
    a = subprocess.Popen([KUBE_CHECK, "leader", "alpha"], env=check_env(cp, ns), stdout=subprocess.PIPE, text=True)
    line = a.stdout.readline()
    assert line.startswith("LEADER alpha") or line.startswith("LEADING"), line
    while not line.startswith("LEADING"):
        line = a.stdout.readline()
        assert line, "alpha exited"
    b = subprocess.Popen([KUBE_CHECK, "leader", "beta"], env=check_env(cp, ns), stdout=subprocess.PIPE, text=True)
    try:
        assert b.stdout.readline().startswith("LEADER alpha")
        time.sleep(3)  # beta keeps following alpha's renewals
        lease = ok(cp, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/kube-check")
        assert lease["spec"]["holderIdentity"] == "alpha"
        assert lease["spec"]["leaseDurationSeconds"] == 15
        a.kill()
        killed = time.time()
        a.wait()
        line = b.stdout.readline()
        while line and not line.startswith("LEADING"):
            line = b.stdout.readline()
        assert line.startswith("LEADING"), "beta never led"
        took = float(line.split("t=")[1]) - killed
        print(f"handover after {took:.1f} s")
        assert took <= 15 + 2.5, took  # lease duration, plus one retry period of slack
        lease = ok(cp, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/kube-check")
        assert lease["spec"]["holderIdentity"] == "beta" and lease["spec"]["leaseTransitions"] == 1
        # beta releases on SIGTERM: the Lease is left without a holder
        b.send_signal(signal.SIGTERM)
        rest = b.communicate(timeout=30)[0]
        assert "RELEASED" in rest and b.returncode == 0, rest
        lease = ok(cp, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/kube-check")
        assert lease["spec"].get("holderIdentity", "") == ""
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
