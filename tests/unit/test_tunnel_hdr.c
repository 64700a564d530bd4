/* test_tunnel_hdr.c - tunnel stream header codec: round trips and every rejection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "warren/err.h"
#include "warren/tunnel_hdr.h"

/* A body under construction; frames are built by hand to test the decoder. */
struct body {
  uint8_t b[WR_THDR_MAX_BODY + 64];
  size_t n;
};

static void add_tlv(struct body *body, uint8_t tag, const void *val, size_t n) {
  assert_true(body->n + 3 + n <= sizeof(body->b));
  body->b[body->n] = tag;
  body->b[body->n + 1] = (uint8_t)(n >> 8);
  body->b[body->n + 2] = (uint8_t)n;
  memcpy(body->b + body->n + 3, val, n);
  body->n += 3 + n;
}

static void add_str(struct body *body, uint8_t tag, const char *s) {
  add_tlv(body, tag, s, strlen(s));
}

static void add_code(struct body *body, uint16_t code) {
  uint8_t v[2] = {(uint8_t)(code >> 8), (uint8_t)code};

  add_tlv(body, 1, v, 2);
}

/* frame writes magic, |ver|, |type|, the body length and the body. */
static size_t frame(uint8_t *out, uint8_t ver, uint8_t type, const struct body *body) {
  out[0] = 'W';
  out[1] = 'T';
  out[2] = ver;
  out[3] = type;
  out[4] = (uint8_t)(body->n >> 8);
  out[5] = (uint8_t)body->n;
  memcpy(out + 6, body->b, body->n);
  return 6 + body->n;
}

static int decode_req_body(const struct body *body, struct wr_thdr_req *req) {
  uint8_t buf[WR_THDR_MAX + 64];
  size_t n = frame(buf, WR_THDR_VERSION, WR_THDR_REQUEST, body);

  return wr_thdr_req_decode(req, buf, n);
}

static int decode_resp_body(const struct body *body, struct wr_thdr_resp *resp) {
  uint8_t buf[WR_THDR_MAX + 64];
  size_t n = frame(buf, WR_THDR_VERSION, WR_THDR_RESPONSE, body);

  return wr_thdr_resp_decode(resp, buf, n);
}

static int decode_target(const char *target) {
  struct wr_thdr_req req;
  struct body body = {.n = 0};

  add_str(&body, 1, target);
  return decode_req_body(&body, &req);
}

static void test_golden_request(void **state) {
  static const uint8_t want[] = {'W', 'T', 1,   1, 0, 22, 1,   0,   8,   'l', 'o', 'c', 'a', 'l',
                                 ':', '8', '0', 2, 0, 8,  '1', '.', '2', '.', '3', ':', '4', '5'};
  struct wr_thdr_req req = {.target = "local:80", .peer = "1.2.3:45"};
  uint8_t out[WR_THDR_MAX];

  (void)state;
  assert_int_equal(wr_thdr_req_encode(out, sizeof(out), &req), sizeof(want));
  assert_memory_equal(out, want, sizeof(want));
}

static void test_golden_response(void **state) {
  static const uint8_t want[] = {'W', 'T', 1, 2, 0, 10, 1, 0, 2, 0, 2, 2, 0, 2, 'n', 'o'};
  struct wr_thdr_resp resp = {.code = WR_THDR_CONNECT_FAILED, .reason = "no"};
  uint8_t out[WR_THDR_MAX];

  (void)state;
  assert_int_equal(wr_thdr_resp_encode(out, sizeof(out), &resp), sizeof(want));
  assert_memory_equal(out, want, sizeof(want));
}

static void test_req_round_trip(void **state) {
  static const struct wr_thdr_req reqs[] = {
      {.target = "127.0.0.1:8080", .peer = "203.0.113.7:51234"},
      {.target = "[2001:db8::1]:443", .peer = "[2001:db8::2]:1"},
      {.target = "svc.default.svc.cluster.local:65535", .peer = ""},
      {.target = "a:1", .peer = ""},
  };
  uint8_t out[WR_THDR_MAX + 16];
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
    struct wr_thdr_req got;
    int n = wr_thdr_req_encode(out, sizeof(out), &reqs[i]);

    assert_true(n > WR_THDR_PREFIX);
    /* Stream bytes after the header are not part of it. */
    memcpy(out + n, "GET / HTTP/1.1\r\n", 16);
    memset(&got, 0x55, sizeof(got));
    assert_int_equal(wr_thdr_req_decode(&got, out, (size_t)n + 16), n);
    assert_string_equal(got.target, reqs[i].target);
    assert_string_equal(got.peer, reqs[i].peer);
  }
}

