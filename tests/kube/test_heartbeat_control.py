"""test_heartbeat_control.py - warren-heartbeat's control plane (heartbeat/control.c) against a real
kube-apiserver + controller-manager and warren-operator.

The agent runs with a ServiceAccount token bound by manifests/heartbeat-rbac.yaml (names as in the
file: ServiceAccount/Connector "laptop" in namespace "team-a"), so that file is what is tested.
Leases last 4 s (operator --lease-duration 4).
"""

import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import kube

BUILD = kube.BUILD
OPERATOR = os.path.join(BUILD, "operator", "warren-operator")
HEARTBEAT = os.path.join(BUILD, "heartbeat", "warren-heartbeat")
NS = "team-a"
API = "/apis/networking.datumapis.com/v1alpha1/namespaces/%s/connectors" % NS
LEASES = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS
LEASE_S = 4
MERGE = "application/merge-patch+json"


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def conds(o):
    return {c["type"]: c for c in (o.get("status") or {}).get("conditions") or []}


def ready(cp, name="laptop"):
    r = cp.get(API + "/" + name)
    return r.status == 200 and conds(r.json).get("Ready", {}).get("status") == "True"


class Agent:
    def __init__(self, env, name, key, port=None, *extra):
        self.log = os.path.join(env["dir"], name + ".log")
        self.port = port or free_udp_port()
        self.f = open(self.log, "a")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(
            [HEARTBEAT, "serve", "--identity", key, "--listen", "127.0.0.1:%d" % self.port,
             "--trust", env["gateway_id"], "--expose", "127.0.0.1:9", "--connector", "laptop",
             "--kubeconfig", env["agent_kubeconfig"], "--log-level", "debug", *extra],
            stdout=self.f, stderr=subprocess.STDOUT)

    def text(self):
        with open(self.log) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            self.p.wait(timeout)
        self.f.close()
        return self.p.returncode


def identity(env, name):
    path = os.path.join(env["dir"], name + ".key")
    out = subprocess.run([HEARTBEAT, "id", "--identity", path], capture_output=True, text=True,
                         check=True).stdout.split()
    return path, out[0]


