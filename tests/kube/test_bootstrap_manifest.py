"""manifests/envoyproxy-warren.yaml (docs/envoy-bootstrap.md): static checks, no cluster needed.

The manifest is one EnvoyProxy whose spec.bootstrap JSON patches add what every warren-operator
EnvoyPatchPolicy relies on: the internal-listener bootstrap extension, the internal listener
`connector-tunnel` (tcp_proxy -> HTTP/2 CONNECT with the tunnel metadata), the internal listener
`connector-offline` (HTTP connection manager answering every request with 503 `tunnel offline`, for
connectors that are not Ready), and the `warren-gateway` Unix-socket cluster. It also adds the
warren-gateway sidecar. Checked here:
- the names and values that the operator (--internal-listener, --offline-listener), the gateway
  (--connect-unix, docs/internals/connect-listener.md) and Envoy must agree on;
- every key inside the bootstrap values is a proto (snake_case) name. The exceptions are `@type`,
  the contents of filter_metadata, and the keys of typed_extension_protocol_options, which are
  extension names, not fields;
- the patches, applied as Envoy Gateway applies them (RFC 6902 `add` with EnsurePathExistsOnAdd) to
  a skeleton of its default bootstrap, give a consistent bootstrap;
- the whole object validates against Envoy Gateway's EnvoyProxy CRD (openAPIV3Schema). A small
  structural walk checks that every key is declared (unless the node preserves unknown fields or has
  additionalProperties), scalar types, enums and required fields. The CRD is the verbatim copy in
  the shared fixtures (kube.shared_dir: $WARREN_SHARED or ../shared); without them the test fails.
"""

import copy
import os
import re

import pytest
import yaml

import kube

REPO = kube.REPO
MANIFEST = os.path.join(REPO, "manifests", "envoyproxy-warren.yaml")

LISTENER = "connector-tunnel"           # warren-operator --internal-listener default
OFFLINE_LISTENER = "connector-offline"  # warren-operator --offline-listener default
OFFLINE_BODY = "tunnel offline\n"
ERROR_HEADER = "x-warren-error"
CLUSTER = "warren-gateway"
SOCKET = "/var/run/warren/gateway.sock"  # warren-gateway --connect-unix
ENDPOINT_HEADER = "x-warren-endpoint-id"

TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
INTERNAL_LISTENER = "type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
# HeaderValueOption.HeaderAppendAction (config/core/v3/base.proto)
APPEND_ACTIONS = ("APPEND_IF_EXISTS_OR_ADD", "ADD_IF_ABSENT", "OVERWRITE_IF_EXISTS_OR_ADD",
                  "OVERWRITE_IF_EXISTS")


# ---------------------------------------------------------------------------------------------
# helpers

def load_manifest():
    with open(MANIFEST) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    assert len(docs) == 1, "expected one document, got %d" % len(docs)
    return docs[0]


def patches():
    return load_manifest()["spec"]["bootstrap"]["jsonPatches"]


def patch_value(path):
    found = [p["value"] for p in patches() if p.get("path") == path]
    assert found, "no patch at %s" % path
    return found


def listener(name=LISTENER):
    ls = [v for v in patch_value("/static_resources/listeners/-") if v.get("name") == name]
    assert len(ls) == 1, "listener %s added %d times" % (name, len(ls))
    return ls[0]


def offline_hcm():
    chains = listener(OFFLINE_LISTENER)["filter_chains"]
    assert len(chains) == 1
    filters = chains[0]["filters"]
    assert len(filters) == 1
    assert filters[0]["name"] == "envoy.filters.network.http_connection_manager"
    hcm = filters[0]["typed_config"]
    assert hcm["@type"] == HCM
    return hcm


def tcp_proxy():
    chains = listener()["filter_chains"]
    assert len(chains) == 1
    filters = chains[0]["filters"]
    assert len(filters) == 1
    assert filters[0]["name"] == "envoy.filters.network.tcp_proxy"
    tc = filters[0]["typed_config"]
    assert tc["@type"] == TCP_PROXY
    return tc


