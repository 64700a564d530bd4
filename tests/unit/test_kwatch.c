/* test_kwatch.c - watch-stream parser: any split gives the same events; every rejection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warren/err.h"
#include "warren/kwatch.h"

/* A realistic stream: the apiserver's newline-separated documents, plus the
 * whitespace and missing separators the parser must tolerate anyway. */
static const char stream[] =
    "{\"type\":\"ADDED\",\"object\":{\"apiVersion\":\"networking.datumapis.com/v1alpha1\","
    "\"kind\":\"Connector\",\"metadata\":{\"name\":\"laptop\",\"namespace\":\"default\","
    "\"resourceVersion\":\"1001\",\"uid\":\"6b1c\"},\"spec\":{\"connectorClassName\":\"std\"}}}\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"HTTPProxy\",\"metadata\":{\"name\":\"p\","
    "\"resourceVersion\":\"1002\",\"annotations\":{\"x/{weird}\":\"}{ ][ \\\"quoted\\\" \\\\\"}},"
    "\"spec\":{\"hostnames\":[\"a.example\",\"b.example\"],\"rules\":[{\"matches\":[]}]}}}\r\n"
    "  \t\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Connector\",\"apiVersion\":"
    "\"networking.datumapis.com/v1alpha1\",\"metadata\":{\"resourceVersion\":\"1005\"}}}"
    "{\"type\":\"DELETED\",\"object\":{\"kind\":\"Connector\",\"metadata\":{\"name\":\"laptop\","
    "\"resourceVersion\":\"1006\"},\"note\":\"\\u00e9\\n\\\\\\\"}\"}}\n"
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
    "\"status\":\"Failure\",\"message\":\"too old resource version: 1001 (1006)\","
    "\"reason\":\"Expired\",\"code\":410}}\n";
#define STREAM_EVENTS 5

struct rec {
  enum wr_kwatch_type type;
  char *rv;
  int code;
  char *reason;
  char *message;
  size_t doc_len;
  char *object; /* the object, serialised with sorted keys */
};

struct log {
  struct rec ev[64];
  size_t n;
  size_t stop_at; /* stop after this many events (0: never) */
  int keep;       /* json_incref the first object into kept */
  json_t *kept;
  wr_kwatch *self; /* for the re-entrancy test */
  int reentry_rv;
};

static char *dup_or_null(const char *s) {
  return s != NULL ? strdup(s) : NULL;
}

static int record(void *ud, const struct wr_kwatch_event *ev) {
  struct log *l = ud;
  struct rec *r;

  assert_true(l->n < sizeof(l->ev) / sizeof(l->ev[0]));
  assert_non_null(ev->object);
  assert_true(json_is_object(ev->object));
  r = &l->ev[l->n++];
  r->type = ev->type;
  r->rv = dup_or_null(ev->resource_version);
  r->code = ev->code;
  r->reason = dup_or_null(ev->reason);
  r->message = dup_or_null(ev->message);
  r->doc_len = ev->doc_len;
  r->object = json_dumps(ev->object, JSON_SORT_KEYS | JSON_COMPACT);
  assert_non_null(r->object);
  if (l->keep && l->kept == NULL)
    l->kept = json_incref(ev->object);
  if (l->self != NULL) {
    l->reentry_rv = wr_kwatch_feed(l->self, (const uint8_t *)"{}", 2);
    l->self = NULL;
  }
  return l->stop_at != 0 && l->n >= l->stop_at;
}

static void log_clear(struct log *l) {
  size_t i;

  for (i = 0; i < l->n; i++) {
    free(l->ev[i].rv);
    free(l->ev[i].reason);
    free(l->ev[i].message);
    free(l->ev[i].object);
  }
  l->n = 0;
  if (l->kept != NULL)
    json_decref(l->kept);
  l->kept = NULL;
}

static void assert_str_eq_or_null(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    assert_ptr_equal(a, b);
  else
    assert_string_equal(a, b);
}

