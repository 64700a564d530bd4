/* conn.c - accepted client connections, in clear or under GnuTLS server TLS. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "warren/buf.h"
#include "warren/err.h"
#include "warren/log.h"

#include "conn.h"
#include "warren/addr.h"

#define CONN_READ_SIZE (64u << 10)
#define CONN_TLS_IN_MAX (256u << 10) /* ciphertext waiting for GnuTLS */
#define CONN_TLS_SLACK (1u << 20)    /* record overhead on top of GW_CONN_OUT_MAX */
#define CONN_LINGER_MS 2000          /* read after our FIN before closing */
#define CONN_BACKLOG 511

struct gw_tls_ctx {
  gnutls_certificate_credentials_t cred;
};

struct gw_conn {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  uv_timer_t timer;
  uv_idle_t kick;       /* coalesce one loop iteration's writes into one: */
  uv_check_t kick_late; /* after the I/O callbacks, or before the poll (idle) */
  uv_write_t wreq;
  uv_shutdown_t sreq;
  struct gw_conn_list *list;
  struct gw_conn *prev, *next;
  const struct gw_conn_cbs *cbs;
  void *ud;
  gnutls_session_t tls; /* NULL in clear */
  wr_buf tls_in;        /* ciphertext for the pull function */
  wr_buf out;           /* queued bytes (ciphertext under TLS) */
  wr_buf inflight;      /* bytes of the current uv_write */
  size_t out_plain;     /* plaintext bytes represented in out */
  size_t inflight_plain;
  unsigned tls_ready : 1, writing : 1, want_read : 1, reading : 1, ending : 1, bye_sent : 1,
      shut : 1, closing : 1, notified : 1;
  int handles; /* open uv handles */
  char peer[GW_CONN_PEER_MAX];
  char alpn[16];
};

int gw_tls_ctx_new(struct gw_tls_ctx **out, const char *cert_file, const char *key_file) {
  struct gw_tls_ctx *ctx;
  int rv;

  ctx = calloc(1, sizeof(*ctx));
  if (ctx == NULL)
    return WR_ERR_NOMEM;
  rv = gnutls_certificate_allocate_credentials(&ctx->cred);
  if (rv < 0) {
    free(ctx);
    return WR_ERR_NOMEM;
  }
  rv = gnutls_certificate_set_x509_key_file(ctx->cred, cert_file, key_file, GNUTLS_X509_FMT_PEM);
  if (rv < 0) {
    log_warnx("tls: %s, %s: %s", cert_file, key_file, gnutls_strerror(rv));
    gw_tls_ctx_del(ctx);
    return WR_ERR_TLS;
  }
  *out = ctx;
  return 0;
}

void gw_tls_ctx_del(struct gw_tls_ctx *ctx) {
  if (ctx == NULL)
    return;
  gnutls_certificate_free_credentials(ctx->cred);
  free(ctx);
}

static void conn_kick(struct gw_conn *c);
static void conn_finish_end(struct gw_conn *c);

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t len) {
  struct gw_conn *c = ptr;
  size_t n = wr_buf_len(&c->tls_in);

  if (n == 0) {
    gnutls_transport_set_errno(c->tls, EAGAIN);
    return -1;
  }
  if (n > len)
    n = len;
  memcpy(data, wr_buf_data(&c->tls_in), n);
  wr_buf_consume(&c->tls_in, n);
  return (ssize_t)n;
}

static int tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms) {
  struct gw_conn *c = ptr;

  (void)ms;
  return wr_buf_len(&c->tls_in) > 0 ? 1 : 0;
}

static ssize_t tls_push(gnutls_transport_ptr_t ptr, const void *data, size_t len) {
  struct gw_conn *c = ptr;

  if (wr_buf_append(&c->out, data, len) < 0) {
    gnutls_transport_set_errno(c->tls, ENOBUFS);
    return -1;
  }
  return (ssize_t)len;
}