def cluster():
    cs = [v for v in patch_value("/static_resources/clusters/-") if v.get("name") == CLUSTER]
    assert len(cs) == 1, "cluster %s added %d times" % (CLUSTER, len(cs))
    return cs[0]


def deployment():
    return load_manifest()["spec"]["provider"]["kubernetes"]["envoyDeployment"]


def json_pointer_add(doc, path, value):
    """RFC 6902 `add` as Envoy Gateway applies bootstrap patches: evanphx/json-patch v5 with
    EnsurePathExistsOnAdd, so a missing parent is created (an array if the next token is an index
    or "-", else an object)."""
    assert path.startswith("/"), path
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]
    node = doc
    for i, tok in enumerate(tokens[:-1]):
        nxt = tokens[i + 1]
        if isinstance(node, list):
            node = node[int(tok)]
            continue
        if tok not in node or node[tok] is None:
            node[tok] = [] if (nxt == "-" or nxt.isdigit()) else {}
        node = node[tok]
    last = tokens[-1]
    if isinstance(node, list):
        if last == "-":
            node.append(copy.deepcopy(value))
        else:
            node.insert(int(last), copy.deepcopy(value))
    else:
        node[last] = copy.deepcopy(value)
    return doc


def skeleton_bootstrap(prometheus):
    """The shape of Envoy Gateway's default bootstrap (internal/xds/bootstrap/bootstrap.yaml.tpl):
    no bootstrap_extensions, static_resources.clusters always, listeners only with Prometheus."""
    sr = {"clusters": [{"name": "xds_cluster", "type": "STRICT_DNS"}]}
    if prometheus:
        sr["listeners"] = [{"name": "envoy-gateway-proxy-stats-0.0.0.0-19001"}]
        sr["clusters"].insert(0, {"name": "prometheus_stats", "type": "STATIC"})
    return {"admin": {}, "dynamic_resources": {}, "static_resources": sr}


def patched_bootstrap(prometheus=True):
    doc = skeleton_bootstrap(prometheus)
    for p in patches():
        assert p["op"] == "add", p
        json_pointer_add(doc, p["path"], p["value"])
    return doc


# ---------------------------------------------------------------------------------------------
# the object and its bootstrap

def test_manifest_parses():
    obj = load_manifest()
    assert obj["apiVersion"] == "gateway.envoyproxy.io/v1alpha1"
    assert obj["kind"] == "EnvoyProxy"
    assert obj["metadata"]["name"] == "warren-edge"
    b = obj["spec"]["bootstrap"]
    assert b["type"] == "JSONPatch"
    assert "value" not in b
    assert b["jsonPatches"], "CEL: JSONPatch needs at least one patch"
    for p in b["jsonPatches"]:
        # EG: add needs a value and no from; an explicit path (a JSONPath would fail on a missing array)
        assert p["op"] == "add" and "value" in p and "from" not in p and "jsonPath" not in p, p
        assert p["path"] in ("/bootstrap_extensions/-", "/static_resources/listeners/-",
                             "/static_resources/clusters/-"), p["path"]


def test_bootstrap_extension():
    exts = patch_value("/bootstrap_extensions/-")
    assert [e["name"] for e in exts] == ["envoy.bootstrap.internal_listener"]
    assert exts[0]["typed_config"]["@type"] == INTERNAL_LISTENER


def test_internal_listener_name_and_shape():
    lst = listener()
    assert lst["name"] == LISTENER
    assert lst["internal_listener"] == {}
    # an internal listener must not have an address, nor what the proto forbids on it
    for k in ("address", "additional_addresses", "connection_balance_config", "tcp_backlog_size",
              "freebind", "transparent"):
        assert k not in lst, k