static void test_resp_round_trip(void **state) {
  static const struct wr_thdr_resp resps[] = {
      {.code = WR_THDR_OK, .reason = ""},
      {.code = WR_THDR_NOT_EXPOSED, .reason = "port 22 is not exposed"},
      {.code = WR_THDR_TIMEOUT, .reason = "connect timed out after 10 s"},
      {.code = 0xffff, .reason = "future code"},
  };
  uint8_t out[WR_THDR_MAX];
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(resps) / sizeof(resps[0]); i++) {
    struct wr_thdr_resp got;
    int n = wr_thdr_resp_encode(out, sizeof(out), &resps[i]);

    assert_true(n > WR_THDR_PREFIX);
    memset(&got, 0x55, sizeof(got));
    assert_int_equal(wr_thdr_resp_decode(&got, out, (size_t)n), n);
    assert_int_equal(got.code, resps[i].code);
    assert_string_equal(got.reason, resps[i].reason);
  }
}

static void test_max_fields_round_trip(void **state) {
  struct wr_thdr_req req, got;
  struct wr_thdr_resp resp, rgot;
  uint8_t out[WR_THDR_MAX];
  int n;

  (void)state;
  /* A bracketed host fills the target to exactly WR_THDR_TARGET_MAX. */
  memset(req.target, 'a', WR_THDR_TARGET_MAX);
  req.target[0] = '[';
  memcpy(req.target + WR_THDR_TARGET_MAX - 7, "]:65535", 8);
  assert_int_equal(strlen(req.target), WR_THDR_TARGET_MAX);
  memset(req.peer, '9', WR_THDR_PEER_MAX);
  req.peer[WR_THDR_PEER_MAX] = '\0';
  n = wr_thdr_req_encode(out, sizeof(out), &req);
  assert_int_equal(n, 6 + 3 + WR_THDR_TARGET_MAX + 3 + WR_THDR_PEER_MAX);
  assert_int_equal(wr_thdr_req_decode(&got, out, (size_t)n), n);
  assert_string_equal(got.target, req.target);
  assert_string_equal(got.peer, req.peer);

  resp.code = 4;
  memset(resp.reason, 'r', WR_THDR_REASON_MAX);
  resp.reason[WR_THDR_REASON_MAX] = '\0';
  n = wr_thdr_resp_encode(out, sizeof(out), &resp);
  assert_int_equal(n, 6 + 5 + 3 + WR_THDR_REASON_MAX);
  assert_int_equal(wr_thdr_resp_decode(&rgot, out, (size_t)n), n);
  assert_string_equal(rgot.reason, resp.reason);
}

static void test_every_truncation(void **state) {
  struct wr_thdr_req req = {.target = "[::1]:8443", .peer = "10.1.2.3:4444"}, rgot;
  struct wr_thdr_resp resp = {.code = 2, .reason = "connection refused"}, sgot;
  uint8_t out[WR_THDR_MAX];
  int n;
  size_t i;

  (void)state;
  n = wr_thdr_req_encode(out, sizeof(out), &req);
  assert_true(n > 0);
  for (i = 0; i < (size_t)n; i++)
    assert_int_equal(wr_thdr_req_decode(&rgot, out, i), WR_ERR_TRUNCATED);
  assert_int_equal(wr_thdr_req_decode(&rgot, out, (size_t)n), n);

  n = wr_thdr_resp_encode(out, sizeof(out), &resp);
  assert_true(n > 0);
  for (i = 0; i < (size_t)n; i++)
    assert_int_equal(wr_thdr_resp_decode(&sgot, out, i), WR_ERR_TRUNCATED);
  assert_int_equal(wr_thdr_resp_decode(&sgot, out, (size_t)n), n);
}

