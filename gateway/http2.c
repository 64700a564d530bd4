/* http2.c - the edge's HTTP/2 handler: one tunnel per request stream. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <nghttp2/nghttp2.h>

#include "warren/buf.h"
#include "warren/err.h"
#include "warren/log.h"
#include "warren/routes.h"

#include "h2server.h"
#include "http2.h"
#include "tunnel.h"

#define H2E_MAX_STREAMS 1024                         /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define H2E_STREAM_WINDOW (1 << 20)                  /* SETTINGS_INITIAL_WINDOW_SIZE */
#define H2E_CONN_WINDOW (16 << 20)                   /* connection receive window */
#define H2E_UP_MAX (H2E_STREAM_WINDOW + (64u << 10)) /* client DATA the tunnel has not taken */
#define H2E_OUT_MAX (GW_HTTP2_HEAD_MAX + (4u << 10)) /* request head, then chunk framing */
#define H2E_DOWN_MAX (32u << 20) /* body not framed yet; the tunnel's window bounds it */
#define H2E_FIELDS_MAX 256       /* header lines in one response head */
#define H2E_METHOD_MAX 32
#define H2E_HOST_MAX 255
#define H2E_REASON_MAX 200

enum h2e_state {
  H2E_HEADERS,  /* reading the request headers */
  H2E_OPENING,  /* routed: waiting for the tunnel's answer */
  H2E_OPEN,     /* the request flows; waiting for the response head */
  H2E_RESPONSE, /* response HEADERS submitted; the body flows */
  H2E_REFUSED,  /* our own error response submitted, or the stream reset */
};

/* One header line of a response head, as offsets into h2e_stream.rhead. */
struct h2e_field {
  size_t name_off, name_len, value_off, value_len;
};

struct h2e_conn;

struct h2e_stream {
  struct h2e_conn *hc;
  struct h2e_stream *prev, *next;
  int32_t id;
  enum h2e_state state;
  gw_tunnel *t; /* NULL once the tunnel is gone */
  /* The request head, until it is serialised into |out|. */
  char method[H2E_METHOD_MAX + 1];
  char host[H2E_HOST_MAX + 1];
  wr_buf path;
  wr_buf fields; /* "name: value\r\n" lines to forward */
  wr_buf cookie; /* cookie crumbs joined with "; " (RFC 9113 §8.2.3) */
  /* Towards the service. */
  wr_buf out;        /* the request head, then chunk framing */
  wr_buf up;         /* client DATA the tunnel has not taken; not yet acknowledged */
  size_t chunk_left; /* bytes of |up| announced by the last chunk-size line */
  /* From the service. */
  http_parser parser;
  wr_buf rhead; /* names (lowercased) and values of the response head */
  struct h2e_field *rf;
  size_t nrf;
  wr_buf down;            /* body bytes (or our error text) not framed yet */
  size_t body_in;         /* bytes the current on_data added to |down| */
  const char *bad_reason; /* why a parser callback failed */
  unsigned has_host : 1, has_clen : 1, too_big : 1, bad_path : 1, is_head : 1, chunked : 1,
      client_fin : 1, end_queued : 1, fin_sent : 1, up_dead : 1, in_value : 1, interim : 1,
      head_done : 1, resp_sent : 1, msg_done : 1, eof : 1, cut : 1, tunnel_eof : 1, from_tunnel : 1,
      h2_closed : 1;
};

struct h2e_conn {
  const struct gw_edge_env *env;
  struct gw_h2s *h2;
  struct gw_conn *c;
  struct h2e_stream *streams;
  size_t nstreams;
  int tls;
  char xff[GW_CONN_PEER_MAX]; /* the client's address without the port */
};

static const char *h2e_strstate(enum h2e_state s) {
  static const char *const names[] = {"headers", "opening", "open", "response", "refused"};

  return names[s];
}

static void h2e_enter_state(struct h2e_stream *s, enum h2e_state st) {
  log_trace(WR_TRACE_HTTP, "http2 %s: stream %d: %s -> %s", gw_conn_peer(s->hc->c), s->id,
            h2e_strstate(s->state), h2e_strstate(st));
  s->state = st;
}

static nghttp2_session *h2e_session(struct h2e_stream *s) {
  return gw_h2s_session(s->hc->h2);
}

/* h2e_drop_up gives back the window held by client DATA that will never
 * reach the service, and makes later DATA be acknowledged on arrival. */
static void h2e_drop_up(struct h2e_stream *s) {
  s->up_dead = 1;
  if (wr_buf_len(&s->up) > 0)
    (void)nghttp2_session_consume(h2e_session(s), s->id, wr_buf_len(&s->up));
  wr_buf_reset(&s->up);
  gw_h2s_flush(s->hc->h2);
}

static void h2e_free_request(struct h2e_stream *s) {
  wr_buf_free(&s->path);
  wr_buf_free(&s->fields);
  wr_buf_free(&s->cookie);
}

static void h2e_free_rhead(struct h2e_stream *s) {
  wr_buf_free(&s->rhead);
  free(s->rf);
  s->rf = NULL;
  s->nrf = 0;
}

