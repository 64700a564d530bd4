"""kube.py - the test Kubernetes control plane for pytest (run by /usr/bin/python3 -m pytest).

ControlPlane wraps hack/kube-up / hack/kube-down (etcd + kube-apiserver + kube-controller-manager
v1.20.2 on loopback, docs/internals/test-control-plane.md) and talks to the apiserver with
urllib + ssl only: TLS verified against the CA hack/kube-up made, bearer tokens from DIR/env.

Binaries: WARREN_KUBE_BIN (a dir with kube-apiserver and kube-controller-manager), else the
cache hack/kube-build made (`hack/kube-build --check`; the tests never start the ~10 min build
themselves: hack/test's deps stage does). Logs of a failed module are copied to
${WARREN_BUILD_DIR}/test-logs/kube/ (WARREN_KEEP_LOGS=1: of passing ones too).
"""

import contextlib
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HACK = os.path.join(REPO, "hack")
BUILD = os.path.abspath(os.environ.get("WARREN_BUILD_DIR", os.path.join(REPO, "build")))
LOG_ROOT = os.path.join(BUILD, "test-logs", "kube")
KEEP_LOGS = os.environ.get("WARREN_KEEP_LOGS", "") not in ("", "0")


class Timeout(AssertionError):
    pass


def shared_dir(*parts):
    """A path in the shared reference fixtures (upstream CRDs, Envoy Gateway xDS output), which
    live outside the repository: $WARREN_SHARED, else ../shared next to the checkout. Missing
    fixtures fail the test with that hint; they are never a reason to skip."""
    candidates = [os.environ.get("WARREN_SHARED", ""), os.path.join(os.path.dirname(REPO), "shared")]
    for base in candidates:
        if base and os.path.isdir(os.path.join(base, "fixtures")):
            return os.path.join(base, *parts)
    raise AssertionError("shared fixtures not found: set WARREN_SHARED to the directory holding "
                         "fixtures/ (tried %s)" % ", ".join(c for c in candidates if c))


