/*
 * reqlog.c - HTTP/1.x requests and responses of one tunnel (reqlog.h).
 *
 * Two http-parser instances, one per direction, share a queue: a request
 * whose head is complete is queued with its method, target and start time;
 * the next final response head (not 1xx, but 101) takes the oldest one and
 * becomes a record. The parsers run on the bytes as they are forwarded, in
 * any chunking; nothing is buffered but the target of the request being read.
 *
 * Modes: SNIFF until the first head completes (HTTP) or a parser fails (TCP:
 * one byte-count record at the end); HTTP until a parser fails or the stream
 * leaves HTTP (OFF: silent from then on).
 */
#include "reqlog.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mode { M_SNIFF, M_HTTP, M_TCP, M_OFF };

struct pending {
  char *target; /* escaped, NUL-terminated; NULL: out of memory ("?") */
  uint64_t t0;
  uint8_t method; /* enum http_method */
  uint8_t upgrade;
};

struct hb_reqlog {
  http_parser up, down;
  hb_reqlog_cb cb;
  void *ud;
  enum mode mode;
  int ended;
  int up_off; /* the client switched protocols (Upgrade, CONNECT): its bytes are not HTTP */
  uint64_t now, t_first, nup, ndown;
  /* the request whose head is being read */
  uint64_t req_t0;
  size_t tlen;
  int ttrunc;
  char target[HB_REQLOG_TARGET_MAX + 1];
  struct pending q[HB_REQLOG_PENDING_MAX];
  size_t qhead, qlen;
};

static void drop_pending(hb_reqlog *l) {
  while (l->qlen > 0) {
    free(l->q[l->qhead].target);
    l->q[l->qhead].target = NULL;
    l->qhead = (l->qhead + 1) % HB_REQLOG_PENDING_MAX;
    l->qlen--;
  }
}

/* off stops logging for good (what was pending is dropped: its answers
 * can no longer be told apart). */
static void off(hb_reqlog *l) {
  l->mode = M_OFF;
  drop_pending(l);
}

/* failed: a parser refused the bytes. Before any HTTP head this is not an
 * HTTP stream (TCP record at the end); after, logging just stops. */
static void failed(hb_reqlog *l) {
  if (l->mode == M_SNIFF)
    l->mode = M_TCP;
  else if (l->mode == M_HTTP)
    off(l);
}

/* ---- client -> service ---- */

static int up_begin(http_parser *p) {
  hb_reqlog *l = p->data;

  l->req_t0 = l->now;
  l->tlen = 0;
  l->ttrunc = 0;
  l->target[0] = '\0';
  return 0;
}

static int up_url(http_parser *p, const char *at, size_t len) {
  static const char hex[] = "0123456789ABCDEF";
  hb_reqlog *l = p->data;
  size_t i;

  /* keep 3 bytes for "..." */
  for (i = 0; i < len && !l->ttrunc; i++) {
    unsigned char c = (unsigned char)at[i];

    if (c > 0x20 && c < 0x7f) {
      if (l->tlen + 1 > HB_REQLOG_TARGET_MAX - 3) {
        l->ttrunc = 1;
        break;
      }
      l->target[l->tlen++] = (char)c;
    } else {
      if (l->tlen + 3 > HB_REQLOG_TARGET_MAX - 3) {
        l->ttrunc = 1;
        break;
      }
      l->target[l->tlen++] = '%';
      l->target[l->tlen++] = hex[c >> 4];
      l->target[l->tlen++] = hex[c & 15];
    }
  }
  l->target[l->tlen] = '\0';
  return 0;
}

static int up_headers_complete(http_parser *p) {
  hb_reqlog *l = p->data;
  struct pending *q;

  if (p->http_major != 1) {
    failed(l);
    return -1;
  }
  if (l->qlen == HB_REQLOG_PENDING_MAX) {
    off(l);
    return -1;
  }
  if (l->mode == M_SNIFF)
    l->mode = M_HTTP;
  if (l->ttrunc)
    memcpy(l->target + l->tlen, "...", 4);
  q = &l->q[(l->qhead + l->qlen) % HB_REQLOG_PENDING_MAX];
  q->target = strdup(l->target);
  q->t0 = l->req_t0;
  q->method = (uint8_t)p->method;
  q->upgrade = p->upgrade || p->method == HTTP_CONNECT;
  l->qlen++;
  return 0;
}

static const http_parser_settings up_settings = {
    .on_message_begin = up_begin,
    .on_url = up_url,
    .on_headers_complete = up_headers_complete,
};

/* ---- service -> client ---- */