def test_tcp_proxy_tunnels_to_the_gateway():
    tc = tcp_proxy()
    assert tc["stat_prefix"]
    assert tc["cluster"] == CLUSTER
    tun = tc["tunneling_config"]
    assert tun["hostname"] == "%DYNAMIC_METADATA(tunnel:address)%"
    # a plain CONNECT: use_post would add :path/:scheme, which nghttp2 on the gateway resets
    assert not tun.get("use_post") and "post_path" not in tun


def test_endpoint_id_header():
    hdrs = tcp_proxy()["tunneling_config"]["headers_to_add"]
    keys = [h["header"]["key"] for h in hdrs]
    assert ENDPOINT_HEADER in keys
    assert len(keys) == len(set(keys))
    h = next(h for h in hdrs if h["header"]["key"] == ENDPOINT_HEADER)
    assert h["header"]["value"] == "%DYNAMIC_METADATA(tunnel:endpoint_id)%"
    assert h.get("append_action", "APPEND_IF_EXISTS_OR_ADD") in APPEND_ACTIONS
    for h in hdrs:  # Envoy rejects pseudo-headers and host in tunneling headers
        assert not h["header"]["key"].startswith(":") and h["header"]["key"].lower() != "host"
        assert h["header"]["key"] == h["header"]["key"].lower()


def test_uds_cluster():
    c = cluster()
    assert c["type"] == "STATIC"
    assert re.fullmatch(r"\d+(\.\d+)?s", c["connect_timeout"])
    la = c["load_assignment"]
    assert la["cluster_name"] == CLUSTER
    eps = [lb["endpoint"] for e in la["endpoints"] for lb in e["lb_endpoints"]]
    assert len(eps) == 1
    assert eps[0]["address"] == {"pipe": {"path": SOCKET}}
    opts = c["typed_extension_protocol_options"][HTTP_OPTIONS]
    assert opts["@type"] == "type.googleapis.com/" + HTTP_OPTIONS
    h2 = opts["explicit_http_config"]["http2_protocol_options"]
    assert isinstance(h2, dict)
    assert "http2_protocol_options" not in c  # the deprecated cluster-level form
    # the proto's bounds (core/v3/protocol.proto)
    assert 1 <= h2.get("max_concurrent_streams", 1) <= 2147483647
    for k in ("initial_stream_window_size", "initial_connection_window_size"):
        assert 65535 <= h2.get(k, 65535) <= 2147483647, k
    th = c["circuit_breakers"]["thresholds"]
    default = [t for t in th if t.get("priority", "DEFAULT") == "DEFAULT"]
    assert len(default) == 1
    assert default[0]["max_requests"] > 1024  # raised above Envoy's default for many tunnels
    assert default[0]["max_pending_requests"] > 1024


def test_offline_listener_name_and_shape():
    lst = listener(OFFLINE_LISTENER)
    assert lst["internal_listener"] == {}
    for k in ("address", "additional_addresses", "connection_balance_config", "tcp_backlog_size",
              "freebind", "transparent"):
        assert k not in lst, k
    assert OFFLINE_LISTENER != LISTENER


