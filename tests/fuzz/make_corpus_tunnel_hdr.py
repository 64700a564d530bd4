#!/usr/bin/python3
"""Writes the seed corpus for fuzz_tunnel_hdr into corpus/tunnel_hdr/.

The frames follow docs/internals/tunnel-header.md: magic "WT", version 1,
type (1 request, 2 response), body length u16 big-endian, then TLV fields
(tag u8, length u16 big-endian, value). The output is deterministic, so
re-running the script leaves the committed files unchanged.
"""

import os
import struct

VERSION = 1
REQUEST = 1
RESPONSE = 2


def tlv(tag, value):
    if isinstance(value, str):
        value = value.encode()
    return struct.pack(">BH", tag, len(value)) + value


def frame(ftype, body, version=VERSION):
    return b"WT" + struct.pack(">BBH", version, ftype, len(body)) + body


def code(c):
    return tlv(1, struct.pack(">H", c))


SEEDS = {
    # Valid requests.
    "req_ipv4": frame(REQUEST, tlv(1, "127.0.0.1:8080")),
    "req_dns_peer": frame(REQUEST, tlv(1, "web.default.svc:80") + tlv(2, "203.0.113.9:51000")),
    "req_ipv6_peer": frame(REQUEST, tlv(2, "[2001:db8::2]:4000") + tlv(1, "[::1]:443")),
    "req_unknown_tags": frame(REQUEST, tlv(9, b"\x00\xff") + tlv(1, "a:1") + tlv(200, b"")),
    "req_then_payload": frame(REQUEST, tlv(1, "db:5432")) + b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
    # Valid responses.
    "resp_ok": frame(RESPONSE, code(0)),
    "resp_not_exposed": frame(RESPONSE, code(1) + tlv(2, "port 22 is not exposed")),
    "resp_timeout_unknown_tag": frame(RESPONSE, tlv(7, "x") + code(5) + tlv(2, "timed out")),
    # Invalid frames, one per kind of rejection.
    "bad_truncated": frame(REQUEST, tlv(1, "host:80"))[:9],
    "bad_version": frame(REQUEST, tlv(1, "host:80"), version=2),
    "bad_oversize": b"WT" + struct.pack(">BBH", VERSION, REQUEST, 2049),
    "bad_dup_target": frame(REQUEST, tlv(1, "a:1") + tlv(1, "b:2")),
    "bad_port": frame(REQUEST, tlv(1, "host:65536")),
    "bad_code_len": frame(RESPONSE, tlv(1, b"\x00")),
    "bad_tlv_overrun": frame(RESPONSE, code(0) + b"\x02\x00\x10ab"),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "tunnel_hdr")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(SEEDS), out))


if __name__ == "__main__":
    main()