@pytest.fixture(scope="module")
def env(request):
    with kube.module_control_plane(request, "test_heartbeat_control") as cp:
        kube.install_warren_crds(cp)
        d = tempfile.mkdtemp(prefix="warren-hb-control-")
        e = {"cp": cp, "dir": d, "agents": []}
        cp.expect("POST", "/api/v1/namespaces", 201, {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": NS}})
        kube.create_connector_class(cp)
        # the agent\'s identity: manifests/heartbeat-rbac.yaml as written
        token = kube.agent_token(cp)
        e["token"] = token
        kc = os.path.join(d, "agent.kubeconfig")
        kube.write_kubeconfig(cp, kc, token, NS)
        e["agent_kubeconfig"] = kc
        _, e["gateway_id"] = identity(e, "gateway")
        e["key1"], e["id1"] = identity(e, "agent1")
        e["key2"], e["id2"] = identity(e, "agent2")
        olog = open(os.path.join(d, "operator.log"), "a")
        op = subprocess.Popen([OPERATOR, "run", "--kubeconfig", cp.env["KUBE_KUBECONFIG"],
                               "--lease-duration", str(LEASE_S), "--health-probe-bind-address", "0",
                               "--metrics-bind-address", "0"], stdout=olog, stderr=subprocess.STDOUT)
        try:
            yield e
        finally:
            for a in e["agents"]:
                try:
                    a.stop(signal.SIGKILL)
                except Exception:
                    pass
            op.terminate()
            op.wait(10)
            olog.close()
            if request.session.testsfailed:
                for f in sorted(os.listdir(d)):
                    if f.endswith(".log"):
                        with open(os.path.join(d, f)) as fh:
                            print("--- %s (tail)\n%s" % (f, "".join(fh.readlines()[-40:])))


def agent(env, name, key, port=None, *extra):
    a = Agent(env, name, key, port, *extra)
    env["agents"].append(a)
    return a


def test_registers_publishes_and_renews(env):
    cp = env["cp"]
    a = agent(env, "a1", env["key1"])
    c = kube.wait_for(lambda: ready(cp) and cp.get(API + "/laptop").json, 15,
                      "Connector created, published and Ready")
    took = time.monotonic() - a.t0
    print("agent start to Connector Ready: %.2f s" % took)
    assert c["spec"]["connectorClassName"] == "datum-connect"
    pk = c["status"]["connectionDetails"]["publicKey"]
    assert pk["id"] == env["id1"]
    assert pk["addresses"] == [{"address": "127.0.0.1", "port": a.port}]
    assert pk["discoveryMode"] == "DNS" and pk["homeRelay"] == ""
    lease = cp.expect("GET", LEASES + "/laptop", 200).json
    assert lease["spec"]["holderIdentity"] == env["id1"]
    t1 = lease["spec"]["renewTime"]
    time.sleep(LEASE_S / 3 + 0.8)
    assert cp.expect("GET", LEASES + "/laptop", 200).json["spec"]["renewTime"] != t1


def test_rbac_confines_the_agent(env):
    cp = env["cp"]
    cp.expect("POST", API, 201, {"apiVersion": "networking.datumapis.com/v1alpha1",
                                 "kind": "Connector", "metadata": {"name": "other"},
                                 "spec": {"connectorClassName": "datum-connect"}})
    tok = env["token"]
    ctx_req = kube.ControlPlane.request

    def as_agent(method, path, body=None, content_type="application/json"):
        saved = cp.env["KUBE_ADMIN_TOKEN"]
        try:
            cp.env["KUBE_ADMIN_TOKEN"] = tok  # request() sends the "admin" token
            return ctx_req(cp, method, path, body, content_type=content_type)
        finally:
            cp.env["KUBE_ADMIN_TOKEN"] = saved
    assert as_agent("GET", API + "/laptop").status == 200
    assert as_agent("GET", API + "/other").status == 403
    assert as_agent("PATCH", API + "/other/status", {"status": {}}, MERGE).status == 403
    assert as_agent("DELETE", API + "/laptop").status == 403
    kube.wait_for(lambda: cp.get(LEASES + "/other").status == 200, 10, "the other Lease")
    assert as_agent("PATCH", LEASES + "/other", {"spec": {"holderIdentity": "x"}}, MERGE).status == 403
    assert as_agent("GET", "/api/v1/namespaces/%s/secrets" % NS).status == 403


def test_second_node_is_refused(env):
    b = agent(env, "a2", env["key2"])
    rc = b.p.wait(20)
    assert rc != 0
    text = b.text()
    assert "held by another node" in text, text
    c = env["cp"].expect("GET", API + "/laptop", 200).json
    assert c["status"]["connectionDetails"]["publicKey"]["id"] == env["id1"]


def tunnel_listener(cp):
    """The internal listener the HTTPProxy "web"'s cluster patch points at, or None."""
    r = cp.get("/apis/gateway.envoyproxy.io/v1alpha1/namespaces/%s/envoypatchpolicies/web" % NS)
    if r.status != 200:
        return None
    (p,) = [p for p in r.json["spec"]["jsonPatches"] if p["type"].endswith("cluster.v3.Cluster")]
    ep = p["operation"]["value"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    return ep["endpoint"]["address"]["envoy_internal_address"]["server_listener_name"]


def test_killed_agent_goes_not_ready_and_comes_back(env):
    cp = env["cp"]
    a = env["agents"][0]
    # a route through this Connector, to see routing withdrawn and restored, not only Ready
    cp.expect("POST", "/apis/networking.datumapis.com/v1alpha/namespaces/%s/httpproxies" % NS, 201, {
        "apiVersion": "networking.datumapis.com/v1alpha", "kind": "HTTPProxy",
        "metadata": {"name": "web"}, "spec": {"hostnames": ["web.example.com"], "rules": [{
            "backends": [{"endpoint": "http://127.0.0.1:9", "connector": {"name": "laptop"}}]}]}})
    kube.wait_for(lambda: tunnel_listener(cp) == "connector-tunnel", 10, "routed through the tunnel")
    a.stop(signal.SIGKILL)
    t0 = time.monotonic()
    kube.wait_for(lambda: tunnel_listener(cp) == "connector-offline", LEASE_S + 3,
                  "routing withdrawn after kill -9")
    took = time.monotonic() - t0
    print("kill -9 to routing withdrawn: %.2f s" % took)
    assert took <= LEASE_S + 2
    assert not ready(cp)
    b = agent(env, "a1-restart", env["key1"], a.port)
    kube.wait_for(lambda: "renewing Lease" in b.text(), 10, "first renewal")
    t1 = time.monotonic()
    kube.wait_for(lambda: tunnel_listener(cp) == "connector-tunnel", 5, "routed again")
    print("first renewal to routed again: %.2f s" % (time.monotonic() - t1))
    assert time.monotonic() - t1 <= 2
    kube.wait_for(lambda: ready(cp), 5, "Ready again")


def test_clean_stop_releases_at_once(env):
    cp = env["cp"]
    b = env["agents"][-1]
    assert b.stop(signal.SIGTERM) == 0
    t0 = time.monotonic()
    c = kube.wait_for(lambda: (lambda o: o if conds(o)["Ready"]["status"] == "False" else None)(
        cp.get(API + "/laptop").json), 3, "NotReady after a clean stop")
    print("SIGTERM to Ready=False: %.2f s" % (time.monotonic() - t0))
    assert "released" in conds(c)["Ready"]["message"]
    assert cp.expect("GET", LEASES + "/laptop", 200).json["spec"].get("holderIdentity") in (None, "")


def test_agent_survives_apiserver_restart(env):
    cp = env["cp"]
    b = agent(env, "a1-again", env["key1"])
    kube.wait_for(lambda: ready(cp), 10, "Ready")
    cp.restart_apiserver()
    before = cp.expect("GET", LEASES + "/laptop", 200).json["spec"]["renewTime"]
    kube.wait_for(lambda: cp.get(LEASES + "/laptop").json["spec"]["renewTime"] != before, 10,
                  "renewals after the apiserver restart")
    assert b.p.poll() is None
    kube.wait_for(lambda: ready(cp), 10, "Ready after the restart")
