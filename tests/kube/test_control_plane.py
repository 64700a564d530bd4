"""Smoke test of the test Kubernetes control plane (hack/kube-up, hack/kube-down): a real etcd,
kube-apiserver and kube-controller-manager v1.20.2 on loopback, spoken to with urllib + ssl only.

Covers what later tests rely on: /readyz; a CRD with a status subresource gets Established and
serves custom objects (with the reflect2/json-iterator and kube-openapi fixes of hack/kube-build:
maps and empty strings in objects, default: ""); structural validation; token auth + RBAC (403
Forbidden for the "nobody" user, 401 for a bad token); the garbage collector and the namespace
controller; restarting the apiserver alone (hack/kube-up DIR --apiserver-only) keeps the data;
two control planes side by side; kube-down stops everything and can be called twice.
"""

import os
import stat
import tempfile
import time
import uuid

import pytest

import kube

GROUP = "test.warren.dev"
CRD_NAME = "widgets." + GROUP
WIDGETS = "/apis/%s/v1/namespaces/default/widgets" % GROUP
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": CRD_NAME},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1},
                                    # default "" was refused before the kube-openapi null fix
                                    "group": {"type": "string", "default": ""},
                                    "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
                                    # a map: the first custom-resource create crashed the
                                    # apiserver (mapiterinit) with the vendored reflect2
                                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {"ready": {"type": "boolean"}, "message": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def cp(request):
    with kube.module_control_plane(request, "test_control_plane") as c:
        yield c
        pids = [int(p) for p in c.env.get("KUBE_PIDS", "").split()]
        c.down()  # and once more as the context ends: safe to call twice
        for p in pids:
            assert not alive(p), "pid %d still running after hack/kube-down" % p
        for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
            assert not os.path.exists(os.path.join(c.dir, name + ".pid"))


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def configmap(name, data=None, owner=None):
    m = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data or {"k": "v"}}
    if owner:
        m["metadata"]["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
        ]
    return m


def ensure_crd(cp):
    r = cp.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
    assert r.status in (201, 409), r

    def established():
        g = cp.expect("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" + CRD_NAME, 200)
        # status and its conditions are null until the apiserver's controllers fill them
        conds = {c["type"]: c["status"] for c in (g.json.get("status") or {}).get("conditions") or []}
        return conds.get("Established") == "True" and conds.get("NamesAccepted") == "True"

    kube.wait_for(established, 30, "CRD %s Established" % CRD_NAME)
    # served by the apiserver's discovery a moment after Established
    kube.wait_for(lambda: cp.get(WIDGETS).status == 200, 10, "GET %s" % WIDGETS)


# ---------------------------------------------------------------------------------------------


def test_ready_and_version(cp):
    r = cp.expect("GET", "/readyz", 200)
    assert r.text == "ok"
    assert cp.expect("GET", "/livez", 200, token=None).text == "ok"  # anonymous may read health
    v = cp.expect("GET", "/version", 200).json
    assert v["gitVersion"] == "v1.20.2" and v["major"] == "1" and v["minor"] == "20", v
    assert cp.server.startswith("https://127.0.0.1:")
    assert cp.env["ETCD_ENDPOINT"].startswith("http://127.0.0.1:")
    assert cp.env["ETCD_PORT"] != "2379"


def test_files(cp):
    d = cp.dir
    for f in ("env", "kubeconfig", "kubeconfig-nobody", "tokens.csv", "pki/ca.key", "pki/apiserver.key", "pki/sa.key"):
        mode = stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode)
        assert mode == 0o600, "%s has mode %o" % (f, mode)
    with open(os.path.join(d, "kubeconfig")) as f:
        kc = f.read()
    assert "certificate-authority: \"%s\"" % cp.env["KUBE_CA"] in kc
    assert "current-context: admin@warren-test" in kc
    assert "server: %s\n" % cp.server in kc
    assert cp.admin_token in kc
    with open(os.path.join(d, "kubeconfig-nobody")) as f:
        assert cp.nobody_token in f.read()
    for p in cp.env["KUBE_PIDS"].split():
        assert alive(int(p))
    for log in ("KUBE_ETCD_LOG", "KUBE_APISERVER_LOG", "KUBE_CONTROLLER_MANAGER_LOG"):
        assert os.path.isfile(cp.env[log])


