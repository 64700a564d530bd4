/*
 * fuzz_kwatch.c - libFuzzer target for the watch-stream parser.
 *
 * Input: byte 0 picks the largest chunk size (1-256), byte 1 the document
 * cap (low 3 bits) and after how many events the callback stops (high 5
 * bits, 0: never); the rest is the stream. The stream is parsed three ways:
 *   A. in one feed;
 *   B. in chunks of pseudo-random sizes drawn from byte 0;
 *   C. by an oracle: jansson itself, one document at a time
 *      (JSON_DISABLE_EOF_CHECK reports where each document ends).
 * A and B must give the same events and the same result: splitting never
 * changes what is delivered. Every event of A must be the oracle's next
 * document, in order, and when the oracle sees a clean stream of valid
 * events A must deliver all of them and succeed. The partial-document
 * buffer never exceeds the cap. Any difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "warren/err.h"
#include "warren/kwatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EVENTS 4096
#define JFLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

static const size_t caps[8] = {0, 1, 32, 100, 256, 1024, 4096, 1 << 20};

struct ev {
  enum wr_kwatch_type type;
  int code;
  size_t doc_len;
  uint64_t digest; /* of the object and the decoded strings */
};

struct run {
  struct ev *ev;
  size_t n;
  size_t stop_at;
};

static uint64_t fnv(uint64_t h, const char *s) {
  if (s == NULL)
    return h * 31 + 1;
  for (; *s != '\0'; s++) {
    h ^= (uint8_t)*s;
    h *= 0x100000001b3ULL;
  }
  return h * 31 + 2;
}

/* digest summarises an event's object and strings. */
static uint64_t digest(json_t *obj, const char *rv, const char *reason, const char *message) {
  char *dump = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
  uint64_t h = 0xcbf29ce484222325ULL;

  if (dump == NULL)
    abort();
  h = fnv(h, dump);
  free(dump);
  h = fnv(h, rv);
  h = fnv(h, reason);
  return fnv(h, message);
}

static int on_event(void *ud, const struct wr_kwatch_event *ev) {
  struct run *r = ud;
  struct ev *e;

  if (r->n >= MAX_EVENTS || !json_is_object(ev->object) || ev->type < WR_KWATCH_ADDED ||
      ev->type > WR_KWATCH_ERROR)
    abort();
  if (ev->type != WR_KWATCH_ERROR && (ev->code != 0 || ev->reason != NULL || ev->message != NULL))
    abort();
  e = &r->ev[r->n++];
  e->type = ev->type;
  e->code = ev->code;
  e->doc_len = ev->doc_len;
  e->digest = digest(ev->object, ev->resource_version, ev->reason, ev->message);
  return r->stop_at != 0 && r->n >= r->stop_at;
}

static int known_error(int rc) {
  return rc == 0 || rc == WR_ERR_TOOBIG || rc == WR_ERR_PROTO || rc == WR_ERR_STOPPED;
}

/* oracle_event describes the document |root| as the parser should, or returns 0. */
static int oracle_event(json_t *root, size_t doc_len, struct ev *e) {
  static const char *const names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
  json_t *type = json_object_get(root, "type"), *obj = json_object_get(root, "object"), *code;
  const char *reason = NULL, *message = NULL;
  size_t i;

  if (!json_is_object(root) || !json_is_string(type) || !json_is_object(obj))
    return 0;
  memset(e, 0, sizeof(*e));
  for (i = 0; i < 5; i++) {
    if (json_string_length(type) == strlen(names[i]) &&
        memcmp(json_string_value(type), names[i], strlen(names[i])) == 0)
      e->type = (enum wr_kwatch_type)(WR_KWATCH_ADDED + (int)i);
  }
  if (e->type == 0)
    return 0;
  if (e->type == WR_KWATCH_ERROR) {
    code = json_object_get(obj, "code");
    if (json_is_integer(code) && json_integer_value(code) >= 0 &&
        json_integer_value(code) <= 2147483647)
      e->code = (int)json_integer_value(code);
    reason = json_string_value(json_object_get(obj, "reason"));
    message = json_string_value(json_object_get(obj, "message"));
  }
  e->doc_len = doc_len;
  e->digest = digest(
      obj, json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion")),
      reason, message);
  return 1;
}

static int same_event(const struct ev *a, const struct ev *b) {
  return a->type == b->type && a->code == b->code && a->doc_len == b->doc_len &&
         a->digest == b->digest;
}

