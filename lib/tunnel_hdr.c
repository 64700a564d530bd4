/*
 * tunnel_hdr.c - encoder and decoder for the tunnel stream header
 * (docs/internals/tunnel-header.md).
 *
 * The decoders check the frame prefix one byte at a time, so a frame that is
 * merely incomplete yields WR_ERR_TRUNCATED while garbage is refused as soon
 * as it is seen. Every read is bounded by the declared body length, which is
 * itself checked against the bytes available. String values are copied into
 * fixed-size, NUL-terminated fields and must not contain control characters,
 * because they end up in logs and HTTP responses.
 */
#include <string.h>

#include "warren/err.h"
#include "warren/tunnel_hdr.h"

#define THDR_MAGIC0 'W'
#define THDR_MAGIC1 'T'
#define TLV_HDR 3 /* tag u8 + length u16 */

enum {
  REQ_TAG_TARGET = 1,
  REQ_TAG_PEER = 2,
  RESP_TAG_CODE = 1,
  RESP_TAG_REASON = 2,
};

/* A decoded TLV: a view into the caller's input. */
struct tlv {
  uint8_t tag;
  uint16_t len;
  const uint8_t *val;
};

/* TLV cursor over a complete body. */
struct tlv_iter {
  const uint8_t *p;
  size_t left;
};

static uint16_t get_u16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}

static void put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)(v & 0xff);
}

/* clean_string tells whether |n| bytes are printable: no NUL, no controls. */
static int clean_string(const uint8_t *s, size_t n) {
  size_t i;

  for (i = 0; i < n; i++) {
    if (s[i] < 0x20 || s[i] == 0x7f)
      return 0;
  }
  return 1;
}

/* valid_host accepts a DNS name or IPv4 literal, or a bracketed IPv6 literal. */
static int valid_host(const char *h, size_t n) {
  size_t i;

  if (n == 0)
    return 0;
  if (h[0] == '[') {
    if (n < 3 || h[n - 1] != ']')
      return 0;
    for (i = 1; i < n - 1; i++) {
      char c = h[i];

      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
            c == ':' || c == '.'))
        return 0;
    }
    return 1;
  }
  if (n > 253)
    return 0;
  for (i = 0; i < n; i++) {
    char c = h[i];

    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
          c == '-' || c == '_'))
      return 0;
  }
  return 1;
}

/* valid_port accepts a decimal 1-65535 without sign or leading zero. */
static int valid_port(const char *p, size_t n) {
  unsigned long v = 0;
  size_t i;

  if (n == 0 || n > 5 || p[0] == '0')
    return 0;
  for (i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return 0;
    v = v * 10 + (unsigned long)(p[i] - '0');
  }
  return v >= 1 && v <= 65535;
}

/* valid_target checks "host:port" or "[v6]:port" of |n| bytes. */
static int valid_target(const char *t, size_t n) {
  size_t colon = n;

  while (colon > 0 && t[colon - 1] != ':')
    colon--;
  if (colon == 0)
    return 0;
  colon--;
  return valid_host(t, colon) && valid_port(t + colon + 1, n - colon - 1);
}

int wr_thdr_target_valid(const char *target) {
  size_t n = strnlen(target, WR_THDR_TARGET_MAX + 1);

  return n <= WR_THDR_TARGET_MAX && clean_string((const uint8_t *)target, n) &&
         valid_target(target, n);
}

/*
 * check_prefix validates the 6-byte frame prefix as far as |len| allows and
 * sets *body_len once the whole frame is available.
 */
static int check_prefix(const uint8_t *in, size_t len, uint8_t type, size_t *body_len) {
  size_t blen;

  if (len >= 1 && in[0] != THDR_MAGIC0)
    return WR_ERR_PROTO;
  if (len >= 2 && in[1] != THDR_MAGIC1)
    return WR_ERR_PROTO;
  if (len >= 3 && in[2] != WR_THDR_VERSION)
    return WR_ERR_VERSION;
  if (len >= 4 && in[3] != type)
    return WR_ERR_PROTO;
  if (len < WR_THDR_PREFIX)
    return WR_ERR_TRUNCATED;
  blen = get_u16(in + 4);
  if (blen > WR_THDR_MAX_BODY)
    return WR_ERR_TOOBIG;
  if (len - WR_THDR_PREFIX < blen)
    return WR_ERR_TRUNCATED;
  *body_len = blen;
  return 0;
}