static void h2e_abort_tunnel(struct h2e_stream *s) {
  if (s->t != NULL) {
    gw_tunnel_abort(s->t);
    s->t = NULL;
  }
}

/* h2e_stream_free releases |s|; with |session_alive|, once the session
 * knows the stream is closed (its client DATA was given back then). */
static void h2e_stream_free(struct h2e_stream *s, int session_alive) {
  struct h2e_conn *hc = s->hc;

  h2e_abort_tunnel(s);
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    hc->streams = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  if (--hc->nstreams == 0 && session_alive)
    gw_conn_set_timeout(hc->c, GW_HTTP2_IDLE_TIMEOUT_MS);
  h2e_free_request(s);
  h2e_free_rhead(s);
  wr_buf_free(&s->out);
  wr_buf_free(&s->up);
  wr_buf_free(&s->down);
  free(s);
}

static void h2e_reset(struct h2e_stream *s, uint32_t code) {
  log_trace(WR_TRACE_HTTP, "http2 %s: stream %d: reset (%s)", gw_conn_peer(s->hc->c), s->id,
            nghttp2_http2_strerror(code));
  if (s->state != H2E_REFUSED)
    h2e_enter_state(s, H2E_REFUSED);
  if (!s->h2_closed)
    (void)nghttp2_submit_rst_stream(h2e_session(s), NGHTTP2_FLAG_NONE, s->id, code);
  h2e_drop_up(s);
}

static void h2e_resume(struct h2e_stream *s) {
  if (!s->h2_closed && s->resp_sent)
    (void)nghttp2_session_resume_data(h2e_session(s), s->id);
  gw_h2s_flush(s->hc->h2);
}

static ssize_t h2e_read_data(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                             size_t length, uint32_t *flags, nghttp2_data_source *source,
                             void *ud) {
  struct h2e_stream *s = source->ptr;
  size_t n = wr_buf_len(&s->down);

  (void)session;
  (void)stream_id;
  (void)ud;
  if (n == 0 && s->cut)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM(INTERNAL_ERROR) */
  if (n > length)
    n = length;
  if (n > 0) {
    memcpy(buf, wr_buf_data(&s->down), n);
    wr_buf_consume(&s->down, n);
    if (s->from_tunnel && s->t != NULL)
      gw_tunnel_consume(s->t, n);
  }
  if (wr_buf_len(&s->down) == 0) {
    if (s->eof)
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    else if (n == 0)
      return NGHTTP2_ERR_DEFERRED;
  }
  return (ssize_t)n;
}

/* h2e_copy_reason writes |in| without control characters, for a header value. */
static void h2e_copy_reason(char *out, size_t outlen, const char *in) {
  size_t i;

  for (i = 0; in != NULL && in[i] != '\0' && i + 1 < outlen; i++)
    out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : ' ';
  out[i] = '\0';
}

#define H2E_NV(nva, n, name, value, vlen)                                                          \
  ((nva)[(n)++] = (nghttp2_nv){(uint8_t *)(name), (uint8_t *)(value), strlen(name), (vlen),        \
                               NGHTTP2_NV_FLAG_NONE})

