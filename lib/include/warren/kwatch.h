/*
 * kwatch.h - the Kubernetes watch-stream parser (docs/internals/kwatch.md).
 *
 * The body of a watch response is a sequence of JSON documents
 *
 *   {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}
 *
 * usually one per line, but the parser does not rely on line breaks: it
 * finds each document's end by counting braces and brackets outside JSON
 * strings, so documents may be split across any number of feeds, several
 * may arrive in one feed, and any JSON whitespace may sit between them.
 * Each complete document is parsed with jansson and handed to the callback.
 *
 * At most one partial document is buffered, capped at |max_doc_bytes|, so the
 * parser's memory is bounded by that cap plus the jansson tree of the document
 * being delivered. This core does no I/O: the caller feeds the bytes curl
 * gives it.
 *
 * Errors are sticky: after any error (or a stop requested by the callback)
 * every further feed returns the same code until wr_kwatch_reset(). The caller
 * is expected to drop the watch, start a new one (from the last
 * resourceVersion, or after a relist) and reset the parser for it.
 */
#ifndef WARREN_KWATCH_H
#define WARREN_KWATCH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "warren/buf.h"

/* A reasonable |max_doc_bytes|: etcd refuses objects over 1.5 MiB, and their
 * JSON in a watch event (with managedFields, escapes) stays well below this. */
#define WR_KWATCH_MAX_DOC_DEFAULT (4u * 1024 * 1024)

enum wr_kwatch_type {
  WR_KWATCH_ADDED = 1,
  WR_KWATCH_MODIFIED = 2,
  WR_KWATCH_DELETED = 3,
  WR_KWATCH_BOOKMARK = 4,
  WR_KWATCH_ERROR = 5,
};

/* One watch event. Every pointer is borrowed and valid only during the
 * callback; json_incref(object) keeps the object (strings inside it live as
 * long as it does). */
struct wr_kwatch_event {
  enum wr_kwatch_type type;
  json_t *object;               /* the "object" member, always a JSON object */
  const char *resource_version; /* object.metadata.resourceVersion, or NULL */
  /* ERROR events only (the object is a metav1.Status); 0 / NULL otherwise
   * and when the Status lacks the field. */
  int code;            /* Status.code, e.g. 410 */
  const char *reason;  /* Status.reason, e.g. "Expired" */
  const char *message; /* Status.message */
  size_t doc_len;      /* bytes of the document, for metrics */
};

/* The callback returns 0 to go on, non-zero to stop: the feed then returns
 * WR_ERR_STOPPED at once and the parser stays stopped. It must not call
 * wr_kwatch_feed(), wr_kwatch_reset() or wr_kwatch_free() on its parser. */
typedef int (*wr_kwatch_cb)(void *ud, const struct wr_kwatch_event *ev);

/* The parser. Members are private to kwatch.c. */
typedef struct wr_kwatch {
  wr_buf doc;     /* the partial document, capped at max_doc */
  size_t max_doc; /* cap on one document */
  size_t doc_len; /* bytes of the current document seen so far */
  size_t depth;   /* open braces and brackets */
  uint8_t in_doc; /* inside a document */
  uint8_t in_str; /* inside a JSON string */
  uint8_t esc;    /* the previous byte in a string was a backslash */
  uint8_t in_cb;  /* the callback is running */
  int err;        /* sticky error, 0 while healthy */
  wr_kwatch_cb cb;
  void *ud;
} wr_kwatch;

/* wr_kwatch_init prepares caller-owned |p| to deliver events to |cb| with
 * |ud|; documents over |max_doc_bytes| are refused. Allocates nothing yet. */
void wr_kwatch_init(wr_kwatch *p, size_t max_doc_bytes, wr_kwatch_cb cb, void *ud);
/* wr_kwatch_free releases the memory of |p| (not |p| itself). */
void wr_kwatch_free(wr_kwatch *p);
/* wr_kwatch_reset drops any partial document and clears a sticky error, so
 * |p| can parse a new stream; the buffer's memory is kept. */
void wr_kwatch_reset(wr_kwatch *p);

/*
 * wr_kwatch_feed consumes |len| bytes of the stream, calling the callback
 * once per complete document, in order. Returns 0 when every byte was taken
 * (a trailing partial document is buffered), or:
 *   WR_ERR_TOOBIG   a document exceeds max_doc_bytes;
 *   WR_ERR_PROTO    invalid JSON (a raw NUL byte included), a document
 *                   that is not an object, a missing or unknown "type", a
 *                   missing or non-object "object";
 *   WR_ERR_NOMEM    allocation failed;
 *   WR_ERR_STOPPED  the callback asked to stop;
 *   WR_ERR_INVAL    called from inside the callback.
 * Every error but WR_ERR_INVAL is sticky (see above).
 */
int wr_kwatch_feed(wr_kwatch *p, const uint8_t *data, size_t len);

/* wr_kwatch_end tells whether the stream may end here: 0 between documents,
 * WR_ERR_TRUNCATED inside one, or the sticky error. */
int wr_kwatch_end(const wr_kwatch *p);

/* wr_kwatch_type_str names |type| as the apiserver does ("ADDED"). */
const char *wr_kwatch_type_str(enum wr_kwatch_type type);

#endif
