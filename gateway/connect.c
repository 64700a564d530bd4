/* connect.c - the HTTP/2 CONNECT listener: one tunnel per request stream. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "warren/buf.h"
#include "warren/err.h"
#include "warren/identity.h"
#include "warren/log.h"
#include "warren/tunnel_hdr.h"

#include "connect.h"
#include "edge_tls.h"
#include "h2server.h"
#include "tunnel.h"

#define CN_STREAM_WINDOW (1 << 20)                 /* SETTINGS_INITIAL_WINDOW_SIZE */
#define CN_CONN_WINDOW (16 << 20)                  /* connection receive window */
#define CN_MAX_STREAMS 4096                        /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define CN_UP_MAX (CN_STREAM_WINDOW + (64u << 10)) /* client bytes the tunnel has not taken */
#define CN_DOWN_MAX (16u << 20) /* tunnel bytes not yet framed; the tunnel window bounds it */
#define CN_ID_MAX 80
#define CN_ADDR_MAX 64

struct gw_connect {
  uv_loop_t *loop;
  struct gw_pool *pool;
  uv_pipe_t unix_h;
  uv_tcp_t tcp_h;
  int handles; /* listener handles not yet closed */
  char *unix_path;
  int unix_bound;
  struct gw_conn_list conns;
  nghttp2_session_callbacks *cbs;
};

enum cn_state {
  CN_HEADERS, /* reading the request headers */
  CN_OPENING, /* gw_tunnel_open() sent, waiting for on_open */
  CN_OPEN,    /* 200 sent, bytes flow */
  CN_REFUSED, /* error response sent or being sent */
};

struct cn_conn;

struct cn_stream {
  struct cn_conn *cc;
  struct cn_stream *prev, *next;
  int32_t id;
  enum cn_state state;
  gw_tunnel *t; /* NULL once the tunnel is gone */
  char method[16];
  char authority[WR_THDR_TARGET_MAX + 1];
  char endpoint[CN_ID_MAX + 1];
  char node_addr[CN_ADDR_MAX];
  char peer[WR_THDR_PEER_MAX + 1];
  wr_buf up;   /* client -> tunnel, not yet taken by the tunnel */
  wr_buf down; /* tunnel -> client (or the error body), not yet framed */
  unsigned has_path : 1, has_scheme : 1, has_protocol : 1, has_endpoint : 1, too_long : 1,
      client_fin : 1, fin_sent : 1, eof : 1, from_tunnel : 1, h2_closed : 1;
};

struct cn_conn {
  struct gw_pool *pool;
  struct gw_h2s *h2;
  struct cn_stream *streams;
};

static const char *cn_strstate(enum cn_state s) {
  switch (s) {
  case CN_HEADERS:
    return "headers";
  case CN_OPENING:
    return "opening";
  case CN_OPEN:
    return "open";
  case CN_REFUSED:
    return "refused";
  }
  return "?";
}

static void cn_enter_state(struct cn_stream *s, enum cn_state st) {
  log_trace(WR_TRACE_H2, "connect: stream %d: %s -> %s", s->id, cn_strstate(s->state),
            cn_strstate(st));
  s->state = st;
}

static nghttp2_session *cn_session(struct cn_stream *s) {
  return gw_h2s_session(s->cc->h2);
}

static void cn_stream_free(struct cn_stream *s, int session_alive) {
  struct cn_conn *cc = s->cc;

  if (s->t != NULL) {
    gw_tunnel_abort(s->t);
    s->t = NULL;
  }
  /* Give back the connection window held by bytes that will never be delivered. */
  if (session_alive && wr_buf_len(&s->up) > 0)
    (void)nghttp2_session_consume_connection(cn_session(s), wr_buf_len(&s->up));
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    cc->streams = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  wr_buf_free(&s->up);
  wr_buf_free(&s->down);
  free(s);
}