/* h2e_respond answers the stream with our own text/plain error response. */
static void h2e_respond(struct h2e_stream *s, int status, const char *reason) {
  nghttp2_data_provider prd;
  char st[8], len[24], why[H2E_REASON_MAX];
  nghttp2_nv nva[4];
  size_t nnv = 0;
  int rv;

  if (s->h2_closed)
    return;
  if (s->resp_sent) {
    h2e_reset(s, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  h2e_copy_reason(why, sizeof(why), reason != NULL && *reason != '\0' ? reason : "refused");
  log_debug("http2 %s: stream %d (%s): %d %s", gw_conn_peer(s->hc->c), s->id, s->host, status, why);
  h2e_enter_state(s, H2E_REFUSED);
  h2e_drop_up(s);
  s->from_tunnel = 0;
  s->eof = 1;
  s->resp_sent = 1;
  wr_buf_reset(&s->down);
  if (wr_buf_append(&s->down, why, strlen(why)) < 0 || wr_buf_append(&s->down, "\n", 1) < 0)
    wr_buf_reset(&s->down);
  snprintf(st, sizeof(st), "%d", status);
  snprintf(len, sizeof(len), "%zu", wr_buf_len(&s->down));
  H2E_NV(nva, nnv, ":status", st, strlen(st));
  H2E_NV(nva, nnv, "content-type", "text/plain; charset=utf-8",
         strlen("text/plain; charset=utf-8"));
  H2E_NV(nva, nnv, "content-length", len, strlen(len));
  H2E_NV(nva, nnv, "x-warren-error", why, strlen(why));
  prd.source.ptr = s;
  prd.read_callback = h2e_read_data;
  rv = nghttp2_submit_response(h2e_session(s), s->id, nva, nnv, &prd);
  if (rv != 0) {
    log_warnx("http2: stream %d: submit response: %s", s->id, nghttp2_strerror(rv));
    h2e_reset(s, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  gw_h2s_flush(s->hc->h2);
}

/* h2e_bad_response ends a stream whose service answered something that
 * cannot be passed on, or went away before the response was complete. */
static void h2e_bad_response(struct h2e_stream *s, const char *why) {
  char reason[H2E_REASON_MAX];

  h2e_abort_tunnel(s);
  if (s->state == H2E_REFUSED)
    return;
  if (s->resp_sent) {
    /* The client gets the body received so far, then the reset: submitted
     * now, the RST_STREAM could overtake the HEADERS still queued. */
    log_debug("http2 %s: stream %d (%s): response cut: %s", gw_conn_peer(s->hc->c), s->id, s->host,
              why);
    h2e_enter_state(s, H2E_REFUSED);
    h2e_drop_up(s);
    s->cut = 1;
    h2e_resume(s);
    return;
  }
  snprintf(reason, sizeof(reason), "bad response from the service: %s", why);
  h2e_respond(s, 502, reason);
}

/* Towards the service. */

/* h2e_up_flush passes the request head, then the client's DATA (framed in
 * chunks when the length is unknown) to the tunnel, acknowledging to the
 * client only what the tunnel took. The tunnel gets its FIN once the
 * request is complete and the response has ended. */
static void h2e_up_flush(struct h2e_stream *s) {
  char line[24];
  size_t want;
  int n;

  if ((s->state != H2E_OPEN && s->state != H2E_RESPONSE) || s->t == NULL || s->up_dead)
    return;
  for (;;) {
    if (wr_buf_len(&s->out) > 0) {
      n = gw_tunnel_write(s->t, wr_buf_data(&s->out), wr_buf_len(&s->out), 0);
      if (n < 0)
        goto fail;
      wr_buf_consume(&s->out, (size_t)n);
      if (wr_buf_len(&s->out) > 0)
        return; /* on_writable resumes */
    } else if (wr_buf_len(&s->up) > 0) {
      if (s->chunked && s->chunk_left == 0) {
        s->chunk_left = wr_buf_len(&s->up);
        n = snprintf(line, sizeof(line), "%zx\r\n", s->chunk_left);
        if (wr_buf_append(&s->out, line, (size_t)n) < 0)
          goto fail;
        continue;
      }
      want = wr_buf_len(&s->up);
      if (s->chunked && want > s->chunk_left)
        want = s->chunk_left;
      n = gw_tunnel_write(s->t, wr_buf_data(&s->up), want, 0);
      if (n < 0)
        goto fail;
      if (n > 0) {
        wr_buf_consume(&s->up, (size_t)n);
        if (!s->h2_closed)
          (void)nghttp2_session_consume(h2e_session(s), s->id, (size_t)n);
        gw_h2s_flush(s->hc->h2);
      }
      if (s->chunked) {
        s->chunk_left -= (size_t)n;
        if (s->chunk_left == 0 && wr_buf_append(&s->out, "\r\n", 2) < 0)
          goto fail;
      }
      if ((size_t)n < want)
        return;
    } else if (s->client_fin && !s->end_queued) {
      s->end_queued = 1;
      if (s->chunked && wr_buf_append(&s->out, "0\r\n\r\n", 5) < 0)
        goto fail;
    } else {
      break;
    }
  }
  if (s->end_queued && !s->fin_sent && (s->msg_done || s->tunnel_eof)) {
    if (gw_tunnel_write(s->t, NULL, 0, 1) < 0)
      goto fail;
    s->fin_sent = 1;
  }
  return;

fail:
  /* The tunnel takes no more: whatever the client still sends is dropped,
   * and the tunnel's on_close or on_eof decides how the response ends. */
  log_trace(WR_TRACE_HTTP, "http2 %s: stream %d: the tunnel takes no more of the request",
            gw_conn_peer(s->hc->c), s->id);
  h2e_drop_up(s);
}

static void h2e_add(wr_buf *b, int *rv, const void *data, size_t len) {
  if (*rv == 0)
    *rv = wr_buf_append(b, data, len);
}

static void h2e_adds(wr_buf *b, int *rv, const char *str) {
  h2e_add(b, rv, str, strlen(str));
}

/* h2e_build_head serialises the request head as HTTP/1.1 into |out|. */
static int h2e_build_head(struct h2e_stream *s) {
  int rv = 0, no_body_method;

  no_body_method = strcmp(s->method, "POST") != 0 && strcmp(s->method, "PUT") != 0 &&
                   strcmp(s->method, "PATCH") != 0;
  if (!s->client_fin && !s->has_clen)
    s->chunked = 1;
  h2e_adds(&s->out, &rv, s->method);
  h2e_adds(&s->out, &rv, " ");
  h2e_add(&s->out, &rv, wr_buf_data(&s->path), wr_buf_len(&s->path));
  h2e_adds(&s->out, &rv, " HTTP/1.1\r\nHost: ");
  h2e_adds(&s->out, &rv, s->host);
  h2e_adds(&s->out, &rv, "\r\n");
  h2e_add(&s->out, &rv, wr_buf_data(&s->fields), wr_buf_len(&s->fields));
  if (wr_buf_len(&s->cookie) > 0) {
    h2e_adds(&s->out, &rv, "cookie: ");
    h2e_add(&s->out, &rv, wr_buf_data(&s->cookie), wr_buf_len(&s->cookie));
    h2e_adds(&s->out, &rv, "\r\n");
  }
  h2e_adds(&s->out, &rv, "X-Forwarded-For: ");
  h2e_adds(&s->out, &rv, s->hc->xff);
  h2e_adds(&s->out, &rv,
           s->hc->tls ? "\r\nX-Forwarded-Proto: https" : "\r\nX-Forwarded-Proto: http");
  h2e_adds(&s->out, &rv, "\r\nX-Forwarded-Host: ");
  h2e_adds(&s->out, &rv, s->host);
  h2e_adds(&s->out, &rv, "\r\n");
  if (s->chunked)
    h2e_adds(&s->out, &rv, "Transfer-Encoding: chunked\r\n");
  else if (s->client_fin && !s->has_clen && !no_body_method)
    h2e_adds(&s->out, &rv, "Content-Length: 0\r\n");
  h2e_adds(&s->out, &rv, "Connection: close\r\n\r\n");
  h2e_free_request(s);
  return rv;
}

static const struct gw_tunnel_cbs h2e_tunnel_cbs;

/* h2e_stream_start routes a complete request head and opens its tunnel. */
static void h2e_stream_start(struct h2e_stream *s) {
  const struct wr_route *r;
  struct gw_tunnel_req req;
  char why[H2E_HOST_MAX + 64];
  int rv;

  if (s->too_big) {
    h2e_respond(s, 431, "request head too large");
    return;
  }
  if (strcmp(s->method, "CONNECT") == 0) {
    h2e_respond(s, 405, "CONNECT is not supported here");
    return;
  }
  if (!s->has_host || s->host[0] == '\0') {
    h2e_respond(s, 400, "a request needs :authority or host");
    return;
  }
  if (s->bad_path || wr_buf_len(&s->path) == 0) {
    h2e_respond(s, 400, "invalid :path");
    return;
  }
  s->is_head = strcmp(s->method, "HEAD") == 0;
  r = wr_routes_match(s->hc->env->routes, s->host);
  if (r == NULL) {
    snprintf(why, sizeof(why), "no route for host %s", s->host);
    h2e_respond(s, 404, why);
    return;
  }
  if (h2e_build_head(s) < 0) {
    h2e_respond(s, 431, "request head too large");
    return;
  }
  log_trace(WR_TRACE_HTTP, "http2 %s: stream %d: %s %s", gw_conn_peer(s->hc->c), s->id, s->method,
            s->host);
  req.endpoint_id = r->endpoint_id;
  req.node_addr = r->node_addr;
  req.target = r->target;
  req.peer = gw_conn_peer(s->hc->c);
  h2e_enter_state(s, H2E_OPENING);
  rv = gw_tunnel_open(s->hc->env->pool, &req, &h2e_tunnel_cbs, s, &s->t);
  if (rv < 0) {
    s->t = NULL;
    h2e_respond(s, 502, wr_strerror(rv));
  }
}

/* From the service: http-parser callbacks in response mode. */

static int h2e_on_message_begin(http_parser *p) {
  struct h2e_stream *s = p->data;

  wr_buf_reset(&s->rhead);
  s->nrf = 0;
  s->in_value = 0;
  return 0;
}

static int h2e_on_header_field(http_parser *p, const char *at, size_t len) {
  struct h2e_stream *s = p->data;
  struct h2e_field *f;
  uint8_t low[256];
  size_t i, n;

  if (s->head_done)
    return 0; /* trailers are not passed on */
  if (s->nrf == 0 || s->in_value) {
    if (s->nrf == H2E_FIELDS_MAX) {
      s->bad_reason = "too many header fields";
      return -1;
    }
    if (s->rf == NULL) {
      s->rf = calloc(H2E_FIELDS_MAX, sizeof(*s->rf));
      if (s->rf == NULL) {
        s->bad_reason = wr_strerror(WR_ERR_NOMEM);
        return -1;
      }
    }
    f = &s->rf[s->nrf++];
    f->name_off = wr_buf_len(&s->rhead);
    f->name_len = f->value_off = f->value_len = 0;
    s->in_value = 0;
  }
  f = &s->rf[s->nrf - 1];
  while (len > 0) {
    n = len < sizeof(low) ? len : sizeof(low);
    for (i = 0; i < n; i++)
      low[i] = (uint8_t)tolower((unsigned char)at[i]);
    if (wr_buf_append(&s->rhead, low, n) < 0) {
      s->bad_reason = "response head too large";
      return -1;
    }
    f->name_len += n;
    at += n;
    len -= n;
  }
  return 0;
}

static int h2e_on_header_value(http_parser *p, const char *at, size_t len) {
  struct h2e_stream *s = p->data;
  struct h2e_field *f;

  if (s->head_done || s->nrf == 0)
    return 0;
  f = &s->rf[s->nrf - 1];
  if (!s->in_value) {
    s->in_value = 1;
    f->value_off = wr_buf_len(&s->rhead);
  }
  if (wr_buf_append(&s->rhead, at, len) < 0) {
    s->bad_reason = "response head too large";
    return -1;
  }
  f->value_len += len;
  return 0;
}

/* h2e_token_listed tells whether |name| is one of the comma-separated
 * tokens of |list| (a Connection header's value). */
static int h2e_token_listed(const uint8_t *list, size_t llen, const uint8_t *name, size_t nlen) {
  size_t i = 0, start, end;

  while (i < llen) {
    while (i < llen && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
      i++;
    start = i;
    while (i < llen && list[i] != ',')
      i++;
    end = i;
    while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
      end--;
    if (end - start == nlen &&
        strncasecmp((const char *)list + start, (const char *)name, nlen) == 0)
      return 1;
  }
  return 0;
}

static int h2e_is(const uint8_t *name, size_t len, const char *lit) {
  return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

/* h2e_hop_by_hop tells whether a response field must not be passed on
 * (RFC 9113 §8.2.2), including those the Connection header lists. */
static int h2e_hop_by_hop(struct h2e_stream *s, const uint8_t *name, size_t len) {
  const uint8_t *b = wr_buf_data(&s->rhead);
  size_t i;

  if (h2e_is(name, len, "connection") || h2e_is(name, len, "keep-alive") ||
      h2e_is(name, len, "proxy-connection") || h2e_is(name, len, "transfer-encoding") ||
      h2e_is(name, len, "upgrade") || h2e_is(name, len, "te") || h2e_is(name, len, "trailer"))
    return 1;
  for (i = 0; i < s->nrf; i++) {
    if (h2e_is(b + s->rf[i].name_off, s->rf[i].name_len, "connection") &&
        h2e_token_listed(b + s->rf[i].value_off, s->rf[i].value_len, name, len))
      return 1;
  }
  return 0;
}

/* h2e_submit_head turns the parsed response head into HEADERS: a final one
 * with a body to stream (|body|), a final one that ends the stream, or an
 * interim (1xx) one. Returns 0 or WR_ERR_NOMEM/WR_ERR_PROTO. */
static int h2e_submit_head(struct h2e_stream *s, int status, int final, int body) {
  const uint8_t *b = wr_buf_data(&s->rhead);
  nghttp2_data_provider prd;
  nghttp2_nv *nva;
  const uint8_t *v;
  size_t nnv = 0, i, vlen;
  char st[8];
  int rv;

  nva = calloc(s->nrf + 1, sizeof(*nva));
  if (nva == NULL)
    return WR_ERR_NOMEM;
  snprintf(st, sizeof(st), "%d", status);
  H2E_NV(nva, nnv, ":status", st, strlen(st));
  for (i = 0; i < s->nrf; i++) {
    const struct h2e_field *f = &s->rf[i];

    if (f->name_len == 0 || h2e_hop_by_hop(s, b + f->name_off, f->name_len))
      continue;
    if ((status < 200 || status == 204) && h2e_is(b + f->name_off, f->name_len, "content-length"))
      continue;
    /* RFC 9113 §8.2.1: no leading or trailing whitespace in values. */
    v = b + f->value_off;
    vlen = f->value_len;
    while (vlen > 0 && (v[0] == ' ' || v[0] == '\t')) {
      v++;
      vlen--;
    }
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
      vlen--;
    if (!nghttp2_check_header_name(b + f->name_off, f->name_len) ||
        !nghttp2_check_header_value(v, vlen))
      continue;
    nva[nnv++] = (nghttp2_nv){(uint8_t *)(b + f->name_off), (uint8_t *)v, f->name_len, vlen,
                              NGHTTP2_NV_FLAG_NONE};
  }
  if (!final) {
    rv = nghttp2_submit_headers(h2e_session(s), NGHTTP2_FLAG_NONE, s->id, NULL, nva, nnv, NULL);
  } else {
    prd.source.ptr = s;
    prd.read_callback = h2e_read_data;
    rv = nghttp2_submit_response(h2e_session(s), s->id, nva, nnv, body ? &prd : NULL);
  }
  free(nva);
  if (rv < 0) {
    log_warnx("http2: stream %d: submit response: %s", s->id, nghttp2_strerror(rv));
    return WR_ERR_PROTO;
  }
  gw_h2s_flush(s->hc->h2);
  return 0;
}

static int h2e_on_headers_complete(http_parser *p) {
  struct h2e_stream *s = p->data;
  int status = (int)p->status_code, nobody;

  if (status < 100 || status == 101) {
    s->bad_reason = "unexpected status or protocol switch";
    return -1;
  }
  if (status < 200) {
    /* Interim: pass it on, then parse the next head (http-parser treats a
     * 1xx as a message without a body). */
    s->interim = 1;
    if (h2e_submit_head(s, status, 0, 0) < 0) {
      s->bad_reason = "cannot pass on an interim response";
      return -1;
    }
    return 1;
  }
  s->head_done = 1;
  /* http-parser cannot know that a HEAD response has no body, and would
   * read one for a 204 or 304 with a Content-Length. */
  nobody = s->is_head || status == 204 || status == 304;
  if (h2e_submit_head(s, status, 1, !nobody) < 0) {
    s->bad_reason = "cannot pass on the response head";
    return -1;
  }
  log_trace(WR_TRACE_HTTP, "http2 %s: stream %d: %d", gw_conn_peer(s->hc->c), s->id, status);
  s->resp_sent = 1;
  s->from_tunnel = 1;
  h2e_enter_state(s, H2E_RESPONSE);
  h2e_free_rhead(s);
  return nobody ? 1 : 0;
}

static int h2e_on_body(http_parser *p, const char *at, size_t len) {
  struct h2e_stream *s = p->data;

  if (wr_buf_append(&s->down, at, len) < 0) {
    s->bad_reason = "the tunnel sent past its window";
    return -1;
  }
  s->body_in += len;
  return 0;
}

static int h2e_on_message_complete(http_parser *p) {
  struct h2e_stream *s = p->data;

  if (s->interim) {
    s->interim = 0;
    return 0;
  }
  s->msg_done = 1;
  s->eof = 1;
  http_parser_pause(p, 1); /* what follows the response is not ours to parse */
  return 0;
}

static const http_parser_settings h2e_parser_settings = {
    .on_message_begin = h2e_on_message_begin,
    .on_header_field = h2e_on_header_field,
    .on_header_value = h2e_on_header_value,
    .on_headers_complete = h2e_on_headers_complete,
    .on_body = h2e_on_body,
    .on_message_complete = h2e_on_message_complete,
};

/* Tunnel callbacks. They only change state and schedule output; nghttp2
 * sends from the loop (gw_h2s_flush), never inside them. */

static void h2e_on_open(gw_tunnel *t, int status, const char *reason, void *ud) {
  struct h2e_stream *s = ud;

  (void)t;
  if (s->state != H2E_OPENING)
    return;
  if (status != 200) {
    h2e_respond(s, status, reason != NULL ? reason : "refused"); /* on_close follows */
    return;
  }
  h2e_enter_state(s, H2E_OPEN);
  h2e_up_flush(s);
}

static void h2e_on_data(gw_tunnel *t, const uint8_t *data, size_t len, void *ud) {
  struct h2e_stream *s = ud;
  enum http_errno e;

  if ((s->state != H2E_OPEN && s->state != H2E_RESPONSE) || s->msg_done) {
    gw_tunnel_consume(t, len);
    return;
  }
  s->body_in = 0;
  (void)http_parser_execute(&s->parser, &h2e_parser_settings, (const char *)data, len);
  e = HTTP_PARSER_ERRNO(&s->parser);
  /* Heads, chunk framing and whatever follows the response are credited
   * now; body bytes once they are framed (h2e_read_data). */
  gw_tunnel_consume(t, len - s->body_in);
  if (e != HPE_OK && !(e == HPE_PAUSED && s->msg_done)) {
    h2e_bad_response(s, s->bad_reason != NULL ? s->bad_reason : http_errno_description(e));
    return;
  }
  h2e_resume(s);
  if (s->msg_done)
    h2e_up_flush(s);
}

static void h2e_on_eof(gw_tunnel *t, void *ud) {
  struct h2e_stream *s = ud;

  (void)t;
  s->tunnel_eof = 1;
  if ((s->state == H2E_OPEN || s->state == H2E_RESPONSE) && !s->msg_done) {
    /* The end of a body delimited by the connection's close. */
    (void)http_parser_execute(&s->parser, &h2e_parser_settings, NULL, 0);
    if (!s->msg_done) {
      h2e_bad_response(s, s->state == H2E_OPEN
                              ? "the connection closed before a response"
                              : "the connection closed before the end of the response");
      return;
    }
    h2e_resume(s);
  }
  h2e_up_flush(s);
}

static void h2e_on_writable(gw_tunnel *t, void *ud) {
  (void)t;
  h2e_up_flush(ud);
}

static void h2e_on_close(gw_tunnel *t, int err, void *ud) {
  struct h2e_stream *s = ud;

  (void)t;
  s->t = NULL;
  log_trace(WR_TRACE_HTTP, "http2 %s: stream %d: tunnel closed (%s)", gw_conn_peer(s->hc->c), s->id,
            err != 0 ? wr_strerror(err) : "ok");
  if (s->h2_closed) {
    h2e_stream_free(s, 1);
    return;
  }
  if (!s->up_dead)
    h2e_drop_up(s);
  if (s->state == H2E_OPENING)
    h2e_respond(s, 502, wr_strerror(err != 0 ? err : WR_ERR_CLOSED));
  else if ((s->state == H2E_OPEN || s->state == H2E_RESPONSE) && !s->msg_done)
    h2e_bad_response(s, err != 0 ? wr_strerror(err) : "the tunnel closed");
}

static const struct gw_tunnel_cbs h2e_tunnel_cbs = {
    .on_open = h2e_on_open,
    .on_data = h2e_on_data,
    .on_eof = h2e_on_eof,
    .on_writable = h2e_on_writable,
    .on_close = h2e_on_close,
};

/* nghttp2 callbacks; user_data is the struct h2e_conn. */

static int h2e_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  struct h2e_conn *hc = ud;
  struct h2e_stream *s;

  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
  s->hc = hc;
  s->id = frame->hd.stream_id;
  wr_buf_init(&s->path, GW_HTTP2_HEAD_MAX);
  wr_buf_init(&s->fields, GW_HTTP2_HEAD_MAX);
  wr_buf_init(&s->cookie, GW_HTTP2_HEAD_MAX);
  wr_buf_init(&s->out, H2E_OUT_MAX);
  wr_buf_init(&s->up, H2E_UP_MAX);
  wr_buf_init(&s->rhead, GW_HTTP2_HEAD_MAX);
  wr_buf_init(&s->down, H2E_DOWN_MAX);
  http_parser_init(&s->parser, HTTP_RESPONSE);
  s->parser.data = s;
  s->next = hc->streams;
  if (hc->streams != NULL)
    hc->streams->prev = s;
  hc->streams = s;
  if (hc->nstreams++ == 0)
    gw_conn_set_timeout(hc->c, 0);
  nghttp2_session_set_stream_user_data(session, s->id, s);
  return 0;
}

static void h2e_store(struct h2e_stream *s, char *dst, size_t dstlen, const uint8_t *v,
                      size_t vlen) {
  if (vlen >= dstlen) {
    s->too_big = 1;
    vlen = dstlen - 1;
  }
  memcpy(dst, v, vlen);
  dst[vlen] = '\0';
}

/* h2e_skip_request_field tells whether a request field is not forwarded:
 * hop-by-hop fields (nghttp2 already refuses most in HTTP/2), Host (sent
 * from :authority) and the X-Forwarded-* fields we set ourselves. */
static int h2e_skip_request_field(const uint8_t *name, size_t len) {
  return h2e_is(name, len, "host") || h2e_is(name, len, "connection") ||
         h2e_is(name, len, "keep-alive") || h2e_is(name, len, "proxy-connection") ||
         h2e_is(name, len, "transfer-encoding") || h2e_is(name, len, "upgrade") ||
         h2e_is(name, len, "te") || h2e_is(name, len, "http2-settings") ||
         h2e_is(name, len, "x-forwarded-for") || h2e_is(name, len, "x-forwarded-proto") ||
         h2e_is(name, len, "x-forwarded-host");
}

static int h2e_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *ud) {
  struct h2e_stream *s;
  size_t i;
  int rv = 0;

  (void)flags;
  (void)ud;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0; /* trailers are not passed on */
  s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (s == NULL)
    return 0;
  if (h2e_is(name, namelen, ":method")) {
    h2e_store(s, s->method, sizeof(s->method), value, valuelen);
  } else if (h2e_is(name, namelen, ":path")) {
    for (i = 0; i < valuelen; i++)
      if (value[i] <= 0x20 || value[i] == 0x7f)
        s->bad_path = 1;
    h2e_add(&s->path, &rv, value, valuelen);
  } else if (h2e_is(name, namelen, ":authority") ||
             (h2e_is(name, namelen, "host") && !s->has_host)) {
    /* Pseudo-headers come first: :authority wins over host. */
    s->has_host = 1;
    h2e_store(s, s->host, sizeof(s->host), value, valuelen);
  } else if ((namelen > 0 && name[0] == ':') || h2e_skip_request_field(name, namelen)) {
    return 0;
  } else if (h2e_is(name, namelen, "cookie")) {
    if (wr_buf_len(&s->cookie) > 0)
      h2e_add(&s->cookie, &rv, "; ", 2);
    h2e_add(&s->cookie, &rv, value, valuelen);
  } else {
    if (h2e_is(name, namelen, "content-length"))
      s->has_clen = 1;
    h2e_add(&s->fields, &rv, name, namelen);
    h2e_add(&s->fields, &rv, ": ", 2);
    h2e_add(&s->fields, &rv, value, valuelen);
    h2e_add(&s->fields, &rv, "\r\n", 2);
  }
  if (rv < 0 ||
      wr_buf_len(&s->path) + wr_buf_len(&s->fields) + wr_buf_len(&s->cookie) > GW_HTTP2_HEAD_MAX)
    s->too_big = 1;
  return 0;
}

static int h2e_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  struct h2e_stream *s;

  (void)ud;
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
    return 0;
  s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (s == NULL)
    return 0;
  if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
    s->client_fin = 1;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
      s->state == H2E_HEADERS)
    h2e_stream_start(s);
  else if (s->client_fin)
    h2e_up_flush(s);
  return 0;
}

static int h2e_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                             const uint8_t *data, size_t len, void *ud) {
  struct h2e_stream *s;

  (void)flags;
  (void)ud;
  s = nghttp2_session_get_stream_user_data(session, stream_id);
  if (s == NULL || s->up_dead || s->state == H2E_REFUSED) {
    (void)nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  if (wr_buf_append(&s->up, data, len) < 0) {
    /* Cannot happen while the client respects our window. */
    (void)nghttp2_session_consume(session, stream_id, len);
    h2e_abort_tunnel(s);
    h2e_reset(s, NGHTTP2_FLOW_CONTROL_ERROR);
    return 0;
  }
  h2e_up_flush(s);
  return 0;
}

static int h2e_on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  (void)ud;
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  /* The response is complete: the rest of the request is of no use, so ask
   * the client to stop sending it (RFC 9113 §8.1). */
  if (!nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id))
    (void)nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                    NGHTTP2_NO_ERROR);
  return 0;
}