static void on_handle_closed(uv_handle_t *h) {
  struct gw_conn *c = h->data;

  if (--c->handles > 0)
    return;
  if (!c->notified) {
    c->notified = 1;
    if (c->cbs->on_close != NULL)
      c->cbs->on_close(c, c->ud);
  }
  if (c->list != NULL) {
    if (c->prev != NULL)
      c->prev->next = c->next;
    else
      c->list->head = c->next;
    if (c->next != NULL)
      c->next->prev = c->prev;
  }
  if (c->tls != NULL)
    gnutls_deinit(c->tls);
  wr_buf_free(&c->tls_in);
  wr_buf_free(&c->out);
  wr_buf_free(&c->inflight);
  free(c);
}

void gw_conn_close(struct gw_conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_close(&c->h.handle, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  uv_close((uv_handle_t *)&c->kick, on_handle_closed);
  uv_close((uv_handle_t *)&c->kick_late, on_handle_closed);
}

static void on_timer(uv_timer_t *t) {
  struct gw_conn *c = t->data;

  log_trace(WR_TRACE_HTTP, "conn %p: %s", (void *)c, c->ending ? "linger over" : "idle timeout");
  gw_conn_close(c);
}

void gw_conn_set_timeout(struct gw_conn *c, uint64_t ms) {
  if (c->closing)
    return;
  if (ms == 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  buf->base = malloc(CONN_READ_SIZE);
  buf->len = buf->base != NULL ? CONN_READ_SIZE : 0;
}

static void conn_tls_records(struct gw_conn *c) {
  uint8_t rec[16384];
  ssize_t n;

  while (!c->closing && !c->ending) {
    n = gnutls_record_recv(c->tls, rec, sizeof(rec));
    if (n > 0) {
      c->cbs->on_read(c, rec, (size_t)n, c->ud);
    } else if (n == 0) {
      c->cbs->on_eof(c, c->ud);
      return;
    } else if (n == GNUTLS_E_AGAIN) {
      return;
    } else if (n == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal((int)n)) {
      continue;
    } else {
      log_trace(WR_TRACE_HTTP, "conn %s: tls: %s", c->peer, gnutls_strerror((int)n));
      gw_conn_close(c);
      return;
    }
  }
}

static void conn_tls_input(struct gw_conn *c, const uint8_t *data, size_t len) {
  int rv;

  if (wr_buf_append(&c->tls_in, data, len) < 0) {
    gw_conn_close(c);
    return;
  }
  if (!c->tls_ready) {
    rv = gnutls_handshake(c->tls);
    conn_kick(c);
    if (rv == GNUTLS_E_AGAIN || rv == GNUTLS_E_INTERRUPTED)
      return;
    if (rv < 0) {
      log_trace(WR_TRACE_HTTP, "conn %s: tls handshake: %s", c->peer, gnutls_strerror(rv));
      gw_conn_close(c);
      return;
    }
    c->tls_ready = 1;
    {
      gnutls_datum_t p;

      if (gnutls_alpn_get_selected_protocol(c->tls, &p) == 0 && p.size < sizeof(c->alpn)) {
        memcpy(c->alpn, p.data, p.size);
        c->alpn[p.size] = '\0';
      }
    }
    if (c->cbs->on_ready != NULL)
      c->cbs->on_ready(c, c->ud);
  }
  conn_tls_records(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct gw_conn *c = s->data;

  if (nread < 0) {
    free(buf->base);
    if (c->closing)
      return;
    if (nread != UV_EOF) {
      log_trace(WR_TRACE_HTTP, "conn %s: read: %s", c->peer, uv_strerror((int)nread));
      gw_conn_close(c);
      return;
    }
    uv_read_stop(s);
    c->reading = 0;
    if (c->ending)
      gw_conn_close(c);
    else
      c->cbs->on_eof(c, c->ud);
    return;
  }
  if (nread > 0 && !c->closing && !c->ending) {
    if (c->tls != NULL)
      conn_tls_input(c, (const uint8_t *)buf->base, (size_t)nread);
    else
      c->cbs->on_read(c, (const uint8_t *)buf->base, (size_t)nread, c->ud);
  }
  free(buf->base);
}

void gw_conn_read_start(struct gw_conn *c) {
  c->want_read = 1;
  if (c->closing || c->reading)
    return;
  if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0)
    c->reading = 1;
}

void gw_conn_read_stop(struct gw_conn *c) {
  c->want_read = 0;
  if (c->closing || !c->reading || c->ending)
    return;
  uv_read_stop(&c->h.stream);
  c->reading = 0;
}

/* write_done credits |n| plaintext bytes written and finishes an ending
 * connection whose output is all out. Callbacks may close |c|. */
static void write_done(struct gw_conn *c, size_t n) {
  if (n > 0 && !c->closing && !c->ending && c->cbs->on_written != NULL)
    c->cbs->on_written(c, n, c->ud);
  if (!c->closing && c->ending && !c->writing && wr_buf_len(&c->out) == 0)
    conn_finish_end(c);
}

static void on_write(uv_write_t *req, int status) {
  struct gw_conn *c = req->data;
  size_t n = c->inflight_plain;

  c->writing = 0;
  wr_buf_reset(&c->inflight);
  c->inflight_plain = 0;
  if (c->closing)
    return;
  if (status < 0) {
    log_trace(WR_TRACE_HTTP, "conn %s: write: %s", c->peer, uv_strerror(status));
    gw_conn_close(c);
    return;
  }
  conn_kick(c);
  write_done(c, n);
}

static void kick_run(struct gw_conn *c) {
  uv_idle_stop(&c->kick);
  uv_check_stop(&c->kick_late);
  conn_kick(c);
}

static void on_kick(uv_idle_t *h) {
  kick_run(h->data);
}

static void on_kick_late(uv_check_t *h) {
  kick_run(h->data);
}

/* conn_kick writes the queued bytes. Most writes to a socket complete at
 * once: uv_try_write takes them without a request and without re-arming the
 * poll (uv_write costs an epoll_ctl per write even when it completes at
 * once). A remainder goes through uv_write, which waits for POLLOUT. */
static void conn_kick(struct gw_conn *c) {
  wr_buf tmp;
  uv_buf_t b;
  size_t plain;
  int rv;

  if (c->closing || c->writing || wr_buf_len(&c->out) == 0)
    return;
  b = uv_buf_init((char *)wr_buf_data(&c->out), (unsigned)wr_buf_len(&c->out));
  rv = uv_try_write(&c->h.stream, &b, 1);
  if (rv == UV_EAGAIN)
    rv = 0;
  if (rv < 0) {
    log_trace(WR_TRACE_HTTP, "conn %s: write: %s", c->peer, uv_strerror(rv));
    gw_conn_close(c);
    return;
  }
  if ((size_t)rv == wr_buf_len(&c->out)) {
    plain = c->out_plain;
    wr_buf_reset(&c->out);
    c->out_plain = 0;
    write_done(c, plain);
    return;
  }
  wr_buf_consume(&c->out, (size_t)rv);
  tmp = c->inflight;
  c->inflight = c->out;
  c->out = tmp;
  c->inflight_plain = c->out_plain;
  c->out_plain = 0;
  b = uv_buf_init((char *)wr_buf_data(&c->inflight), (unsigned)wr_buf_len(&c->inflight));
  rv = uv_write(&c->wreq, &c->h.stream, &b, 1, on_write);
  if (rv < 0) {
    log_trace(WR_TRACE_HTTP, "conn %s: write: %s", c->peer, uv_strerror(rv));
    gw_conn_close(c);
    return;
  }
  c->writing = 1;
}

int gw_conn_write(struct gw_conn *c, const void *data, size_t len) {
  const uint8_t *p = data;
  size_t off = 0;
  ssize_t n;
  int rv;

  if (c->closing || c->ending)
    return WR_ERR_CLOSED;
  if (len > GW_CONN_OUT_MAX - gw_conn_queued(c))
    return WR_ERR_TOOBIG;
  if (c->tls == NULL) {
    rv = wr_buf_append(&c->out, data, len);
    if (rv < 0)
      return rv;
  } else {
    while (off < len) {
      n = gnutls_record_send(c->tls, p + off, len - off);
      if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_AGAIN)
        continue;
      if (n < 0) {
        log_trace(WR_TRACE_HTTP, "conn %s: tls send: %s", c->peer, gnutls_strerror((int)n));
        gw_conn_close(c);
        return WR_ERR_TLS;
      }
      off += (size_t)n;
    }
  }
  c->out_plain += len;
  /* Write once this loop iteration's callbacks are done rather than now: a
   * burst of tunnel data (one UDP batch is ~40 QUIC packets) becomes one
   * write and one wakeup of the client instead of a small write and then the
   * rest. The check handle runs right after the I/O callbacks; the idle one
   * covers writes made from timers and keeps the poll from blocking. */
  if (!c->writing) {
    uv_idle_start(&c->kick, on_kick);
    uv_check_start(&c->kick_late, on_kick_late);
  }
  return 0;
}

size_t gw_conn_queued(const struct gw_conn *c) {
  return c->out_plain + c->inflight_plain;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  struct gw_conn *c = req->data;

  if (c->closing)
    return;
  if (status < 0) {
    gw_conn_close(c);
    return;
  }
  /* Linger: read (and drop) until the client closes, so that unread input
   * does not turn our close into a reset that destroys the response. */
  gw_conn_set_timeout(c, CONN_LINGER_MS);
  gw_conn_read_start(c);
}

static void conn_finish_end(struct gw_conn *c) {
  if (c->tls != NULL && c->tls_ready && !c->bye_sent) {
    c->bye_sent = 1;
    (void)gnutls_bye(c->tls, GNUTLS_SHUT_WR);
    conn_kick(c);
    if (c->writing)
      return;
  }
  if (c->shut)
    return;
  c->shut = 1;
  if (uv_shutdown(&c->sreq, &c->h.stream, on_shutdown) < 0)
    gw_conn_close(c);
}

void gw_conn_end(struct gw_conn *c) {
  if (c->closing || c->ending)
    return;
  c->ending = 1;
  if (!c->writing && wr_buf_len(&c->out) == 0)
    conn_finish_end(c);
}

void gw_conn_set_cbs(struct gw_conn *c, const struct gw_conn_cbs *cbs, void *ud) {
  c->cbs = cbs;
  c->ud = ud;
}

const char *gw_conn_peer(const struct gw_conn *c) {
  return c->peer;
}

const char *gw_conn_alpn(const struct gw_conn *c) {
  return c->alpn[0] != '\0' ? c->alpn : NULL;
}

uv_loop_t *gw_conn_loop(const struct gw_conn *c) {
  return c->h.handle.loop;
}

int gw_conn_is_tls(const struct gw_conn *c) {
  return c->tls != NULL;
}

static void conn_peer_name(struct gw_conn *c) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char ip[INET6_ADDRSTRLEN];

  c->peer[0] = '\0';
  if (c->h.handle.type != UV_TCP)
    return;
  if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) < 0)
    return;
  if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;

    if (uv_ip6_name(a, ip, sizeof(ip)) == 0)
      snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip, ntohs(a->sin6_port));
  } else if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;

    if (uv_ip4_name(a, ip, sizeof(ip)) == 0)
      snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, ntohs(a->sin_port));
  }
}