/* cn_copy_reason writes |in| without control characters, for a header value. */
static void cn_copy_reason(char *out, size_t outlen, const char *in) {
  size_t i;

  for (i = 0; in != NULL && in[i] != '\0' && i + 1 < outlen; i++)
    out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : ' ';
  out[i] = '\0';
}

static ssize_t cn_read_data(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *flags, nghttp2_data_source *source, void *ud) {
  struct cn_stream *s = source->ptr;
  size_t n = wr_buf_len(&s->down);

  (void)session;
  (void)stream_id;
  (void)ud;
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

static void cn_reset(struct cn_stream *s, uint32_t code) {
  log_trace(WR_TRACE_H2, "connect: stream %d: reset (%s)", s->id, nghttp2_http2_strerror(code));
  if (!s->h2_closed)
    (void)nghttp2_submit_rst_stream(cn_session(s), NGHTTP2_FLAG_NONE, s->id, code);
  gw_h2s_flush(s->cc->h2);
}

static void cn_respond(struct cn_stream *s, int status, const char *reason) {
  nghttp2_data_provider prd;
  char st[8], len[24], why[WR_THDR_REASON_MAX + 1];
  nghttp2_nv nva[4];
  size_t nnv = 0;
  int rv;

#define CN_NV(n, v)                                                                                \
  nva[nnv++] =                                                                                     \
      (nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
  snprintf(st, sizeof(st), "%d", status);
  CN_NV(":status", st);
  wr_buf_reset(&s->down);
  if (status == 200) {
    s->from_tunnel = 1;
    cn_enter_state(s, CN_OPEN);
  } else {
    cn_copy_reason(why, sizeof(why), reason != NULL && *reason != '\0' ? reason : "refused");
    log_debug("connect: stream %d (%s): %d %s", s->id, s->authority, status, why);
    s->from_tunnel = 0;
    s->eof = 1;
    if (wr_buf_append(&s->down, why, strlen(why)) < 0 || wr_buf_append(&s->down, "\n", 1) < 0)
      wr_buf_reset(&s->down);
    snprintf(len, sizeof(len), "%zu", wr_buf_len(&s->down));
    CN_NV("content-type", "text/plain; charset=utf-8");
    CN_NV("content-length", len);
    CN_NV("x-warren-error", why);
    cn_enter_state(s, CN_REFUSED);
  }
#undef CN_NV
  prd.source.ptr = s;
  prd.read_callback = cn_read_data;
  rv = nghttp2_submit_response(cn_session(s), s->id, nva, nnv, &prd);
  if (rv != 0) {
    log_warnx("connect: stream %d: submit response: %s", s->id, nghttp2_strerror(rv));
    cn_reset(s, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  gw_h2s_flush(s->cc->h2);
}

/* cn_up_flush passes queued client bytes to the tunnel and opens the
 * stream's window by what the tunnel took. */
static void cn_up_flush(struct cn_stream *s) {
  int n;

  if (s->state != CN_OPEN || s->t == NULL)
    return;
  while (wr_buf_len(&s->up) > 0) {
    n = gw_tunnel_write(s->t, wr_buf_data(&s->up), wr_buf_len(&s->up), 0);
    if (n < 0) {
      cn_reset(s, NGHTTP2_CONNECT_ERROR);
      return;
    }
    if (n == 0)
      break;
    wr_buf_consume(&s->up, (size_t)n);
    (void)nghttp2_session_consume(cn_session(s), s->id, (size_t)n);
    gw_h2s_flush(s->cc->h2);
  }
  if (wr_buf_len(&s->up) == 0 && s->client_fin && !s->fin_sent) {
    if (gw_tunnel_write(s->t, NULL, 0, 1) < 0) {
      cn_reset(s, NGHTTP2_CONNECT_ERROR);
      return;
    }
    s->fin_sent = 1;
  }
}

static void cn_resume(struct cn_stream *s) {
  if (!s->h2_closed)
    (void)nghttp2_session_resume_data(cn_session(s), s->id);
  gw_h2s_flush(s->cc->h2);
}

/* Tunnel callbacks. They only change state and schedule output; nghttp2
 * runs from the loop (gw_h2s_flush), never inside them. */

static void cn_on_open(gw_tunnel *t, int status, const char *reason, void *ud) {
  struct cn_stream *s = ud;

  (void)t;
  if (s->state != CN_OPENING)
    return;
  if (s->h2_closed) {
    gw_tunnel_abort(s->t);
    s->t = NULL;
    cn_stream_free(s, 1);
    return;
  }
  cn_respond(s, status, reason);
  if (status == 200)
    cn_up_flush(s);
}

static void cn_on_data(gw_tunnel *t, const uint8_t *data, size_t len, void *ud) {
  struct cn_stream *s = ud;

  (void)t;
  if (s->state != CN_OPEN || s->h2_closed)
    return;
  if (wr_buf_append(&s->down, data, len) < 0) {
    log_warnx("connect: stream %d: tunnel sent past its window", s->id);
    cn_reset(s, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  cn_resume(s);
}

static void cn_on_eof(gw_tunnel *t, void *ud) {
  struct cn_stream *s = ud;

  (void)t;
  if (s->state != CN_OPEN)
    return;
  s->eof = 1;
  cn_resume(s);
}

static void cn_on_writable(gw_tunnel *t, void *ud) {
  (void)t;
  cn_up_flush(ud);
}

static void cn_on_close(gw_tunnel *t, int err, void *ud) {
  struct cn_stream *s = ud;

  (void)t;
  s->t = NULL;
  log_trace(WR_TRACE_H2, "connect: stream %d: tunnel closed (%s)", s->id,
            err != 0 ? wr_strerror(err) : "ok");
  if (s->h2_closed) {
    cn_stream_free(s, 1);
    return;
  }
  if (s->state == CN_OPENING) {
    cn_respond(s, 502, wr_strerror(err != 0 ? err : WR_ERR_CLOSED));
  } else if (s->state == CN_OPEN) {
    if (err != 0) {
      cn_reset(s, NGHTTP2_CONNECT_ERROR);
    } else if (!s->eof) {
      s->eof = 1;
      cn_resume(s);
    }
  }
}

static const struct gw_tunnel_cbs cn_tunnel_cbs = {
    .on_open = cn_on_open,
    .on_data = cn_on_data,
    .on_eof = cn_on_eof,
    .on_writable = cn_on_writable,
    .on_close = cn_on_close,
};

/* cn_valid_target accepts "host:port" and "[v6]:port" with a port 1-65535. */
static int cn_valid_target(const char *a) {
  const char *colon = strrchr(a, ':');
  const char *p;
  size_t hlen;
  unsigned long port = 0;

  if (colon == NULL || colon == a || colon[1] == '\0' || strlen(colon + 1) > 5)
    return 0;
  for (p = colon + 1; *p != '\0'; p++) {
    if (!isdigit((unsigned char)*p))
      return 0;
    port = port * 10 + (unsigned long)(*p - '0');
  }
  if (port == 0 || port > 65535)
    return 0;
  hlen = (size_t)(colon - a);
  if (a[0] == '[') {
    if (hlen < 3 || a[hlen - 1] != ']')
      return 0;
    for (p = a + 1; p < a + hlen - 1; p++)
      if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
        return 0;
    return 1;
  }
  for (p = a; p < colon; p++)
    if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
      return 0;
  return 1;
}

static void cn_stream_start(struct cn_stream *s) {
  struct gw_tunnel_req req;
  wr_pubkey id;
  int rv;

  if (strcmp(s->method, "CONNECT") != 0) {
    cn_respond(s, 405, "only CONNECT is supported");
    return;
  }
  if (s->has_protocol) {
    cn_respond(s, 400, "extended CONNECT is not supported");
    return;
  }
  if (s->has_path || s->has_scheme) {
    cn_respond(s, 400, "CONNECT must not carry :path or :scheme");
    return;
  }
  if (s->too_long) {
    cn_respond(s, 400, "header value too long");
    return;
  }
  if (!cn_valid_target(s->authority)) {
    cn_respond(s, 400, ":authority must be host:port");
    return;
  }
  if (!s->has_endpoint) {
    cn_respond(s, 400, "missing x-warren-endpoint-id");
    return;
  }
  if (wr_id_parse(id, s->endpoint) != 0) {
    cn_respond(s, 400, "invalid x-warren-endpoint-id");
    return;
  }
  req.endpoint_id = id;
  req.node_addr = s->node_addr[0] != '\0' ? s->node_addr : NULL;
  req.target = s->authority;
  req.peer = s->peer;
  cn_enter_state(s, CN_OPENING);
  rv = gw_tunnel_open(s->cc->pool, &req, &cn_tunnel_cbs, s, &s->t);
  if (rv < 0) {
    s->t = NULL;
    cn_respond(s, rv == WR_ERR_INVAL ? 400 : 503, wr_strerror(rv));
  }
}

/* nghttp2 callbacks; user_data is the struct cn_conn. */

static int cn_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  struct cn_conn *cc = ud;
  struct cn_stream *s;

  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
  s->cc = cc;
  s->id = frame->hd.stream_id;
  wr_buf_init(&s->up, CN_UP_MAX);
  wr_buf_init(&s->down, CN_DOWN_MAX);
  s->next = cc->streams;
  if (cc->streams != NULL)
    cc->streams->prev = s;
  cc->streams = s;
  nghttp2_session_set_stream_user_data(session, s->id, s);
  return 0;
}

static void cn_store(struct cn_stream *s, char *dst, size_t dstlen, const uint8_t *v, size_t vlen) {
  if (vlen >= dstlen) {
    s->too_long = 1;
    vlen = dstlen - 1;
  }
  memcpy(dst, v, vlen);
  dst[vlen] = '\0';
}

static int cn_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *ud) {
  struct cn_stream *s;
  size_t n;

  (void)flags;
  (void)ud;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (s == NULL)
    return 0;
#define CN_IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)
  if (CN_IS(":method")) {
    cn_store(s, s->method, sizeof(s->method), value, valuelen);
  } else if (CN_IS(":authority")) {
    cn_store(s, s->authority, sizeof(s->authority), value, valuelen);
  } else if (CN_IS(":path")) {
    s->has_path = 1;
  } else if (CN_IS(":scheme")) {
    s->has_scheme = 1;
  } else if (CN_IS(":protocol")) {
    s->has_protocol = 1;
  } else if (CN_IS("x-warren-endpoint-id")) {
    s->has_endpoint = 1;
    cn_store(s, s->endpoint, sizeof(s->endpoint), value, valuelen);
  } else if (CN_IS("x-warren-node-addr")) {
    cn_store(s, s->node_addr, sizeof(s->node_addr), value, valuelen);
  } else if (CN_IS("x-forwarded-for")) {
    /* The first element is the original client; keep it for the agent's log. */
    for (n = 0; n < valuelen && value[n] != ',' && n < sizeof(s->peer) - 1; n++)
      ;
    while (n > 0 && value[n - 1] == ' ')
      n--;
    memcpy(s->peer, value, n);
    s->peer[n] = '\0';
  }
#undef CN_IS
  return 0;
}

static int cn_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  struct cn_stream *s;

  (void)ud;
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
    return 0;
  s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (s == NULL)
    return 0;
  if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
    s->client_fin = 1;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
      s->state == CN_HEADERS)
    cn_stream_start(s);
  else if (s->client_fin)
    cn_up_flush(s);
  return 0;
}

static int cn_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                            const uint8_t *data, size_t len, void *ud) {
  struct cn_stream *s;
  int n = 0;

  (void)flags;
  (void)ud;
  s = nghttp2_session_get_stream_user_data(session, stream_id);
  if (s == NULL || (s->state != CN_OPENING && s->state != CN_OPEN)) {
    (void)nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  if (s->state == CN_OPEN && s->t != NULL && wr_buf_len(&s->up) == 0) {
    n = gw_tunnel_write(s->t, data, len, 0);
    if (n < 0) {
      (void)nghttp2_session_consume(session, stream_id, len);
      cn_reset(s, NGHTTP2_CONNECT_ERROR);
      return 0;
    }
    if (n > 0)
      (void)nghttp2_session_consume(session, stream_id, (size_t)n);
  }
  if ((size_t)n < len && wr_buf_append(&s->up, data + n, len - (size_t)n) < 0) {
    /* Cannot happen while the peer respects our window. */
    (void)nghttp2_session_consume(session, stream_id, len - (size_t)n);
    cn_reset(s, NGHTTP2_FLOW_CONTROL_ERROR);
  }
  return 0;
}

static int cn_on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  struct cn_stream *s;

  (void)ud;
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  /* A refusal is complete: ask the client to stop sending (RFC 9113 §8.1). */
  if (s != NULL && s->state == CN_REFUSED &&
      !nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id))
    (void)nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                    NGHTTP2_NO_ERROR);
  return 0;
}