static int h2e_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                               void *ud) {
  struct h2e_stream *s;

  (void)ud;
  s = nghttp2_session_get_stream_user_data(session, stream_id);
  if (s == NULL)
    return 0;
  log_trace(WR_TRACE_HTTP, "http2 %s: stream %d: closed (%s)", gw_conn_peer(s->hc->c), stream_id,
            nghttp2_http2_strerror(error_code));
  if (!s->up_dead)
    h2e_drop_up(s);
  s->h2_closed = 1;
  /* After a complete exchange whose tunnel is finishing both ways, let it
   * close by itself; anything else (a client's RST_STREAM) aborts it. */
  if (s->t != NULL &&
      (error_code != NGHTTP2_NO_ERROR || !s->msg_done || !s->fin_sent || !s->tunnel_eof))
    h2e_abort_tunnel(s);
  if (s->t == NULL)
    h2e_stream_free(s, 1);
  return 0;
}

static int h2e_on_invalid_frame(nghttp2_session *session, const nghttp2_frame *frame,
                                int lib_error_code, void *ud) {
  struct h2e_conn *hc = ud;

  (void)session;
  log_trace(WR_TRACE_H2, "http2 %s: stream %d: invalid frame: %s", gw_conn_peer(hc->c),
            frame->hd.stream_id, nghttp2_strerror(lib_error_code));
  return 0;
}