static int conn_tls_init(struct gw_conn *c, struct gw_tls_ctx *ctx) {
  /* The edge serves both; HTTP/2 is preferred (docs/internals/edge.md). */
  static const gnutls_datum_t alpn[] = {
      {(unsigned char *)"h2", 2},
      {(unsigned char *)"http/1.1", 8},
  };
  int rv;

  rv = gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK);
  if (rv < 0) {
    c->tls = NULL;
    return WR_ERR_TLS;
  }
  if (gnutls_set_default_priority(c->tls) < 0 ||
      gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, ctx->cred) < 0 ||
      gnutls_alpn_set_protocols(c->tls, alpn, sizeof(alpn) / sizeof(alpn[0]),
                                GNUTLS_ALPN_SERVER_PRECEDENCE) < 0)
    return WR_ERR_TLS;
  gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_IGNORE);
  gnutls_handshake_set_timeout(c->tls, 0);
  gnutls_transport_set_ptr(c->tls, c);
  gnutls_transport_set_pull_function(c->tls, tls_pull);
  gnutls_transport_set_pull_timeout_function(c->tls, tls_pull_timeout);
  gnutls_transport_set_push_function(c->tls, tls_push);
  return 0;
}

int gw_conn_accept(struct gw_conn **out, uv_stream_t *server, struct gw_tls_ctx *tls,
                   struct gw_conn_list *list, const struct gw_conn_cbs *cbs, void *ud) {
  struct gw_conn *c;
  int rv;

  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return WR_ERR_NOMEM;
  if (server->type == UV_TCP)
    rv = uv_tcp_init(server->loop, &c->h.tcp);
  else
    rv = uv_pipe_init(server->loop, &c->h.pipe, 0);
  if (rv < 0) {
    free(c);
    return rv;
  }
  uv_timer_init(server->loop, &c->timer);
  uv_idle_init(server->loop, &c->kick);
  uv_check_init(server->loop, &c->kick_late);
  c->handles = 4;
  c->h.handle.data = c;
  c->timer.data = c;
  c->kick.data = c;
  c->kick_late.data = c;
  c->wreq.data = c;
  c->sreq.data = c;
  c->cbs = cbs;
  c->ud = ud;
  wr_buf_init(&c->tls_in, CONN_TLS_IN_MAX);
  wr_buf_init(&c->out, GW_CONN_OUT_MAX + CONN_TLS_SLACK);
  wr_buf_init(&c->inflight, GW_CONN_OUT_MAX + CONN_TLS_SLACK);
  c->list = list;
  c->next = list->head;
  if (list->head != NULL)
    list->head->prev = c;
  list->head = c;

  rv = uv_accept(server, &c->h.stream);
  if (rv < 0)
    goto fail;
  if (server->type == UV_TCP)
    (void)uv_tcp_nodelay(&c->h.tcp, 1);
  conn_peer_name(c);
  if (tls != NULL) {
    rv = conn_tls_init(c, tls);
    if (rv < 0)
      goto fail;
  }
  gw_conn_read_start(c);
  *out = c;
  return 0;

fail:
  c->notified = 1; /* the owner never saw it */
  gw_conn_close(c);
  return rv;
}

