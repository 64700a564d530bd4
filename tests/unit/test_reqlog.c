/* test_reqlog.c - heartbeat/reqlog.c: request lines from the bytes of a tunnel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "reqlog.h"

#define MAXREC 64

struct sink {
  char lines[MAXREC][HB_REQLOG_LINE_MAX];
  struct hb_reqlog_rec recs[MAXREC];
  size_t n;
};

static void on_rec(void *ud, const struct hb_reqlog_rec *r) {
  struct sink *s = ud;

  assert_true(s->n < MAXREC);
  s->recs[s->n] = *r;
  s->recs[s->n].method = NULL; /* borrowed: only the line is kept */
  s->recs[s->n].target = NULL;
  hb_reqlog_format(r, s->lines[s->n], sizeof(s->lines[s->n]));
  s->n++;
}

static void up(hb_reqlog *l, const char *s, uint64_t t) {
  hb_reqlog_up(l, (const uint8_t *)s, strlen(s), t);
}

static void down(hb_reqlog *l, const char *s, uint64_t t) {
  hb_reqlog_down(l, (const uint8_t *)s, strlen(s), t);
}

/* bytewise feeds |s| one byte at a time, all at time |t|. */
static void bytewise(hb_reqlog *l, int is_up, const char *s, uint64_t t) {
  size_t i;

  for (i = 0; s[i] != '\0'; i++) {
    if (is_up)
      hb_reqlog_up(l, (const uint8_t *)s + i, 1, t);
    else
      hb_reqlog_down(l, (const uint8_t *)s + i, 1, t);
  }
}

static void test_one_request(void **state) {
  struct sink s = {0};
  hb_reqlog *l = hb_reqlog_new(on_rec, &s);

  (void)state;
  up(l, "GET /hello?x=1 HTTP/1.1\r\nHost: app.example.com\r\n\r\n", 1000000);
  assert_int_equal(s.n, 0);
  down(l, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 1012400);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.lines[0], "GET /hello?x=1 200 12ms");
  assert_int_equal(s.recs[0].kind, HB_REQLOG_HTTP);
  assert_int_equal(s.recs[0].status, 200);
  assert_int_equal(s.recs[0].duration_us, 12400);
  hb_reqlog_end(l, 2000000);
  assert_int_equal(s.n, 1); /* nothing pending, not a TCP stream */
  hb_reqlog_free(l);
}

static void test_keepalive_bytewise(void **state) {
  struct sink s = {0};
  hb_reqlog *l = hb_reqlog_new(on_rec, &s);

  (void)state;
  bytewise(l, 1, "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world", 10);
  bytewise(l, 0,
           "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
           3010);
  bytewise(l, 1,
           "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
           5000);
  bytewise(l, 0, "HTTP/1.1 204 No Content\r\n\r\n", 5499);
  bytewise(l, 1, "DELETE /d HTTP/1.1\r\nHost: h\r\n\r\n", 6000);
  bytewise(l, 0, "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n", 7600);
  assert_int_equal(s.n, 3);
  assert_string_equal(s.lines[0], "POST /upload 201 3ms");
  assert_string_equal(s.lines[1], "PUT /c 204 0ms");
  assert_string_equal(s.lines[2], "DELETE /d 404 2ms");
  hb_reqlog_end(l, 9000);
  assert_int_equal(s.n, 3);
  hb_reqlog_free(l);
}

static void test_pipelined_and_head(void **state) {
  struct sink s = {0};
  hb_reqlog *l = hb_reqlog_new(on_rec, &s);

  (void)state;
  up(l,
     "HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n"
     "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
     "GET /c HTTP/1.1\r\nHost: h\r\n\r\n",
     1000);
  /* HEAD: Content-Length but no body; then /b's response, interim 100 for /c */
  down(l,
       "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
       "HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nno"
       "HTTP/1.1 100 Continue\r\n\r\n",
       4000);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.lines[0], "HEAD /a 200 3ms");
  assert_string_equal(s.lines[1], "GET /b 500 3ms");
  down(l, "HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n", 9000);
  assert_int_equal(s.n, 3);
  assert_string_equal(s.lines[2], "GET /c 302 8ms");
  hb_reqlog_free(l);
}

