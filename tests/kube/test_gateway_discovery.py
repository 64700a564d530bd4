"""test_gateway_discovery.py - warren-gateway learns node addresses from Connector status.

A real control plane (kube.py) with warren's CRDs; the real backend.py, warren-heartbeat and
warren-gateway of the integration tests (tests/integration/harness.py). The gateway runs as the
user "nobody" bound to a ClusterRole that only allows get/list/watch on connectors (the RBAC of
docs/internals/gateway-discovery.md), with --discover-connectors=default and no --peer/--routes:
every address it dials comes from a Connector's status.connectionDetails.
CONNECTs carry x-warren-endpoint-id only (no x-warren-node-addr).
"""

import os
import re
import signal
import sys
import time

import pytest

import kube

sys.path.insert(0, os.path.join(kube.REPO, "tests", "integration"))
import harness  # noqa: E402  (python3-h2 client, process helpers)

NS = "default"
OTHER_NS = "elsewhere"
API = "/apis/networking.datumapis.com/v1alpha1"
MERGE = "application/merge-patch+json"
HELLO = b"hello from the laptop\n"
SWITCH_BUDGET_S = 5.0  # Connector status written -> a CONNECT through the new address answered

RBAC_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
    "metadata": {"name": "warren-gateway-discovery"},
    "rules": [{"apiGroups": ["networking.datumapis.com"], "resources": ["connectors"],
               "verbs": ["get", "list", "watch"]}]}
RBAC_BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
    "metadata": {"name": "warren-gateway-discovery"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                "name": "warren-gateway-discovery"},
    "subjects": [{"kind": "User", "name": "nobody", "apiGroup": "rbac.authorization.k8s.io"}]}


def connectors(ns):
    return "%s/namespaces/%s/connectors" % (API, ns)


def create_connector(cp, name, ns=NS):
    cp.expect("POST", connectors(ns), 201, {
        "apiVersion": "networking.datumapis.com/v1alpha1", "kind": "Connector",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"connectorClassName": "datum-connect"}})


def publish(cp, name, endpoint_id, addrs, ns=NS):
    """Writes status.connectionDetails as the agent would ([(ip, port)], in order)."""
    cp.expect("PATCH", connectors(ns) + "/" + name + "/status", 200, {"status": {
        "connectionDetails": {"type": "PublicKey", "publicKey": {
            "id": endpoint_id, "homeRelay": "", "discoveryMode": "DNS",
            "addresses": [{"address": a, "port": p} for a, p in addrs]}}}}, content_type=MERGE)


