"""test_operator_golden.py - the operator's EnvoyPatchPolicy patches applied to Envoy Gateway's real
xDS output with an independent JSON Patch implementation (Debian's python3-jsonpatch).

`warren-operator render` translates HTTPProxy + Connector manifests exactly as the running operator
does (same code, operator/translate.c). The base documents are Envoy Gateway's own translator output
(shared/fixtures/envoy-gateway/xds-name-scheme-v1.*, camelCase protojson) converted to the proto
(snake_case) names EG applies patches to (its README says which keys stay as they are). A patch
that names a resource the fixture does not have, or that python-jsonpatch cannot apply, fails.
No control plane needed.
"""

import copy
import json
import os
import re
import subprocess
import tempfile

import jsonpatch
import pytest
import yaml

import kube

BIN = os.path.join(kube.BUILD, "operator", "warren-operator")
EG = kube.shared_dir("fixtures", "envoy-gateway")
ENDPOINT_ID = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
T_CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
T_ROUTES = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
# The fixture's HTTPS listener and the cluster of HTTPRoute default/httproute-1 rule 0.
GATEWAY = ["--gateway", "envoy-gateway/gateway-2", "--listener", "https-http3"]
ROUTE_CONFIG = "envoy-gateway/gateway-2/https-http3"
CLUSTER0 = "httproute/default/httproute-1/rule/0"

# Keys whose values are maps (or google.protobuf.Struct), whose own keys are data, not fields.
MAP_FIELDS = {"filterMetadata", "typedFilterMetadata", "typedExtensionProtocolOptions",
              "typedPerFilterConfig"}


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def to_proto_names(v, keep=False):
    """camelCase protojson -> the snake_case names EG patches (fixtures README)."""
    if isinstance(v, list):
        return [to_proto_names(x, keep) for x in v]
    if not isinstance(v, dict):
        return v
    out = {}
    for k, x in v.items():
        if keep or k == "@type":
            out[k] = x if keep else to_proto_names(x)
        elif k in MAP_FIELDS:
            # the map's keys stay; filter metadata values are Structs (all data), typed configs
            # hold fields again
            inner = {mk: (copy.deepcopy(mv) if k in ("filterMetadata",) else to_proto_names(mv))
                     for mk, mv in x.items()}
            out[snake(k)] = inner
        else:
            out[snake(k)] = to_proto_names(x)
    return out


def load_fixture(name):
    with open(os.path.join(EG, name)) as f:
        return to_proto_names(yaml.safe_load(f))


@pytest.fixture(scope="module")
def xds():
    return {T_ROUTES: load_fixture("xds-name-scheme-v1.routes.yaml"),
            T_CLUSTER: load_fixture("xds-name-scheme-v1.clusters.yaml")}


def manifests(*docs):
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    yaml.safe_dump_all(docs, f)
    f.close()
    return f.name


def connector(name="laptop", ns="default", endpoint_id=ENDPOINT_ID):
    status = {"connectionDetails": {"type": "PublicKey", "publicKey": {
        "id": endpoint_id, "homeRelay": "https://relay.example.com/", "discoveryMode": "DNS",
        "addresses": [{"address": "198.18.0.10", "port": 4433}]}}} if endpoint_id else {}
    return {"apiVersion": "networking.datumapis.com/v1alpha1", "kind": "Connector",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"connectorClassName": "datum-connect"}, "status": status}


def proxy(name="httproute-1", ns="default", hostnames=("myapp.example.com",), rules=None):
    if rules is None:
        rules = [{"backends": [{"endpoint": "http://127.0.0.1:3000",
                                "connector": {"name": "laptop"}}]}]
    return {"apiVersion": "networking.datumapis.com/v1alpha", "kind": "HTTPProxy",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"hostnames": list(hostnames), "rules": rules}}


def render(*docs, args=GATEWAY, expect_rc=0):
    path = manifests(*docs)
    try:
        p = subprocess.run([BIN, "render", *args, path], capture_output=True, text=True,
                           timeout=30)
    finally:
        os.unlink(path)
    assert p.returncode == expect_rc, p.stderr
    return [d for d in yaml.safe_load_all(p.stdout) if d], p.stderr


def policies(out):
    return [d for d in out if d["kind"] == "EnvoyPatchPolicy"]


def apply_policies(xds, pols):
    """Applies every patch as EG does: find the resource by type + exact name, apply one
    operation, store it back. Returns the patched copy."""
    res = copy.deepcopy(xds)
    for pol in pols:
        assert pol["spec"]["type"] == "JSONPatch"
        for p in pol["spec"]["jsonPatches"]:
            docs = res[p["type"]]
            idx = [i for i, d in enumerate(docs) if d["name"] == p["name"]]
            if not idx:
                raise LookupError("Unable to find xds resources: %s/%s" % (p["type"], p["name"]))
            op = p["operation"]
            assert "jsonPath" not in op  # pointers only: portable and checkable here
            docs[idx[0]] = jsonpatch.apply_patch(docs[idx[0]], [op])
    return res


def find(docs, name):
    (d,) = [d for d in docs if d["name"] == name]
    return d


