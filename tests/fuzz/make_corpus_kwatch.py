#!/usr/bin/python3
"""Writes the seed corpus for fuzz_kwatch into corpus/kwatch/.

Each seed is two control bytes followed by a watch stream (see
tests/fuzz/fuzz_kwatch.c): byte 0 is the largest chunk size minus one, byte 1
holds the document cap index (low 3 bits: 0, 1, 32, 100, 256, 1024, 4096,
1 MiB) and after how many events the callback stops (high 5 bits, 0: never).
The streams look like what kube-apiserver sends: one JSON document per line,
{"type":..., "object":...}. The output is deterministic, so re-running the
script leaves the committed files unchanged.
"""

import json
import os

CAP_32, CAP_100, CAP_4K, CAP_1M = 2, 3, 6, 7


def ctl(max_chunk, cap, stop=0):
    return bytes([max_chunk - 1, (stop << 3) | cap])


def doc(etype, obj):
    return json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode()


def stream(*docs, sep=b"\n"):
    return sep.join(docs) + sep


def connector(name, rv, extra=None):
    obj = {
        "apiVersion": "networking.datumapis.com/v1alpha1",
        "kind": "Connector",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": "6b1c2c0e-8d0f-4c1e-9a53-0f6e1a2b3c4d",
            "resourceVersion": rv,
            "generation": 1,
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "spec": {"connectorClassName": "datum-connect"},
    }
    if extra:
        obj.update(extra)
    return obj


def proxy(name, rv):
    return {
        "apiVersion": "networking.datumapis.com/v1alpha",
        "kind": "HTTPProxy",
        "metadata": {
            "name": name,
            "namespace": "default",
            "resourceVersion": rv,
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration":
                    '{"apiVersion":"networking.datumapis.com/v1alpha","kind":"HTTPProxy",'
                    '"metadata":{"name":"%s"},"spec":{"hostnames":["a.example"]}}\n' % name,
            },
            "managedFields": [{
                "manager": "kubectl", "operation": "Apply",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:hostnames": {}}},
            }],
        },
        "spec": {
            "hostnames": ["app.example.com"],
            "rules": [{"backends": [{"endpoint": "http://127.0.0.1:3000",
                                     "connector": {"name": "laptop"}}]}],
        },
    }


def bookmark(rv, initial_end=False):
    meta = {"resourceVersion": rv}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": "Connector", "apiVersion": "networking.datumapis.com/v1alpha1",
            "metadata": meta}


def status_410(old, cur):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: %d (%d)" % (old, cur),
            "reason": "Expired", "code": 410}


def lease(rv):
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "laptop", "namespace": "default", "resourceVersion": rv},
            "spec": {"holderIdentity": "laptop", "leaseDurationSeconds": 30,
                     "renewTime": "2025-01-01T00:00:10.123456Z"}}


SEEDS = {
    "connector_lifecycle": ctl(8, CAP_1M) + stream(
        doc("ADDED", connector("laptop", "1001")),
        doc("MODIFIED", connector("laptop", "1002", {"status": {"connectionDetails": {
            "type": "PublicKey", "publicKey": {
                "id": "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
                "addresses": [{"address": "127.0.0.1", "port": 4433}], "homeRelay": ""}}}})),
        doc("DELETED", connector("laptop", "1003"))),
    "bookmarks": ctl(64, CAP_1M) + stream(
        doc("ADDED", connector("a", "10")),
        doc("BOOKMARK", bookmark("15", initial_end=True)),
        doc("BOOKMARK", bookmark("27")),
        doc("MODIFIED", connector("a", "31"))),
    "expired_410": ctl(3, CAP_1M) + stream(
        doc("ADDED", lease("200")),
        doc("MODIFIED", lease("201")),
        doc("ERROR", status_410(201, 5000))),
    "only_410": ctl(256, CAP_4K) + stream(doc("ERROR", status_410(1, 2))),
    "httpproxy_managed": ctl(200, CAP_1M) + stream(
        doc("ADDED", proxy("myapp", "77")), doc("MODIFIED", proxy("myapp", "78"))),
    "escapes_braces": ctl(5, CAP_1M) + stream(
        doc("ADDED", connector("x", "5", {"data": {
            "k{": "}{ ][ \"q\" \\", "u": "\u00e9\u4e2d\U0001f600", "nl": "a\nb\tc",
            "nul": "a\u0000b"}}))),
    "whitespace_crlf": ctl(16, CAP_1M) + b"\r\n  " + stream(
        doc("ADDED", connector("a", "1")), doc("DELETED", connector("a", "2")),
        sep=b"\r\n\t ") + b"   ",
    "no_separators": ctl(32, CAP_1M) + stream(
        doc("ADDED", bookmark("1")), doc("BOOKMARK", bookmark("2")),
        doc("MODIFIED", bookmark("3")), sep=b""),
    "stop_after_two": ctl(7, CAP_1M, stop=2) + stream(
        doc("ADDED", connector("a", "1")), doc("MODIFIED", connector("a", "2")),
        doc("DELETED", connector("a", "3"))),
    "oversize": ctl(9, CAP_100) + stream(
        doc("BOOKMARK", {"metadata": {"resourceVersion": "9"}}),
        doc("ADDED", connector("too-big", "10"))),
    "tiny_cap": ctl(1, CAP_32) + stream(doc("ADDED", {})),
    "bad_json": ctl(4, CAP_4K) + stream(
        doc("ADDED", {"a": 1}), b'{"type":"ADDED","object":{"a":tru}}'),
    "bad_type": ctl(4, CAP_4K) + stream(
        doc("ADDED", {"a": 1}), doc("SYNC", {}), doc("added", {})),
    "missing_object": ctl(4, CAP_4K) + stream(b'{"type":"DELETED"}'),
    "top_level_array": ctl(4, CAP_4K) + stream(b'[{"type":"ADDED","object":{}}]'),
    "truncated": ctl(10, CAP_4K) + doc("ADDED", connector("a", "1"))[:-7],
    # Found by the fuzzer: jansson alone drops a raw NUL after a number.
    "raw_nul_after_number": ctl(256, CAP_4K) + stream(
        b'{"type":"ERROR","object":{"kind":"Status","code":41\x00}}'),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "kwatch")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