def test_crd_and_custom_objects(cp):
    ensure_crd(cp)
    w = {
        "apiVersion": GROUP + "/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "labels": {"app": "warren"}},
        "spec": {"size": 3, "labels": {"a": "x", "empty": ""}},
    }
    r = cp.expect("POST", WIDGETS, 201, w)
    assert r.json["metadata"]["generation"] == 1
    got = cp.expect("GET", WIDGETS + "/w1", 200).json
    assert got["spec"] == {"size": 3, "labels": {"a": "x", "empty": ""}, "group": "", "mode": "A"}, got
    assert cp.expect("GET", WIDGETS, 200).json["items"][0]["metadata"]["name"] == "w1"

    # an empty string given explicitly (refused as "null" before the kube-openapi fix)
    w2 = dict(w, metadata={"name": "w2"}, spec={"size": 1, "group": "", "mode": "B"})
    cp.expect("POST", WIDGETS, 201, w2)

    # structural validation is enforced
    bad = cp.expect("POST", WIDGETS, 422, dict(w, metadata={"name": "bad"}, spec={"size": 0})).json
    assert bad["reason"] == "Invalid", bad
    cp.expect("POST", WIDGETS, 422, dict(w, metadata={"name": "bad"}, spec={"size": 1, "mode": "Bogus"}))

    # status subresource: status writes go through /status only and do not bump generation
    got["status"] = {"ready": True, "message": ""}
    st = cp.expect("PUT", WIDGETS + "/w1/status", 200, got).json
    assert st["status"] == {"ready": True, "message": ""}
    assert st["metadata"]["generation"] == 1
    upd = cp.expect("GET", WIDGETS + "/w1", 200).json
    upd["spec"]["size"] = 5
    upd["status"] = {"ready": False}
    upd = cp.expect("PUT", WIDGETS + "/w1", 200, upd).json
    assert upd["spec"]["size"] == 5 and upd["metadata"]["generation"] == 2
    assert upd["status"] == {"ready": True, "message": ""}, "status changed through the main resource"


def test_nobody_is_forbidden(cp):
    for method, path, body in (
        ("GET", "/api/v1/namespaces", None),
        ("GET", CONFIGMAPS, None),
        ("POST", CONFIGMAPS, configmap("from-nobody")),
        ("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", None),
    ):
        r = cp.expect(method, path, 403, body, token="nobody")
        assert r.json and r.json["kind"] == "Status" and r.json["reason"] == "Forbidden", r
        assert 'User "nobody"' in r.json["message"], r
    # but it is authenticated: discovery is open to system:authenticated
    cp.expect("GET", "/api", 200, token="nobody")
    r = cp.expect("GET", "/api/v1/namespaces", 401, token="not-a-token")
    assert r.json["reason"] == "Unauthorized", r
    r = cp.expect("GET", "/api/v1/namespaces", 403, token=None)
    assert 'User "system:anonymous"' in r.json["message"], r
    cp.expect("GET", CONFIGMAPS + "/from-nobody", 404)


