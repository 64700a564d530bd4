/*
 * tunnel.c - one proxied byte stream over a QUIC stream to a node (see tunnel.h).
 *
 * States: WAIT_STREAM (the pool is connecting) -> WAIT_RESP (request header
 * sent, waiting for the agent's answer) -> OPEN (bytes flow) -> DONE.
 *
 * Bytes the front end writes before the agent accepts are also kept in a
 * small replay buffer. If the connection turns out to be dead before the
 * agent answered (it restarted: its stateless reset tells us), the tunnel is
 * retried once on a fresh connection with the same bytes, so the first
 * request after an agent restart succeeds.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "tunnel_int.h"
#include "warren/buf.h"
#include "warren/err.h"
#include "warren/log.h"
#include "warren/tunnel_hdr.h"

#define REPLAY_CAP (64u << 10)

enum tstate { T_WAIT_STREAM, T_WAIT_RESP, T_OPEN, T_DONE };

struct gw_tunnel {
  struct gw_pool *pool;
  struct gw_node *node;
  struct gw_tunnel_cbs cbs;
  void *ud;
  enum tstate state;
  wr_qstream *s;
  uv_timer_t deadline; /* open timeout */
  uv_timer_t defer;    /* callbacks that must not run inside the caller */
  int nclosed;         /* timer handles closed so far (free at 2) */
  struct wr_thdr_req req;
  uint8_t rbuf[WR_THDR_MAX]; /* response header being assembled */
  size_t rlen;
  wr_buf replay;  /* bytes written before the agent answered */
  int replay_ok;  /* replay holds every byte written so far */
  int replay_fin; /* the front end's FIN was among them */
  int retried;
  int want_writable;
  int notify_writable; /* deferred on_writable */
  int fail_status;     /* deferred on_open failure */
  char fail_reason[192];
  int dead; /* aborted by the front end or finished: no callbacks */
};

static const struct wr_qstream_cbs null_cbs = {NULL, NULL, NULL};
static const struct wr_qstream_cbs tunnel_stream_cbs;

static void on_handle_closed(uv_handle_t *h) {
  gw_tunnel *t = h->data;

  if (++t->nclosed == 2) {
    wr_buf_free(&t->replay);
    free(t);
  }
}

/* tunnel_free releases |t| once its timers have closed. */
static void tunnel_free(gw_tunnel *t) {
  t->dead = 1;
  uv_close((uv_handle_t *)&t->deadline, on_handle_closed);
  uv_close((uv_handle_t *)&t->defer, on_handle_closed);
}

static void detach_stream(gw_tunnel *t, uint64_t reset_err) {
  wr_qconn *c;

  if (t->s == NULL)
    return;
  c = wr_qstream_conn(t->s);
  wr_qstream_set_cbs(t->s, &null_cbs, NULL);
  if (reset_err != 0)
    wr_qstream_reset(t->s, reset_err);
  t->s = NULL;
  gw_node_release(t->node, c);
}

/* fail ends the tunnel before it opened: on_open(status) then on_close. */
static void fail_now(gw_tunnel *t, int status, const char *reason, int err) {
  const struct gw_tunnel_cbs cbs = t->cbs;
  void *ud = t->ud;

  t->state = T_DONE;
  uv_timer_stop(&t->deadline);
  detach_stream(t, WR_QERR_STREAM_ABORT);
  if (t->node != NULL)
    gw_node_cancel(t->node, t);
  gw_node_count_result(t->node, 0);
  log_debug("tunnel: %s: %d %s", t->req.target, status, reason);
  tunnel_free(t);
  if (cbs.on_open != NULL)
    cbs.on_open(t, status, reason, ud);
  if (cbs.on_close != NULL)
    cbs.on_close(t, err, ud);
}

static void on_defer(uv_timer_t *h) {
  gw_tunnel *t = h->data;

  if (t->dead)
    return;
  if (t->fail_status != 0) {
    char reason[sizeof(t->fail_reason)];
    int status = t->fail_status;

    memcpy(reason, t->fail_reason, sizeof(reason));
    fail_now(t, status, reason, WR_ERR_REFUSED);
    return;
  }
  if (t->retried == 1) {
    /* The old connection is gone by now: ask for a fresh one. */
    t->retried = 2;
    gw_node_acquire(t->node, t);
    return;
  }
  if (t->notify_writable) {
    t->notify_writable = 0;
    t->want_writable = 0;
    if (t->cbs.on_writable != NULL)
      t->cbs.on_writable(t, t->ud);
  }
}

static void defer_fail(gw_tunnel *t, int status, const char *fmt, ...) WR_PRINTF(3, 4);
static void defer_fail(gw_tunnel *t, int status, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(t->fail_reason, sizeof(t->fail_reason), fmt, ap);
  va_end(ap);
  t->fail_status = status;
  uv_timer_start(&t->defer, on_defer, 0, 0);
}