void gw_conn_list_close_all(struct gw_conn_list *list) {
  struct gw_conn *c, *next;

  for (c = list->head; c != NULL; c = next) {
    next = c->next;
    c->list = NULL;
    c->prev = c->next = NULL;
    if (!c->notified) {
      c->notified = 1;
      if (c->cbs->on_close != NULL)
        c->cbs->on_close(c, c->ud);
    }
    gw_conn_close(c);
  }
  list->head = NULL;
}

int gw_listen_tcp(uv_tcp_t *h, const char *addr, uv_connection_cb cb) {
  struct sockaddr_storage ss;
  socklen_t sslen;
  int rv;

  rv = addr != NULL ? wr_addr_parse(addr, &ss, &sslen) : WR_ERR_INVAL;
  if (rv < 0) {
    log_warnx("listen: bad address '%s' (want ip:port or [v6]:port)", addr ? addr : "");
    return rv;
  }
  rv = uv_tcp_bind(h, (const struct sockaddr *)&ss, 0);
  if (rv == 0)
    rv = uv_listen((uv_stream_t *)h, CONN_BACKLOG, cb);
  if (rv < 0)
    log_warnx("listen %s: %s", addr, uv_strerror(rv));
  return rv;
}

int gw_listen_unix(uv_pipe_t *h, const char *path, uv_connection_cb cb) {
  struct stat st;
  int rv;

  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      log_warnx("listen %s: exists and is not a socket", path);
      return -EEXIST;
    }
    if (unlink(path) < 0) {
      rv = -errno;
      log_warn("listen %s: unlink", path);
      return rv;
    }
  }
  rv = uv_pipe_bind(h, path);
  if (rv == 0 && chmod(path, 0660) < 0)
    rv = -errno;
  if (rv == 0)
    rv = uv_listen((uv_stream_t *)h, CONN_BACKLOG, cb);
  if (rv < 0)
    log_warnx("listen %s: %s", path, uv_strerror(rv));
  return rv;
}