def wait_for(fn, timeout, what, interval=0.1):
    """Calls fn() until it returns something truthy (returned), at most |timeout| seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise Timeout("%s: not within %.0f s (last: %r)" % (what, timeout, last))
        time.sleep(interval)


def binaries():
    """The directory holding kube-apiserver and kube-controller-manager."""
    d = os.environ.get("WARREN_KUBE_BIN")
    if not d:
        r = subprocess.run([os.path.join(HACK, "kube-build"), "--check"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(
                "the test control plane is not built: run hack/kube-build (once, ~10 min; hack/test's "
                "deps stage does it) or set WARREN_KUBE_BIN\n" + r.stderr
            )
        d = r.stdout.strip().splitlines()[-1]
    for b in ("kube-apiserver", "kube-controller-manager"):
        if not os.access(os.path.join(d, b), os.X_OK):
            raise AssertionError("%s/%s is missing" % (d, b))
    return d


class Response:
    def __init__(self, status, body):
        self.status = status
        self.text = body.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.text)
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<HTTP %d %s>" % (self.status, self.text[:300])


class ControlPlane:
    """One control plane in |dir| (hack/kube-up DIR). Use up(), then request()/get()/..., down()."""

    def __init__(self, dir):
        self.dir = os.path.abspath(dir)
        self.env = {}
        self.ctx = None

    def _run(self, *args, timeout=180):
        env = dict(os.environ, WARREN_KUBE_BIN=binaries())
        t0 = time.monotonic()
        r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env)
        if r.returncode != 0:
            raise AssertionError(
                "%s failed (exit %d)\n--- stdout\n%s--- stderr\n%s" % (" ".join(args), r.returncode, r.stdout, r.stderr)
            )
        return r, time.monotonic() - t0

    def load_env(self):
        """Reads DIR/env the way a shell would (it is written with printf %q)."""
        out = subprocess.run(
            ["bash", "-c", '. "$1" && env -0', "_", os.path.join(self.dir, "env")],
            capture_output=True,
            check=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        ).stdout.decode()
        self.env = {}
        for kv in out.split("\0"):
            k, _, v = kv.partition("=")
            if k.startswith(("KUBE_", "ETCD_")):
                self.env[k] = v
        self.ctx = ssl.create_default_context(cafile=self.env["KUBE_CA"])
        return self.env

    def up(self):
        _, took = self._run(os.path.join(HACK, "kube-up"), self.dir)
        self.load_env()
        return took

    def restart_apiserver(self):
        _, took = self._run(os.path.join(HACK, "kube-up"), self.dir, "--apiserver-only")
        self.load_env()
        return took

    def down(self):
        r, _ = self._run(os.path.join(HACK, "kube-down"), self.dir, timeout=90)
        return r

    @property
    def server(self):
        return self.env["KUBE_SERVER"]

    @property
    def admin_token(self):
        return self.env["KUBE_ADMIN_TOKEN"]

    @property
    def nobody_token(self):
        return self.env["KUBE_NOBODY_TOKEN"]

    def logs(self, n=40):
        out = []
        for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
            p = os.path.join(self.dir, "logs", name + ".log")
            try:
                with open(p, errors="replace") as f:
                    lines = f.readlines()[-n:]
            except OSError:
                continue
            out.append("----- last %d lines of %s\n%s" % (n, p, "".join(lines)))
        return "\n".join(out)

    def keep_logs(self, name):
        dst = os.path.join(LOG_ROOT, name)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(os.path.join(self.dir, "logs"), dst)
        return dst

    # ---- HTTP
    def request(self, method, path, body=None, token="admin", timeout=10, content_type="application/json"):
        """One request; returns a Response for any HTTP status (raises on transport errors).
        token: "admin", "nobody", None (anonymous) or a literal token."""
        headers = {"Accept": "application/json"}
        tok = {"admin": self.env.get("KUBE_ADMIN_TOKEN"), "nobody": self.env.get("KUBE_NOBODY_TOKEN")}.get(token, token)
        if tok:
            headers["Authorization"] = "Bearer " + tok
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        # no proxies: loopback only
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.ctx)
        )
        try:
            with opener.open(req, timeout=timeout) as r:
                return Response(r.status, r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, e.read())

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def expect(self, method, path, status, body=None, **kw):
        """request() that must answer |status| (an int or a tuple of them)."""
        r = self.request(method, path, body, **kw)
        ok = status if isinstance(status, tuple) else (status,)
        assert r.status in ok, "%s %s: expected HTTP %s, got %r" % (method, path, status, r)
        return r


CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def install_crds(cp, paths):
    """Creates the CRDs in the YAML files |paths| through the REST API (create, not apply: the big
    upstream CRDs exceed the annotation apply would need) and waits until each is Established and
    its resource served."""
    import yaml  # python3-yaml; imported here so kube.py itself needs nothing beyond the stdlib

    crds = []
    for p in paths:
        with open(p) as f:
            crds += [d for d in yaml.safe_load_all(f) if d]
    for crd in crds:
        r = cp.post(CRDS, crd)
        assert r.status in (201, 409), "%s: %r" % (crd["metadata"]["name"], r)
    for crd in crds:
        name = crd["metadata"]["name"]

        def established():
            g = cp.expect("GET", CRDS + "/" + name, 200).json
            conds = {c["type"]: c["status"] for c in (g.get("status") or {}).get("conditions") or []}
            return conds.get("Established") == "True" and conds.get("NamesAccepted") == "True"

        wait_for(established, 30, "CRD %s Established" % name)
        v = [v["name"] for v in crd["spec"]["versions"] if v.get("served")][0]
        path = "/apis/%s/%s/%s" % (crd["spec"]["group"], v, crd["spec"]["names"]["plural"])
        wait_for(lambda: cp.get(path).status == 200, 10, "GET " + path)


def install_warren_crds(cp, upstream=True):
    """warren's CRDs (crds/*.yaml) and, with |upstream|, the HTTPRoute and EnvoyPatchPolicy CRDs
    the operator writes (shared fixtures), so the real schemas validate what it writes."""
    crds = os.path.join(REPO, "crds")
    paths = [os.path.join(crds, f) for f in sorted(os.listdir(crds)) if f.endswith(".yaml")]
    if upstream:
        paths += [shared_dir("fixtures", "crds", "httproutes.gateway.networking.k8s.io.yaml"),
                  shared_dir("fixtures", "crds", "envoypatchpolicies.gateway.envoyproxy.io.yaml")]
    install_crds(cp, paths)


def create_connector_class(cp, name="datum-connect"):
    cp.expect("POST", "/apis/networking.datumapis.com/v1alpha1/connectorclasses", 201, {
        "apiVersion": "networking.datumapis.com/v1alpha1", "kind": "ConnectorClass",
        "metadata": {"name": name}, "spec": {}})


def agent_token(cp):
    """Applies manifests/heartbeat-rbac.yaml as written (ServiceAccount "laptop" in "team-a", its
    Role and RoleBinding) and returns the ServiceAccount's token once the token controller made it."""
    import base64
    import yaml

    with open(os.path.join(REPO, "manifests", "heartbeat-rbac.yaml")) as f:
        sa, role, binding = [x for x in yaml.safe_load_all(f) if x]
    ns = sa["metadata"]["namespace"]
    cp.expect("POST", "/api/v1/namespaces/%s/serviceaccounts" % ns, 201, sa)
    cp.expect("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/roles" % ns, 201, role)
    cp.expect("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings" % ns, 201,
              binding)

    def token():
        for s in cp.expect("GET", "/api/v1/namespaces/%s/secrets" % ns, 200).json["items"]:
            if s["type"] == "kubernetes.io/service-account-token" and s["metadata"].get(
                    "annotations", {}).get("kubernetes.io/service-account.name") == \
                    sa["metadata"]["name"]:
                return base64.b64decode(s["data"]["token"]).decode()
        return None
    return wait_for(token, 30, "the ServiceAccount's token")