def test_offline_listener_answers_503():
    hcm = offline_hcm()
    assert hcm["stat_prefix"]
    assert hcm.get("codec_type", "AUTO") in ("AUTO", "HTTP1", "HTTP2")
    # a static route table: not RDS (EG's xDS does not serve it) nor scoped routes
    assert "rds" not in hcm and "scoped_routes" not in hcm
    filters = hcm["http_filters"]
    assert filters[-1]["name"] == "envoy.filters.http.router"  # terminal filter, last
    assert filters[-1]["typed_config"]["@type"] == ROUTER
    rc = hcm["route_config"]
    assert rc["name"]
    vhosts = rc["virtual_hosts"]
    assert len(vhosts) == 1
    assert vhosts[0]["name"] and vhosts[0]["domains"] == ["*"]
    routes = vhosts[0]["routes"]
    assert routes, "no route: every request would get a 404"
    # the first route takes every request (and a CONNECT has no :path, but the operator never
    # sends one here)
    assert routes[0]["match"] == {"prefix": "/"}
    for r in routes:
        # Route.action is a oneof: only direct_response, never a cluster
        for k in ("route", "redirect", "filter_action", "non_forwarding_action"):
            assert k not in r, k
        dr = r["direct_response"]
        assert dr["status"] == 503
        assert dr["body"] == {"inline_string": OFFLINE_BODY}
        # Envoy adds content-type text/plain to a local reply with a body unless the route set
        # one; if the route sets one it must be text/plain
        hdrs = r.get("response_headers_to_add", [])
        keys = [h["header"]["key"] for h in hdrs]
        assert len(keys) == len(set(keys))
        for h in hdrs:
            k = h["header"]["key"]
            assert k == k.lower() and not k.startswith(":") and k != "host", k
            assert h.get("append_action", "APPEND_IF_EXISTS_OR_ADD") in APPEND_ACTIONS
            assert "append" not in h  # deprecated in favour of append_action
            if k == "content-type":
                assert h["header"]["value"].split(";")[0].strip() == "text/plain"
        err = [h for h in hdrs if h["header"]["key"] == ERROR_HEADER]
        assert len(err) == 1 and err[0]["header"]["value"] == "tunnel offline"
        assert err[0]["append_action"] == "OVERWRITE_IF_EXISTS_OR_ADD"
    # the proto's bound (route_components.proto DirectResponseAction.status: 100 <= s < 600)
    assert all(100 <= r["direct_response"]["status"] < 600 for r in routes)


def test_offline_listener_keys_are_snake_case():
    assert non_snake_keys(listener(OFFLINE_LISTENER)) == []


SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def non_snake_keys(node, path=""):
    """Keys that are not proto field names. `@type` is allowed anywhere (Any). filter_metadata
    contents are user data. typed_extension_protocol_options is a map keyed by extension name."""
    bad = []
    if isinstance(node, dict):
        for k, v in node.items():
            p = "%s.%s" % (path, k) if path else k
            if k == "@type":
                continue
            if not SNAKE.match(k):
                bad.append(p)
            if k == "filter_metadata":
                continue
            if k == "typed_extension_protocol_options" and isinstance(v, dict):
                for name, opt in v.items():
                    assert re.fullmatch(r"[a-z0-9_.]+\.[A-Za-z0-9]+", name), "%s.%s" % (p, name)
                    bad += non_snake_keys(opt, "%s.%s" % (p, name))
                continue
            bad += non_snake_keys(v, p)
    elif isinstance(node, list):
        for i, x in enumerate(node):
            bad += non_snake_keys(x, "%s[%d]" % (path, i))
    return bad


def test_bootstrap_keys_are_snake_case():
    for p in patches():
        for tok in p["path"].strip("/").split("/"):
            assert tok == "-" or tok.isdigit() or SNAKE.match(tok), p["path"]
        assert non_snake_keys(p["value"]) == [], p["path"]
    # and the check itself notices camelCase
    assert non_snake_keys({"statPrefix": "x", "typed_config": {"@type": "t", "lbEndpoints": []}}) == [
        "statPrefix", "typed_config.lbEndpoints"]
    assert non_snake_keys({"metadata": {"filter_metadata": {"tunnel": {"endpointID": "x"}}}}) == []