static int cn_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                              void *ud) {
  struct cn_stream *s;

  (void)ud;
  s = nghttp2_session_get_stream_user_data(session, stream_id);
  if (s == NULL)
    return 0;
  log_trace(WR_TRACE_H2, "connect: stream %d: closed (%s)", stream_id,
            nghttp2_http2_strerror(error_code));
  s->h2_closed = 1;
  /* A clean close (both END_STREAMs) leaves the tunnel to deliver the FIN and
   * report on_close; anything else aborts it. */
  if (s->t != NULL &&
      (error_code != NGHTTP2_NO_ERROR || s->state != CN_OPEN || !s->client_fin || !s->eof)) {
    gw_tunnel_abort(s->t);
    s->t = NULL;
  }
  if (s->t == NULL)
    cn_stream_free(s, 1);
  return 0;
}

static int cn_on_invalid_frame(nghttp2_session *session, const nghttp2_frame *frame,
                               int lib_error_code, void *ud) {
  (void)session;
  (void)ud;
  log_trace(WR_TRACE_H2, "connect: stream %d: invalid frame: %s", frame->hd.stream_id,
            nghttp2_strerror(lib_error_code));
  return 0;
}

static int cn_on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                       void *ud) {
  (void)session;
  (void)lib_error_code;
  (void)ud;
  log_trace(WR_TRACE_H2, "connect: h2: %.*s", (int)len, msg);
  return 0;
}