static void test_oversize_body(void **state) {
  uint8_t buf[6] = {'W', 'T', 1, 1, 0, 0};
  struct wr_thdr_req req;
  struct wr_thdr_resp resp;
  struct body body = {.n = 0};
  uint8_t big[WR_THDR_MAX + 64];
  size_t n;

  (void)state;
  /* The declared length alone decides; no body needs to be present. */
  buf[4] = (WR_THDR_MAX_BODY + 1) >> 8;
  buf[5] = (WR_THDR_MAX_BODY + 1) & 0xff;
  assert_int_equal(wr_thdr_req_decode(&req, buf, sizeof(buf)), WR_ERR_TOOBIG);
  buf[4] = buf[5] = 0xff;
  assert_int_equal(wr_thdr_req_decode(&req, buf, sizeof(buf)), WR_ERR_TOOBIG);
  buf[3] = WR_THDR_RESPONSE;
  assert_int_equal(wr_thdr_resp_decode(&resp, buf, sizeof(buf)), WR_ERR_TOOBIG);

  /* Exactly WR_THDR_MAX_BODY is fine: pad a valid body with an unknown tag. */
  add_str(&body, 1, "x:1");
  memset(big, 'p', sizeof(big));
  add_tlv(&body, 200, big, WR_THDR_MAX_BODY - body.n - 3);
  assert_int_equal(body.n, WR_THDR_MAX_BODY);
  n = frame(big, 1, WR_THDR_REQUEST, &body);
  assert_int_equal(wr_thdr_req_decode(&req, big, n), WR_THDR_MAX);
  assert_string_equal(req.target, "x:1");
}

static void test_wrong_version(void **state) {
  struct wr_thdr_req req;
  struct wr_thdr_resp resp;
  struct body body = {.n = 0};
  uint8_t buf[64];
  size_t n;

  (void)state;
  add_str(&body, 1, "host:80");
  n = frame(buf, 2, WR_THDR_REQUEST, &body);
  assert_int_equal(wr_thdr_req_decode(&req, buf, n), WR_ERR_VERSION);
  /* Known as soon as the version byte has arrived. */
  assert_int_equal(wr_thdr_req_decode(&req, buf, 3), WR_ERR_VERSION);
  buf[2] = 0;
  assert_int_equal(wr_thdr_req_decode(&req, buf, n), WR_ERR_VERSION);
  body.n = 0;
  add_code(&body, 0);
  n = frame(buf, 0xff, WR_THDR_RESPONSE, &body);
  assert_int_equal(wr_thdr_resp_decode(&resp, buf, n), WR_ERR_VERSION);
}

static void test_bad_magic_and_type(void **state) {
  struct wr_thdr_req req;
  struct wr_thdr_resp resp;
  struct body body = {.n = 0};
  uint8_t buf[64];
  size_t n;

  (void)state;
  add_str(&body, 1, "host:80");
  n = frame(buf, 1, WR_THDR_REQUEST, &body);
  buf[0] = 'G'; /* someone speaking HTTP to the stream */
  assert_int_equal(wr_thdr_req_decode(&req, buf, n), WR_ERR_PROTO);
  assert_int_equal(wr_thdr_req_decode(&req, buf, 1), WR_ERR_PROTO);
  buf[0] = 'W';
  buf[1] = 't';
  assert_int_equal(wr_thdr_req_decode(&req, buf, n), WR_ERR_PROTO);
  assert_int_equal(wr_thdr_req_decode(&req, buf, 2), WR_ERR_PROTO);
  buf[1] = 'T';
  /* A request is not a response, and type 0 or 3 is neither. */
  assert_int_equal(wr_thdr_resp_decode(&resp, buf, n), WR_ERR_PROTO);
  assert_int_equal(wr_thdr_resp_decode(&resp, buf, 4), WR_ERR_PROTO);
  buf[3] = 0;
  assert_int_equal(wr_thdr_req_decode(&req, buf, n), WR_ERR_PROTO);
  buf[3] = 3;
  assert_int_equal(wr_thdr_req_decode(&req, buf, n), WR_ERR_PROTO);
}

static void test_duplicate_tags(void **state) {
  struct wr_thdr_req req;
  struct wr_thdr_resp resp;
  struct body body = {.n = 0};

  (void)state;
  add_str(&body, 1, "a:1");
  add_str(&body, 1, "a:1");
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_PROTO);
  body.n = 0;
  add_str(&body, 1, "a:1");
  add_str(&body, 2, "p");
  add_str(&body, 2, "p");
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_PROTO);
  body.n = 0;
  add_code(&body, 0);
  add_code(&body, 1);
  assert_int_equal(decode_resp_body(&body, &resp), WR_ERR_PROTO);
  body.n = 0;
  add_code(&body, 0);
  add_str(&body, 2, "r");
  add_str(&body, 2, "r");
  assert_int_equal(decode_resp_body(&body, &resp), WR_ERR_PROTO);
  /* Unknown tags may repeat. */
  body.n = 0;
  add_code(&body, 0);
  add_str(&body, 9, "x");
  add_str(&body, 9, "x");
  assert_true(decode_resp_body(&body, &resp) > 0);
}

