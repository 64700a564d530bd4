/*
 * serve.c - the agent's data plane (see serve.h).
 *
 * One struct fwd per QUIC stream: HDR (reading the tunnel header) ->
 * CONNECTING (resolving and connecting to the target) -> OPEN (piping) ->
 * closed. Flow control: bytes from the gateway are credited back to QUIC only
 * when their uv_write to the target completes; bytes from the target are read
 * only while the stream's send buffer has room.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"
#include "warren/addr.h"
#include "warren/buf.h"
#include "warren/err.h"
#include "warren/log.h"
#include "warren/loop.h"
#include "warren/quic.h"
#include "warren/tunnel_hdr.h"

#define READ_BUF (64u << 10)
#define EARLY_CAP (2u << 20) /* more than a stream window: never refuses */

enum fstate { F_HDR, F_CONNECTING, F_OPEN, F_DONE };

struct hb_serve {
  uv_loop_t *loop;
  wr_quic *quic;
  char expose[HB_MAX_EXPOSE][WR_THDR_TARGET_MAX + 1];
  size_t nexpose;
  uint64_t connect_timeout_ms;
  uint8_t rbuf[READ_BUF]; /* shared: read callbacks copy out at once */
  unsigned long long nstreams;
  hb_reqlog_cb on_request;
  void *request_ud;
};

struct fwd {
  struct hb_serve *sv;
  wr_qstream *s;
  enum fstate state;
  unsigned long long serial;
  struct wr_thdr_req req;
  uint8_t hbuf[WR_THDR_MAX];
  size_t hlen;
  wr_buf early; /* gateway bytes that arrived before the target connected */
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_getaddrinfo_t gai;
  uv_shutdown_t sreq;
  uv_timer_t timer;
  int tcp_init;
  int handles;    /* open libuv handles; free at 0 */
  int stream_fin; /* the gateway finished sending */
  int tcp_eof;    /* the target finished sending */
  int fin_sent;
  int shut;        /* shutdown of the target's write side requested */
  size_t inflight; /* bytes in uv_write */
  int reading;
  int stream_gone;
  hb_reqlog *rl; /* requests seen on the stream (expose), or NULL */
};

struct wreq {
  uv_write_t req;
  struct fwd *f;
  size_t len;
  uint8_t data[];
};

static const struct wr_qstream_cbs fwd_cbs;

static uint64_t now_us(void) {
  return wr_now() / 1000;
}

int hb_expose_normalize(const char *in, char *out, size_t outlen) {
  const char *colon = strrchr(in, ':');
  size_t i;
  int n;

  if (colon == NULL) {
    char *end;
    unsigned long port = strtoul(in, &end, 10);

    if (*in == '\0' || *end != '\0' || port == 0 || port > 65535)
      return WR_ERR_INVAL;
    n = snprintf(out, outlen, "127.0.0.1:%lu", port);
  } else {
    struct sockaddr_storage ss;
    socklen_t len;
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);

    if (colon == in || *end != '\0' || port == 0 || port > 65535)
      return WR_ERR_INVAL;
    if (in[0] == '[' && wr_addr_parse(in, &ss, &len) != 0)
      return WR_ERR_INVAL;
    n = snprintf(out, outlen, "%s", in);
  }
  if (n < 0 || (size_t)n >= outlen)
    return WR_ERR_INVAL;
  for (i = 0; out[i] != '\0'; i++)
    out[i] = (char)tolower((unsigned char)out[i]);
  return 0;
}

static int is_exposed(const struct hb_serve *sv, const char *target) {
  char norm[WR_THDR_TARGET_MAX + 1];
  size_t i;

  if (hb_expose_normalize(target, norm, sizeof(norm)) != 0)
    return 0;
  for (i = 0; i < sv->nexpose; i++)
    if (strcmp(sv->expose[i], norm) == 0)
      return 1;
  return 0;
}

/* --- teardown --------------------------------------------------------- */

/* fwd_unref drops one of the references held by open handles and
 * in-flight requests; the last one frees |f|. */
static void fwd_unref(struct fwd *f) {
  if (--f->handles == 0) {
    hb_reqlog_free(f->rl);
    wr_buf_free(&f->early);
    free(f);
  }
}

static void on_handle_closed(uv_handle_t *h) {
  fwd_unref(h->data);
}