static void cn_teardown(void *ud) {
  struct cn_conn *cc = ud;

  while (cc->streams != NULL)
    cn_stream_free(cc->streams, 0);
  free(cc);
}

static const nghttp2_settings_entry cn_settings[] = {
    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, CN_MAX_STREAMS},
    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, CN_STREAM_WINDOW},
    {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 1 << 16},
};

static const struct gw_h2s_config cn_h2_config = {
    .settings = cn_settings,
    .nsettings = sizeof(cn_settings) / sizeof(cn_settings[0]),
    .conn_window = CN_CONN_WINDOW,
    .manual_window = 1,
};

static void cn_on_accept_close(struct gw_conn *conn, void *ud) {
  (void)conn;
  free(ud);
}

static const struct gw_conn_cbs cn_accept_cbs = {.on_close = cn_on_accept_close};

static void cn_on_connection(uv_stream_t *server, int status) {
  struct gw_connect *c = server->data;
  struct gw_conn *conn;
  struct cn_conn *cc;
  int rv;

  if (status < 0) {
    log_warnx("connect: accept: %s", uv_strerror(status));
    return;
  }
  cc = calloc(1, sizeof(*cc));
  if (cc == NULL) {
    log_warnx("connect: accept: %s", wr_strerror(WR_ERR_NOMEM));
    return;
  }
  cc->pool = c->pool;
  rv = gw_conn_accept(&conn, server, NULL, &c->conns, &cn_accept_cbs, cc);
  if (rv < 0) {
    log_warnx("connect: accept: %s", wr_strerror(rv));
    free(cc);
    return;
  }
  log_trace(WR_TRACE_H2, "connect: connection from %s",
            *gw_conn_peer(conn) != '\0' ? gw_conn_peer(conn) : "unix socket");
  rv = gw_h2s_new(&cc->h2, conn, &cn_h2_config, c->cbs, cn_teardown, cc, NULL, 0);
  if (rv < 0) {
    log_warnx("connect: h2 session: %s", wr_strerror(rv));
    free(cc);
  }
}