/* tlv_next returns 1 with the next field, 0 at the end, or WR_ERR_PROTO. */
static int tlv_next(struct tlv_iter *it, struct tlv *f) {
  if (it->left == 0)
    return 0;
  if (it->left < TLV_HDR)
    return WR_ERR_PROTO;
  f->tag = it->p[0];
  f->len = get_u16(it->p + 1);
  if (it->left - TLV_HDR < f->len)
    return WR_ERR_PROTO;
  f->val = it->p + TLV_HDR;
  it->p += TLV_HDR + (size_t)f->len;
  it->left -= TLV_HDR + (size_t)f->len;
  return 1;
}

/* copy_string validates a string field and stores it NUL-terminated. */
/* copy_string copies a string field once: a second occurrence of the same
 * tag (|*seen| already set) is a protocol error. */
static int copy_string(char *dst, size_t cap, const struct tlv *f, int *seen) {
  if (*seen)
    return WR_ERR_PROTO;
  *seen = 1;
  if (f->len > cap)
    return WR_ERR_TOOBIG;
  if (!clean_string(f->val, f->len))
    return WR_ERR_PROTO;
  memcpy(dst, f->val, f->len);
  dst[f->len] = '\0';
  return 0;
}

/* string_len measures a caller's string field; too long or unterminated is TOOBIG. */
static int string_len(const char *s, size_t cap, size_t *n) {
  *n = strnlen(s, cap + 1);
  if (*n > cap)
    return WR_ERR_TOOBIG;
  if (!clean_string((const uint8_t *)s, *n))
    return WR_ERR_INVAL;
  return 0;
}

static size_t put_prefix(uint8_t *out, uint8_t type, size_t body_len) {
  out[0] = THDR_MAGIC0;
  out[1] = THDR_MAGIC1;
  out[2] = WR_THDR_VERSION;
  out[3] = type;
  put_u16(out + 4, (uint16_t)body_len);
  return WR_THDR_PREFIX;
}

static size_t put_tlv(uint8_t *out, uint8_t tag, const void *val, size_t n) {
  out[0] = tag;
  put_u16(out + 1, (uint16_t)n);
  memcpy(out + TLV_HDR, val, n);
  return TLV_HDR + n;
}

int wr_thdr_req_encode(uint8_t *out, size_t outlen, const struct wr_thdr_req *req) {
  size_t tlen, plen, body, off;
  int rv;

  rv = string_len(req->target, WR_THDR_TARGET_MAX, &tlen);
  if (rv != 0)
    return rv;
  if (tlen == 0)
    return WR_ERR_INVAL;
  if (!valid_target(req->target, tlen))
    return WR_ERR_INVAL;
  rv = string_len(req->peer, WR_THDR_PEER_MAX, &plen);
  if (rv != 0)
    return rv;
  body = TLV_HDR + tlen + (plen > 0 ? TLV_HDR + plen : 0);
  if (outlen < WR_THDR_PREFIX + body)
    return WR_ERR_TOOBIG;
  off = put_prefix(out, WR_THDR_REQUEST, body);
  off += put_tlv(out + off, REQ_TAG_TARGET, req->target, tlen);
  if (plen > 0)
    off += put_tlv(out + off, REQ_TAG_PEER, req->peer, plen);
  return (int)off;
}

