/* http2.c - the edge's HTTP/2 handler: one tunnel per request stream. */
#include <ctype.h>
#include <stddef.h>
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
#include "h2tunnel.h"
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

/* A request stream: the shared stream-to-tunnel bridge (h2tunnel.h) plus
 * the HTTP/1.1 translation both ways. */
struct h2e_stream {
  struct gw_h2tun ht; /* |up|: client DATA; |down|: body bytes (or our error text) */
  struct h2e_conn *hc;
  enum h2e_state state;
  /* The request head, until it is serialised into |out|. */
  char method[H2E_METHOD_MAX + 1];
  char host[H2E_HOST_MAX + 1];
  wr_buf path;
  wr_buf fields; /* "name: value\r\n" lines to forward */
  wr_buf cookie; /* cookie crumbs joined with "; " (RFC 9113 §8.2.3) */
  /* Towards the service. */
  wr_buf out;        /* the request head, then chunk framing */
  size_t chunk_left; /* bytes of |ht.up| announced by the last chunk-size line */
  /* From the service. */
  http_parser parser;
  wr_buf rhead; /* names (lowercased) and values of the response head */
  struct h2e_field *rf;
  size_t nrf;
  size_t body_in;         /* bytes the current on_data added to |ht.down| */
  const char *bad_reason; /* why a parser callback failed */
  unsigned has_host : 1, has_clen : 1, too_big : 1, bad_path : 1, is_head : 1, chunked : 1,
      end_queued : 1, in_value : 1, interim : 1, head_done : 1, msg_done : 1, tunnel_eof : 1;
};

struct h2e_conn {
  const struct gw_edge_env *env;
  struct gw_h2s *h2;
  struct gw_conn *c;
  struct gw_h2tun *streams;
  size_t nstreams;
  int tls;
  char xff[GW_CONN_PEER_MAX]; /* the client's address without the port */
};

static const char *h2e_strstate(enum h2e_state s) {
  static const char *const names[] = {"headers", "opening", "open", "response", "refused"};

  return names[s];
}

static void h2e_enter_state(struct h2e_stream *s, enum h2e_state st) {
  log_trace(WR_TRACE_HTTP, "http2 %s: stream %d: %s -> %s", gw_conn_peer(s->hc->c), s->ht.id,
            h2e_strstate(s->state), h2e_strstate(st));
  s->state = st;
}