/* fwd_close ends everything: resets the stream (if still there) with
 * |qerr|, closes the socket and timer; memory goes with the last handle. */
static void fwd_close(struct fwd *f, uint64_t qerr) {
  if (f->state == F_DONE)
    return;
  f->state = F_DONE;
  hb_reqlog_end(f->rl, now_us());
  if (f->s != NULL && !f->stream_gone) {
    static const struct wr_qstream_cbs none = {NULL, NULL, NULL};

    wr_qstream_set_cbs(f->s, &none, NULL);
    if (qerr != 0)
      wr_qstream_reset(f->s, qerr);
    f->s = NULL;
  }
  if (f->tcp_init && !uv_is_closing((uv_handle_t *)&f->tcp))
    uv_close((uv_handle_t *)&f->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&f->timer, on_handle_closed);
}

static void refuse(struct fwd *f, uint16_t code, const char *fmt, ...) WR_PRINTF(3, 4);
static void refuse(struct fwd *f, uint16_t code, const char *fmt, ...) {
  struct wr_thdr_resp resp;
  uint8_t out[WR_THDR_MAX];
  va_list ap;
  int n;

  memset(&resp, 0, sizeof(resp));
  resp.code = code;
  va_start(ap, fmt);
  vsnprintf(resp.reason, sizeof(resp.reason), fmt, ap);
  va_end(ap);
  log_warnx("stream %llu: refused %s (from %s): %s: %s", f->serial,
            f->req.target[0] ? f->req.target : "?", f->req.peer[0] ? f->req.peer : "-",
            wr_thdr_code_str(code), resp.reason);
  hb_reqlog_free(f->rl); /* the service saw nothing: the warning above says why */
  f->rl = NULL;
  n = wr_thdr_resp_encode(out, sizeof(out), &resp);
  if (n > 0 && f->s != NULL)
    (void)wr_qstream_write(f->s, out, (size_t)n, 1);
  /* The gateway resets the stream on a refusal; st_close then frees us. */
  f->state = F_DONE;
  if (f->tcp_init && !uv_is_closing((uv_handle_t *)&f->tcp))
    uv_close((uv_handle_t *)&f->tcp, on_handle_closed);
  f->tcp_init = 0;
}

/* --- target -> gateway -------------------------------------------------- */

/* tcp_alloc offers no more than the stream can take now, so every byte read
 * from the target goes straight into the stream: nothing is held here. An
 * empty buffer makes libuv report UV_ENOBUFS, and reading pauses until the
 * stream is writable again. */
static void tcp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct fwd *f = h->data;
  size_t space = f->s != NULL ? wr_qstream_write_space(f->s) : 0;

  (void)hint;
  buf->base = (char *)f->sv->rbuf;
  buf->len = space < sizeof(f->sv->rbuf) ? space : sizeof(f->sv->rbuf);
}

static void maybe_send_fin(struct fwd *f) {
  if (f->tcp_eof && !f->fin_sent && f->s != NULL) {
    if (wr_qstream_write(f->s, NULL, 0, 1) >= 0)
      f->fin_sent = 1;
  }
}

static void tcp_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct fwd *f = st->data;
  int n;

  if (f->state != F_OPEN)
    return;
  if (nread == UV_ENOBUFS) {
    uv_read_stop(st);
    f->reading = 0;
    wr_qstream_want_writable(f->s);
    return;
  }
  if (nread == UV_EOF) {
    f->tcp_eof = 1;
    uv_read_stop(st);
    f->reading = 0;
    maybe_send_fin(f);
    return;
  }
  if (nread < 0) {
    log_debug("stream %llu: target read: %s", f->serial, uv_strerror((int)nread));
    fwd_close(f, WR_QERR_STREAM_ABORT);
    return;
  }
  if (nread == 0)
    return;
  hb_reqlog_down(f->rl, (const uint8_t *)buf->base, (size_t)nread, now_us());
  n = wr_qstream_write(f->s, (const uint8_t *)buf->base, (size_t)nread, 0);
  if (n != nread) /* tcp_alloc offered only what fits */
    fwd_close(f, WR_QERR_STREAM_ABORT);
}