static void assert_logs_equal(const struct log *a, const struct log *b) {
  size_t i;

  assert_int_equal(a->n, b->n);
  for (i = 0; i < a->n; i++) {
    assert_int_equal(a->ev[i].type, b->ev[i].type);
    assert_str_eq_or_null(a->ev[i].rv, b->ev[i].rv);
    assert_int_equal(a->ev[i].code, b->ev[i].code);
    assert_str_eq_or_null(a->ev[i].reason, b->ev[i].reason);
    assert_str_eq_or_null(a->ev[i].message, b->ev[i].message);
    assert_int_equal(a->ev[i].doc_len, b->ev[i].doc_len);
    assert_string_equal(a->ev[i].object, b->ev[i].object);
  }
}

static int feed_str(wr_kwatch *p, const char *s) {
  return wr_kwatch_feed(p, (const uint8_t *)s, strlen(s));
}

/* parse_whole feeds |s| in one call into |l|. */
static void parse_whole(const char *s, struct log *l, size_t max) {
  wr_kwatch p;

  wr_kwatch_init(&p, max, record, l);
  assert_int_equal(feed_str(&p, s), 0);
  assert_int_equal(wr_kwatch_end(&p), 0);
  wr_kwatch_free(&p);
}

static void test_stream_events(void **state) {
  struct log l = {.n = 0};

  (void)state;
  parse_whole(stream, &l, 4096);
  assert_int_equal(l.n, STREAM_EVENTS);
  assert_int_equal(l.ev[0].type, WR_KWATCH_ADDED);
  assert_string_equal(l.ev[0].rv, "1001");
  assert_int_equal(l.ev[0].code, 0);
  assert_null(l.ev[0].reason);
  assert_int_equal(l.ev[1].type, WR_KWATCH_MODIFIED);
  assert_string_equal(l.ev[1].rv, "1002");
  assert_int_equal(l.ev[2].type, WR_KWATCH_BOOKMARK);
  assert_int_equal(l.ev[3].type, WR_KWATCH_DELETED);
  assert_string_equal(l.ev[3].rv, "1006");
  assert_int_equal(l.ev[4].type, WR_KWATCH_ERROR);
  /* doc_len counts the document only, not the separators. */
  assert_int_equal(l.ev[0].doc_len, (size_t)(strchr(stream, '\n') - stream));
  log_clear(&l);
}

static void test_every_split_point(void **state) {
  struct log whole = {.n = 0}, split = {.n = 0};
  size_t n = strlen(stream), k;

  (void)state;
  parse_whole(stream, &whole, 4096);
  for (k = 0; k <= n; k++) {
    wr_kwatch p;

    wr_kwatch_init(&p, 4096, record, &split);
    assert_int_equal(wr_kwatch_feed(&p, (const uint8_t *)stream, k), 0);
    assert_int_equal(wr_kwatch_feed(&p, (const uint8_t *)stream + k, n - k), 0);
    assert_int_equal(wr_kwatch_end(&p), 0);
    assert_logs_equal(&whole, &split);
    log_clear(&split);
    wr_kwatch_free(&p);
  }
  log_clear(&whole);
}

static void test_byte_by_byte(void **state) {
  struct log whole = {.n = 0}, split = {.n = 0};
  size_t n = strlen(stream), i;
  wr_kwatch p;

  (void)state;
  parse_whole(stream, &whole, 4096);
  wr_kwatch_init(&p, 4096, record, &split);
  for (i = 0; i < n; i++)
    assert_int_equal(wr_kwatch_feed(&p, (const uint8_t *)stream + i, 1), 0);
  assert_int_equal(wr_kwatch_end(&p), 0);
  assert_logs_equal(&whole, &split);
  /* Empty feeds change nothing. */
  assert_int_equal(wr_kwatch_feed(&p, NULL, 0), 0);
  assert_int_equal(split.n, STREAM_EVENTS);
  log_clear(&split);
  log_clear(&whole);
  wr_kwatch_free(&p);
}