static struct h2e_stream *h2e_of(struct gw_h2tun *ht) {
  return (struct h2e_stream *)(void *)((char *)ht - offsetof(struct h2e_stream, ht));
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

/* h2e_del releases the stream; with |session_alive|, once the session
 * knows the stream is closed. */
static void h2e_del(struct gw_h2tun *ht, int session_alive) {
  struct h2e_stream *s = h2e_of(ht);
  struct h2e_conn *hc = s->hc;

  gw_h2tun_free(ht, session_alive);
  if (--hc->nstreams == 0 && session_alive)
    gw_conn_set_timeout(hc->c, GW_HTTP2_IDLE_TIMEOUT_MS);
  h2e_free_request(s);
  h2e_free_rhead(s);
  wr_buf_free(&s->out);
  free(s);
}

static void h2e_reset(struct gw_h2tun *ht, uint32_t code) {
  struct h2e_stream *s = h2e_of(ht);

  log_trace(WR_TRACE_HTTP, "http2 %s: stream %d: reset (%s)", gw_conn_peer(s->hc->c), ht->id,
            nghttp2_http2_strerror(code));
  if (s->state != H2E_REFUSED)
    h2e_enter_state(s, H2E_REFUSED);
  gw_h2tun_rst(ht, code);
  gw_h2tun_drop_up(ht);
}

#define H2E_NV(nva, n, name, value, vlen)                                                          \
  ((nva)[(n)++] = (nghttp2_nv){(uint8_t *)(name), (uint8_t *)(value), strlen(name), (vlen),        \
                               NGHTTP2_NV_FLAG_NONE})

/* h2e_respond answers the stream with our own text/plain error response. */
static void h2e_respond(struct h2e_stream *s, int status, const char *reason) {
  char why[H2E_REASON_MAX];

  if (s->ht.h2_closed)
    return;
  if (s->ht.resp_sent) {
    h2e_reset(&s->ht, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  gw_h2tun_reason(why, sizeof(why), reason);
  log_debug("http2 %s: stream %d (%s): %d %s", gw_conn_peer(s->hc->c), s->ht.id, s->host, status,
            why);
  h2e_enter_state(s, H2E_REFUSED);
  if (gw_h2tun_refuse(&s->ht, status, why) < 0)
    h2e_reset(&s->ht, NGHTTP2_INTERNAL_ERROR);
}

/* h2e_bad_response ends a stream whose service answered something that
 * cannot be passed on, or went away before the response was complete. */
static void h2e_bad_response(struct h2e_stream *s, const char *why) {
  char reason[H2E_REASON_MAX];

  gw_h2tun_abort(&s->ht);
  if (s->state == H2E_REFUSED)
    return;
  if (s->ht.resp_sent) {
    /* The client gets the body received so far, then the reset: submitted
     * now, the RST_STREAM could overtake the HEADERS still queued. */
    log_debug("http2 %s: stream %d (%s): response cut: %s", gw_conn_peer(s->hc->c), s->ht.id,
              s->host, why);
    h2e_enter_state(s, H2E_REFUSED);
    gw_h2tun_drop_up(&s->ht);
    s->ht.cut = 1;
    gw_h2tun_resume(&s->ht);
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
static void h2e_up_flush(struct gw_h2tun *ht) {
  struct h2e_stream *s = h2e_of(ht);
  char line[24];
  size_t want;
  int n;

  if ((s->state != H2E_OPEN && s->state != H2E_RESPONSE) || s->ht.t == NULL || s->ht.up_dead)
    return;
  for (;;) {
    if (wr_buf_len(&s->out) > 0) {
      n = gw_tunnel_write(s->ht.t, wr_buf_data(&s->out), wr_buf_len(&s->out), 0);
      if (n < 0)
        goto fail;
      wr_buf_consume(&s->out, (size_t)n);
      if (wr_buf_len(&s->out) > 0)
        return; /* on_writable resumes */
    } else if (wr_buf_len(&s->ht.up) > 0) {
      if (s->chunked && s->chunk_left == 0) {
        s->chunk_left = wr_buf_len(&s->ht.up);
        n = snprintf(line, sizeof(line), "%zx\r\n", s->chunk_left);
        if (wr_buf_append(&s->out, line, (size_t)n) < 0)
          goto fail;
        continue;
      }
      want = wr_buf_len(&s->ht.up);
      if (s->chunked && want > s->chunk_left)
        want = s->chunk_left;
      n = gw_h2tun_up_write(ht, want);
      if (n < 0)
        goto fail;
      if (s->chunked) {
        s->chunk_left -= (size_t)n;
        if (s->chunk_left == 0 && wr_buf_append(&s->out, "\r\n", 2) < 0)
          goto fail;
      }
      if ((size_t)n < want)
        return;
    } else if (s->ht.client_fin && !s->end_queued) {
      s->end_queued = 1;
      if (s->chunked && wr_buf_append(&s->out, "0\r\n\r\n", 5) < 0)
        goto fail;
    } else {
      break;
    }
  }
  if (s->end_queued && !s->ht.fin_sent && (s->msg_done || s->tunnel_eof) && gw_h2tun_up_fin(ht) < 0)
    goto fail;
  return;

fail:
  /* The tunnel takes no more: whatever the client still sends is dropped,
   * and the tunnel's on_close or on_eof decides how the response ends. */
  log_trace(WR_TRACE_HTTP, "http2 %s: stream %d: the tunnel takes no more of the request",
            gw_conn_peer(s->hc->c), s->ht.id);
  gw_h2tun_drop_up(ht);
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
  if (!s->ht.client_fin && !s->has_clen)
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
  else if (s->ht.client_fin && !s->has_clen && !no_body_method)
    h2e_adds(&s->out, &rv, "Content-Length: 0\r\n");
  h2e_adds(&s->out, &rv, "Connection: close\r\n\r\n");
  h2e_free_request(s);
  return rv;
}

/* h2e_stream_start routes a complete request head and opens its tunnel. */
static void h2e_stream_start(struct gw_h2tun *ht) {
  struct h2e_stream *s = h2e_of(ht);
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
  log_trace(WR_TRACE_HTTP, "http2 %s: stream %d: %s %s", gw_conn_peer(s->hc->c), s->ht.id,
            s->method, s->host);
  req.endpoint_id = r->endpoint_id;
  req.node_addr = r->node_addr;
  req.target = r->target;
  req.peer = gw_conn_peer(s->hc->c);
  h2e_enter_state(s, H2E_OPENING);
  rv = gw_h2tun_open(ht, s->hc->env->pool, &req);
  if (rv < 0)
    h2e_respond(s, 502, wr_strerror(rv));
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
  if (final) {
    rv = gw_h2tun_respond(&s->ht, nva, nnv, body);
  } else {
    rv = nghttp2_submit_headers(gw_h2tun_session(&s->ht), NGHTTP2_FLAG_NONE, s->ht.id, NULL, nva,
                                nnv, NULL);
    if (rv != 0) {
      log_warnx("http2: stream %d: submit headers: %s", s->ht.id, nghttp2_strerror(rv));
      rv = WR_ERR_PROTO;
    } else {
      gw_h2s_flush(s->hc->h2);
    }
  }
  free(nva);
  return rv;
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
  log_trace(WR_TRACE_HTTP, "http2 %s: stream %d: %d", gw_conn_peer(s->hc->c), s->ht.id, status);
  s->ht.from_tunnel = 1;
  h2e_enter_state(s, H2E_RESPONSE);
  h2e_free_rhead(s);
  return nobody ? 1 : 0;
}

static int h2e_on_body(http_parser *p, const char *at, size_t len) {
  struct h2e_stream *s = p->data;

  if (wr_buf_append(&s->ht.down, at, len) < 0) {
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
  s->ht.eof = 1;
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

static void h2e_on_open(struct gw_h2tun *ht, int status, const char *reason) {
  struct h2e_stream *s = h2e_of(ht);

  if (s->state != H2E_OPENING)
    return;
  if (status != 200) {
    h2e_respond(s, status, reason); /* on_close follows */
    return;
  }
  h2e_enter_state(s, H2E_OPEN);
  h2e_up_flush(ht);
}

static void h2e_on_data(struct gw_h2tun *ht, const uint8_t *data, size_t len) {
  struct h2e_stream *s = h2e_of(ht);
  gw_tunnel *t = ht->t;
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
  gw_h2tun_resume(ht);
  if (s->msg_done)
    h2e_up_flush(ht);
}

static void h2e_on_eof(struct gw_h2tun *ht) {
  struct h2e_stream *s = h2e_of(ht);

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
    gw_h2tun_resume(ht);
  }
  h2e_up_flush(ht);
}

static void h2e_on_close(struct gw_h2tun *ht, int err) {
  struct h2e_stream *s = h2e_of(ht);

  if (!ht->up_dead)
    gw_h2tun_drop_up(ht);
  if (s->state == H2E_OPENING)
    h2e_respond(s, 502, wr_strerror(err != 0 ? err : WR_ERR_CLOSED));
  else if ((s->state == H2E_OPEN || s->state == H2E_RESPONSE) && !s->msg_done)
    h2e_bad_response(s, err != 0 ? wr_strerror(err) : "the tunnel closed");
}

/* h2e_may_linger: after a complete exchange whose tunnel is finishing both
 * ways, the tunnel closes by itself. */
static int h2e_may_linger(struct gw_h2tun *ht) {
  struct h2e_stream *s = h2e_of(ht);

  return s->msg_done && ht->fin_sent && s->tunnel_eof;
}

static const struct gw_h2tun_ops h2e_ops = {
    .name = "http2",
    .trace = WR_TRACE_HTTP,
    .start = h2e_stream_start,
    .up_flush = h2e_up_flush,
    .reset = h2e_reset,
    .may_linger = h2e_may_linger,
    .on_open = h2e_on_open,
    .on_data = h2e_on_data,
    .on_eof = h2e_on_eof,
    .on_close = h2e_on_close,
    .del = h2e_del,
};

/* nghttp2 callbacks for the request head; user_data is the struct h2e_conn.
 * h2tunnel.c handles the rest of the stream. */

static int h2e_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  struct h2e_conn *hc = ud;
  struct h2e_stream *s;

  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
  s->hc = hc;
  s->ht.rst_after_end = 1; /* a complete response ends the request too */
  wr_buf_init(&s->path, GW_HTTP2_HEAD_MAX);
  wr_buf_init(&s->fields, GW_HTTP2_HEAD_MAX);
  wr_buf_init(&s->cookie, GW_HTTP2_HEAD_MAX);
  wr_buf_init(&s->out, H2E_OUT_MAX);
  wr_buf_init(&s->rhead, GW_HTTP2_HEAD_MAX);
  http_parser_init(&s->parser, HTTP_RESPONSE);
  s->parser.data = s;
  gw_h2tun_init(&s->ht, &hc->streams, hc->h2, frame->hd.stream_id, &h2e_ops, H2E_UP_MAX,
                H2E_DOWN_MAX);
  if (hc->nstreams++ == 0)
    gw_conn_set_timeout(hc->c, 0);
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
  struct gw_h2tun *ht;
  struct h2e_stream *s;
  size_t i;
  int rv = 0;

  (void)flags;
  (void)ud;
  ht = gw_h2tun_request(session, frame);
  if (ht == NULL)
    return 0; /* trailers are not passed on */
  s = h2e_of(ht);
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

static void h2e_teardown(void *ud) {
  struct h2e_conn *hc = ud;

  gw_h2tun_del_all(&hc->streams);
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
  return gw_h2tun_callbacks_new(out, h2e_on_begin_headers, h2e_on_header);
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