def assert_snake(v, path=""):
    if isinstance(v, list):
        for i, x in enumerate(v):
            assert_snake(x, "%s[%d]" % (path, i))
    elif isinstance(v, dict):
        for k, x in v.items():
            if k == "@type":
                continue
            assert re.fullmatch(r"[a-z0-9_]+", k), "%s.%s is not a proto field name" % (path, k)
            if k == "filter_metadata":
                continue  # its keys and values are data
            assert_snake(x, path + "." + k)


def test_connector_rule_goes_through_the_tunnel(xds):
    out, _ = render(proxy(), connector())
    (pol,) = policies(out)
    assert pol["metadata"]["namespace"] == "envoy-gateway"  # the Gateway's namespace
    assert pol["metadata"]["name"] == "default.httproute-1"
    assert "ownerReferences" not in pol["metadata"]  # an owner in another namespace is invalid
    assert pol["spec"]["targetRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                        "name": "gateway-2"}
    for p in pol["spec"]["jsonPatches"]:
        assert_snake(p["operation"]["value"])
    patched = apply_policies(xds, [pol])

    c = find(patched[T_CLUSTER], CLUSTER0)
    assert c["type"] == "STATIC"
    (ep,) = c["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert ep["endpoint"]["address"] == {
        "envoy_internal_address": {"server_listener_name": "connector-tunnel"}}
    assert ep["metadata"]["filter_metadata"]["tunnel"] == {
        "address": "127.0.0.1:3000", "endpoint_id": ENDPOINT_ID, "connector": "default/laptop"}
    ts = c["transport_socket"]
    assert ts["name"] == "envoy.transport_sockets.internal_upstream"
    assert ts["typed_config"]["passthrough_metadata"] == [{"kind": {"host": {}}, "name": "tunnel"}]
    assert ts["typed_config"]["transport_socket"]["name"] == "envoy.transport_sockets.raw_buffer"

    rc = find(patched[T_ROUTES], ROUTE_CONFIG)
    vh = rc["virtual_hosts"][0]
    assert vh["domains"].count("127.0.0.1") == 1
    first = vh["routes"][0]
    assert first["match"]["connect_matcher"] == {}
    assert first["match"]["headers"] == [{"name": ":authority",
                                          "string_match": {"exact": "127.0.0.1:3000"}}]
    assert first["route"]["cluster"] == CLUSTER0
    assert first["route"]["upgrade_configs"] == [{"upgrade_type": "CONNECT", "connect_config": {}}]
    # the prefix routes come after the CONNECT route, unchanged
    assert vh["routes"][1:] == find(xds[T_ROUTES], ROUTE_CONFIG)["virtual_hosts"][0]["routes"]

    # every other resource is untouched
    for t in (T_CLUSTER, T_ROUTES):
        for before in xds[t]:
            if before["name"] not in (CLUSTER0, ROUTE_CONFIG):
                assert find(patched[t], before["name"]) == before


def test_route_is_attached_to_the_gateway_listener():
    out, _ = render(proxy(rules=[{
        "name": "api",
        "matches": [{"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET"}],
        "filters": [{"type": "RequestHeaderModifier",
                     "requestHeaderModifier": {"set": [{"name": "x-a", "value": "1"}]}}],
        "backends": [{"endpoint": "http://127.0.0.1:3000", "connector": {"name": "laptop"}}]}]),
        connector())
    (route,) = [d for d in out if d["kind"] == "HTTPRoute"]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["namespace"] == "default"
    assert route["metadata"]["labels"]["networking.datumapis.com/httpproxy"] == "httproute-1"
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "namespace": "envoy-gateway", "name": "gateway-2",
                                            "sectionName": "https-http3"}]
    assert route["spec"]["hostnames"] == ["myapp.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["name"] == "api"
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET"}]
    assert rule["filters"][0]["type"] == "RequestHeaderModifier"
    assert rule["backendRefs"] == [{"group": "", "kind": "Service", "name": "warren-tunnel",
                                    "port": 80}]


def test_shared_host_is_registered_once_and_connect_routes_do_not_shadow(xds):
    # three proxies tunnel to 127.0.0.1 (two ports): the domain may appear once per route
    # configuration or Envoy rejects it; each target keeps its own CONNECT route.
    a = proxy("httproute-1")
    b = proxy("zeta", hostnames=["b.example.com"], rules=[
        {"backends": [{"endpoint": "http://127.0.0.1:4000", "connector": {"name": "laptop"}}]},
        {"backends": [{"endpoint": "http://localhost:5000", "connector": {"name": "laptop"}}]}])
    c = proxy("alpha", hostnames=["c.example.com"])
    out, _ = render(a, b, c, connector())
    pols = policies(out)
    assert len(pols) == 3
    # the rules of zeta and alpha have clusters the fixture does not hold: apply their route
    # configuration patches only, and check the cluster patches by name
    route_patches = [dict(p, spec=dict(p["spec"], jsonPatches=[
        x for x in p["spec"]["jsonPatches"] if x["type"] == T_ROUTES])) for p in pols]
    patched = apply_policies(xds, route_patches)
    vh = find(patched[T_ROUTES], ROUTE_CONFIG)["virtual_hosts"][0]
    assert vh["domains"].count("127.0.0.1") == 1
    assert vh["domains"].count("localhost") == 1
    connect = [r for r in vh["routes"] if "connect_matcher" in r["match"]]
    targets = sorted(r["match"]["headers"][0]["string_match"]["exact"] for r in connect)
    assert targets == ["127.0.0.1:3000", "127.0.0.1:3000", "127.0.0.1:4000", "localhost:5000"]
    n = len(connect)
    assert all("connect_matcher" in r["match"] for r in vh["routes"][:n])
    assert not any("connect_matcher" in r["match"] for r in vh["routes"][n:])
    # alpha is the smallest name: it registers 127.0.0.1
    owner = [p["metadata"]["name"] for p in pols
             if any(x["operation"].get("value") == "127.0.0.1" for x in p["spec"]["jsonPatches"])]
    assert owner == ["default.alpha"]
    zeta = [p for p in pols if p["metadata"]["name"] == "default.zeta"][0]
    names = [x["name"] for x in zeta["spec"]["jsonPatches"] if x["type"] == T_CLUSTER]
    assert names == ["httproute/default/zeta/rule/0", "httproute/default/zeta/rule/1"]


def test_offline_connector_answers_503(xds):
    out, _ = render(proxy(), connector(), args=GATEWAY + ["--offline"])
    patched = apply_policies(xds, policies(out))
    c = find(patched[T_CLUSTER], CLUSTER0)
    (ep,) = c["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert ep["endpoint"]["address"]["envoy_internal_address"]["server_listener_name"] == \
        "connector-offline"
    assert "endpoint_id" not in ep["metadata"]["filter_metadata"]["tunnel"]
    first = find(patched[T_ROUTES], ROUTE_CONFIG)["virtual_hosts"][0]["routes"][0]
    assert first["direct_response"] == {"status": 503, "body": {"inline_string": "tunnel offline\n"}}
    assert "route" not in first


def test_connector_without_endpoint_id_is_offline(xds):
    out, _ = render(proxy(), connector(endpoint_id=None))
    patched = apply_policies(xds, policies(out))
    c = find(patched[T_CLUSTER], CLUSTER0)
    assert c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "envoy_internal_address"]["server_listener_name"] == "connector-offline"


def test_https_endpoint_gets_tls_inside_the_tunnel(xds):
    out, _ = render(proxy(rules=[{"backends": [{
        "endpoint": "https://app.internal:8443", "connector": {"name": "laptop"}}]}]), connector())
    patched = apply_policies(xds, policies(out))
    inner = find(patched[T_CLUSTER], CLUSTER0)["transport_socket"]["typed_config"]["transport_socket"]
    assert inner["name"] == "envoy.transport_sockets.tls"
    assert inner["typed_config"]["sni"] == "app.internal"


def test_patch_for_a_missing_listener_cannot_apply(xds):
    out, _ = render(proxy(), connector(), args=["--gateway", "envoy-gateway/gateway-2",
                                                "--listener", "no-such-listener"])
    with pytest.raises(LookupError):
        apply_policies(xds, policies(out))


def test_same_namespace_gateway_gets_owner_metadata():
    p = proxy()
    p["metadata"]["uid"] = "0b0b0b0b-1111-2222-3333-444444444444"
    out, _ = render(p, connector(), args=["--gateway", "edge", "--listener", "https"])
    (pol,) = policies(out)
    assert pol["metadata"]["namespace"] == "default" and pol["metadata"]["name"] == "httproute-1"
    # render has no owner UIDs... unless the manifest carries one, as an object read back does
    refs = pol["metadata"]["ownerReferences"]
    assert refs[0]["kind"] == "HTTPProxy" and refs[0]["controller"] is True
    patches = [x for x in pol["spec"]["jsonPatches"] if x["type"] == T_ROUTES]
    assert {x["name"] for x in patches} == {"default/edge/https"}


@pytest.mark.parametrize("rules,hostnames,why", [
    ([{"backends": [{"endpoint": "http://127.0.0.1:3000", "connector": {"name": "nope"}}]}],
     ["a.example.com"], "ConnectorNotFound"),
    ([{"backends": [{"endpoint": "http://127.0.0.1:3000", "connector": {"name": "laptop"}}]}],
     ["Bad_Host"], "spec.hostnames[0]"),
    ([{"filters": [{"type": "RequestMirror", "requestMirror": {}}],
       "backends": [{"endpoint": "http://127.0.0.1:3000", "connector": {"name": "laptop"}}]}],
     ["a.example.com"], "UnsupportedValue"),
    ([{"backends": [{"endpoint": "ftp://127.0.0.1", "connector": {"name": "laptop"}}]}],
     ["a.example.com"], "the scheme must be http or https"),
    ([{"backends": [{"endpoint": "http://example.org"}]}], ["a.example.com"],
     "only connector backends"),
])
def test_invalid_proxies_are_reported_not_rendered(rules, hostnames, why):
    out, err = render(proxy(hostnames=hostnames, rules=rules), connector(), expect_rc=1)
    assert out == []
    assert why in err and "HTTPProxy default/httproute-1" in err