def write_kubeconfig(cp, path, token, namespace, server=None, tls_server_name=None):
    """A kubeconfig (mode 0600) for |token| against |cp| (or |server|, verified as
    |tls_server_name|), with |namespace| as its default namespace."""
    import yaml

    cluster = {"server": server or cp.server, "certificate-authority": cp.env["KUBE_CA"]}
    if tls_server_name:
        cluster["tls-server-name"] = tls_server_name
    with open(path, "w") as f:
        yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "agent",
                        "clusters": [{"name": "test", "cluster": cluster}],
                        "users": [{"name": "agent", "user": {"token": token}}],
                        "contexts": [{"name": "agent", "context": {
                            "cluster": "test", "user": "agent", "namespace": namespace}}]}, f)
    os.chmod(path, 0o600)
    return path


@contextlib.contextmanager
def module_control_plane(request, name):
    """A control plane for one test module (use it in a module-scoped fixture). When a test of the
    module failed (or WARREN_KEEP_LOGS is set), the logs are copied under LOG_ROOT/|name| and, on
    failure, their tails printed. Stopped (hack/kube-down) and removed on exit."""
    tmp = tempfile.mkdtemp(prefix="warren-%s-" % name.replace("_", "-"))
    c = ControlPlane(tmp)
    failed_before = request.session.testsfailed
    started = False
    try:
        took = c.up()
        started = True
        print("kube-up to ready: %.1f s" % took)
        yield c
    finally:
        failed = request.session.testsfailed > failed_before or not started
        if (failed or KEEP_LOGS) and os.path.isdir(os.path.join(tmp, "logs")):
            print("control plane logs kept in %s" % c.keep_logs(name))
        if failed:
            print(c.logs())
        c.down()
        shutil.rmtree(tmp, ignore_errors=True)