static void st_writable(wr_qstream *s, void *ud) {
  struct fwd *f = ud;

  (void)s;
  if (f->state != F_OPEN)
    return;
  if (f->tcp_eof) {
    maybe_send_fin(f);
  } else if (!f->reading) {
    f->reading = 1;
    uv_read_start((uv_stream_t *)&f->tcp, tcp_alloc, tcp_read);
  }
}

/* --- gateway -> target -------------------------------------------------- */

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status;
}

static void maybe_shutdown(struct fwd *f) {
  if (f->stream_fin && f->inflight == 0 && wr_buf_len(&f->early) == 0 && !f->shut &&
      f->state == F_OPEN) {
    f->shut = 1;
    uv_shutdown(&f->sreq, (uv_stream_t *)&f->tcp, on_shutdown);
  }
}

static void on_written(uv_write_t *req, int status) {
  struct wreq *w = (struct wreq *)req;
  struct fwd *f = w->f;

  f->inflight -= w->len;
  if (status == 0 && f->s != NULL && f->state == F_OPEN)
    wr_qstream_consume(f->s, w->len);
  free(w);
  if (status < 0) {
    if (status != UV_ECANCELED)
      log_debug("stream %llu: target write: %s", f->serial, uv_strerror(status));
    fwd_close(f, WR_QERR_STREAM_ABORT);
    return;
  }
  maybe_shutdown(f);
}

/* to_target passes gateway bytes to the target. A write the socket takes at
 * once is credited back to QUIC at once; only a remainder is copied into a
 * uv_write request (and credited when it completes). Trying first saves an
 * allocation, a copy and an epoll_ctl per request on the common path. */
static int to_target(struct fwd *f, const uint8_t *data, size_t len) {
  struct wreq *w;
  uv_buf_t b;
  int rv;

  if (len == 0)
    return 0;
  if (f->inflight == 0) {
    b = uv_buf_init((char *)data, (unsigned)len);
    rv = uv_try_write((uv_stream_t *)&f->tcp, &b, 1);
    if (rv > 0) {
      wr_qstream_consume(f->s, (size_t)rv);
      data += rv;
      len -= (size_t)rv;
      if (len == 0)
        return 0;
    } else if (rv != UV_EAGAIN) {
      return rv;
    }
  }
  w = malloc(sizeof(*w) + len);
  if (w == NULL)
    return WR_ERR_NOMEM;
  w->f = f;
  w->len = len;
  memcpy(w->data, data, len);
  b = uv_buf_init((char *)w->data, (unsigned)len);
  rv = uv_write(&w->req, (uv_stream_t *)&f->tcp, &b, 1, on_written);
  if (rv != 0) {
    free(w);
    return rv;
  }
  f->inflight += len;
  return 0;
}

/* --- connecting --------------------------------------------------------- */

static void on_connect_timeout(uv_timer_t *t) {
  struct fwd *f = t->data;

  if (f->state == F_CONNECTING) {
    uv_cancel((uv_req_t *)&f->gai);
    refuse(f, WR_THDR_TIMEOUT, "target %s did not accept the connection in time", f->req.target);
  }
}

static void on_connected(uv_connect_t *req, int status) {
  struct fwd *f = req->data;
  struct wr_thdr_resp resp;
  uint8_t out[WR_THDR_MAX];
  int n;

  if (f->state != F_CONNECTING)
    return;
  uv_timer_stop(&f->timer);
  if (status < 0) {
    refuse(f, WR_THDR_CONNECT_FAILED, "cannot connect to %s: %s", f->req.target,
           uv_strerror(status));
    return;
  }
  memset(&resp, 0, sizeof(resp));
  resp.code = WR_THDR_OK;
  n = wr_thdr_resp_encode(out, sizeof(out), &resp);
  if (n < 0 || wr_qstream_write(f->s, out, (size_t)n, 0) != n) {
    fwd_close(f, WR_QERR_INTERNAL);
    return;
  }
  f->state = F_OPEN;
  log_debug("stream %llu: %s -> %s open", f->serial, f->req.peer[0] ? f->req.peer : "-",
            f->req.target);
  uv_tcp_nodelay(&f->tcp, 1);
  if (wr_buf_len(&f->early) > 0) {
    size_t len = wr_buf_len(&f->early);

    if (to_target(f, wr_buf_data(&f->early), len) != 0) {
      fwd_close(f, WR_QERR_INTERNAL);
      return;
    }
    wr_buf_free(&f->early);
  }
  f->reading = 1;
  uv_read_start((uv_stream_t *)&f->tcp, tcp_alloc, tcp_read);
  maybe_shutdown(f);
}