static void test_no_response(void **state) {
  struct sink s = {0};
  hb_reqlog *l = hb_reqlog_new(on_rec, &s);

  (void)state;
  up(l, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n", 1000);
  down(l, "HTTP/1.1 200 OK\r\n", 2000); /* head not complete */
  hb_reqlog_end(l, 30001000);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.lines[0], "GET /slow - 30000ms");
  assert_int_equal(s.recs[0].status, 0);
  up(l, "GET /late HTTP/1.1\r\n\r\n", 1);
  hb_reqlog_end(l, 2);
  assert_int_equal(s.n, 1); /* nothing after the end */
  hb_reqlog_free(l);
}

static void test_websocket_upgrade(void **state) {
  struct sink s = {0};
  hb_reqlog *l = hb_reqlog_new(on_rec, &s);

  (void)state;
  up(l,
     "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
     "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
     1000);
  down(l,
       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x05Hello",
       2000);
  up(l, "GET /not-http HTTP/1.1\r\n\r\n", 3000);
  down(l, "HTTP/1.1 200 OK\r\n\r\n", 4000);
  hb_reqlog_end(l, 5000);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.lines[0], "GET /ws 101 1ms");
  hb_reqlog_free(l);
}

static void test_not_http(void **state) {
  static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03};
  struct sink s = {0};
  hb_reqlog *l = hb_reqlog_new(on_rec, &s);

  (void)state;
  hb_reqlog_up(l, hello, sizeof(hello), 1000000);
  hb_reqlog_down(l, (const uint8_t *)"\x16\x03\x03", 3, 1001000);
  hb_reqlog_up(l, hello, sizeof(hello), 1002000);
  assert_int_equal(s.n, 0);
  hb_reqlog_end(l, 2500000);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.recs[0].kind, HB_REQLOG_TCP);
  assert_int_equal(s.recs[0].up, 20);
  assert_int_equal(s.recs[0].down, 3);
  assert_string_equal(s.lines[0], "tcp stream 20/3 bytes 1500ms");
  hb_reqlog_free(l);

  /* HTTP/2 prior knowledge, and a server that speaks first: not HTTP/1 either */
  memset(&s, 0, sizeof(s));
  l = hb_reqlog_new(on_rec, &s);
  up(l, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0);
  hb_reqlog_end(l, 1000);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.recs[0].kind, HB_REQLOG_TCP);
  hb_reqlog_free(l);
  memset(&s, 0, sizeof(s));
  l = hb_reqlog_new(on_rec, &s);
  down(l, "SSH-2.0-OpenSSH_9.2\r\n", 0);
  up(l, "SSH-2.0-client\r\n", 10);
  hb_reqlog_end(l, 1000);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.lines[0], "tcp stream 16/21 bytes 1ms");
  hb_reqlog_free(l);

  /* an empty stream says nothing */
  memset(&s, 0, sizeof(s));
  l = hb_reqlog_new(on_rec, &s);
  hb_reqlog_end(l, 1000);
  assert_int_equal(s.n, 0);
  hb_reqlog_free(l);
}