int wr_thdr_resp_encode(uint8_t *out, size_t outlen, const struct wr_thdr_resp *resp) {
  uint8_t code[2];
  size_t rlen, body, off;
  int rv;

  rv = string_len(resp->reason, WR_THDR_REASON_MAX, &rlen);
  if (rv != 0)
    return rv;
  body = TLV_HDR + sizeof(code) + (rlen > 0 ? TLV_HDR + rlen : 0);
  if (outlen < WR_THDR_PREFIX + body)
    return WR_ERR_TOOBIG;
  put_u16(code, resp->code);
  off = put_prefix(out, WR_THDR_RESPONSE, body);
  off += put_tlv(out + off, RESP_TAG_CODE, code, sizeof(code));
  if (rlen > 0)
    off += put_tlv(out + off, RESP_TAG_REASON, resp->reason, rlen);
  return (int)off;
}

int wr_thdr_req_decode(struct wr_thdr_req *req, const uint8_t *in, size_t len) {
  struct wr_thdr_req r;
  struct tlv_iter it;
  struct tlv f;
  size_t body_len = 0;
  int have_target = 0, have_peer = 0, rv;

  rv = check_prefix(in, len, WR_THDR_REQUEST, &body_len);
  if (rv != 0)
    return rv;
  memset(&r, 0, sizeof(r));
  it.p = in + WR_THDR_PREFIX;
  it.left = body_len;
  while ((rv = tlv_next(&it, &f)) == 1) {
    switch (f.tag) {
    case REQ_TAG_TARGET:
      rv = copy_string(r.target, WR_THDR_TARGET_MAX, &f, &have_target);
      if (rv != 0)
        return rv;
      if (!valid_target(r.target, f.len))
        return WR_ERR_PROTO;
      break;
    case REQ_TAG_PEER:
      rv = copy_string(r.peer, WR_THDR_PEER_MAX, &f, &have_peer);
      if (rv != 0)
        return rv;
      break;
    default:
      break; /* unknown: skipped for forward compatibility */
    }
  }
  if (rv < 0)
    return rv;
  if (!have_target)
    return WR_ERR_PROTO;
  *req = r;
  return (int)(WR_THDR_PREFIX + body_len);
}

int wr_thdr_resp_decode(struct wr_thdr_resp *resp, const uint8_t *in, size_t len) {
  struct wr_thdr_resp r;
  struct tlv_iter it;
  struct tlv f;
  size_t body_len = 0;
  int have_code = 0, have_reason = 0, rv;

  rv = check_prefix(in, len, WR_THDR_RESPONSE, &body_len);
  if (rv != 0)
    return rv;
  memset(&r, 0, sizeof(r));
  it.p = in + WR_THDR_PREFIX;
  it.left = body_len;
  while ((rv = tlv_next(&it, &f)) == 1) {
    switch (f.tag) {
    case RESP_TAG_CODE:
      if (have_code || f.len != 2)
        return WR_ERR_PROTO;
      have_code = 1;
      r.code = get_u16(f.val);
      break;
    case RESP_TAG_REASON:
      rv = copy_string(r.reason, WR_THDR_REASON_MAX, &f, &have_reason);
      if (rv != 0)
        return rv;
      break;
    default:
      break; /* unknown: skipped for forward compatibility */
    }
  }
  if (rv < 0)
    return rv;
  if (!have_code)
    return WR_ERR_PROTO;
  *resp = r;
  return (int)(WR_THDR_PREFIX + body_len);
}

const char *wr_thdr_code_str(uint16_t code) {
  switch (code) {
  case WR_THDR_OK:
    return "ok";
  case WR_THDR_NOT_EXPOSED:
    return "not-exposed";
  case WR_THDR_CONNECT_FAILED:
    return "connect-failed";
  case WR_THDR_BAD_REQUEST:
    return "bad-request";
  case WR_THDR_OVERLOADED:
    return "overloaded";
  case WR_THDR_TIMEOUT:
    return "timeout";
  default:
    return "unknown";
  }
}

int wr_thdr_code_http(uint16_t code) {
  switch (code) {
  case WR_THDR_OK:
    return 200;
  case WR_THDR_NOT_EXPOSED:
    return 403;
  case WR_THDR_BAD_REQUEST:
    return 400;
  case WR_THDR_OVERLOADED:
    return 503;
  case WR_THDR_TIMEOUT:
    return 504;
  case WR_THDR_CONNECT_FAILED:
  default:
    return 502;
  }
}