static void start_connect(struct fwd *f, const struct sockaddr *sa) {
  int rv;

  rv = uv_tcp_init(f->sv->loop, &f->tcp);
  if (rv != 0) {
    refuse(f, WR_THDR_CONNECT_FAILED, "socket: %s", uv_strerror(rv));
    return;
  }
  f->tcp_init = 1;
  f->handles++;
  f->tcp.data = f;
  f->creq.data = f;
  rv = uv_tcp_connect(&f->creq, &f->tcp, sa, on_connected);
  if (rv != 0)
    refuse(f, WR_THDR_CONNECT_FAILED, "cannot connect to %s: %s", f->req.target, uv_strerror(rv));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  struct fwd *f = req->data;

  if (status == UV_ECANCELED || f->state != F_CONNECTING) {
    uv_freeaddrinfo(res);
    fwd_unref(f);
    return;
  }
  if (status < 0 || res == NULL) {
    refuse(f, WR_THDR_CONNECT_FAILED, "cannot resolve %s: %s", f->req.target, uv_strerror(status));
    uv_freeaddrinfo(res);
    fwd_unref(f);
    return;
  }
  start_connect(f, res->ai_addr);
  uv_freeaddrinfo(res);
  fwd_unref(f);
}

static void begin(struct fwd *f) {
  struct sockaddr_storage ss;
  socklen_t len;
  char host[WR_THDR_TARGET_MAX + 1], *colon;
  struct addrinfo hints;
  int rv;

  if (!is_exposed(f->sv, f->req.target)) {
    refuse(f, WR_THDR_NOT_EXPOSED, "target %s is not exposed by this agent", f->req.target);
    return;
  }
  f->state = F_CONNECTING;
  uv_timer_start(&f->timer, on_connect_timeout, f->sv->connect_timeout_ms, 0);
  if (wr_addr_parse(f->req.target, &ss, &len) == 0) {
    start_connect(f, (struct sockaddr *)&ss);
    return;
  }
  snprintf(host, sizeof(host), "%s", f->req.target);
  colon = strrchr(host, ':');
  *colon = '\0';
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  f->gai.data = f;
  f->handles++; /* the request holds a reference until its callback */
  rv = uv_getaddrinfo(f->sv->loop, &f->gai, on_resolved, host, colon + 1, &hints);
  if (rv != 0) {
    f->handles--;
    refuse(f, WR_THDR_CONNECT_FAILED, "cannot resolve %s: %s", f->req.target, uv_strerror(rv));
  }
}

/* --- stream callbacks ----------------------------------------------------- */

static void st_recv(wr_qstream *s, const uint8_t *data, size_t len, int fin, void *ud) {
  struct fwd *f = ud;

  if (fin)
    f->stream_fin = 1;
  switch (f->state) {
  case F_HDR: {
    size_t take = sizeof(f->hbuf) - f->hlen;
    int n;

    if (take > len)
      take = len;
    memcpy(f->hbuf + f->hlen, data, take);
    f->hlen += take;
    n = wr_thdr_req_decode(&f->req, f->hbuf, f->hlen);
    if (n == WR_ERR_TRUNCATED && f->hlen < sizeof(f->hbuf) && !fin) {
      wr_qstream_consume(s, take);
      return;
    }
    if (n < 0) {
      refuse(f, WR_THDR_BAD_REQUEST, "malformed tunnel header: %s", wr_strerror(n));
      return;
    }
    /* Header bytes are ours; the rest waits in |early| for the target and
     * is credited when written there. */
    wr_qstream_consume(s, (size_t)n);
    if (f->rl != NULL) {
      uint64_t now = now_us();

      hb_reqlog_up(f->rl, f->hbuf + n, f->hlen - (size_t)n, now);
      hb_reqlog_up(f->rl, data + take, len - take, now);
    }
    if (wr_buf_append(&f->early, f->hbuf + n, f->hlen - (size_t)n) != 0 ||
        wr_buf_append(&f->early, data + take, len - take) != 0) {
      refuse(f, WR_THDR_OVERLOADED, "too much early data");
      return;
    }
    begin(f);
    return;
  }
  case F_CONNECTING:
    hb_reqlog_up(f->rl, data, len, now_us());
    if (wr_buf_append(&f->early, data, len) != 0)
      refuse(f, WR_THDR_OVERLOADED, "too much early data");
    return;
  case F_OPEN:
    hb_reqlog_up(f->rl, data, len, now_us());
    if (to_target(f, data, len) != 0) {
      fwd_close(f, WR_QERR_INTERNAL);
      return;
    }
    maybe_shutdown(f);
    return;
  case F_DONE:
    wr_qstream_consume(s, len);
    return;
  }
}

