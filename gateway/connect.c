/* connect.c - the HTTP/2 CONNECT listener: one tunnel per request stream. */
#include <ctype.h>
#include <stddef.h>
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
#include "conn.h"
#include "h2server.h"
#include "h2tunnel.h"
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

/* A request stream: the shared stream-to-tunnel bridge (h2tunnel.h) plus
 * the CONNECT request. The tunnel's bytes pass through unchanged both ways. */
struct cn_stream {
  struct gw_h2tun ht;
  struct cn_conn *cc;
  enum cn_state state;
  char method[16];
  char authority[WR_THDR_TARGET_MAX + 1];
  char endpoint[CN_ID_MAX + 1];
  char node_addr[CN_ADDR_MAX];
  char peer[WR_THDR_PEER_MAX + 1];
  unsigned has_path : 1, has_scheme : 1, has_protocol : 1, has_endpoint : 1, too_long : 1;
};

struct cn_conn {
  struct gw_pool *pool;
  struct gw_h2s *h2;
  struct gw_h2tun *streams;
};

static struct cn_stream *cn_of(struct gw_h2tun *ht) {
  return (struct cn_stream *)(void *)((char *)ht - offsetof(struct cn_stream, ht));
}

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
  log_trace(WR_TRACE_H2, "connect: stream %d: %s -> %s", s->ht.id, cn_strstate(s->state),
            cn_strstate(st));
  s->state = st;
}

static void cn_del(struct gw_h2tun *ht, int session_alive) {
  gw_h2tun_free(ht, session_alive);
  free(cn_of(ht));
}

static void cn_reset(struct gw_h2tun *ht, uint32_t code) {
  log_trace(WR_TRACE_H2, "connect: stream %d: reset (%s)", ht->id, nghttp2_http2_strerror(code));
  gw_h2tun_rst(ht, code);
}

static void cn_respond(struct cn_stream *s, int status, const char *reason) {
  char why[WR_THDR_REASON_MAX + 1];
  nghttp2_nv nv = {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE};
  int rv;

  if (status == 200) {
    wr_buf_reset(&s->ht.down);
    s->ht.from_tunnel = 1;
    s->ht.raw_up = 1;
    cn_enter_state(s, CN_OPEN);
    rv = gw_h2tun_respond(&s->ht, &nv, 1, 1);
  } else {
    gw_h2tun_reason(why, sizeof(why), reason);
    log_debug("connect: stream %d (%s): %d %s", s->ht.id, s->authority, status, why);
    s->ht.rst_after_end = 1; /* a refusal is complete: the client may stop */
    cn_enter_state(s, CN_REFUSED);
    rv = gw_h2tun_refuse(&s->ht, status, why);
  }
  if (rv < 0)
    cn_reset(&s->ht, NGHTTP2_INTERNAL_ERROR);
}

/* cn_up_flush passes queued client bytes to the tunnel, then its FIN. */
static void cn_up_flush(struct gw_h2tun *ht) {
  struct cn_stream *s = cn_of(ht);
  int n;

  if (s->state != CN_OPEN || ht->t == NULL)
    return;
  while (wr_buf_len(&ht->up) > 0) {
    n = gw_h2tun_up_write(ht, SIZE_MAX);
    if (n < 0) {
      cn_reset(ht, NGHTTP2_CONNECT_ERROR);
      return;
    }
    if (n == 0)
      break;
  }
  if (wr_buf_len(&ht->up) == 0 && ht->client_fin && !ht->fin_sent && gw_h2tun_up_fin(ht) < 0)
    cn_reset(ht, NGHTTP2_CONNECT_ERROR);
}

static int cn_may_linger(struct gw_h2tun *ht) {
  return cn_of(ht)->state == CN_OPEN && ht->client_fin && ht->eof;
}

/* Tunnel events (h2tunnel.h). */

static void cn_on_open(struct gw_h2tun *ht, int status, const char *reason) {
  struct cn_stream *s = cn_of(ht);

  if (s->state != CN_OPENING)
    return;
  cn_respond(s, status, reason);
  if (status == 200)
    cn_up_flush(ht);
}

static void cn_on_data(struct gw_h2tun *ht, const uint8_t *data, size_t len) {
  if (cn_of(ht)->state != CN_OPEN || ht->h2_closed)
    return;
  if (wr_buf_append(&ht->down, data, len) < 0) {
    log_warnx("connect: stream %d: tunnel sent past its window", ht->id);
    cn_reset(ht, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  gw_h2tun_resume(ht);
}

static void cn_on_eof(struct gw_h2tun *ht) {
  if (cn_of(ht)->state != CN_OPEN)
    return;
  ht->eof = 1;
  gw_h2tun_resume(ht);
}

static void cn_on_close(struct gw_h2tun *ht, int err) {
  struct cn_stream *s = cn_of(ht);

  if (s->state == CN_OPENING) {
    cn_respond(s, 502, wr_strerror(err != 0 ? err : WR_ERR_CLOSED));
  } else if (s->state == CN_OPEN) {
    if (err != 0) {
      cn_reset(ht, NGHTTP2_CONNECT_ERROR);
    } else if (!ht->eof) {
      ht->eof = 1;
      gw_h2tun_resume(ht);
    }
  }
}

static void cn_stream_start(struct gw_h2tun *ht) {
  struct cn_stream *s = cn_of(ht);
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
  if (!wr_thdr_target_valid(s->authority)) {
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
  rv = gw_h2tun_open(ht, s->cc->pool, &req);
  if (rv < 0)
    cn_respond(s, rv == WR_ERR_INVAL ? 400 : 503, wr_strerror(rv));
}

static const struct gw_h2tun_ops cn_ops = {
    .name = "connect",
    .trace = WR_TRACE_H2,
    .start = cn_stream_start,
    .up_flush = cn_up_flush,
    .reset = cn_reset,
    .may_linger = cn_may_linger,
    .on_open = cn_on_open,
    .on_data = cn_on_data,
    .on_eof = cn_on_eof,
    .on_close = cn_on_close,
    .del = cn_del,
};

/* nghttp2 callbacks for the request head; user_data is the struct cn_conn.
 * h2tunnel.c handles the rest of the stream. */

static int cn_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  struct cn_conn *cc = ud;
  struct cn_stream *s;

  (void)session;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
  s->cc = cc;
  gw_h2tun_init(&s->ht, &cc->streams, cc->h2, frame->hd.stream_id, &cn_ops, CN_UP_MAX, CN_DOWN_MAX);
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
  struct gw_h2tun *ht;
  struct cn_stream *s;
  size_t n;

  (void)flags;
  (void)ud;
  ht = gw_h2tun_request(session, frame);
  if (ht == NULL)
    return 0;
  s = cn_of(ht);
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

static void cn_teardown(void *ud) {
  struct cn_conn *cc = ud;

  gw_h2tun_del_all(&cc->streams);
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
  return gw_h2tun_callbacks_new(out, cn_on_begin_headers, cn_on_header);
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