static void test_random_chunks(void **state) {
  struct log whole = {.n = 0}, split = {.n = 0};
  size_t n = strlen(stream);
  uint32_t rng = 12345;
  int round;

  (void)state;
  parse_whole(stream, &whole, 4096);
  for (round = 0; round < 500; round++) {
    wr_kwatch p;
    size_t off = 0;

    wr_kwatch_init(&p, 4096, record, &split);
    while (off < n) {
      size_t chunk;

      rng = rng * 1103515245u + 12345u;
      chunk = 1 + (rng >> 16) % (round % 2 ? 7 : 300);
      if (chunk > n - off)
        chunk = n - off;
      assert_int_equal(wr_kwatch_feed(&p, (const uint8_t *)stream + off, chunk), 0);
      off += chunk;
    }
    assert_int_equal(wr_kwatch_end(&p), 0);
    assert_logs_equal(&whole, &split);
    log_clear(&split);
    wr_kwatch_free(&p);
  }
  log_clear(&whole);
}

static void test_whitespace_between_docs(void **state) {
  static const char s[] = " \r\n\t{\"type\":\"ADDED\",\"object\":{}}\n\n\r\n"
                          "{\"type\":\"ADDED\",\"object\":{\"a\" : [ 1 , {\"b\":2} ] }}"
                          "{\"type\":\"DELETED\",\"object\":{}}   \n\t ";
  struct log l = {.n = 0};
  wr_kwatch p;

  (void)state;
  wr_kwatch_init(&p, 1024, record, &l);
  assert_int_equal(feed_str(&p, s), 0);
  assert_int_equal(wr_kwatch_end(&p), 0);
  assert_int_equal(l.n, 3);
  assert_int_equal(l.ev[0].type, WR_KWATCH_ADDED);
  assert_null(l.ev[0].rv);
  assert_string_equal(l.ev[1].object, "{\"a\":[1,{\"b\":2}]}");
  assert_int_equal(l.ev[2].type, WR_KWATCH_DELETED);
  log_clear(&l);
  wr_kwatch_free(&p);
}

static void test_strings_with_braces_and_escapes(void **state) {
  /* Every structural character also appears inside strings, after escaped
   * quotes and backslashes; a key holds braces too. */
  static const char s[] = "{\"type\":\"MODIFIED\",\"object\":{\"}{\":\"]\",\"q\":\"a\\\"}\\\\\","
                          "\"e\":\"\\\\\\\"{\",\"u\":\"\\u007b\\u0022\"}}\n";
  struct log l = {.n = 0};
  json_t *o;

  (void)state;
  parse_whole(s, &l, 1024);
  assert_int_equal(l.n, 1);
  o = json_loads(l.ev[0].object, 0, NULL);
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "}{")), "]");
  assert_string_equal(json_string_value(json_object_get(o, "q")), "a\"}\\");
  assert_string_equal(json_string_value(json_object_get(o, "e")), "\\\"{");
  assert_string_equal(json_string_value(json_object_get(o, "u")), "{\"");
  json_decref(o);
  log_clear(&l);
}

static void test_bookmark(void **state) {
  static const char s[] =
      "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"HTTPProxy\",\"apiVersion\":"
      "\"networking.datumapis.com/v1alpha\",\"metadata\":{\"resourceVersion\":\"12345\","
      "\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}}}}\n";
  struct log l = {.n = 0};

  (void)state;
  parse_whole(s, &l, 1024);
  assert_int_equal(l.n, 1);
  assert_int_equal(l.ev[0].type, WR_KWATCH_BOOKMARK);
  assert_string_equal(l.ev[0].rv, "12345");
  assert_int_equal(l.ev[0].code, 0);
  assert_null(l.ev[0].reason);
  assert_null(l.ev[0].message);
  log_clear(&l);
}