@pytest.mark.parametrize("prometheus", [True, False])
def test_patches_apply_to_the_default_bootstrap(prometheus):
    b = patched_bootstrap(prometheus)
    names = [e["name"] for e in b["bootstrap_extensions"]]
    assert names.count("envoy.bootstrap.internal_listener") == 1
    listeners = {x["name"]: x for x in b["static_resources"]["listeners"]}
    clusters = {x["name"]: x for x in b["static_resources"]["clusters"]}
    assert len(listeners) == len(b["static_resources"]["listeners"]), "duplicate listener names"
    assert len(clusters) == len(b["static_resources"]["clusters"]), "duplicate cluster names"
    assert LISTENER in listeners and CLUSTER in clusters and "xds_cluster" in clusters
    assert OFFLINE_LISTENER in listeners
    assert ("envoy-gateway-proxy-stats-0.0.0.0-19001" in listeners) == prometheus
    # every cluster a tcp_proxy names is in the bootstrap itself: Envoy would accept a missing one
    # and fail every connection at run time, and EG's CDS never defines warren's clusters
    for lst in listeners.values():
        for ch in lst.get("filter_chains", []):
            for f in ch.get("filters", []):
                tc = f.get("typed_config", {})
                c = tc.get("cluster")
                if c is not None:
                    assert c in clusters, c
                # and every cluster a static HTTP route names
                for vh in tc.get("route_config", {}).get("virtual_hosts", []):
                    for r in vh.get("routes", []):
                        c = r.get("route", {}).get("cluster")
                        if c is not None:
                            assert c in clusters, c
    # the patches did not touch what Envoy Gateway refuses to see modified
    assert b["dynamic_resources"] == {}
    assert clusters["xds_cluster"] == {"name": "xds_cluster", "type": "STRICT_DNS"}


def test_sidecar_and_shared_socket_directory():
    d = deployment()
    sock_dir = os.path.dirname(SOCKET)
    pod_volumes = {v["name"]: v for v in d["pod"]["volumes"]}
    envoy_mounts = {m["mountPath"]: m["name"] for m in d["container"]["volumeMounts"]}
    assert sock_dir in envoy_mounts
    shared = envoy_mounts[sock_dir]
    assert "emptyDir" in pod_volumes[shared]
    gw = [c for c in d["initContainers"] if c["name"] == "warren-gateway"]
    assert len(gw) == 1
    gw = gw[0]
    assert gw.get("restartPolicy") == "Always"  # native sidecar: outlives Envoy's drain
    assert gw["image"]
    args = gw["args"]
    assert args[0] == "serve"
    assert args[args.index("--connect-unix") + 1] == SOCKET
    ident = args[args.index("--identity") + 1]
    gw_mounts = {m["mountPath"]: m["name"] for m in gw["volumeMounts"]}
    assert gw_mounts.get(sock_dir) == shared
    # the key's directory is a volume the copy step (a regular init container before it) fills
    key_dir = os.path.dirname(ident)
    assert key_dir in gw_mounts
    names = [c["name"] for c in d["initContainers"]]
    copier = [c for c in d["initContainers"][:names.index("warren-gateway")]
              if any(m["name"] == gw_mounts[key_dir] and not m.get("readOnly")
                     for m in c.get("volumeMounts", []))]
    assert copier and copier[0].get("restartPolicy") is None
    assert "chmod 0600" in " ".join(copier[0]["command"])
    # same uid/gid as Envoy Gateway's envoy container, for the 0660 socket
    sc = gw["securityContext"]
    assert sc["runAsUser"] == 65532 and sc["runAsGroup"] == 65532
    # every volume a container mounts exists
    for c in d["initContainers"] + [d["container"]]:
        for m in c.get("volumeMounts", []):
            assert m["name"] in pod_volumes, m


# ---------------------------------------------------------------------------------------------
# against the EnvoyProxy CRD

TYPED = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool,
         "number": (int, float)}


def validate(s, v, path, errs):
    """Structural check of |v| against schema node |s|: declared keys (unless preserve-unknown or
    additionalProperties), types of scalars and containers, enums, required keys."""
    if s.get("x-kubernetes-int-or-string"):
        if not isinstance(v, (int, str)) or isinstance(v, bool):
            errs.append("%s: %r is not an int or string" % (path, v))
        return
    t = s.get("type")
    if t in TYPED and (not isinstance(v, TYPED[t]) or (isinstance(v, bool) and t != "boolean")):
        errs.append("%s: %r is not a %s" % (path, v, t))
        return
    if "enum" in s and v not in s["enum"]:
        errs.append("%s: %r not in %r" % (path, v, s["enum"]))
    if isinstance(v, dict):
        for r in s.get("required", []):
            if r not in v:
                errs.append("%s.%s: required" % (path, r))
        props = s.get("properties", {})
        extra = s.get("additionalProperties")
        preserve = s.get("x-kubernetes-preserve-unknown-fields")
        for k, x in v.items():
            p = "%s.%s" % (path, k) if path else k
            if k in props:
                validate(props[k], x, p, errs)
            elif isinstance(extra, dict):
                validate(extra, x, p, errs)
            elif extra is True or preserve:
                continue
            else:
                errs.append("%s: not in the schema (would be pruned)" % p)
    elif isinstance(v, list) and "items" in s:
        for i, x in enumerate(v):
            validate(s["items"], x, "%s[%d]" % (path, i), errs)