static void cn_free(struct gw_connect *c) {
  if (c->cbs != NULL)
    nghttp2_session_callbacks_del(c->cbs);
  free(c->unix_path);
  free(c);
}

static void cn_on_listener_closed(uv_handle_t *h) {
  struct gw_connect *c = h->data;

  if (--c->handles == 0)
    cn_free(c);
}

static int cn_callbacks(nghttp2_session_callbacks **out) {
  nghttp2_session_callbacks *cbs;

  if (nghttp2_session_callbacks_new(&cbs) != 0)
    return WR_ERR_NOMEM;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cn_on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, cn_on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cn_on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cn_on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, cn_on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cn_on_stream_close);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, cn_on_invalid_frame);
  nghttp2_session_callbacks_set_error_callback2(cbs, cn_on_error);
  *out = cbs;
  return 0;
}

int gw_connect_new(struct gw_connect **out, uv_loop_t *loop, struct gw_pool *pool,
                   const char *unix_path, const char *tcp_addr) {
  struct gw_connect *c;
  int rv;

  if (unix_path == NULL && tcp_addr == NULL)
    return WR_ERR_INVAL;
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return WR_ERR_NOMEM;
  c->loop = loop;
  c->pool = pool;
  rv = cn_callbacks(&c->cbs);
  if (rv < 0)
    goto fail;
  if (unix_path != NULL) {
    rv = WR_ERR_NOMEM;
    c->unix_path = strdup(unix_path);
    if (c->unix_path == NULL)
      goto fail;
    rv = uv_pipe_init(loop, &c->unix_h, 0);
    if (rv < 0)
      goto fail;
    c->handles++;
    c->unix_h.data = c;
    rv = gw_listen_unix(&c->unix_h, unix_path, cn_on_connection);
    if (rv < 0)
      goto fail;
    c->unix_bound = 1;
    log_info("connect: listening on unix:%s", unix_path);
  }
  if (tcp_addr != NULL) {
    rv = uv_tcp_init(loop, &c->tcp_h);
    if (rv < 0)
      goto fail;
    c->handles++;
    c->tcp_h.data = c;
    rv = gw_listen_tcp(&c->tcp_h, tcp_addr, cn_on_connection);
    if (rv < 0)
      goto fail;
    log_info("connect: listening on %s", tcp_addr);
  }
  *out = c;
  return 0;

fail:
  gw_connect_del(c);
  return rv;
}

void gw_connect_del(struct gw_connect *c) {
  if (c == NULL)
    return;
  gw_conn_list_close_all(&c->conns);
  if (c->handles == 0) {
    cn_free(c);
    return;
  }
  if (c->unix_bound)
    (void)unlink(c->unix_path);
  if (c->unix_h.loop != NULL)
    uv_close((uv_handle_t *)&c->unix_h, cn_on_listener_closed);
  if (c->tcp_h.loop != NULL)
    uv_close((uv_handle_t *)&c->tcp_h, cn_on_listener_closed);
}