static int h2e_on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                        void *ud) {
  struct h2e_conn *hc = ud;

  (void)session;
  (void)lib_error_code;
  log_trace(WR_TRACE_H2, "http2 %s: %.*s", gw_conn_peer(hc->c), (int)len, msg);
  return 0;
}

static void h2e_teardown(void *ud) {
  struct h2e_conn *hc = ud;

  while (hc->streams != NULL)
    h2e_stream_free(hc->streams, 0);
  free(hc);
}

static const nghttp2_settings_entry h2e_settings[] = {
    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2E_MAX_STREAMS},
    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2E_STREAM_WINDOW},
    {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 1 << 16},
};

static const struct gw_h2s_config h2e_config = {
    .settings = h2e_settings,
    .nsettings = sizeof(h2e_settings) / sizeof(h2e_settings[0]),
    .conn_window = H2E_CONN_WINDOW,
    .manual_window = 1,
};

static int h2e_callbacks(nghttp2_session_callbacks **out) {
  nghttp2_session_callbacks *cbs;

  if (nghttp2_session_callbacks_new(&cbs) != 0)
    return WR_ERR_NOMEM;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2e_on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, h2e_on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2e_on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2e_on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, h2e_on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2e_on_stream_close);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, h2e_on_invalid_frame);
  nghttp2_session_callbacks_set_error_callback2(cbs, h2e_on_error);
  *out = cbs;
  return 0;
}

