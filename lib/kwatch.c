/*
 * kwatch.c - Kubernetes watch-stream parser (docs/internals/kwatch.md).
 *
 * A small state machine finds where each top-level JSON object ends: it
 * counts '{' and '[' against '}' and ']' outside strings, and inside strings
 * it only tracks backslash escapes and the closing quote. It does not
 * validate; jansson does that once the document is complete. A document that
 * ends inside one feed with nothing buffered is parsed straight from the
 * caller's bytes; otherwise its bytes are gathered in a capped buffer.
 */
#include <limits.h>
#include <string.h>

#include "warren/err.h"
#include "warren/kwatch.h"

/* Flags for json_loadb: refuse ambiguous documents (a duplicate "type"),
 * accept \u0000, which Go's encoder may legitimately emit in a string. */
#define KWATCH_JSON_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

static const struct {
  const char *name;
  enum wr_kwatch_type type;
} types[] = {
    {"ADDED", WR_KWATCH_ADDED},     {"MODIFIED", WR_KWATCH_MODIFIED},
    {"DELETED", WR_KWATCH_DELETED}, {"BOOKMARK", WR_KWATCH_BOOKMARK},
    {"ERROR", WR_KWATCH_ERROR},
};

void wr_kwatch_init(wr_kwatch *p, size_t max_doc_bytes, wr_kwatch_cb cb, void *ud) {
  memset(p, 0, sizeof(*p));
  wr_buf_init(&p->doc, max_doc_bytes);
  p->max_doc = max_doc_bytes;
  p->cb = cb;
  p->ud = ud;
}

void wr_kwatch_free(wr_kwatch *p) {
  wr_buf_free(&p->doc);
}

/* start_doc clears the scanner for a document whose first byte is next. */
static void start_doc(wr_kwatch *p) {
  wr_buf_reset(&p->doc);
  p->doc_len = 0;
  p->depth = 0;
  p->in_doc = 1;
  p->in_str = 0;
  p->esc = 0;
}

void wr_kwatch_reset(wr_kwatch *p) {
  start_doc(p);
  p->in_doc = 0;
  p->err = 0;
}

/* fail makes |err| sticky and drops the partial document. */
static int fail(wr_kwatch *p, int err) {
  start_doc(p);
  p->in_doc = 0;
  p->err = err;
  return err;
}

static int is_ws(uint8_t c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/*
 * scan advances over at most |n| bytes of |s| and returns how many belong to
 * the current document; *done is set to 1 when the last of them closes it,
 * or to -1 at a NUL byte. A raw NUL is never valid JSON, but jansson drops
 * one that follows a number or a literal instead of refusing the document.
 */
static size_t scan(wr_kwatch *p, const uint8_t *s, size_t n, int *done) {
  size_t i;

  *done = 0;
  for (i = 0; i < n; i++) {
    uint8_t c = s[i];

    if (c == '\0') {
      *done = -1;
      return i;
    }
    if (p->in_str) {
      if (p->esc)
        p->esc = 0;
      else if (c == '\\')
        p->esc = 1;
      else if (c == '"')
        p->in_str = 0;
      continue;
    }
    switch (c) {
    case '"':
      p->in_str = 1;
      break;
    case '{':
    case '[':
      p->depth++;
      break;
    case '}':
    case ']':
      /* depth >= 1 here: a document starts with '{' and ends at depth 0. */
      if (--p->depth == 0) {
        *done = 1;
        return i + 1;
      }
      break;
    default:
      break;
    }
  }
  return n;
}

/* str_member returns the string member |key| of |obj|, or NULL. */
static const char *str_member(json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

/* event_type maps the "type" string (which may hold a NUL) to the enum, or 0. */
static enum wr_kwatch_type event_type(json_t *v) {
  const char *s = json_string_value(v);
  size_t n, i;

  if (s == NULL)
    return 0;
  n = json_string_length(v);
  for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
    if (strlen(types[i].name) == n && memcmp(types[i].name, s, n) == 0)
      return types[i].type;
  }
  return 0;
}

/* deliver parses one complete document of |n| bytes and calls the callback. */
static int deliver(wr_kwatch *p, const uint8_t *doc, size_t n) {
  struct wr_kwatch_event ev;
  json_error_t jerr;
  json_t *root, *obj, *code;
  int rc;

  root = json_loadb((const char *)doc, n, KWATCH_JSON_FLAGS, &jerr);
  if (root == NULL)
    return json_error_code(&jerr) == json_error_out_of_memory ? WR_ERR_NOMEM : WR_ERR_PROTO;
  memset(&ev, 0, sizeof(ev));
  ev.doc_len = n;
  ev.type = event_type(json_object_get(root, "type"));
  obj = json_object_get(root, "object");
  if (ev.type == 0 || !json_is_object(obj)) {
    json_decref(root);
    return WR_ERR_PROTO;
  }
  ev.object = obj;
  ev.resource_version = str_member(json_object_get(obj, "metadata"), "resourceVersion");
  if (ev.type == WR_KWATCH_ERROR) {
    code = json_object_get(obj, "code");
    if (json_is_integer(code) && json_integer_value(code) >= 0 &&
        json_integer_value(code) <= INT_MAX)
      ev.code = (int)json_integer_value(code);
    ev.reason = str_member(obj, "reason");
    ev.message = str_member(obj, "message");
  }
  p->in_cb = 1;
  rc = p->cb(p->ud, &ev);
  p->in_cb = 0;
  json_decref(root);
  return rc != 0 ? WR_ERR_STOPPED : 0;
}

int wr_kwatch_feed(wr_kwatch *p, const uint8_t *data, size_t len) {
  size_t i = 0;

  if (p->in_cb)
    return WR_ERR_INVAL;
  if (p->err != 0)
    return p->err;
  while (i < len) {
    size_t room, want, n;
    int done, rc;

    if (!p->in_doc) {
      while (i < len && is_ws(data[i]))
        i++;
      if (i == len)
        break;
      if (data[i] != '{')
        return fail(p, WR_ERR_PROTO);
      start_doc(p);
    }
    /* Scan up to the cap; an unfinished document with bytes left over is too big. */
    room = p->max_doc - p->doc_len;
    want = len - i;
    n = scan(p, data + i, want <= room ? want : room, &done);
    if (done < 0)
      return fail(p, WR_ERR_PROTO);
    if (!done && n == room && want > room)
      return fail(p, WR_ERR_TOOBIG);
    p->doc_len += n;
    if (done && wr_buf_len(&p->doc) == 0) {
      rc = deliver(p, data + i, n);
    } else {
      rc = wr_buf_append(&p->doc, data + i, n);
      if (rc == 0 && done)
        rc = deliver(p, wr_buf_data(&p->doc), wr_buf_len(&p->doc));
    }
    i += n;
    if (rc != 0)
      return fail(p, rc);
    if (done) {
      wr_buf_reset(&p->doc);
      p->in_doc = 0;
    }
  }
  return 0;
}

int wr_kwatch_end(const wr_kwatch *p) {
  if (p->err != 0)
    return p->err;
  return p->in_doc ? WR_ERR_TRUNCATED : 0;
}

const char *wr_kwatch_type_str(enum wr_kwatch_type type) {
  size_t i;

  for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
    if (types[i].type == type)
      return types[i].name;
  }
  return "UNKNOWN";
}