static void on_deadline(uv_timer_t *h) {
  gw_tunnel *t = h->data;

  if (t->state == T_WAIT_STREAM || t->state == T_WAIT_RESP)
    fail_now(t, 504, "timed out waiting for the node to answer", WR_ERR_TIMEOUT);
}

void gw_tunnel_on_fail(gw_tunnel *t, int err) {
  switch (err) {
  case WR_ERR_NOTFOUND:
    defer_fail(t, 502, "no address known for the node");
    break;
  case WR_ERR_PEER:
    defer_fail(t, 502, "node refused the gateway's key, or presented an unexpected key");
    break;
  case WR_ERR_TIMEOUT:
    defer_fail(t, 504, "node did not complete the QUIC handshake in time");
    break;
  default:
    defer_fail(t, 502, "node unreachable: %s", wr_strerror(err));
    break;
  }
}

static int write_replay(gw_tunnel *t) {
  uint8_t hdr[WR_THDR_MAX];
  int n = wr_thdr_req_encode(hdr, sizeof(hdr), &t->req);

  if (n < 0)
    return n;
  /* The stream's send buffer (256 KiB) holds the header and the replay. */
  if (wr_qstream_write(t->s, hdr, (size_t)n, 0) != n)
    return WR_ERR_AGAIN;
  if (wr_buf_len(&t->replay) > 0 || t->replay_fin) {
    int w = wr_qstream_write(t->s, wr_buf_data(&t->replay), wr_buf_len(&t->replay), t->replay_fin);

    if (w < 0 || (size_t)w != wr_buf_len(&t->replay))
      return WR_ERR_AGAIN;
  }
  return 0;
}

void gw_tunnel_on_stream(gw_tunnel *t, wr_qstream *s) {
  t->s = s;
  t->state = T_WAIT_RESP;
  t->rlen = 0;
  wr_qstream_set_cbs(s, &tunnel_stream_cbs, t);
  if (write_replay(t) != 0) {
    detach_stream(t, WR_QERR_INTERNAL);
    defer_fail(t, 502, "cannot send the tunnel header");
    return;
  }
  if (t->want_writable) {
    t->notify_writable = 1;
    uv_timer_start(&t->defer, on_defer, 0, 0);
  }
}

static void handle_response(gw_tunnel *t, const uint8_t *data, size_t len, int fin) {
  struct wr_thdr_resp resp;
  size_t take = sizeof(t->rbuf) - t->rlen;
  int n;

  if (take > len)
    take = len;
  memcpy(t->rbuf + t->rlen, data, take);
  t->rlen += take;
  n = wr_thdr_resp_decode(&resp, t->rbuf, t->rlen);
  if (n == WR_ERR_TRUNCATED && t->rlen < sizeof(t->rbuf) && !fin) {
    wr_qstream_consume(t->s, take);
    return;
  }
  if (n < 0) {
    fail_now(t, 502, "malformed answer from the node", WR_ERR_PROTO);
    return;
  }
  if (resp.code != WR_THDR_OK) {
    char reason[WR_THDR_REASON_MAX + 64];

    snprintf(reason, sizeof(reason), "%s: %s", wr_thdr_code_str(resp.code),
             resp.reason[0] ? resp.reason : "refused by the node");
    fail_now(t, wr_thdr_code_http(resp.code), reason, WR_ERR_REFUSED);
    return;
  }
  /* Accepted. The header's bytes are ours to credit; the payload that came
   * with it is the front end's, credited when it calls gw_tunnel_consume. */
  t->state = T_OPEN;
  uv_timer_stop(&t->deadline);
  wr_buf_free(&t->replay);
  t->replay_ok = 0;
  gw_node_count_result(t->node, 1);
  wr_qstream_consume(t->s, (size_t)n);
  if (t->cbs.on_open != NULL)
    t->cbs.on_open(t, 200, "OK", t->ud);
  if (t->dead)
    return;
  if (t->rlen > (size_t)n && t->cbs.on_data != NULL)
    t->cbs.on_data(t, t->rbuf + n, t->rlen - (size_t)n, t->ud);
  if (t->dead)
    return;
  if (len > take && t->cbs.on_data != NULL)
    t->cbs.on_data(t, data + take, len - take, t->ud);
  if (t->dead)
    return;
  if (fin && t->cbs.on_eof != NULL)
    t->cbs.on_eof(t, t->ud);
}

static void st_recv(wr_qstream *s, const uint8_t *data, size_t len, int fin, void *ud) {
  gw_tunnel *t = ud;

  (void)s;
  if (t->state == T_WAIT_RESP) {
    handle_response(t, data, len, fin);
    return;
  }
  if (t->state != T_OPEN)
    return;
  if (len > 0 && t->cbs.on_data != NULL)
    t->cbs.on_data(t, data, len, t->ud);
  if (fin && !t->dead && t->cbs.on_eof != NULL)
    t->cbs.on_eof(t, t->ud);
}