static void st_close(wr_qstream *s, uint64_t app_err, void *ud) {
  struct fwd *f = ud;

  (void)s;
  f->stream_gone = 1;
  f->s = NULL;
  if (app_err != 0 && f->state == F_OPEN)
    log_debug("stream %llu: reset by the gateway (%llu)", f->serial, (unsigned long long)app_err);
  if (f->state == F_DONE) {
    /* Refused earlier: only the timer is left. */
    if (!uv_is_closing((uv_handle_t *)&f->timer))
      uv_close((uv_handle_t *)&f->timer, on_handle_closed);
    return;
  }
  fwd_close(f, 0);
}

static const struct wr_qstream_cbs fwd_cbs = {st_recv, st_writable, st_close};

static void on_stream(wr_qconn *c, wr_qstream *s, void *ud) {
  struct hb_serve *sv = ud;
  struct fwd *f = calloc(1, sizeof(*f));

  (void)c;
  if (f == NULL) {
    wr_qstream_reset(s, WR_QERR_INTERNAL);
    return;
  }
  f->sv = sv;
  f->s = s;
  f->serial = ++sv->nstreams;
  wr_buf_init(&f->early, EARLY_CAP);
  uv_timer_init(sv->loop, &f->timer);
  f->timer.data = f;
  f->handles = 1;
  if (sv->on_request != NULL)
    f->rl = hb_reqlog_new(sv->on_request, sv->request_ud); /* NULL: no log, still forwarded */
  wr_qstream_set_cbs(s, &fwd_cbs, f);
}

static void on_conn_ready(wr_qconn *c, void *ud) {
  (void)c;
  (void)ud;
}

static void on_conn_closed(wr_qconn *c, int err, void *ud) {
  (void)c;
  (void)err;
  (void)ud;
}

static const struct wr_quic_cbs serve_cbs = {on_conn_ready, on_stream, on_conn_closed, NULL};

int hb_serve_new(struct hb_serve **out, const struct hb_serve_config *cfg) {
  struct wr_quic_config qc;
  struct hb_serve *sv;
  size_t i;
  int rv;

  if (cfg->nexpose > HB_MAX_EXPOSE)
    return WR_ERR_TOOBIG;
  sv = calloc(1, sizeof(*sv));
  if (sv == NULL)
    return WR_ERR_NOMEM;
  sv->loop = cfg->loop;
  sv->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 10000;
  sv->on_request = cfg->on_request;
  sv->request_ud = cfg->request_ud;
  for (i = 0; i < cfg->nexpose; i++) {
    if (hb_expose_normalize(cfg->expose[i], sv->expose[i], sizeof(sv->expose[i])) != 0) {
      log_warnx("invalid --expose '%s': expected host:port or a port", cfg->expose[i]);
      free(sv);
      return WR_ERR_INVAL;
    }
  }
  sv->nexpose = cfg->nexpose;
  memset(&qc, 0, sizeof(qc));
  qc.loop = cfg->loop;
  qc.id = cfg->id;
  qc.bind = cfg->listen;
  qc.server = 1;
  qc.trusted = cfg->trusted;
  qc.ntrusted = cfg->ntrusted;
  qc.idle_timeout_ms = cfg->idle_timeout_ms;
  qc.cbs = &serve_cbs;
  qc.ud = sv;
  rv = wr_quic_new(&sv->quic, &qc);
  if (rv != 0) {
    free(sv);
    return rv;
  }
  *out = sv;
  return 0;
}

void hb_serve_del(struct hb_serve *sv) {
  if (sv == NULL)
    return;
  wr_quic_shutdown(sv->quic);
  wr_quic_del(sv->quic);
  free(sv);
}