static void test_error_410(void **state) {
  static const char s[] =
      "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
      "\"status\":\"Failure\",\"message\":\"too old resource version: 5 (17)\","
      "\"reason\":\"Expired\",\"code\":410}}\n";
  struct log l = {.n = 0};

  (void)state;
  parse_whole(s, &l, 1024);
  assert_int_equal(l.n, 1);
  assert_int_equal(l.ev[0].type, WR_KWATCH_ERROR);
  assert_int_equal(l.ev[0].code, 410);
  assert_string_equal(l.ev[0].reason, "Expired");
  assert_string_equal(l.ev[0].message, "too old resource version: 5 (17)");
  assert_null(l.ev[0].rv);
  log_clear(&l);

  /* A Status without the optional fields, or with a nonsense code. */
  parse_whole("{\"type\":\"ERROR\",\"object\":{\"code\":\"410\"}}"
              "{\"type\":\"ERROR\",\"object\":{\"code\":-1,\"reason\":7}}",
              &l, 1024);
  assert_int_equal(l.n, 2);
  assert_int_equal(l.ev[0].code, 0);
  assert_null(l.ev[0].reason);
  assert_null(l.ev[0].message);
  assert_int_equal(l.ev[1].code, 0);
  assert_null(l.ev[1].reason);
  log_clear(&l);

  /* Status fields are decoded for ERROR only. */
  parse_whole("{\"type\":\"ADDED\",\"object\":{\"code\":410,\"reason\":\"Expired\"}}", &l, 1024);
  assert_int_equal(l.n, 1);
  assert_int_equal(l.ev[0].code, 0);
  assert_null(l.ev[0].reason);
  log_clear(&l);
}

/* doc_of builds {"type":"ADDED","object":{"p":"xxx..."}} of exactly |n| bytes. */
static char *doc_of(size_t n) {
  static const char head[] = "{\"type\":\"ADDED\",\"object\":{\"p\":\"";
  static const char tail[] = "\"}}";
  char *s = malloc(n + 1);
  size_t fill = n - (sizeof(head) - 1) - (sizeof(tail) - 1);

  assert_non_null(s);
  memcpy(s, head, sizeof(head) - 1);
  memset(s + sizeof(head) - 1, 'x', fill);
  memcpy(s + sizeof(head) - 1 + fill, tail, sizeof(tail));
  return s;
}

static void test_oversize_document(void **state) {
  struct log l = {.n = 0};
  char *fits = doc_of(100), *big = doc_of(101);
  wr_kwatch p;
  size_t i;

  (void)state;
  /* Exactly the cap is accepted, whole or byte by byte. */
  wr_kwatch_init(&p, 100, record, &l);
  assert_int_equal(feed_str(&p, fits), 0);
  for (i = 0; i < 100; i++)
    assert_int_equal(wr_kwatch_feed(&p, (const uint8_t *)fits + i, 1), 0);
  assert_int_equal(l.n, 2);
  assert_int_equal(l.ev[1].doc_len, 100);
  assert_true(p.doc.size <= 100);

  /* One byte more fails, even across feeds, before the document ends. */
  assert_int_equal(wr_kwatch_feed(&p, (const uint8_t *)big, 60), 0);
  assert_int_equal(wr_kwatch_feed(&p, (const uint8_t *)big + 60, 40), 0);
  assert_int_equal(wr_kwatch_end(&p), WR_ERR_TRUNCATED);
  assert_int_equal(wr_kwatch_feed(&p, (const uint8_t *)big + 100, 1), WR_ERR_TOOBIG);
  assert_true(p.doc.size <= 100);
  assert_int_equal(l.n, 2);
  /* Failed state: the error sticks, even for a valid document. */
  assert_int_equal(feed_str(&p, "{\"type\":\"ADDED\",\"object\":{}}"), WR_ERR_TOOBIG);
  assert_int_equal(wr_kwatch_end(&p), WR_ERR_TOOBIG);
  assert_int_equal(l.n, 2);

  /* An unterminated document fails as soon as the cap is passed. */
  wr_kwatch_reset(&p);
  assert_int_equal(wr_kwatch_feed(&p, (const uint8_t *)big, 31), 0);
  for (i = 31; i < 100; i++)
    assert_int_equal(feed_str(&p, "y"), 0);
  assert_int_equal(wr_kwatch_end(&p), WR_ERR_TRUNCATED);
  assert_int_equal(feed_str(&p, "y"), WR_ERR_TOOBIG);
  assert_int_equal(l.n, 2);

  /* In one feed, with a good document first: that one is delivered. */
  wr_kwatch_reset(&p);
  log_clear(&l);
  assert_int_equal(feed_str(&p, "{\"type\":\"ADDED\",\"object\":{}}\n"), 0);
  assert_int_equal(feed_str(&p, big), WR_ERR_TOOBIG);
  assert_int_equal(l.n, 1);
  log_clear(&l);
  wr_kwatch_free(&p);
  free(fits);
  free(big);
}

