/*
 * reqlog.h - one line per HTTP request seen on a tunnel (`warren-heartbeat
 * expose`, docs/internals/heartbeat-expose.md).
 *
 * The agent only sees each tunnel as a TCP byte stream to the local service.
 * An hb_reqlog watches both directions of one stream with http-parser: the
 * client -> service bytes ("up") as HTTP/1.x requests, the service -> client
 * bytes ("down") as their responses, in order (keep-alive and pipelining:
 * several requests per stream). Each response head completes a record:
 * method, request target, status and the time from the request's first byte
 * to the end of the response head. It only reads: the bytes it is shown are
 * forwarded whatever it makes of them.
 *
 * A stream that is not HTTP/1.x from its first bytes (TLS, HTTP/2, any other
 * protocol) gives one record of kind TCP at its end with its byte counts. A
 * stream that stops parsing later (garbage, an upgrade to WebSocket, a
 * CONNECT tunnel, too many requests waiting for their responses) just stops
 * producing records. Memory per stream is fixed: two parsers, the current
 * request target (capped), and at most HB_REQLOG_PENDING_MAX requests waiting
 * for their responses (each target allocated at its size, capped). Heads are
 * capped by http-parser (80 KiB).
 *
 * Pure: no I/O; time comes from the caller (monotonic microseconds).
 */
#ifndef WARREN_HB_REQLOG_H
#define WARREN_HB_REQLOG_H

#include <stddef.h>
#include <stdint.h>

#define HB_REQLOG_TARGET_MAX 512 /* bytes of a logged target, escaped; longer ones end in "..." */
#define HB_REQLOG_PENDING_MAX 16 /* pipelined requests awaiting a response; more: stop logging */
#define HB_REQLOG_LINE_MAX (HB_REQLOG_TARGET_MAX + 96)

enum hb_reqlog_kind {
  HB_REQLOG_HTTP = 1, /* one request and its response head */
  HB_REQLOG_TCP = 2   /* a stream that was not HTTP/1.x, at its end */
};

struct hb_reqlog_rec {
  enum hb_reqlog_kind kind;
  const char *method;   /* HTTP: "GET", ...; "-" when a response came before any request */
  const char *target;   /* HTTP: the request target as sent, bytes outside 0x21-0x7e as %XX */
  int status;           /* HTTP: the status code; 0: the stream ended before a response */
  uint64_t duration_us; /* HTTP: first byte of the request -> end of the response head (or of
                           the stream); TCP: first byte -> end of the stream */
  uint64_t up, down;    /* TCP: bytes client -> service, service -> client */
};

/* Called for each record; the pointers live only during the call. */
typedef void (*hb_reqlog_cb)(void *ud, const struct hb_reqlog_rec *r);

typedef struct hb_reqlog hb_reqlog;

/* hb_reqlog_new returns a logger for one stream, or NULL (no memory). */
hb_reqlog *hb_reqlog_new(hb_reqlog_cb cb, void *ud);
/* hb_reqlog_up / _down show the logger bytes going to / coming from the
 * service at time |now_us|. */
void hb_reqlog_up(hb_reqlog *l, const uint8_t *data, size_t len, uint64_t now_us);
void hb_reqlog_down(hb_reqlog *l, const uint8_t *data, size_t len, uint64_t now_us);
/* hb_reqlog_end ends the stream: requests still waiting get a record with
 * status 0, a non-HTTP stream its TCP record. Nothing is recorded after. */
void hb_reqlog_end(hb_reqlog *l, uint64_t now_us);
void hb_reqlog_free(hb_reqlog *l);

/* hb_reqlog_format writes the line printed for |r| (no newline):
 *   "GET /path 200 12ms", "GET /slow - 30001ms" (no response),
 *   "tcp stream 517/3021 bytes 1200ms" (up/down).
 * Returns the length (truncated to |len| - 1). */
size_t hb_reqlog_format(const struct hb_reqlog_rec *r, char *buf, size_t len);

#endif