static void test_missing_required(void **state) {
  struct wr_thdr_req req;
  struct wr_thdr_resp resp;
  struct body body = {.n = 0};

  (void)state;
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_PROTO);
  assert_int_equal(decode_resp_body(&body, &resp), WR_ERR_PROTO);
  add_str(&body, 2, "1.2.3.4:5");
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_PROTO);
  assert_int_equal(decode_resp_body(&body, &resp), WR_ERR_PROTO);
}

static void test_code_length(void **state) {
  struct wr_thdr_resp resp;
  struct body body = {.n = 0};

  (void)state;
  add_tlv(&body, 1, "\0", 1);
  assert_int_equal(decode_resp_body(&body, &resp), WR_ERR_PROTO);
  body.n = 0;
  add_tlv(&body, 1, "\0\0\0", 3);
  assert_int_equal(decode_resp_body(&body, &resp), WR_ERR_PROTO);
  body.n = 0;
  add_tlv(&body, 1, "", 0);
  assert_int_equal(decode_resp_body(&body, &resp), WR_ERR_PROTO);
  body.n = 0;
  add_tlv(&body, 1, "\x01\x02", 2);
  assert_int_equal(decode_resp_body(&body, &resp), 6 + 5);
  assert_int_equal(resp.code, 0x0102);
  assert_string_equal(resp.reason, "");
}

static void test_targets(void **state) {
  static const char *const good[] = {
      "a:1",
      "host:80",
      "10.0.0.1:65535",
      "[::1]:443",
      "[2001:db8::ff]:8080",
      "my-svc_x:999",
      "[::ffff:1.2.3.4]:5",
      "UPPER.example.COM:12",
  };
  static const char *const bad[] = {
      "",           ":80",      "host",       "host:",     "host:0",   "host:65536",
      "host:99999", "host:080", "host:+80",   "host:8a",   "host: 80", "host:123456",
      "::1:443",    "[::1]443", "[]:80",      "[::1:80",   "::1]:80",  "ho st:80",
      "host/x:80",  "[::g]:80", "host:80:80", "[a]:b]:80", "host:-1",
  };
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    if (decode_target(good[i]) <= 0)
      fail_msg("target '%s' refused", good[i]);
  }
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (decode_target(bad[i]) != WR_ERR_PROTO)
      fail_msg("target '%s' accepted or wrong error", bad[i]);
  }
}

static void test_unknown_tags_skipped(void **state) {
  struct wr_thdr_req req;
  struct wr_thdr_resp resp;
  struct body body = {.n = 0};

  (void)state;
  add_tlv(&body, 0, "", 0);
  add_str(&body, 7, "future field");
  add_str(&body, 1, "host:80");
  add_tlv(&body, 255, "\0\x01\xff", 3); /* unknown values may hold any byte */
  add_str(&body, 2, "peer:1");
  add_tlv(&body, 3, "", 0);
  assert_int_equal(decode_req_body(&body, &req), 6 + (int)body.n);
  assert_string_equal(req.target, "host:80");
  assert_string_equal(req.peer, "peer:1");

  body.n = 0;
  add_str(&body, 3, "x");
  add_code(&body, 5);
  add_tlv(&body, 200, "\0", 1);
  assert_int_equal(decode_resp_body(&body, &resp), 6 + (int)body.n);
  assert_int_equal(resp.code, 5);
}

static void test_field_too_long(void **state) {
  char s[WR_THDR_MAX_BODY];
  struct wr_thdr_req req;
  struct wr_thdr_resp resp;
  struct body body = {.n = 0};

  (void)state;
  /* 262 bytes of target. */
  memset(s, 'h', sizeof(s));
  memcpy(s + WR_THDR_TARGET_MAX + 1 - 3, ":80", 3);
  add_tlv(&body, 1, s, WR_THDR_TARGET_MAX + 1);
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_TOOBIG);

  body.n = 0;
  add_str(&body, 1, "h:80");
  add_tlv(&body, 2, s, WR_THDR_PEER_MAX + 1);
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_TOOBIG);

  body.n = 0;
  add_code(&body, 1);
  add_tlv(&body, 2, s, WR_THDR_REASON_MAX + 1);
  assert_int_equal(decode_resp_body(&body, &resp), WR_ERR_TOOBIG);

  body.n = 0;
  add_code(&body, 1);
  add_tlv(&body, 2, s, WR_THDR_REASON_MAX);
  assert_true(decode_resp_body(&body, &resp) > 0);
  assert_int_equal(strlen(resp.reason), WR_THDR_REASON_MAX);
}