/* expect_fail feeds |s| (whole, then byte by byte) and expects |err| with
 * |events| events before it, then a sticky failure. */
static void expect_fail(const char *s, int err, size_t events) {
  struct log l = {.n = 0};
  size_t n = strlen(s), i;
  int rv = 0;
  wr_kwatch p;

  wr_kwatch_init(&p, 4096, record, &l);
  assert_int_equal(feed_str(&p, s), err);
  assert_int_equal(l.n, events);
  assert_int_equal(feed_str(&p, "{\"type\":\"ADDED\",\"object\":{}}"), err);
  assert_int_equal(wr_kwatch_end(&p), err);
  assert_int_equal(l.n, events);
  wr_kwatch_free(&p);
  log_clear(&l);

  wr_kwatch_init(&p, 4096, record, &l);
  for (i = 0; i < n && rv == 0; i++)
    rv = wr_kwatch_feed(&p, (const uint8_t *)s + i, 1);
  assert_int_equal(rv, err);
  assert_int_equal(l.n, events);
  wr_kwatch_free(&p);
  log_clear(&l);
}

static void test_invalid_json(void **state) {
  (void)state;
  expect_fail("{\"type\":\"ADDED\",\"object\":{\"a\":tru}}", WR_ERR_PROTO, 0);
  expect_fail("{\"type\":\"ADDED\",\"object\":{\"a\":1]}", WR_ERR_PROTO, 0);
  expect_fail("{\"type\":\"ADDED\",\"object\":{}}}", WR_ERR_PROTO, 1);
  expect_fail("{\"type\":\"ADDED\",\"object\":{\"a\":\"\x01\"}}", WR_ERR_PROTO, 0);
  expect_fail("{\"type\":\"ADDED\",\"object\":{},}", WR_ERR_PROTO, 0);
  /* Duplicate keys would make the event ambiguous. */
  expect_fail("{\"type\":\"ADDED\",\"type\":\"DELETED\",\"object\":{}}", WR_ERR_PROTO, 0);
  /* Top-level values that are not objects. */
  expect_fail("[{\"type\":\"ADDED\",\"object\":{}}]", WR_ERR_PROTO, 0);
  expect_fail("\"ADDED\"", WR_ERR_PROTO, 0);
  expect_fail("{\"type\":\"ADDED\",\"object\":{}}\n42\n", WR_ERR_PROTO, 1);
  expect_fail("{\"type\":\"ADDED\",\"object\":{}}\nnull", WR_ERR_PROTO, 1);
  expect_fail("\xef\xbb\xbf{\"type\":\"ADDED\",\"object\":{}}", WR_ERR_PROTO, 0);
}

