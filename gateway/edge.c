/* edge.c - the standalone edge listener: protocol detection and dispatch. */
#include <stdlib.h>
#include <string.h>

#include "warren/buf.h"
#include "warren/err.h"
#include "warren/log.h"
#include "warren/routes.h"

#include "edge.h"
#include "conn.h"
#include "http1.h"
#include "http2.h"

#define ED_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define ED_PREFACE_LEN 24
#define ED_SNIFF_MAX (64u << 10)

struct gw_edge {
  uv_loop_t *loop;
  uv_tcp_t plain_h;
  uv_tcp_t tls_h;
  int handles; /* listener handles not yet closed */
  struct gw_tls_ctx *tls;
  struct gw_conn_list conns;
  struct gw_edge_env env;
};

/* A connection whose protocol is not known yet. */
struct ed_sniff {
  struct gw_edge *e;
  wr_buf buf;
};

static void ed_dispatch(struct ed_sniff *sn, struct gw_conn *c, int h2) {
  struct gw_edge *e = sn->e;
  wr_buf buf = sn->buf;
  int rv;

  free(sn);
  log_trace(WR_TRACE_HTTP, "edge %s: %s%s", gw_conn_peer(c), h2 ? "h2" : "http/1.1",
            gw_conn_is_tls(c) ? " over tls" : "");
  if (h2)
    rv = gw_http2_new(c, &e->env, wr_buf_data(&buf), wr_buf_len(&buf));
  else
    rv = gw_http1_new(c, &e->env, wr_buf_data(&buf), wr_buf_len(&buf));
  if (rv < 0)
    log_warnx("edge: %s", wr_strerror(rv));
  wr_buf_free(&buf);
}

static void ed_sniff_read(struct gw_conn *c, const uint8_t *data, size_t len, void *ud) {
  struct ed_sniff *sn = ud;
  size_t have;

  if (wr_buf_append(&sn->buf, data, len) < 0) {
    gw_conn_close(c);
    return;
  }
  have = wr_buf_len(&sn->buf);
  if (memcmp(wr_buf_data(&sn->buf), ED_PREFACE, have < ED_PREFACE_LEN ? have : ED_PREFACE_LEN))
    ed_dispatch(sn, c, 0);
  else if (have >= ED_PREFACE_LEN)
    ed_dispatch(sn, c, 1);
}

static void ed_sniff_ready(struct gw_conn *c, void *ud) {
  const char *alpn = gw_conn_alpn(c);

  ed_dispatch(ud, c, alpn != NULL && strcmp(alpn, "h2") == 0);
}

static void ed_sniff_eof(struct gw_conn *c, void *ud) {
  (void)ud;
  gw_conn_close(c);
}

static void ed_sniff_close(struct gw_conn *c, void *ud) {
  struct ed_sniff *sn = ud;

  (void)c;
  wr_buf_free(&sn->buf);
  free(sn);
}

static const struct gw_conn_cbs ed_sniff_cbs = {
    .on_ready = ed_sniff_ready,
    .on_read = ed_sniff_read,
    .on_eof = ed_sniff_eof,
    .on_close = ed_sniff_close,
};

static void ed_on_connection(uv_stream_t *server, int status) {
  struct gw_edge *e = server->data;
  struct gw_tls_ctx *tls = server == (uv_stream_t *)&e->tls_h ? e->tls : NULL;
  struct ed_sniff *sn;
  struct gw_conn *c;
  int rv;

  if (status < 0) {
    log_warnx("edge: accept: %s", uv_strerror(status));
    return;
  }
  sn = calloc(1, sizeof(*sn));
  if (sn == NULL) {
    log_warnx("edge: accept: %s", wr_strerror(WR_ERR_NOMEM));
    return;
  }
  sn->e = e;
  wr_buf_init(&sn->buf, ED_SNIFF_MAX);
  rv = gw_conn_accept(&c, server, tls, &e->conns, &ed_sniff_cbs, sn);
  if (rv < 0) {
    log_warnx("edge: accept: %s", wr_strerror(rv));
    free(sn);
    return;
  }
  gw_conn_set_timeout(c, GW_HTTP1_HEAD_TIMEOUT_MS);
}

static void ed_free(struct gw_edge *e) {
  gw_tls_ctx_del(e->tls);
  free(e);
}

static void ed_on_listener_closed(uv_handle_t *h) {
  struct gw_edge *e = h->data;

  if (--e->handles == 0)
    ed_free(e);
}

static int ed_listen(struct gw_edge *e, uv_tcp_t *h, const char *addr) {
  int rv;

  rv = uv_tcp_init(e->loop, h);
  if (rv < 0)
    return rv;
  e->handles++;
  h->data = e;
  return gw_listen_tcp(h, addr, ed_on_connection);
}

int gw_edge_new(struct gw_edge **out, uv_loop_t *loop, struct gw_pool *pool,
                const struct wr_routes *routes, const struct gw_edge_config *cfg) {
  struct gw_edge *e;
  int rv;

  if (cfg->addr == NULL && cfg->tls_addr == NULL)
    return WR_ERR_INVAL;
  if (cfg->tls_addr != NULL && (cfg->tls_cert == NULL || cfg->tls_key == NULL)) {
    log_warnx("edge: TLS on %s needs a certificate and a key file", cfg->tls_addr);
    return WR_ERR_INVAL;
  }
  e = calloc(1, sizeof(*e));
  if (e == NULL)
    return WR_ERR_NOMEM;
  e->loop = loop;
  e->env.pool = pool;
  e->env.routes = routes;
  if (cfg->tls_addr != NULL) {
    rv = gw_tls_ctx_new(&e->tls, cfg->tls_cert, cfg->tls_key);
    if (rv < 0)
      goto fail;
  }
  if (cfg->addr != NULL) {
    rv = ed_listen(e, &e->plain_h, cfg->addr);
    if (rv < 0)
      goto fail;
    log_info("edge: http/1.1 and h2c on %s", cfg->addr);
  }
  if (cfg->tls_addr != NULL) {
    rv = ed_listen(e, &e->tls_h, cfg->tls_addr);
    if (rv < 0)
      goto fail;
    log_info("edge: https (h2, http/1.1) on %s", cfg->tls_addr);
  }
  *out = e;
  return 0;

fail:
  gw_edge_del(e);
  return rv;
}

void gw_edge_set_routes(struct gw_edge *e, const struct wr_routes *routes) {
  e->env.routes = routes;
}

void gw_edge_del(struct gw_edge *e) {
  if (e == NULL)
    return;
  gw_conn_list_close_all(&e->conns);
  if (e->handles == 0) {
    ed_free(e);
    return;
  }
  if (e->plain_h.loop != NULL)
    uv_close((uv_handle_t *)&e->plain_h, ed_on_listener_closed);
  if (e->tls_h.loop != NULL)
    uv_close((uv_handle_t *)&e->tls_h, ed_on_listener_closed);
}