/* check_oracle walks the stream with jansson alone and compares it with |a|. */
static void check_oracle(const uint8_t *s, size_t n, size_t cap, const struct run *a, int rc,
                         int end) {
  const uint8_t *nul = memchr(s, 0, n);
  size_t off = 0, k = 0;
  int clean = 1;

  /* jansson swallows a raw NUL after a number or literal; the parser refuses
   * any NUL, so the oracle only looks at the bytes before the first one. */
  if (nul != NULL) {
    n = (size_t)(nul - s);
    clean = 0;
  }

  for (;;) {
    json_error_t jerr;
    json_t *root;
    struct ev e;

    while (off < n && (s[off] == ' ' || s[off] == '\n' || s[off] == '\r' || s[off] == '\t'))
      off++;
    if (off == n)
      break;
    if (s[off] != '{') {
      clean = 0;
      break;
    }
    root = json_loadb((const char *)s + off, n - off, JSON_DISABLE_EOF_CHECK | JFLAGS, &jerr);
    if (root == NULL) {
      clean = 0;
      break;
    }
    if ((size_t)jerr.position > cap || !oracle_event(root, (size_t)jerr.position, &e)) {
      json_decref(root);
      clean = 0;
      break;
    }
    json_decref(root);
    /* The parser stopped early only on request. */
    if (k == a->n) {
      if (rc != WR_ERR_STOPPED)
        abort();
      return;
    }
    if (!same_event(&e, &a->ev[k]))
      abort();
    k++;
    off += (size_t)jerr.position;
  }
  /* Nothing is delivered past the last document the oracle accepts. A clean
   * stream is wholly delivered without error (unless stopped on its last
   * event); otherwise the parser fails, or waits for the rest of a document. */
  if (a->n != k)
    abort();
  if (clean && rc != 0 && !(rc == WR_ERR_STOPPED && a->n == a->stop_at))
    abort();
  if (clean && rc == 0 && end != 0)
    abort();
  if (!clean && rc == 0 && end != WR_ERR_TRUNCATED)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct run a = {0}, b = {0};
  wr_kwatch pa, pb;
  const uint8_t *s;
  size_t n, cap, off = 0, max_chunk, i;
  uint32_t rng;
  int rca, rcb = 0, enda, endb;

  if (size < 2)
    return 0;
  max_chunk = (size_t)data[0] + 1;
  rng = data[0] * 2654435761u + 1;
  cap = caps[data[1] & 7];
  a.stop_at = b.stop_at = data[1] >> 3;
  s = data + 2;
  n = size - 2;
  a.ev = calloc(MAX_EVENTS, sizeof(*a.ev));
  b.ev = calloc(MAX_EVENTS, sizeof(*b.ev));
  if (a.ev == NULL || b.ev == NULL)
    abort();

  wr_kwatch_init(&pa, cap, on_event, &a);
  rca = wr_kwatch_feed(&pa, s, n);
  enda = wr_kwatch_end(&pa);
  if (!known_error(rca) || pa.doc.size > cap)
    abort();

  wr_kwatch_init(&pb, cap, on_event, &b);
  while (off < n && rcb == 0) {
    size_t chunk;

    rng = rng * 1103515245u + 12345u;
    chunk = 1 + (rng >> 8) % max_chunk;
    if (chunk > n - off)
      chunk = n - off;
    rcb = wr_kwatch_feed(&pb, s + off, chunk);
    if (pb.doc.size > cap || wr_buf_len(&pb.doc) > cap)
      abort();
    off += chunk;
  }
  endb = wr_kwatch_end(&pb);

  /* Same events, same result, however the stream was split. */
  if (rca != rcb || enda != endb || a.n != b.n)
    abort();
  for (i = 0; i < a.n; i++) {
    if (!same_event(&a.ev[i], &b.ev[i]))
      abort();
  }
  /* Errors are sticky. */
  if (rca != 0 && (wr_kwatch_feed(&pa, (const uint8_t *)"{}", 2) != rca || enda != rca))
    abort();
  if (rca == 0 && enda != 0 && enda != WR_ERR_TRUNCATED)
    abort();
  check_oracle(s, n, cap, &a, rca, enda);

  wr_kwatch_free(&pa);
  wr_kwatch_free(&pb);
  free(a.ev);
  free(b.ev);
  return 0;
}