static void test_raw_nul_refused(void **state) {
  /* jansson alone would drop the NUL after 41 and accept the document. */
  static const char after_number[] = "{\"type\":\"ADDED\",\"object\":{\"a\":41\0}}";
  static const char in_string[] = "{\"type\":\"ADDED\",\"object\":{\"a\":\"x\0y\"}}";
  static const char between[] = "{\"type\":\"ADDED\",\"object\":{}}\0";
  static const struct {
    const char *s;
    size_t n;
    size_t events;
  } cases[] = {
      {after_number, sizeof(after_number) - 1, 0},
      {in_string, sizeof(in_string) - 1, 0},
      {between, sizeof(between) - 1, 1},
  };
  size_t i, j;

  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct log l = {.n = 0};
    wr_kwatch p;
    int rv = 0;

    wr_kwatch_init(&p, 4096, record, &l);
    assert_int_equal(wr_kwatch_feed(&p, (const uint8_t *)cases[i].s, cases[i].n), WR_ERR_PROTO);
    assert_int_equal(l.n, cases[i].events);
    wr_kwatch_free(&p);
    log_clear(&l);
    wr_kwatch_init(&p, 4096, record, &l);
    for (j = 0; j < cases[i].n && rv == 0; j++)
      rv = wr_kwatch_feed(&p, (const uint8_t *)cases[i].s + j, 1);
    assert_int_equal(rv, WR_ERR_PROTO);
    assert_int_equal(l.n, cases[i].events);
    wr_kwatch_free(&p);
    log_clear(&l);
  }
}

static void test_bad_event_shape(void **state) {
  (void)state;
  expect_fail("{\"type\":\"SYNC\",\"object\":{}}", WR_ERR_PROTO, 0);
  expect_fail("{\"type\":\"added\",\"object\":{}}", WR_ERR_PROTO, 0);
  expect_fail("{\"type\":\"ADDED\\u0000\",\"object\":{}}", WR_ERR_PROTO, 0);
  expect_fail("{\"type\":1,\"object\":{}}", WR_ERR_PROTO, 0);
  expect_fail("{\"object\":{}}", WR_ERR_PROTO, 0);
  expect_fail("{\"type\":\"ADDED\"}", WR_ERR_PROTO, 0);
  expect_fail("{\"type\":\"ADDED\",\"object\":null}", WR_ERR_PROTO, 0);
  expect_fail("{\"type\":\"ADDED\",\"object\":[]}", WR_ERR_PROTO, 0);
  expect_fail("{}", WR_ERR_PROTO, 0);
  /* The first good document is delivered before the bad one fails. */
  expect_fail("{\"type\":\"DELETED\",\"object\":{}}{\"type\":\"GONE\",\"object\":{}}", WR_ERR_PROTO,
              1);
}

static void test_callback_stop(void **state) {
  struct log l = {.n = 0, .stop_at = 2};
  size_t n = strlen(stream), i;
  int rv = 0;
  wr_kwatch p;

  (void)state;
  wr_kwatch_init(&p, 4096, record, &l);
  assert_int_equal(feed_str(&p, stream), WR_ERR_STOPPED);
  assert_int_equal(l.n, 2);
  assert_int_equal(l.ev[1].type, WR_KWATCH_MODIFIED);
  /* Stopped stays stopped; the rest of the feed was dropped. */
  assert_int_equal(feed_str(&p, stream), WR_ERR_STOPPED);
  assert_int_equal(wr_kwatch_end(&p), WR_ERR_STOPPED);
  assert_int_equal(l.n, 2);

  /* Reset starts a new stream. */
  wr_kwatch_reset(&p);
  log_clear(&l);
  l.stop_at = 0;
  assert_int_equal(feed_str(&p, stream), 0);
  assert_int_equal(l.n, STREAM_EVENTS);
  log_clear(&l);

  /* A reset also drops a partial document. */
  assert_int_equal(wr_kwatch_feed(&p, (const uint8_t *)stream, 20), 0);
  assert_int_equal(wr_kwatch_end(&p), WR_ERR_TRUNCATED);
  wr_kwatch_reset(&p);
  assert_int_equal(wr_kwatch_end(&p), 0);
  assert_int_equal(feed_str(&p, stream), 0);
  assert_int_equal(l.n, STREAM_EVENTS);
  log_clear(&l);
  wr_kwatch_free(&p);

  /* Byte by byte, the stop comes with the byte that closes the 5th document. */
  l.stop_at = 5;
  wr_kwatch_init(&p, 4096, record, &l);
  for (i = 0; i < n && rv == 0; i++)
    rv = wr_kwatch_feed(&p, (const uint8_t *)stream + i, 1);
  assert_int_equal(rv, WR_ERR_STOPPED);
  assert_int_equal(stream[i - 1], '}');
  assert_string_equal(stream + i, "\n");
  assert_int_equal(l.n, 5);
  log_clear(&l);
  wr_kwatch_free(&p);
}