def check_gc(cp, limit):
    """An owned ConfigMap disappears after its owner is deleted; returns the seconds it took."""
    n = uuid.uuid4().hex[:8]
    owner = cp.expect("POST", CONFIGMAPS, 201, configmap("owner-" + n)).json
    dep = cp.expect("POST", CONFIGMAPS, 201, configmap("dependent-" + n, owner=owner)).json
    assert dep["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
    cp.expect("DELETE", CONFIGMAPS + "/owner-" + n, 200)
    t0 = time.monotonic()
    kube.wait_for(
        lambda: cp.get(CONFIGMAPS + "/dependent-" + n).status == 404,
        limit,
        "garbage collection of dependent-%s after its owner was deleted" % n,
        interval=0.05,
    )
    return time.monotonic() - t0


def test_garbage_collection(cp):
    took = check_gc(cp, 10)
    print("GC removed the dependent %.2f s after its owner" % took)


def test_namespace_deletion(cp):
    ns = "gone-" + uuid.uuid4().hex[:6]
    cp.expect("POST", "/api/v1/namespaces", 201, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    cp.expect("POST", "/api/v1/namespaces/%s/configmaps" % ns, 201, configmap("inside"))
    # the serviceaccount controller gives every namespace its "default" ServiceAccount
    kube.wait_for(
        lambda: cp.get("/api/v1/namespaces/%s/serviceaccounts/default" % ns).status == 200,
        20,
        "ServiceAccount default in " + ns,
    )
    cp.expect("DELETE", "/api/v1/namespaces/" + ns, 200)
    kube.wait_for(lambda: cp.get("/api/v1/namespaces/" + ns).status == 404, 30, "namespace %s finalized" % ns)


def test_apiserver_restart_keeps_data(cp):
    ensure_crd(cp)
    cp.expect("POST", CONFIGMAPS, 201, configmap("survivor", {"answer": "42"}))
    cp.request("POST", WIDGETS, {"apiVersion": GROUP + "/v1", "kind": "Widget", "metadata": {"name": "w1"},
                                 "spec": {"size": 1}})
    before = dict(cp.env)
    took = cp.restart_apiserver()
    print("apiserver restart to ready: %.1f s" % took)
    assert cp.env["KUBE_APISERVER_PID"] != before["KUBE_APISERVER_PID"]
    assert not alive(int(before["KUBE_APISERVER_PID"]))
    for k in ("KUBE_SERVER", "KUBE_ADMIN_TOKEN", "KUBE_NOBODY_TOKEN", "ETCD_ENDPOINT", "KUBE_ETCD_PID",
              "KUBE_CONTROLLER_MANAGER_PID"):
        assert cp.env[k] == before[k], k
    assert cp.env["KUBE_PIDS"].split() == [before["KUBE_ETCD_PID"], cp.env["KUBE_APISERVER_PID"],
                                           before["KUBE_CONTROLLER_MANAGER_PID"]]
    assert alive(int(cp.env["KUBE_CONTROLLER_MANAGER_PID"]))
    assert cp.expect("GET", "/readyz", 200).text == "ok"
    assert cp.expect("GET", CONFIGMAPS + "/survivor", 200).json["data"] == {"answer": "42"}
    assert cp.expect("GET", WIDGETS + "/w1", 200).json["spec"]["size"] in (1, 5)
    cp.expect("GET", CONFIGMAPS, 403, token="nobody")
    # the controller-manager reconnects by itself: GC still works
    took = check_gc(cp, 40)
    print("GC after the apiserver restart: %.2f s" % took)


def test_second_instance_side_by_side(cp):
    with tempfile.TemporaryDirectory(prefix="warren-kube2-") as d:
        other = kube.ControlPlane(d)
        try:
            other.up()
            assert other.server != cp.server and other.env["ETCD_ENDPOINT"] != cp.env["ETCD_ENDPOINT"]
            assert other.admin_token != cp.admin_token
            assert other.expect("GET", "/readyz", 200).text == "ok"
            # separate data: the first one's ConfigMap is not there; the tokens do not cross over
            other.expect("GET", CONFIGMAPS + "/survivor", 404)
            r = other.request("GET", "/api/v1/namespaces", token=cp.admin_token)
            assert r.status == 401, r
        finally:
            other.down()
    assert cp.expect("GET", "/readyz", 200).text == "ok"