@pytest.fixture(scope="module")
def env(request):
    with kube.module_control_plane(request, "test_gateway_discovery") as cp:
        kube.install_warren_crds(cp, upstream=False)
        cp.expect("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", 201, RBAC_ROLE)
        cp.expect("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", 201, RBAC_BINDING)
        cp.expect("POST", "/api/v1/namespaces", 201, {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": OTHER_NS}})
        s = harness.Setup("gateway-discovery", edge=False)
        s.agent2 = None
        failed_before = request.session.testsfailed
        try:
            s.start_backend()
            s.start_agent()
            # the agent's Connector exists before the gateway starts (found by the first list)
            create_connector(cp, "laptop")
            # IPv6 first: the gateway's QUIC socket is IPv4 (0.0.0.0:0), so it must take the
            # second, reachable address while keeping the published order otherwise
            publish(cp, "laptop", s.agent_id, [("::1", s.agent_port), ("127.0.0.1", s.agent_port)])
            # the same endpoint ID published in a namespace the gateway does not watch
            create_connector(cp, "decoy", ns=OTHER_NS)
            publish(cp, "decoy", s.agent_id, [("127.0.0.1", harness.free_port("udp"))], ns=OTHER_NS)
            argv = [harness.GATEWAY, "serve", "--identity", s.gw_key,
                    "--connect-tcp", "127.0.0.1:%d" % s.connect_port,
                    "--kubeconfig", cp.env["KUBE_KUBECONFIG_NOBODY"],
                    "--discover-connectors=" + NS, "--log-level", "debug"]
            s.gateway = harness.Proc("gateway", argv, s.logdir)
            s.procs.append(s.gateway)
            s.gateway.start(timeout=15)
        except BaseException:
            print(s.logs())
            s.stop_all()
            raise
        try:
            yield cp, s
        finally:
            codes = s.stop_all()
            problems = s.problems(codes)
            if problems or request.session.testsfailed > failed_before:
                print("exit codes: %s" % codes)
                print(s.logs())
            else:
                s.drop_logs()
        assert not problems, "after the tests: %s" % problems


def get_hello(s, timeout=10.0):
    """One CONNECT with x-warren-endpoint-id only, then GET / through it."""
    with s.h2() as c:
        st = c.connect(s.target, s.agent_id, timeout=timeout)
        status = st.wait_response(timeout)
        assert status == 200, "CONNECT answered %s %s" % (status, st.headers)
        r = harness.http_over(st, "GET", "/", host="app.localhost", timeout=timeout)
        assert r.status == 200
        assert r.read() == HELLO


def learned(s, addr, since=0, timeout=15.0):
    return s.gateway.wait_log(r"discovery: %s -> %s \(Connector %s/laptop\)"
                              % (s.agent_id, re.escape(addr), NS), timeout=timeout, since=since)


def test_address_learned_from_connector(env):
    cp, s = env
    learned(s, "127.0.0.1:%d" % s.agent_port)
    s.gateway.wait_log(r"discovery: synced, 1 Connectors")
    get_hello(s)
    assert s.gateway.count(r"quic connection established peer=%s addr=127\.0\.0\.1:%d"
                           % (s.agent_id[:8], s.agent_port)) == 1


def test_follows_the_agent_to_a_new_address(env):
    """The agent comes back on another port (a second process with the same key, while the first
    still runs): once the Connector says so, new tunnels go there; a tunnel already open on the
    old connection finishes on it, and that connection is closed after it."""
    cp, s = env
    with s.h2() as c:
        old = c.connect(s.target, s.agent_id)  # open, request not sent yet
        assert old.wait_response(10) == 200
        port2 = harness.free_port("udp")
        argv = list(s.agent_argv())
        argv[argv.index("--listen") + 1] = "127.0.0.1:%d" % port2
        s.agent2 = harness.Proc("heartbeat2", argv, s.logdir)
        s.procs.append(s.agent2)
        s.agent2.start(timeout=15)
        mark = s.gateway.log_size()
        t0 = time.monotonic()
        publish(cp, "laptop", s.agent_id, [("127.0.0.1", port2)])
        learned(s, "127.0.0.1:%d" % port2, since=mark)
        get_hello(s)
        took = time.monotonic() - t0
        print("Connector status written -> CONNECT answered through the new address: %.2f s" % took)
        assert took < SWITCH_BUDGET_S
        assert s.gateway.count(r"moving off its connection", since=mark) == 1
        assert s.gateway.count(r"quic connection established peer=%s addr=127\.0\.0\.1:%d"
                               % (s.agent_id[:8], port2), since=mark) == 1
        # the tunnel opened before the switch still works, on the old connection
        r = harness.http_over(old, "GET", "/", host="app.localhost", timeout=10)
        assert r.status == 200 and r.read() == HELLO
        assert old.recv(timeout=10) == b""
    s.gateway.wait_log(r"pool: closing a replaced connection", since=mark, timeout=10)
    # the first agent is gone for good: the gateway does not need it any more
    s.agent.stop()
    get_hello(s)


def test_agent_restarted_on_another_port(env):
    """The agent is killed (no CONNECTION_CLOSE: the gateway's connection to it looks alive) and
    restarted on another port; the next CONNECT after the status update reaches it."""
    cp, s = env
    s.agent2.kill()
    port3 = harness.free_port("udp")
    s.agent2.argv[s.agent2.argv.index("--listen") + 1] = "127.0.0.1:%d" % port3
    s.agent2.start(timeout=15)
    mark = s.gateway.log_size()
    t0 = time.monotonic()
    publish(cp, "laptop", s.agent_id, [("127.0.0.1", port3)])
    learned(s, "127.0.0.1:%d" % port3, since=mark)
    get_hello(s)
    took = time.monotonic() - t0
    print("agent restarted: status written -> CONNECT answered: %.2f s" % took)
    assert took < SWITCH_BUDGET_S
    assert s.gateway.count(r"quic connection established peer=%s addr=127\.0\.0\.1:%d"
                           % (s.agent_id[:8], port3), since=mark) == 1


def test_invalid_ids_are_ignored(env):
    cp, s = env
    mark = s.gateway.log_size()
    create_connector(cp, "bogus")
    publish(cp, "bogus", "not-a-key", [("127.0.0.1", 9)])
    s.gateway.wait_log(r'Connector %s/bogus: connectionDetails\.publicKey\.id "not-a-key" is not '
                       r"a 64-hex endpoint ID: ignored" % NS, since=mark)
    create_connector(cp, "small-order")
    publish(cp, "small-order", "00" * 32, [("127.0.0.1", 9)])
    s.gateway.wait_log(r"Connector %s/small-order: connectionDetails\.publicKey\.id 0{16}\.\.\. is "
                       r"not an Ed25519 public key: ignored" % NS, since=mark)
    # a relay-only Connector (no address) for the agent's key changes nothing either
    create_connector(cp, "relay-only")
    publish(cp, "relay-only", s.agent_id, [])
    s.gateway.wait_log(r"Connector %s/relay-only: %s publishes no direct address"
                       % (NS, s.agent_id[:8]), since=mark)
    get_hello(s)
    for name in ("bogus", "small-order", "relay-only"):
        cp.expect("DELETE", connectors(NS) + "/" + name, 200)
    # the Connector of the namespace that is not watched was never seen
    assert s.gateway.count(OTHER_NS + "/decoy") == 0


def test_deleted_connector_is_forgotten(env):
    """Without a Connector (and no --peer/--routes) the node has no address: once the established
    connection is gone, a CONNECT gets 502 "no address known"."""
    cp, s = env
    mark = s.gateway.log_size()
    cp.expect("DELETE", connectors(NS) + "/laptop", 200)
    s.gateway.wait_log(r"discovery: %s -> none \(Connector %s/laptop withdrew its addresses\)"
                       % (s.agent_id, NS), since=mark)
    s.agent2.signal(signal.SIGTERM)  # closes its QUIC connections: the gateway's goes away
    s.agent2.p.wait(10)
    s.gateway.wait_log(r"quic: connection peer=%s.* closed" % s.agent_id[:8], since=mark)
    with s.h2() as c:
        st = c.connect(s.target, s.agent_id)
        assert st.wait_response(10) == 502
        assert "no address known" in (st.header("x-warren-error") or "")