static void st_writable(wr_qstream *s, void *ud) {
  gw_tunnel *t = ud;

  (void)s;
  if (t->want_writable && t->cbs.on_writable != NULL) {
    t->want_writable = 0;
    t->cbs.on_writable(t, t->ud);
  }
}

static void st_close(wr_qstream *s, uint64_t app_err, void *ud) {
  gw_tunnel *t = ud;

  t->s = NULL;
  gw_node_release(t->node, wr_qstream_conn(s));
  if (t->state == T_WAIT_RESP) {
    if (!t->retried && t->replay_ok && app_err == WR_QERR_STREAM_ABORT) {
      /* The connection died under us before the agent answered. */
      log_info("tunnel: %s: connection lost before the answer, retrying once", t->req.target);
      t->retried = 1;
      t->state = T_WAIT_STREAM;
      uv_timer_start(&t->defer, on_defer, 0, 0);
      return;
    }
    defer_fail(t, 502, "node closed the stream before answering");
    return;
  }
  if (t->state == T_OPEN) {
    const struct gw_tunnel_cbs cbs = t->cbs;
    void *cud = t->ud;

    t->state = T_DONE;
    tunnel_free(t);
    if (cbs.on_close != NULL)
      cbs.on_close(t, app_err == 0 ? 0 : WR_ERR_CLOSED, cud);
  }
}

static const struct wr_qstream_cbs tunnel_stream_cbs = {st_recv, st_writable, st_close};

int gw_tunnel_open(struct gw_pool *pool, const struct gw_tunnel_req *req,
                   const struct gw_tunnel_cbs *cbs, void *ud, gw_tunnel **out) {
  gw_tunnel *t;

  if (req->endpoint_id == NULL || req->target == NULL || strlen(req->target) > WR_THDR_TARGET_MAX ||
      strchr(req->target, ':') == NULL)
    return WR_ERR_INVAL;
  if (req->node_addr != NULL && req->node_addr[0] != '\0' &&
      gw_pool_set_addr(pool, req->endpoint_id, req->node_addr) != 0)
    return WR_ERR_INVAL;
  t = calloc(1, sizeof(*t));
  if (t == NULL)
    return WR_ERR_NOMEM;
  t->pool = pool;
  t->cbs = *cbs;
  t->ud = ud;
  t->state = T_WAIT_STREAM;
  t->replay_ok = 1;
  wr_buf_init(&t->replay, REPLAY_CAP);
  snprintf(t->req.target, sizeof(t->req.target), "%s", req->target);
  if (req->peer != NULL)
    snprintf(t->req.peer, sizeof(t->req.peer), "%s", req->peer);
  t->node = gw_pool_node(pool, req->endpoint_id, 1);
  if (t->node == NULL) {
    free(t);
    return WR_ERR_NOMEM;
  }
  uv_timer_init(gw_pool_loop(pool), &t->deadline);
  uv_timer_init(gw_pool_loop(pool), &t->defer);
  t->deadline.data = t->defer.data = t;
  uv_timer_start(&t->deadline, on_deadline, gw_pool_open_timeout(pool), 0);
  *out = t;
  gw_node_acquire(t->node, t);
  return 0;
}

int gw_tunnel_write(gw_tunnel *t, const uint8_t *data, size_t len, int fin) {
  int n;

  if (t->dead || t->state == T_DONE)
    return WR_ERR_CLOSED;
  if (t->state == T_WAIT_STREAM) {
    size_t room = wr_buf_space(&t->replay);

    n = (int)(len < room ? len : room);
    if (n > 0 && wr_buf_append(&t->replay, data, (size_t)n) != 0)
      return WR_ERR_NOMEM;
    if ((size_t)n < len)
      t->want_writable = 1;
    else if (fin)
      t->replay_fin = 1;
    return n;
  }
  n = wr_qstream_write(t->s, data, len, fin);
  if (n < 0)
    return n;
  if ((size_t)n < len)
    t->want_writable = 1;
  if (t->state == T_WAIT_RESP && t->replay_ok) {
    if (wr_buf_append(&t->replay, data, (size_t)n) != 0)
      t->replay_ok = 0; /* Too much to replay: no retry for this one. */
    else if (fin && (size_t)n == len)
      t->replay_fin = 1;
  }
  return n;
}

void gw_tunnel_consume(gw_tunnel *t, size_t n) {
  if (t->s != NULL && !t->dead)
    wr_qstream_consume(t->s, n);
}

void gw_tunnel_abort(gw_tunnel *t) {
  if (t->dead)
    return;
  if (t->state == T_WAIT_STREAM)
    gw_node_cancel(t->node, t);
  t->state = T_DONE;
  detach_stream(t, WR_QERR_STREAM_ABORT);
  tunnel_free(t);
}
