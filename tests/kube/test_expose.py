"""test_expose.py - `warren-heartbeat expose PORT` end to end (docs/internals/heartbeat-expose.md).

A real control plane (kube.py) with warren's CRDs and the upstream HTTPRoute/EnvoyPatchPolicy CRDs,
warren-operator (--lease-duration 4), warren-gateway with Connector discovery (CONNECT listener,
no --peer), the backend of the integration tests, and the agent started with `expose` as the
ServiceAccount of manifests/heartbeat-rbac.yaml (Connector "laptop" in namespace "team-a"). Envoy is
played by the test: it reads the EnvoyPatchPolicy the operator wrote and sends the CONNECT Envoy's
internal listener would send (`:authority` = tunnel.address, x-warren-endpoint-id =
tunnel.endpoint_id, no node-address hint), with an HTTP/1.1 request inside.
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

import kube

sys.path.insert(0, os.path.join(kube.REPO, "tests", "integration"))
import harness  # noqa: E402  (python3-h2 client, process helpers)

BUILD = kube.BUILD
OPERATOR = os.path.join(BUILD, "operator", "warren-operator")
HEARTBEAT = os.path.join(BUILD, "heartbeat", "warren-heartbeat")
NS = "team-a"
NET = "/apis/networking.datumapis.com"
PROXIES = NET + "/v1alpha/namespaces/%s/httpproxies" % NS
CONNECTORS = NET + "/v1alpha1/namespaces/%s/connectors" % NS
POLICIES = "/apis/gateway.envoyproxy.io/v1alpha1/namespaces/%s/envoypatchpolicies" % NS
ROUTES = "/apis/gateway.networking.k8s.io/v1/namespaces/%s/httproutes" % NS
LEASE_S = 4
START_BUDGET_S = 5.0  # command start -> first request answered through the tunnel
STOP_BUDGET_S = 2.0  # SIGINT -> HTTPProxy gone and Connector NotReady


def conds(o):
    return {c["type"]: c for c in (o.get("status") or {}).get("conditions") or []}


def connector_ready(cp):
    r = cp.get(CONNECTORS + "/laptop")
    return r.status == 200 and conds(r.json).get("Ready", {}).get("status") == "True"


class Expose:
    """One `warren-heartbeat expose` process, stdout and stderr in separate files."""

    def __init__(self, env, port, *extra, name="expose", environ=None):
        s = env["s"]
        self.out_path = os.path.join(s.logdir, name + ".out")
        self.err_path = os.path.join(s.logdir, name + ".err")
        self.argv = [HEARTBEAT, "expose", str(port), "--identity", s.agent_key,
                     "--listen", "127.0.0.1:%d" % s.agent_port, "--trust", s.gw_id,
                     "--connector", "laptop", "--kubeconfig", env["agent_kubeconfig"],
                     "--log-level", "debug", *extra]
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        e = dict(os.environ)
        e.pop("WARREN_DOMAIN", None)
        e.update(environ or {})
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.out,
                                  stderr=self.err, env=e)
        env["procs"].append(self)

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_stdout(self, pattern, timeout=15.0):
        rx = re.compile(pattern, re.M)

        def found():
            m = rx.search(self.stdout())
            if m is None and self.p.poll() is not None:
                m = rx.search(self.stdout())
                if m is None:
                    raise AssertionError("expose exited (%s) before printing %r\n%s\n%s" % (
                        self.p.returncode, pattern, self.stdout(), self.stderr()[-4000:]))
            return m
        return kube.wait_for(found, timeout, "expose stdout %r" % pattern, interval=0.01)

    def stop(self, sig=signal.SIGINT, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
                raise AssertionError("expose did not exit within %d s of signal %d" % (timeout, sig))
        self.out.close()
        self.err.close()
        return self.p.returncode

    def sanitizer_reports(self):
        return harness.SANITIZER_RX.findall(self.stderr())


@pytest.fixture(scope="module")
def env(request):
    with kube.module_control_plane(request, "test_expose") as cp:
        kube.install_warren_crds(cp)
        cp.expect("POST", "/api/v1/namespaces", 201, {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": NS}})
        kube.create_connector_class(cp)
        # the agent\'s identity: manifests/heartbeat-rbac.yaml as written
        token = kube.agent_token(cp)

        s = harness.Setup("kube-expose", edge=False)
        e = {"cp": cp, "s": s, "procs": []}
        kc = os.path.join(s.secrets, "agent.kubeconfig")
        kube.write_kubeconfig(cp, kc, token, NS)
        e["agent_kubeconfig"] = kc
        failed_before = request.session.testsfailed
        health = harness.free_port()
        try:
            s.start_backend()
            op = harness.Proc("operator", [
                OPERATOR, "run", "--kubeconfig", cp.env["KUBE_KUBECONFIG"],
                "--lease-duration", str(LEASE_S),
                "--health-probe-bind-address", "127.0.0.1:%d" % health,
                "--metrics-bind-address", "0", "--log-level", "debug"], s.logdir)
            s.procs.append(op)
            op.start(ready=None)
            s.gateway = harness.Proc("gateway", [
                harness.GATEWAY, "serve", "--identity", s.gw_key,
                "--connect-tcp", "127.0.0.1:%d" % s.connect_port,
                "--kubeconfig", cp.env["KUBE_KUBECONFIG"], "--discover-connectors=" + NS,
                "--log-level", "debug"], s.logdir)
            s.procs.append(s.gateway)
            s.gateway.start(timeout=15)
            s.gateway.wait_log(r"discovery: synced", timeout=15)

            def op_ready():
                try:
                    import urllib.request
                    with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % health,
                                                timeout=1) as r:
                        return r.status == 200
                except OSError:
                    return False
            kube.wait_for(op_ready, 30, "operator ready (caches synced)")
        except BaseException:
            print(s.logs())
            s.stop_all()
            raise
        try:
            yield e
        finally:
            for x in e["procs"]:
                try:
                    x.stop(signal.SIGKILL)
                except Exception:
                    pass
            codes = s.stop_all()
            problems = s.problems(codes)
            for x in e["procs"]:
                problems += ["expose: %s" % r for r in x.sanitizer_reports()]
            if problems or request.session.testsfailed > failed_before:
                print("exit codes: %s" % codes)
                print(s.logs())
                for x in e["procs"]:
                    print("--- %s\n%s\n--- %s (tail)\n%s" % (
                        x.out_path, x.stdout()[-3000:], x.err_path, x.stderr()[-6000:]))
            else:
                s.drop_logs()
        assert not problems, "after the tests: %s" % problems


def tunnel_of(policy):
    """The filter_metadata.tunnel of the (first) cluster patch of an EnvoyPatchPolicy."""
    for p in policy["spec"]["jsonPatches"]:
        v = p.get("operation", {}).get("value")
        if p.get("type", "").endswith(".Cluster") and isinstance(v, dict):
            for ep in v["load_assignment"]["endpoints"]:
                for lb in ep["lb_endpoints"]:
                    t = lb.get("metadata", {}).get("filter_metadata", {}).get("tunnel")
                    if t:
                        return t
    return None


def request_through(s, tunnel, raw, timeout=10.0):
    """A CONNECT as Envoy's internal listener sends it, then |raw| HTTP/1.1 bytes inside; returns
    everything the service answered (until it closes)."""
    with s.h2() as c:
        st = c.connect(tunnel["address"], tunnel["endpoint_id"], timeout=timeout)
        status = st.wait_response(timeout)
        assert status == 200, "CONNECT answered %s %s" % (status, st.headers)
        st.send(raw, end=True, timeout=timeout)
        out = b""
        while True:
            d = st.recv(timeout=timeout)
            if not d:
                return out
            out += d


def test_expose_end_to_end(env):
    cp, s = env["cp"], env["s"]
    port = s.backend_port
    name = "laptop-%d" % port
    x = Expose(env, port, "--hostname", "app.example.com")
    x.wait_stdout(r"^url: https://app\.example\.com/$")
    url_at = time.monotonic() - x.t0
    policy = cp.expect("GET", POLICIES + "/" + name, 200).json
    tunnel = tunnel_of(policy)
    assert tunnel is not None, policy
    assert tunnel["endpoint_id"] == s.agent_id
    assert tunnel["address"] == "127.0.0.1:%d" % port
    with s.h2() as c:
        st = c.connect(tunnel["address"], tunnel["endpoint_id"])
        assert st.wait_response(10) == 200, st.headers
        r = harness.http_over(st, "GET", "/bytes?n=100", host="app.example.com", timeout=10)
        assert r.status == 200
        assert len(r.read()) == 100
    took = time.monotonic() - x.t0
    print("expose: command start -> url line %.2f s, -> first request answered %.2f s"
          % (url_at, took))
    assert took <= START_BUDGET_S
    m = x.wait_stdout(r"^GET /bytes\?n=100 200 (\d+)ms$", timeout=5)
    print("agent's line: %r" % m.group(0))

    # what it wrote
    hp = cp.expect("GET", PROXIES + "/" + name, 200).json
    assert hp["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "warren-heartbeat"
    assert hp["spec"]["hostnames"] == ["app.example.com"]
    assert len(hp["spec"]["rules"]) == 1  # the API server defaults its matches (PathPrefix /)
    assert hp["spec"]["rules"][0]["backends"] == [{
        "endpoint": "http://127.0.0.1:%d" % port, "connector": {"name": "laptop"}}]
    assert {k: v["status"] for k, v in conds(hp).items()} == {
        "Accepted": "True", "Programmed": "True", "ConnectorMetadataProgrammed": "True"}

    # keep-alive: two requests on one tunnel, two lines; a HEAD keeps the parser in step
    out = request_through(s, tunnel, b"HEAD /bytes?n=7 HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
                          b"GET /nope HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
                          b"GET / HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n")
    assert out.count(b"HTTP/1.1 ") == 3, out
    x.wait_stdout(r"^HEAD /bytes\?n=7 200 \d+ms\nGET /nope 404 \d+ms\nGET / 200 \d+ms$")

    # Ctrl-C: the HTTPProxy it created goes, and the Lease is released
    x.p.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    kube.wait_for(lambda: cp.get(PROXIES + "/" + name).status == 404 and not connector_ready(cp),
                  STOP_BUDGET_S + 3, "HTTPProxy deleted and Connector NotReady", interval=0.02)
    took = time.monotonic() - t0
    print("expose: SIGINT -> HTTPProxy deleted and Connector NotReady %.2f s" % took)
    assert took <= STOP_BUDGET_S
    # it exits on its own: a second Ctrl-C (stop() would send one) means "force", as in most CLIs,
    # and under ASan the first shutdown may still be running
    x.p.wait(10)
    assert x.stop() == 0
    c = cp.expect("GET", CONNECTORS + "/laptop", 200).json
    assert "released" in conds(c)["Ready"]["message"]
    lines = x.stdout().splitlines()
    assert lines[0] == "url: https://app.example.com/"
    assert all(re.fullmatch(r"[A-Z]+ \S+ (\d{3}|-) \d+ms", l) for l in lines[1:]), lines
    err = x.stderr()
    assert "waiting for" in err and "HTTPProxy %s/%s deleted" % (NS, name) in err, err


def test_existing_proxy_is_updated_and_kept(env):
    cp, s = env["cp"], env["s"]
    port = s.backend_port
    name = "laptop-%d" % port
    cp.expect("POST", PROXIES, 201, {
        "apiVersion": "networking.datumapis.com/v1alpha", "kind": "HTTPProxy",
        "metadata": {"name": name, "labels": {"team": "a"}},
        "spec": {"hostnames": ["old.example.com"], "rules": [{"backends": [{
            "endpoint": "http://127.0.0.1:1", "connector": {"name": "laptop"}}]}]}})
    x = Expose(env, port, "--hostname", "New.Example.com", name="expose-update")
    x.wait_stdout(r"^url: https://new\.example\.com/$")
    hp = cp.expect("GET", PROXIES + "/" + name, 200).json
    assert hp["spec"]["hostnames"] == ["new.example.com"]
    assert hp["spec"]["rules"][0]["backends"][0]["endpoint"] == "http://127.0.0.1:%d" % port
    assert hp["metadata"]["labels"] == {"team": "a"}
    assert "existed" in x.stderr()
    assert x.stop() == 0
    # it only updated it: the HTTPProxy stays, the Connector is released
    assert cp.get(PROXIES + "/" + name).status == 200
    kube.wait_for(lambda: not connector_ready(cp), 3, "Connector NotReady")
    assert "left in place" in x.stderr()
    cp.expect("DELETE", PROXIES + "/" + name, 200)
    kube.wait_for(lambda: cp.get(PROXIES + "/" + name).status == 404, 10, "HTTPProxy gone")


def test_not_accepted_exits_1(env):
    """A foreign HTTPRoute of the same name (labelled as the operator's, not owned by the proxy):
    the operator says Accepted=False Conflict; expose prints it, deletes what it created, exits 1.
    The hostname is the default one, from $WARREN_DOMAIN."""
    cp, s = env["cp"], env["s"]
    port = s.backend_port
    name = "laptop-%d" % port
    cp.expect("POST", ROUTES, 201, {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "warren-operator"}},
        "spec": {"parentRefs": [{"name": "edge"}]}})
    x = Expose(env, port, name="expose-conflict", environ={"WARREN_DOMAIN": "dev.example.net"})
    rc = x.p.wait(20)
    x.stop()
    err = x.stderr()
    assert rc == 1, err
    assert "https://%s.dev.example.net/" % name in err
    assert re.search(r"HTTPProxy %s/%s is not accepted: Conflict: HTTPRoute" % (NS, name), err), err
    assert "url:" not in x.stdout()
    assert cp.get(PROXIES + "/" + name).status == 404
    kube.wait_for(lambda: not connector_ready(cp), 3, "Connector NotReady")
    cp.expect("DELETE", ROUTES + "/" + name, 200)


def test_command_line_errors(env):
    s = env["s"]
    for args, msg in [
            ([], "exactly one PORT"),
            (["0", "--connector", "laptop", "--trust", s.gw_id], "not a port"),
            (["80", "--trust", s.gw_id], "--connector"),
            (["80", "--connector", "laptop", "--trust", s.gw_id, "--hostname", "*.x.com"],
             "not a valid hostname"),
            (["80", "--connector", "laptop", "--trust", s.gw_id, "--hostname", "a.b",
              "--domain", "c"], "exclude each other")]:
        r = subprocess.run([HEARTBEAT, "expose", *args], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and msg in r.stderr, (args, r.returncode, r.stderr)
    r = subprocess.run([HEARTBEAT, "serve", "--hostname", "a.b"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2 and "belong to expose" in r.stderr, r.stderr