static int down_headers_complete(http_parser *p) {
  hb_reqlog *l = p->data;
  struct hb_reqlog_rec r;
  struct pending q;
  int status = (int)p->status_code, have;

  if (p->http_major != 1 || status < 100) { /* http-parser takes 1-3 digits; HTTP wants 3 */
    failed(l);
    return -1;
  }
  if (status < 200 && status != 101)
    return 0; /* interim (100 Continue, 103 Early Hints): the final one follows */
  if (l->mode == M_SNIFF)
    l->mode = M_HTTP;
  memset(&q, 0, sizeof(q));
  have = l->qlen > 0;
  if (have) {
    q = l->q[l->qhead];
    l->q[l->qhead].target = NULL;
    l->qhead = (l->qhead + 1) % HB_REQLOG_PENDING_MAX;
    l->qlen--;
  }
  memset(&r, 0, sizeof(r));
  r.kind = HB_REQLOG_HTTP;
  if (have) {
    r.method = http_method_str((enum http_method)q.method);
    r.target = q.target != NULL ? q.target : "?";
    r.duration_us = l->now > q.t0 ? l->now - q.t0 : 0;
  } else { /* an answer before any request: the service spoke first */
    r.method = "-";
    r.target = "-";
  }
  r.status = status;
  l->cb(l->ud, &r);
  free(q.target);
  if (status == 101 || q.upgrade) {
    /* the stream leaves HTTP (or the client did and we can no longer
     * follow its requests) */
    off(l);
    return -1;
  }
  return q.method == HTTP_HEAD ? 1 : 0; /* 1: no body follows */
}

static const http_parser_settings down_settings = {
    .on_headers_complete = down_headers_complete,
};

/* ---- API ---- */

hb_reqlog *hb_reqlog_new(hb_reqlog_cb cb, void *ud) {
  hb_reqlog *l = calloc(1, sizeof(*l));

  if (l == NULL)
    return NULL;
  l->cb = cb;
  l->ud = ud;
  http_parser_init(&l->up, HTTP_REQUEST);
  http_parser_init(&l->down, HTTP_RESPONSE);
  l->up.data = l;
  l->down.data = l;
  return l;
}

static void saw(hb_reqlog *l, uint64_t now_us) {
  if (l->nup + l->ndown == 0)
    l->t_first = now_us;
  l->now = now_us;
}

void hb_reqlog_up(hb_reqlog *l, const uint8_t *data, size_t len, uint64_t now_us) {
  if (l == NULL || l->ended || len == 0)
    return;
  saw(l, now_us);
  l->nup += len;
  if (l->mode == M_TCP || l->mode == M_OFF || l->up_off)
    return;
  (void)http_parser_execute(&l->up, &up_settings, (const char *)data, len);
  if (HTTP_PARSER_ERRNO(&l->up) != HPE_OK)
    failed(l);
  else if (l->up.upgrade)
    l->up_off = 1; /* what follows the head is another protocol */
}

void hb_reqlog_down(hb_reqlog *l, const uint8_t *data, size_t len, uint64_t now_us) {
  if (l == NULL || l->ended || len == 0)
    return;
  saw(l, now_us);
  l->ndown += len;
  if (l->mode == M_TCP || l->mode == M_OFF)
    return;
  (void)http_parser_execute(&l->down, &down_settings, (const char *)data, len);
  if (HTTP_PARSER_ERRNO(&l->down) != HPE_OK)
    failed(l);
  else if (l->down.upgrade)
    off(l);
}

void hb_reqlog_end(hb_reqlog *l, uint64_t now_us) {
  struct hb_reqlog_rec r;

  if (l == NULL || l->ended)
    return;
  l->ended = 1;
  memset(&r, 0, sizeof(r));
  if (l->mode == M_HTTP) {
    while (l->qlen > 0) {
      struct pending *q = &l->q[l->qhead];

      r.kind = HB_REQLOG_HTTP;
      r.method = http_method_str((enum http_method)q->method);
      r.target = q->target != NULL ? q->target : "?";
      r.status = 0;
      r.duration_us = now_us > q->t0 ? now_us - q->t0 : 0;
      l->cb(l->ud, &r);
      free(q->target);
      q->target = NULL;
      l->qhead = (l->qhead + 1) % HB_REQLOG_PENDING_MAX;
      l->qlen--;
    }
  } else if ((l->mode == M_SNIFF || l->mode == M_TCP) && l->nup + l->ndown > 0) {
    r.kind = HB_REQLOG_TCP;
    r.up = l->nup;
    r.down = l->ndown;
    r.duration_us = now_us > l->t_first ? now_us - l->t_first : 0;
    l->cb(l->ud, &r);
  }
  drop_pending(l);
}

void hb_reqlog_free(hb_reqlog *l) {
  if (l == NULL)
    return;
  drop_pending(l);
  free(l);
}

size_t hb_reqlog_format(const struct hb_reqlog_rec *r, char *buf, size_t len) {
  unsigned long long ms = (unsigned long long)((r->duration_us + 500) / 1000);
  char status[16];
  int n;

  if (len == 0)
    return 0;
  if (r->kind == HB_REQLOG_TCP) {
    n = snprintf(buf, len, "tcp stream %llu/%llu bytes %llums", (unsigned long long)r->up,
                 (unsigned long long)r->down, ms);
  } else {
    if (r->status > 0)
      snprintf(status, sizeof(status), "%d", r->status);
    else
      snprintf(status, sizeof(status), "-");
    n = snprintf(buf, len, "%s %s %s %llums", r->method ? r->method : "-",
                 r->target ? r->target : "-", status, ms);
  }
  if (n < 0) {
    buf[0] = '\0';
    return 0;
  }
  return (size_t)n < len ? (size_t)n : len - 1;
}