static const struct gw_conn_cbs h2e_dead_cbs = {0};

int gw_http2_new(struct gw_conn *c, const struct gw_edge_env *env, const uint8_t *pre,
                 size_t prelen) {
  nghttp2_session_callbacks *cbs = NULL;
  const char *peer = gw_conn_peer(c);
  struct h2e_conn *hc;
  size_t n;
  int rv;

  hc = calloc(1, sizeof(*hc));
  if (hc == NULL || h2e_callbacks(&cbs) < 0) {
    free(hc);
    gw_conn_set_cbs(c, &h2e_dead_cbs, NULL);
    gw_conn_close(c);
    return WR_ERR_NOMEM;
  }
  hc->env = env;
  hc->c = c;
  hc->tls = gw_conn_is_tls(c);
  /* X-Forwarded-For carries the address without the port or brackets. */
  if (peer[0] == '[') {
    n = strcspn(peer + 1, "]");
    snprintf(hc->xff, sizeof(hc->xff), "%.*s", (int)n, peer + 1);
  } else {
    n = strcspn(peer, ":");
    snprintf(hc->xff, sizeof(hc->xff), "%.*s", (int)n, peer);
  }
  gw_conn_set_timeout(c, GW_HTTP2_IDLE_TIMEOUT_MS);
  /* The session copies the callbacks. */
  rv = gw_h2s_new(&hc->h2, c, &h2e_config, cbs, h2e_teardown, hc, pre, prelen);
  nghttp2_session_callbacks_del(cbs);
  if (rv < 0)
    free(hc);
  return rv;
}