@pytest.fixture(scope="module")
def schema():
    with open(kube.shared_dir("fixtures", "crds", "envoyproxies.gateway.envoyproxy.io.yaml")) as f:
        crd = next(d for d in yaml.safe_load_all(f) if d)
    assert crd["spec"]["names"]["kind"] == "EnvoyProxy"
    v = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    return v["schema"]["openAPIV3Schema"]


def test_manifest_validates_against_the_crd(schema):
    obj = load_manifest()
    assert obj["apiVersion"] == "gateway.envoyproxy.io/v1alpha1"
    errs = []
    # metadata is the apiserver's ObjectMeta, not described by the CRD
    body = {k: v for k, v in obj.items() if k != "metadata"}
    validate(schema, body, "", errs)
    for k in ("name", "namespace"):
        if not isinstance(obj["metadata"].get(k, ""), str):
            errs.append("metadata.%s: not a string" % k)
    assert errs == []


def test_crd_rules_the_walk_cannot_express(schema):
    # CEL on spec.bootstrap: JSONPatch needs jsonPatches, otherwise value
    b = load_manifest()["spec"]["bootstrap"]
    rule = schema["properties"]["spec"]["properties"]["bootstrap"]["x-kubernetes-validations"][0]["rule"]
    assert "jsonPatches.size() > 0" in rule
    assert len(b["jsonPatches"]) > 0
    # CEL on envoyDeployment.container: image and imageRepository are exclusive
    c = deployment()["container"]
    assert not ("image" in c and "imageRepository" in c)


def test_validator_refuses(schema):
    # the CRD check is only as good as validate(): things it must catch
    good = load_manifest()
    good.pop("metadata")
    cases = []
    x = copy.deepcopy(good); x["spec"]["bootstrap"]["type"] = "Patch"; cases.append(x)
    x = copy.deepcopy(good); x["spec"]["bootstrap"]["jsonPatches"][0]["op"] = "append"; cases.append(x)
    x = copy.deepcopy(good); x["spec"]["bootstrap"]["jsonPatches"][0].pop("op"); cases.append(x)
    x = copy.deepcopy(good); x["spec"]["bootstrap"]["bogus"] = 1; cases.append(x)
    x = copy.deepcopy(good); x["spec"]["provider"]["kubernetes"]["envoyDeployment"]["sidecars"] = []; cases.append(x)
    x = copy.deepcopy(good); x["spec"]["provider"]["kubernetes"]["envoyDeployment"]["pod"]["volumes"][0]["name"] = 7; cases.append(x)
    x = copy.deepcopy(good); x["spec"]["provider"]["kubernetes"]["envoyDeployment"]["initContainers"][0].pop("name"); cases.append(x)
    x = copy.deepcopy(good); x["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]["volumeMounts"][0]["readOnly"] = "yes"; cases.append(x)
    x = copy.deepcopy(good); x["spec"]["provider"].pop("type"); cases.append(x)
    for bad in cases:
        errs = []
        validate(schema, bad, "", errs)
        assert errs, bad
    # and preserve-unknown nodes (patch values) accept anything
    x = copy.deepcopy(good)
    x["spec"]["bootstrap"]["jsonPatches"][0]["value"]["anything"] = {"goes": [1, "x"]}
    errs = []
    validate(schema, x, "", errs)
    assert errs == []