static void test_nul_and_control_bytes(void **state) {
  struct wr_thdr_req req;
  struct wr_thdr_resp resp;
  struct body body = {.n = 0};

  (void)state;
  add_tlv(&body, 1, "host:80\0", 8);
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_PROTO);
  body.n = 0;
  add_tlv(&body, 1, "ho\0st:80", 8);
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_PROTO);
  body.n = 0;
  add_str(&body, 1, "host:80");
  add_tlv(&body, 2, "1.2.3.4:5\0", 10);
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_PROTO);
  body.n = 0;
  add_code(&body, 1);
  add_tlv(&body, 2, "bad\0", 4);
  assert_int_equal(decode_resp_body(&body, &resp), WR_ERR_PROTO);
  /* Line breaks would let a peer forge log lines or HTTP headers. */
  body.n = 0;
  add_code(&body, 1);
  add_str(&body, 2, "bad\r\nX-Injected: 1");
  assert_int_equal(decode_resp_body(&body, &resp), WR_ERR_PROTO);
  body.n = 0;
  add_str(&body, 1, "host:80");
  add_str(&body, 2, "peer\x7f");
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_PROTO);
}

static void test_malformed_tlv(void **state) {
  struct wr_thdr_req req;
  struct wr_thdr_resp resp;
  struct body body = {.n = 0};

  (void)state;
  /* A TLV header cut by the end of the body. */
  add_str(&body, 1, "host:80");
  body.b[body.n++] = 9;
  body.b[body.n++] = 0;
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_PROTO);
  body.n--;
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_PROTO);
  /* A value longer than the rest of the body. */
  body.n = 0;
  add_str(&body, 1, "host:80");
  body.b[2] = 8;
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_PROTO);
  body.n = 0;
  add_code(&body, 0);
  add_str(&body, 2, "reason");
  body.b[body.n - 6 - 1] = 7;
  assert_int_equal(decode_resp_body(&body, &resp), WR_ERR_PROTO);
}

static void test_decode_leaves_output_on_error(void **state) {
  struct wr_thdr_req req;
  struct body body = {.n = 0};

  (void)state;
  memset(&req, 0x41, sizeof(req));
  req.target[WR_THDR_TARGET_MAX] = '\0';
  req.peer[WR_THDR_PEER_MAX] = '\0';
  add_str(&body, 2, "only:1");
  assert_int_equal(decode_req_body(&body, &req), WR_ERR_PROTO);
  assert_int_equal((unsigned char)req.target[0], 0x41);
  assert_int_equal((unsigned char)req.peer[0], 0x41);
}

static void test_encode_errors(void **state) {
  struct wr_thdr_req req = {.target = "host:80", .peer = "1.2.3.4:5"};
  struct wr_thdr_resp resp = {.code = 1, .reason = "nope"};
  uint8_t out[WR_THDR_MAX];
  int n;
  size_t i;

  (void)state;
  n = wr_thdr_req_encode(out, sizeof(out), &req);
  assert_true(n > 0);
  for (i = 0; i < (size_t)n; i++)
    assert_int_equal(wr_thdr_req_encode(out, i, &req), WR_ERR_TOOBIG);
  assert_int_equal(wr_thdr_req_encode(out, (size_t)n, &req), n);
  n = wr_thdr_resp_encode(out, sizeof(out), &resp);
  assert_true(n > 0);
  for (i = 0; i < (size_t)n; i++)
    assert_int_equal(wr_thdr_resp_encode(out, i, &resp), WR_ERR_TOOBIG);

  /* Missing or invalid target. */
  req.target[0] = '\0';
  assert_int_equal(wr_thdr_req_encode(out, sizeof(out), &req), WR_ERR_INVAL);
  snprintf(req.target, sizeof(req.target), "host:0");
  assert_int_equal(wr_thdr_req_encode(out, sizeof(out), &req), WR_ERR_INVAL);
  snprintf(req.target, sizeof(req.target), "host:80\n");
  assert_int_equal(wr_thdr_req_encode(out, sizeof(out), &req), WR_ERR_INVAL);
  /* Unterminated fields are over their cap. */
  memset(req.target, 'a', sizeof(req.target));
  assert_int_equal(wr_thdr_req_encode(out, sizeof(out), &req), WR_ERR_TOOBIG);
  snprintf(req.target, sizeof(req.target), "host:80");
  memset(req.peer, '1', sizeof(req.peer));
  assert_int_equal(wr_thdr_req_encode(out, sizeof(out), &req), WR_ERR_TOOBIG);
  snprintf(req.peer, sizeof(req.peer), "a\tb");
  assert_int_equal(wr_thdr_req_encode(out, sizeof(out), &req), WR_ERR_INVAL);
  memset(resp.reason, 'r', sizeof(resp.reason));
  assert_int_equal(wr_thdr_resp_encode(out, sizeof(out), &resp), WR_ERR_TOOBIG);
  snprintf(resp.reason, sizeof(resp.reason), "line\nbreak");
  assert_int_equal(wr_thdr_resp_encode(out, sizeof(out), &resp), WR_ERR_INVAL);
}

