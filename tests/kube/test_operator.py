"""test_operator.py - warren-operator against a real kube-apiserver + controller-manager.

The operator runs as a user whose only rights are manifests/operator-rbac.yaml's ClusterRole, so
that file is checked to be sufficient.

The upstream Gateway API HTTPRoute and Envoy Gateway EnvoyPatchPolicy CRDs (shared/fixtures/crds)
are installed next to warren's, so everything the operator writes is validated by their real
schemas. The test plays the agent (warren-heartbeat): it writes the Connector's connection details
and renews its Lease; and Envoy Gateway: it writes the EnvoyPatchPolicy status. Leases last 4 s
here (--lease-duration 4) so expiry is observable quickly.
"""

import datetime
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

import kube

BIN = os.path.join(kube.BUILD, "operator", "warren-operator")
NS = "default"
API = "/apis/networking.datumapis.com"
PROXIES = API + "/v1alpha/namespaces/%s/httpproxies" % NS
CONNECTORS = API + "/v1alpha1/namespaces/%s/connectors" % NS
CLASSES = API + "/v1alpha1/connectorclasses"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS
ROUTES = "/apis/gateway.networking.k8s.io/v1/namespaces/%s/httproutes" % NS
POLICIES = "/apis/gateway.envoyproxy.io/v1alpha1/namespaces/%s/envoypatchpolicies" % NS
LEASE_S = 4
ID1 = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
ID2 = "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a7988"
MERGE = "application/merge-patch+json"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Operator:
    """One warren-operator process with its probes on free ports and its log in |logdir|."""

    def __init__(self, cp, logdir, name, *extra):
        self.health, self.metrics_port = free_port(), free_port()
        self.log = os.path.join(logdir, name + ".log")
        # the operator runs as a user with manifests/operator-rbac.yaml's ClusterRole only
        args = [BIN, "run", "--kubeconfig", cp.env["KUBE_KUBECONFIG_NOBODY"], "--gateway", "edge",
                "--listener", "https", "--lease-duration", str(LEASE_S),
                "--health-probe-bind-address", "127.0.0.1:%d" % self.health,
                "--metrics-bind-address", "127.0.0.1:%d" % self.metrics_port,
                "--log-level", "debug", *extra]
        self.f = open(self.log, "a")
        self.p = subprocess.Popen(args, stdout=self.f, stderr=subprocess.STDOUT)

    def get(self, port, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return None, ""

    def metrics(self):
        status, text = self.get(self.metrics_port, "/metrics")
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def metric(self, name, default=0.0):
        return self.metrics().get(name, default)

    def wait_ready(self, timeout=30):
        kube.wait_for(lambda: self.get(self.health, "/readyz")[0] == 200, timeout, "operator ready")

    def stop(self, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("operator did not exit within %d s of SIGTERM" % timeout)
        self.f.close()
        return self.p.returncode


def now_micro():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Agent:
    """What warren-heartbeat does for the control plane: connection details and Lease renewal."""

    def __init__(self, cp, name):
        self.cp, self.name = cp, name
        self.renewing = False
        self.last_renew = None
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def details(self, endpoint_id=ID1):
        self.cp.expect("PATCH", CONNECTORS + "/" + self.name + "/status", 200, {"status": {
            "connectionDetails": {"type": "PublicKey", "publicKey": {
                "id": endpoint_id, "homeRelay": "https://relay.example.com/", "discoveryMode": "DNS",
                "addresses": [{"address": "198.18.0.10", "port": 4433}]}}}}, content_type=MERGE)

    def renew(self):
        r = self.cp.request("PATCH", LEASES + "/" + self.name, {
            "spec": {"holderIdentity": self.name, "renewTime": now_micro()}}, content_type=MERGE)
        if r.status == 200:
            self.last_renew = time.monotonic()
        return r.status

    def loop(self):
        while not self.stop_ev.wait(1.0):
            if self.renewing:
                self.renew()

    def close(self):
        self.stop_ev.set()
        self.t.join()


def conds(obj):
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def cond_is(obj, t, status, reason=None):
    c = conds(obj).get(t)
    return c is not None and c["status"] == status and (reason is None or c["reason"] == reason) \
        and c.get("observedGeneration") == obj["metadata"]["generation"]


@pytest.fixture(scope="module")
def env(request, tmp_path_factory):
    with kube.module_control_plane(request, "test_operator") as cp:
        kube.install_warren_crds(cp)
        import yaml
        with open(os.path.join(kube.REPO, "manifests", "operator-rbac.yaml")) as f:
            role, binding = [d for d in yaml.safe_load_all(f) if d]
        cp.expect("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", 201, role)
        binding["subjects"] = [{"kind": "User", "name": "nobody",
                                "apiGroup": "rbac.authorization.k8s.io"}]
        cp.expect("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", 201, binding)
        logdir = str(tmp_path_factory.mktemp("operator-logs"))
        e = {"cp": cp, "logdir": logdir, "ops": []}
        try:
            yield e
        finally:
            for op in e["ops"]:
                try:
                    op.stop()
                except AssertionError:
                    pass
            if request.session.testsfailed:
                for f in sorted(os.listdir(logdir)):
                    with open(os.path.join(logdir, f)) as fh:
                        print("--- %s (tail)\n%s" % (f, "".join(fh.readlines()[-60:])))
            if "agent" in e:
                e["agent"].close()


def start(env, name, *extra):
    op = Operator(env["cp"], env["logdir"], name, *extra)
    env["ops"].append(op)
    return op


def get(cp, path):
    r = cp.get(path)
    return r.json if r.status == 200 else None


def wait_obj(cp, path, pred, timeout, what):
    return kube.wait_for(lambda: (lambda o: o if o is not None and pred(o) else None)(get(cp, path)),
                         timeout, what)


def proxy_body(name="myapp", host="myapp.example.com", endpoint="http://127.0.0.1:3000",
               connector="laptop", filters=None):
    rule = {"backends": [{"endpoint": endpoint, "connector": {"name": connector}}]}
    if filters:
        rule["filters"] = filters
    return {"apiVersion": "networking.datumapis.com/v1alpha", "kind": "HTTPProxy",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"hostnames": [host], "rules": [rule]}}


def cluster_patch(policy):
    (p,) = [p for p in policy["spec"]["jsonPatches"]
            if p["type"].endswith("cluster.v3.Cluster")]
    return p["operation"]["value"]


def tunnel_listener(policy):
    ep = cluster_patch(policy)["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    return ep["endpoint"]["address"]["envoy_internal_address"]["server_listener_name"]


def test_connector_gets_a_lease_and_conditions(env):
    cp = env["cp"]
    op = start(env, "op1")
    op.wait_ready()
    assert op.get(op.health, "/healthz")[0] == 200
    cp.expect("POST", CLASSES, 201, {"apiVersion": "networking.datumapis.com/v1alpha1",
                                     "kind": "ConnectorClass", "metadata": {"name": "datum-connect"},
                                     "spec": {}})
    cp.expect("POST", CONNECTORS, 201, {
        "apiVersion": "networking.datumapis.com/v1alpha1", "kind": "Connector",
        "metadata": {"name": "laptop", "namespace": NS},
        "spec": {"connectorClassName": "datum-connect"}})
    c = wait_obj(cp, CONNECTORS + "/laptop",
                 lambda o: cond_is(o, "Accepted", "True", "Accepted")
                 and cond_is(o, "Ready", "False", "Pending")
                 and (o["status"].get("leaseRef") or {}).get("name") == "laptop",
                 10, "Connector Accepted, Ready=False Pending, leaseRef")
    lease = cp.expect("GET", LEASES + "/laptop", 200).json
    assert lease["spec"]["leaseDurationSeconds"] == LEASE_S
    (ref,) = lease["metadata"]["ownerReferences"]
    assert ref["kind"] == "Connector" and ref["uid"] == c["metadata"]["uid"] and ref["controller"]

    # a Connector of an unknown class is not Accepted
    cp.expect("POST", CONNECTORS, 201, {
        "apiVersion": "networking.datumapis.com/v1alpha1", "kind": "Connector",
        "metadata": {"name": "stray", "namespace": NS}, "spec": {"connectorClassName": "other"}})
    wait_obj(cp, CONNECTORS + "/stray",
             lambda o: cond_is(o, "Accepted", "False", "ConnectorClassNotFound"), 10,
             "stray Connector Accepted=False ConnectorClassNotFound")
    cp.expect("DELETE", CONNECTORS + "/stray", 200)


def test_connector_ready_when_renewed_with_details(env):
    cp = env["cp"]
    agent = env["agent"] = Agent(cp, "laptop")
    assert agent.renew() == 200
    agent.renewing = True
    # renewed but no connection details yet
    wait_obj(cp, CONNECTORS + "/laptop", lambda o: cond_is(o, "Ready", "False", "Pending") and
             "connectionDetails" in conds(o)["Ready"]["message"], 10, "Pending on details")
    agent.details()
    wait_obj(cp, CONNECTORS + "/laptop", lambda o: cond_is(o, "Ready", "True", "Ready"), 10,
             "Connector Ready")


def test_httpproxy_programmed(env):
    cp = env["cp"]
    cp.expect("POST", PROXIES, 201, proxy_body())
    p = wait_obj(cp, PROXIES + "/myapp",
                 lambda o: cond_is(o, "Accepted", "True") and cond_is(o, "Programmed", "True")
                 and cond_is(o, "ConnectorMetadataProgrammed", "True", "ConnectorMetadataApplied"),
                 15, "HTTPProxy Accepted, Programmed, ConnectorMetadataProgrammed")
    assert p["status"]["hostnames"] == ["myapp.example.com"]
    route = cp.expect("GET", ROUTES + "/myapp", 200).json
    assert route["spec"]["hostnames"] == ["myapp.example.com"]
    assert route["spec"]["parentRefs"][0]["name"] == "edge"
    assert route["spec"]["parentRefs"][0]["sectionName"] == "https"
    pol = cp.expect("GET", POLICIES + "/myapp", 200).json
    assert pol["spec"]["targetRef"]["name"] == "edge"
    for o in (route, pol):
        (ref,) = o["metadata"]["ownerReferences"]
        assert ref["kind"] == "HTTPProxy" and ref["uid"] == p["metadata"]["uid"]
    assert tunnel_listener(pol) == "connector-tunnel"
    meta = cluster_patch(pol)["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["metadata"]
    assert meta["filter_metadata"]["tunnel"]["endpoint_id"] == ID1
    assert meta["filter_metadata"]["tunnel"]["address"] == "127.0.0.1:3000"


def test_stale_lease_withdraws_routing_and_renewal_restores_it(env):
    cp, agent = env["cp"], env["agent"]
    agent.renewing = False
    time.sleep(1.2)  # let a renewal in flight land
    last = agent.last_renew
    wait_obj(cp, CONNECTORS + "/laptop", lambda o: cond_is(o, "Ready", "False", "NotReady"),
             LEASE_S + 6, "Connector NotReady")
    pol = wait_obj(cp, POLICIES + "/myapp", lambda o: tunnel_listener(o) == "connector-offline",
                   5, "policy turned to the offline answer")
    took = time.monotonic() - last
    assert took <= LEASE_S + 2, "routing withdrawn %.1f s after the last renewal" % took
    (route0,) = [p for p in pol["spec"]["jsonPatches"] if p["operation"]["path"].endswith("routes/0")]
    assert route0["operation"]["value"]["direct_response"]["status"] == 503
    wait_obj(cp, PROXIES + "/myapp",
             lambda o: cond_is(o, "ConnectorMetadataProgrammed", "False", "ConnectorNotReady"), 5,
             "HTTPProxy reports the connector offline")
    agent.renew()
    agent.renewing = True
    wait_obj(cp, POLICIES + "/myapp", lambda o: tunnel_listener(o) == "connector-tunnel", 5,
             "policy back on the tunnel")
    wait_obj(cp, PROXIES + "/myapp",
             lambda o: cond_is(o, "ConnectorMetadataProgrammed", "True"), 5, "HTTPProxy online")


def test_edit_is_followed(env):
    cp = env["cp"]
    cp.expect("PATCH", PROXIES + "/myapp", 200, {"spec": {
        "hostnames": ["myapp.example.com", "www.example.com"],
        "rules": [{"backends": [{"endpoint": "http://127.0.0.1:4000",
                                 "connector": {"name": "laptop"}}]}]}}, content_type=MERGE)
    p = wait_obj(cp, PROXIES + "/myapp", lambda o: o["metadata"]["generation"] == 2 and
                 cond_is(o, "Programmed", "True") and cond_is(o, "Accepted", "True"), 10,
                 "observedGeneration 2")
    assert p["status"]["hostnames"] == ["myapp.example.com", "www.example.com"]
    route = cp.expect("GET", ROUTES + "/myapp", 200).json
    assert route["spec"]["hostnames"] == ["myapp.example.com", "www.example.com"]
    pol = cp.expect("GET", POLICIES + "/myapp", 200).json
    meta = cluster_patch(pol)["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["metadata"]
    assert meta["filter_metadata"]["tunnel"]["address"] == "127.0.0.1:4000"
    # a new endpoint ID from the agent (a reinstalled laptop) reaches the patch
    env["agent"].details(ID2)
    wait_obj(cp, POLICIES + "/myapp", lambda o: cluster_patch(o)["load_assignment"]["endpoints"][0][
        "lb_endpoints"][0]["metadata"]["filter_metadata"]["tunnel"]["endpoint_id"] == ID2, 5,
        "new endpoint ID in the patch")


def test_invalid_specs_get_conditions_without_hot_loop(env):
    cp = env["cp"]
    op = env["ops"][0]
    cp.expect("POST", PROXIES, 201, proxy_body("ghost", "ghost.example.com", connector="nobody"))
    cp.expect("POST", PROXIES, 201, proxy_body("mirror", "mirror.example.com", filters=[
        {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "x", "port": 80}}}]))
    wait_obj(cp, PROXIES + "/ghost", lambda o: cond_is(o, "Accepted", "False", "ConnectorNotFound")
             and cond_is(o, "Programmed", "False"), 10, "ghost not accepted")
    m = wait_obj(cp, PROXIES + "/mirror", lambda o: cond_is(o, "Accepted", "False",
                                                             "UnsupportedValue"), 10,
                 "mirror not accepted")
    assert "RequestMirror" in conds(m)["Accepted"]["message"]
    assert cp.get(ROUTES + "/ghost").status == 404
    # no retry loop: the reconcile count stays put while nothing changes
    key = 'controller_runtime_reconcile_total{controller="httpproxy",result="success"}'
    before = op.metric(key)
    errors = op.metric('controller_runtime_reconcile_errors_total{controller="httpproxy"}')
    time.sleep(3)
    assert op.metric(key) - before <= 2
    assert op.metric('controller_runtime_reconcile_errors_total{controller="httpproxy"}') == errors
    # the connector appears: ghost is accepted then
    cp.expect("PATCH", PROXIES + "/ghost", 200, {"spec": {"rules": [{"backends": [
        {"endpoint": "http://127.0.0.1:3000", "connector": {"name": "laptop"}}]}]}},
        content_type=MERGE)
    wait_obj(cp, PROXIES + "/ghost", lambda o: cond_is(o, "Accepted", "True"), 10, "ghost fixed")
    cp.expect("DELETE", PROXIES + "/mirror", 200)


def test_envoy_gateway_status_is_read_back(env):
    cp = env["cp"]
    pol = cp.expect("GET", POLICIES + "/myapp", 200).json

    def eg_status(status, reason, message):
        cp.expect("PATCH", POLICIES + "/myapp/status", 200, {"status": {"ancestors": [{
            "ancestorRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge",
                            "namespace": NS},
            "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
            "conditions": [{"type": "Programmed", "status": status, "reason": reason,
                            "message": message, "observedGeneration": pol["metadata"]["generation"],
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]}}, content_type=MERGE)

    eg_status("False", "ResourceNotFound",
              "Unable to find xds resources: type.googleapis.com/envoy.config.cluster.v3.Cluster/x")
    p = wait_obj(cp, PROXIES + "/myapp", lambda o: cond_is(o, "Programmed", "False",
                                                            "ResourceNotFound"), 10,
                 "Programmed=False from Envoy Gateway")
    assert "Unable to find xds resources" in conds(p)["Programmed"]["message"]
    eg_status("True", "Programmed", "Patches have been successfully applied.")
    wait_obj(cp, PROXIES + "/myapp", lambda o: cond_is(o, "Programmed", "True", "Programmed") and
             "successfully applied" in conds(o)["Programmed"]["message"], 10,
             "Programmed=True from Envoy Gateway")


def versions(cp):
    out = {}
    for coll in (PROXIES, CONNECTORS, ROUTES, POLICIES):
        for o in cp.expect("GET", coll, 200).json["items"]:
            out[coll + "/" + o["metadata"]["name"]] = o["metadata"]["resourceVersion"]
    return out


def test_restart_writes_nothing(env):
    cp = env["cp"]
    op = env["ops"][0]
    time.sleep(1.5)
    assert op.stop() == 0
    before = versions(cp)
    op2 = start(env, "op2")
    op2.wait_ready()
    kube.wait_for(lambda: op2.metric('controller_runtime_reconcile_total'
                                     '{controller="httpproxy",result="success"}') >= 2, 10,
                  "restarted operator reconciled")
    time.sleep(2)
    assert op2.metric("warren_operator_writes_total") == 0
    assert op2.metric("warren_operator_writes_skipped_total") > 0
    assert versions(cp) == before


def test_delete_collects_owned_objects(env):
    # with no operator running: the garbage collector follows the ownerReferences alone
    cp = env["cp"]
    assert env["ops"][-1].stop() == 0
    cp.expect("DELETE", PROXIES + "/ghost", 200)
    kube.wait_for(lambda: cp.get(ROUTES + "/ghost").status == 404 and
                  cp.get(POLICIES + "/ghost").status == 404, 30, "HTTPRoute and policy collected")


def test_two_replicas_one_leader(env):
    cp = env["cp"]
    env["ops"][-1].stop()
    a = start(env, "lead-a", "--leader-elect", "--leader-election-namespace", NS)
    b = start(env, "lead-b", "--leader-elect", "--leader-election-namespace", NS)
    a.wait_ready()
    b.wait_ready()
    status = 'leader_election_master_status{name="warren-operator"}'
    kube.wait_for(lambda: a.metric(status) + b.metric(status) == 1, 20, "one leader")
    leader, other = (a, b) if a.metric(status) == 1 else (b, a)
    # only the leader works: an edit is reconciled by it alone
    cp.expect("PATCH", PROXIES + "/myapp", 200, {"spec": {"hostnames": ["myapp.example.com"]}},
              content_type=MERGE)
    wait_obj(cp, PROXIES + "/myapp", lambda o: o["status"]["hostnames"] == ["myapp.example.com"],
             10, "leader reconciled the edit")
    assert other.metric("warren_operator_writes_total") == 0
    # a leader that stops hands over at once (it releases the Lease)
    assert leader.stop() == 0
    kube.wait_for(lambda: other.metric(status) == 1, 8, "the other replica leads")
    cp.expect("PATCH", PROXIES + "/myapp", 200, {"spec": {"hostnames": ["myapp.example.com",
                                                                         "new.example.com"]}},
              content_type=MERGE)
    wait_obj(cp, ROUTES + "/myapp", lambda o: "new.example.com" in o["spec"]["hostnames"], 10,
             "new leader reconciles")


def test_gateway_in_another_namespace(env):
    """--gateway NS/NAME: the policy lives in the Gateway's namespace as <ns>.<name>, without an
    ownerReference (invalid across namespaces); the operator deletes it when the HTTPProxy goes,
    and at start deletes policies whose HTTPProxy vanished while it was down."""
    cp = env["cp"]
    for op in env["ops"]:
        op.stop()
    gw_ns = "edge-system"
    cp.expect("POST", "/api/v1/namespaces", 201, {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": gw_ns}})
    gw_policies = "/apis/gateway.envoyproxy.io/v1alpha1/namespaces/%s/envoypatchpolicies" % gw_ns
    # left behind by an earlier run: its HTTPProxy no longer exists
    cp.expect("POST", gw_policies, 201, {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "EnvoyPatchPolicy",
        "metadata": {"name": "default.gone", "labels": {
            "app.kubernetes.io/managed-by": "warren-operator",
            "networking.datumapis.com/httpproxy": "gone",
            "networking.datumapis.com/httpproxy-namespace": "default"}},
        "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                               "name": "edge"}, "type": "JSONPatch", "jsonPatches": []}})
    op = start(env, "cross", "--gateway", gw_ns + "/edge")
    op.wait_ready()
    kube.wait_for(lambda: cp.get(gw_policies + "/default.gone").status == 404, 10,
                  "orphan policy deleted at start")
    cp.expect("POST", PROXIES, 201, proxy_body("cross", "cross.example.com"))
    pol = wait_obj(cp, gw_policies + "/default.cross", lambda o: True, 10, "policy in " + gw_ns)
    assert "ownerReferences" not in pol["metadata"]
    assert pol["metadata"]["labels"]["networking.datumapis.com/httpproxy-namespace"] == NS
    patches = [p["name"] for p in pol["spec"]["jsonPatches"]]
    assert "httproute/default/cross/rule/0" in patches
    assert "%s/edge/https" % gw_ns in patches
    route = wait_obj(cp, ROUTES + "/cross", lambda o: True, 10, "HTTPRoute")
    assert route["spec"]["parentRefs"][0]["namespace"] == gw_ns
    wait_obj(cp, PROXIES + "/cross", lambda o: cond_is(o, "Programmed", "True"), 10, "Programmed")
    cp.expect("DELETE", PROXIES + "/cross", 200)
    kube.wait_for(lambda: cp.get(gw_policies + "/default.cross").status == 404, 10,
                  "cross-namespace policy deleted with its HTTPProxy")
    assert op.stop() == 0
