/* h2server.c - an nghttp2 server session on a client connection. */
#include <stdlib.h>

#include "warren/err.h"
#include "warren/log.h"

#include "h2server.h"

struct gw_h2s {
  struct gw_conn *c;
  nghttp2_session *s;
  uv_idle_t idle; /* deferred flush */
  void (*on_teardown)(void *ud);
  void *ud;
  int dead; /* no more I/O on the session */
};

static void h2s_pump(struct gw_h2s *h) {
  const uint8_t *data;
  ssize_t n;
  int rv;

  if (h->dead)
    return;
  while (gw_conn_queued(h->c) < GW_H2S_OUT_HIGH) {
    n = nghttp2_session_mem_send(h->s, &data);
    if (n < 0) {
      log_trace(WR_TRACE_H2, "h2 %s: send: %s", gw_conn_peer(h->c), nghttp2_strerror((int)n));
      h->dead = 1;
      gw_conn_close(h->c);
      return;
    }
    if (n == 0)
      break;
    rv = gw_conn_write(h->c, data, (size_t)n);
    if (rv < 0) {
      h->dead = 1;
      gw_conn_close(h->c);
      return;
    }
  }
  if (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s)) {
    log_trace(WR_TRACE_H2, "h2 %s: session done", gw_conn_peer(h->c));
    h->dead = 1;
    gw_conn_end(h->c);
    return;
  }
  if (gw_conn_queued(h->c) >= GW_H2S_OUT_HIGH)
    gw_conn_read_stop(h->c);
  else
    gw_conn_read_start(h->c);
}

static void h2s_input(struct gw_h2s *h, const uint8_t *data, size_t len) {
  ssize_t n;

  if (h->dead)
    return;
  n = nghttp2_session_mem_recv(h->s, data, len);
  if (n < 0) {
    log_trace(WR_TRACE_H2, "h2 %s: recv: %s", gw_conn_peer(h->c), nghttp2_strerror((int)n));
    /* Send the GOAWAY nghttp2 may have queued, then end this connection only. */
    h2s_pump(h);
    h->dead = 1;
    gw_conn_end(h->c);
    return;
  }
  h2s_pump(h);
}

void gw_h2s_feed(struct gw_h2s *h, const uint8_t *data, size_t len) {
  if (len > 0)
    h2s_input(h, data, len);
  else
    h2s_pump(h);
}

static void on_read(struct gw_conn *c, const uint8_t *data, size_t len, void *ud) {
  (void)c;
  h2s_input(ud, data, len);
}

static void on_eof(struct gw_conn *c, void *ud) {
  struct gw_h2s *h = ud;

  h2s_pump(h);
  h->dead = 1;
  gw_conn_end(c);
}

static void on_written(struct gw_conn *c, size_t n, void *ud) {
  (void)c;
  (void)n;
  h2s_pump(ud);
}

static void on_idle_closed(uv_handle_t *handle) {
  free(handle->data);
}

static void on_close(struct gw_conn *c, void *ud) {
  struct gw_h2s *h = ud;

  (void)c;
  h->dead = 1;
  if (h->on_teardown != NULL)
    h->on_teardown(h->ud);
  nghttp2_session_del(h->s);
  h->s = NULL;
  uv_close((uv_handle_t *)&h->idle, on_idle_closed);
}

static const struct gw_conn_cbs h2s_conn_cbs = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_written = on_written,
    .on_close = on_close,
};

static void on_idle(uv_idle_t *idle) {
  struct gw_h2s *h = idle->data;

  uv_idle_stop(idle);
  h2s_pump(h);
}

void gw_h2s_flush(struct gw_h2s *h) {
  if (!h->dead && !uv_is_active((uv_handle_t *)&h->idle))
    uv_idle_start(&h->idle, on_idle);
}

nghttp2_session *gw_h2s_session(struct gw_h2s *h) {
  return h->s;
}

struct gw_conn *gw_h2s_conn(struct gw_h2s *h) {
  return h->c;
}

static const struct gw_conn_cbs h2s_dead_cbs = {0};

int gw_h2s_new(struct gw_h2s **out, struct gw_conn *c, const struct gw_h2s_config *cfg,
               const nghttp2_session_callbacks *cbs, void (*on_teardown)(void *ud), void *ud,
               const uint8_t *pre, size_t prelen) {
  nghttp2_option *opt = NULL;
  struct gw_h2s *h;
  int rv = WR_ERR_NOMEM;

  h = calloc(1, sizeof(*h));
  if (h == NULL)
    goto fail;
  if (nghttp2_option_new(&opt) != 0)
    goto fail;
  if (cfg->manual_window)
    nghttp2_option_set_no_auto_window_update(opt, 1);
  if (nghttp2_session_server_new2(&h->s, cbs, ud, opt) != 0)
    goto fail;
  rv = WR_ERR_PROTO;
  if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, cfg->settings, cfg->nsettings) != 0)
    goto fail;
  if (cfg->conn_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE &&
      nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, cfg->conn_window) != 0)
    goto fail;
  nghttp2_option_del(opt);
  opt = NULL;

  uv_idle_init(gw_conn_loop(c), &h->idle);
  h->idle.data = h;
  h->c = c;
  h->ud = ud;
  h->on_teardown = on_teardown;
  gw_conn_set_cbs(c, &h2s_conn_cbs, h);
  *out = h;
  if (prelen > 0)
    h2s_input(h, pre, prelen);
  else
    h2s_pump(h);
  return 0;

fail:
  nghttp2_option_del(opt);
  if (h != NULL && h->s != NULL)
    nghttp2_session_del(h->s);
  free(h);
  gw_conn_set_cbs(c, &h2s_dead_cbs, NULL);
  gw_conn_close(c);
  return rv;
}