static void test_code_tables(void **state) {
  (void)state;
  assert_int_equal(wr_thdr_code_http(WR_THDR_OK), 200);
  assert_int_equal(wr_thdr_code_http(WR_THDR_NOT_EXPOSED), 403);
  assert_int_equal(wr_thdr_code_http(WR_THDR_CONNECT_FAILED), 502);
  assert_int_equal(wr_thdr_code_http(WR_THDR_BAD_REQUEST), 400);
  assert_int_equal(wr_thdr_code_http(WR_THDR_OVERLOADED), 503);
  assert_int_equal(wr_thdr_code_http(WR_THDR_TIMEOUT), 504);
  assert_int_equal(wr_thdr_code_http(6), 502);
  assert_int_equal(wr_thdr_code_http(0xffff), 502);
  assert_string_equal(wr_thdr_code_str(WR_THDR_OK), "ok");
  assert_string_equal(wr_thdr_code_str(WR_THDR_NOT_EXPOSED), "not-exposed");
  assert_string_equal(wr_thdr_code_str(WR_THDR_CONNECT_FAILED), "connect-failed");
  assert_string_equal(wr_thdr_code_str(WR_THDR_BAD_REQUEST), "bad-request");
  assert_string_equal(wr_thdr_code_str(WR_THDR_OVERLOADED), "overloaded");
  assert_string_equal(wr_thdr_code_str(WR_THDR_TIMEOUT), "timeout");
  assert_string_equal(wr_thdr_code_str(6), "unknown");
  assert_string_equal(wr_thdr_code_str(0xffff), "unknown");
}

static void test_target_valid(void **state) {
  static const char *const good[] = {"127.0.0.1:3000", "localhost:80", "a.b-c_d.example:65535",
                                     "[::1]:443", "[fe80::1]:1"};
  static const char *const bad[] = {"",         "host",       "host:",       ":80",      "host:0",
                                    "host:080", "host:65536", "host:-1",     "ho st:80", "[::1:80",
                                    "::1:80",   "[::g]:80",   "host:80\r\n", "h\x01:80", "[]:80"};
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    assert_true(wr_thdr_target_valid(good[i]));
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_false(wr_thdr_target_valid(bad[i]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_request),
      cmocka_unit_test(test_golden_response),
      cmocka_unit_test(test_req_round_trip),
      cmocka_unit_test(test_resp_round_trip),
      cmocka_unit_test(test_max_fields_round_trip),
      cmocka_unit_test(test_every_truncation),
      cmocka_unit_test(test_oversize_body),
      cmocka_unit_test(test_wrong_version),
      cmocka_unit_test(test_bad_magic_and_type),
      cmocka_unit_test(test_duplicate_tags),
      cmocka_unit_test(test_missing_required),
      cmocka_unit_test(test_code_length),
      cmocka_unit_test(test_targets),
      cmocka_unit_test(test_unknown_tags_skipped),
      cmocka_unit_test(test_field_too_long),
      cmocka_unit_test(test_nul_and_control_bytes),
      cmocka_unit_test(test_malformed_tlv),
      cmocka_unit_test(test_decode_leaves_output_on_error),
      cmocka_unit_test(test_encode_errors),
      cmocka_unit_test(test_code_tables),
      cmocka_unit_test(test_target_valid),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