static void test_end_mid_document(void **state) {
  struct log l = {.n = 0};
  wr_kwatch p;

  (void)state;
  wr_kwatch_init(&p, 4096, record, &l);
  assert_int_equal(wr_kwatch_end(&p), 0);
  assert_int_equal(feed_str(&p, "\n  "), 0);
  assert_int_equal(wr_kwatch_end(&p), 0);
  assert_int_equal(feed_str(&p, "{\"type\":\"ADD"), 0);
  assert_int_equal(wr_kwatch_end(&p), WR_ERR_TRUNCATED);
  assert_int_equal(feed_str(&p, "ED\",\"object\":{}"), 0);
  assert_int_equal(wr_kwatch_end(&p), WR_ERR_TRUNCATED);
  assert_int_equal(l.n, 0);
  assert_int_equal(feed_str(&p, "}"), 0);
  assert_int_equal(wr_kwatch_end(&p), 0);
  assert_int_equal(l.n, 1);
  log_clear(&l);
  wr_kwatch_free(&p);
}

static void test_object_kept_after_callback(void **state) {
  struct log l = {.n = 0, .keep = 1};

  (void)state;
  parse_whole(stream, &l, 4096);
  assert_non_null(l.kept);
  assert_string_equal(json_string_value(json_object_get(l.kept, "kind")), "Connector");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(l.kept, "metadata"), "resourceVersion")),
      "1001");
  log_clear(&l); /* drops the reference */
}

static void test_reentrant_feed_refused(void **state) {
  struct log l = {.n = 0};
  wr_kwatch p;

  (void)state;
  wr_kwatch_init(&p, 4096, record, &l);
  l.self = &p;
  assert_int_equal(feed_str(&p, stream), 0);
  assert_int_equal(l.reentry_rv, WR_ERR_INVAL);
  assert_int_equal(l.n, STREAM_EVENTS);
  log_clear(&l);
  wr_kwatch_free(&p);
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(wr_kwatch_type_str(WR_KWATCH_ADDED), "ADDED");
  assert_string_equal(wr_kwatch_type_str(WR_KWATCH_MODIFIED), "MODIFIED");
  assert_string_equal(wr_kwatch_type_str(WR_KWATCH_DELETED), "DELETED");
  assert_string_equal(wr_kwatch_type_str(WR_KWATCH_BOOKMARK), "BOOKMARK");
  assert_string_equal(wr_kwatch_type_str(WR_KWATCH_ERROR), "ERROR");
  assert_string_equal(wr_kwatch_type_str((enum wr_kwatch_type)0), "UNKNOWN");
  assert_string_equal(wr_strerror(WR_ERR_STOPPED), "stopped by callback");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stream_events),
      cmocka_unit_test(test_every_split_point),
      cmocka_unit_test(test_byte_by_byte),
      cmocka_unit_test(test_random_chunks),
      cmocka_unit_test(test_whitespace_between_docs),
      cmocka_unit_test(test_strings_with_braces_and_escapes),
      cmocka_unit_test(test_bookmark),
      cmocka_unit_test(test_error_410),
      cmocka_unit_test(test_oversize_document),
      cmocka_unit_test(test_invalid_json),
      cmocka_unit_test(test_raw_nul_refused),
      cmocka_unit_test(test_bad_event_shape),
      cmocka_unit_test(test_callback_stop),
      cmocka_unit_test(test_end_mid_document),
      cmocka_unit_test(test_object_kept_after_callback),
      cmocka_unit_test(test_reentrant_feed_refused),
      cmocka_unit_test(test_names),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