static void test_garbage_stops_logging(void **state) {
  struct sink s = {0};
  hb_reqlog *l = hb_reqlog_new(on_rec, &s);

  (void)state;
  up(l, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 0);
  down(l, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1000);
  up(l, "GET /b HTTP/1.1\r\nHost: h\r\n\r\n", 2000);
  up(l, "\x01\x02 garbage\r\n\r\n", 2000);
  down(l, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 3000);
  hb_reqlog_end(l, 4000);
  assert_int_equal(s.n, 1); /* /a only: no guess for /b, no tcp line */
  assert_string_equal(s.lines[0], "GET /a 200 1ms");
  hb_reqlog_free(l);

  /* a broken response: same */
  memset(&s, 0, sizeof(s));
  l = hb_reqlog_new(on_rec, &s);
  up(l, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 0);
  down(l, "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 1000);
  hb_reqlog_end(l, 4000);
  assert_int_equal(s.n, 0);
  hb_reqlog_free(l);

  /* http-parser takes a status of fewer than 3 digits; HTTP does not (found by fuzz_reqlog) */
  memset(&s, 0, sizeof(s));
  l = hb_reqlog_new(on_rec, &s);
  up(l, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 0);
  down(l, "HTTP/1.1 10\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 1000);
  hb_reqlog_end(l, 4000);
  assert_int_equal(s.n, 0);
  hb_reqlog_free(l);
}

static void test_target_escaped_and_capped(void **state) {
  char req[4096], want[HB_REQLOG_LINE_MAX];
  struct sink s = {0};
  hb_reqlog *l = hb_reqlog_new(on_rec, &s);
  size_t n;

  (void)state;
  /* http-parser lets some bytes through in a target: they are escaped */
  up(l, "GET /caf\xc3\xa9\tx HTTP/1.1\r\nHost: h\r\n\r\n", 0);
  down(l, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.lines[0], "GET /caf%C3%A9%09x 200 0ms");
  /* long targets end in "..." */
  n = (size_t)snprintf(req, sizeof(req), "GET /");
  memset(req + n, 'a', 2000);
  n += 2000;
  snprintf(req + n, sizeof(req) - n, " HTTP/1.1\r\nHost: h\r\n\r\n");
  bytewise(l, 1, req, 0);
  down(l, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
  assert_int_equal(s.n, 2);
  memset(want, 0, sizeof(want));
  memcpy(want, "GET /", 5);
  memset(want + 5, 'a', HB_REQLOG_TARGET_MAX - 3 - 1);
  strcat(want, "... 200 0ms");
  assert_string_equal(s.lines[1], want);
  hb_reqlog_free(l);
}

static void test_pipeline_cap(void **state) {
  struct sink s = {0};
  hb_reqlog *l = hb_reqlog_new(on_rec, &s);
  int i;

  (void)state;
  for (i = 0; i < HB_REQLOG_PENDING_MAX + 1; i++)
    up(l, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0);
  for (i = 0; i < HB_REQLOG_PENDING_MAX + 1; i++)
    down(l, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
  hb_reqlog_end(l, 0);
  assert_int_equal(s.n, 0); /* it stopped following them */
  hb_reqlog_free(l);
}

static void test_connect_and_early_answer(void **state) {
  struct sink s = {0};
  hb_reqlog *l = hb_reqlog_new(on_rec, &s);

  (void)state;
  up(l, "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n\x00\x01", 0);
  down(l, "HTTP/1.1 200 Connection established\r\n\r\n\x52\x00", 2000);
  up(l, "more bytes", 3000);
  hb_reqlog_end(l, 4000);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.lines[0], "CONNECT db:5432 200 2ms");
  hb_reqlog_free(l);

  /* the service answers before the request head is complete (431, 408) */
  memset(&s, 0, sizeof(s));
  l = hb_reqlog_new(on_rec, &s);
  up(l, "GET / HTTP/1.1\r\nX: ", 0);
  down(l, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 5000);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.lines[0], "- - 408 0ms");
  hb_reqlog_free(l);
}

static void test_format(void **state) {
  struct hb_reqlog_rec r = {HB_REQLOG_HTTP, "GET", "/x", 200, 1499, 0, 0};
  char small[8];

  (void)state;
  assert_int_equal(hb_reqlog_format(&r, small, sizeof(small)), 7);
  assert_string_equal(small, "GET /x ");
  r.duration_us = 1500;
  assert_int_equal(hb_reqlog_format(&r, small, 0), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_request),
      cmocka_unit_test(test_keepalive_bytewise),
      cmocka_unit_test(test_pipelined_and_head),
      cmocka_unit_test(test_no_response),
      cmocka_unit_test(test_websocket_upgrade),
      cmocka_unit_test(test_not_http),
      cmocka_unit_test(test_garbage_stops_logging),
      cmocka_unit_test(test_target_escaped_and_capped),
      cmocka_unit_test(test_pipeline_cap),
      cmocka_unit_test(test_connect_and_early_answer),
      cmocka_unit_test(test_format),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
