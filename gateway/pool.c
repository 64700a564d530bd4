/* pool.c - one QUIC connection per node, shared by its tunnels (see pool.h). */
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "tunnel_int.h"
#include "warren/addr.h"
#include "warren/err.h"
#include "warren/log.h"

#define MAX_WAITERS 65536

struct gw_node {
  struct gw_pool *pool;
  wr_pubkey id;
  struct sockaddr_storage addr;
  int has_addr;
  wr_qconn *conn;
  gw_tunnel **waiters; /* tunnels waiting for a stream, in arrival order */
  size_t nwaiters, capwaiters;
  size_t ntunnels; /* tunnels holding a stream on conn */
  int conn_ready;  /* conn finished its handshake */
  uv_timer_t idle;
  struct gw_node *next;
};

struct gw_pool {
  uv_loop_t *loop;
  wr_quic *quic;
  uint64_t idle_ms;
  uint64_t open_timeout_ms;
  struct gw_node *nodes;
  struct gw_pool_stats st;
};

static void drain_waiters(struct gw_node *n);

static void on_conn_ready(wr_qconn *c, void *ud) {
  struct gw_node *n = wr_qconn_get_data(c);

  if (n == NULL)
    return;
  if (!n->conn_ready) {
    n->conn_ready = 1;
    ((struct gw_pool *)ud)->st.connections++;
  }
  drain_waiters(n);
}

static void on_streams_available(wr_qconn *c, void *ud) {
  struct gw_node *n = wr_qconn_get_data(c);

  (void)ud;
  if (n != NULL)
    drain_waiters(n);
}

static void on_conn_closed(wr_qconn *c, int err, void *ud) {
  struct gw_node *n = wr_qconn_get_data(c);
  struct gw_pool *p = ud;
  gw_tunnel **w;
  size_t nw, i;

  if (n == NULL || n->conn != c)
    return;
  n->conn = NULL;
  if (n->conn_ready)
    p->st.connections--;
  n->conn_ready = 0;
  uv_timer_stop(&n->idle);
  if (n->nwaiters == 0)
    return;
  if (err == 0)
    err = WR_ERR_CLOSED;
  /* The waiters never got a stream on this connection: fail them. Detach
   * the list first, since a failing tunnel may start a new acquire. */
  w = n->waiters;
  nw = n->nwaiters;
  n->waiters = NULL;
  n->nwaiters = n->capwaiters = 0;
  for (i = 0; i < nw; i++)
    gw_tunnel_on_fail(w[i], err);
  free(w);
}

static const struct wr_quic_cbs pool_quic_cbs = {on_conn_ready, NULL, on_conn_closed,
                                                 on_streams_available};

int gw_pool_new(struct gw_pool **out, const struct gw_pool_config *cfg) {
  struct wr_quic_config qc;
  struct gw_pool *p;
  int rv;

  p = calloc(1, sizeof(*p));
  if (p == NULL)
    return WR_ERR_NOMEM;
  p->loop = cfg->loop;
  p->idle_ms = cfg->idle_ms ? cfg->idle_ms : 60000;
  p->open_timeout_ms = cfg->open_timeout_ms ? cfg->open_timeout_ms : 10000;
  memset(&qc, 0, sizeof(qc));
  qc.loop = cfg->loop;
  qc.id = cfg->id;
  qc.bind = cfg->bind ? cfg->bind : "0.0.0.0:0";
  qc.server = 0;
  qc.idle_timeout_ms = cfg->quic_idle_timeout_ms ? cfg->quic_idle_timeout_ms : 15000;
  qc.keepalive_ms = cfg->keepalive_ms ? cfg->keepalive_ms : 5000;
  qc.handshake_timeout_ms = p->open_timeout_ms;
  qc.cbs = &pool_quic_cbs;
  qc.ud = p;
  rv = wr_quic_new(&p->quic, &qc);
  if (rv != 0) {
    free(p);
    return rv;
  }
  *out = p;
  return 0;
}

static void on_idle_closed(uv_handle_t *h) {
  struct gw_node *n = h->data;

  free(n->waiters);
  free(n);
}

void gw_pool_del(struct gw_pool *p) {
  struct gw_node *n, *next;

  if (p == NULL)
    return;
  wr_quic_shutdown(p->quic);
  wr_quic_del(p->quic);
  for (n = p->nodes; n != NULL; n = next) {
    next = n->next;
    uv_close((uv_handle_t *)&n->idle, on_idle_closed);
  }
  free(p);
}

uv_loop_t *gw_pool_loop(const struct gw_pool *p) {
  return p->loop;
}

uint64_t gw_pool_open_timeout(const struct gw_pool *p) {
  return p->open_timeout_ms;
}

void gw_pool_stats(const struct gw_pool *p, struct gw_pool_stats *st) {
  const struct gw_node *n;

  *st = p->st;
  st->nodes = 0;
  for (n = p->nodes; n != NULL; n = n->next)
    st->nodes++;
}

struct gw_node *gw_pool_node(struct gw_pool *p, const wr_pubkey id, int create) {
  struct gw_node *n;

  for (n = p->nodes; n != NULL; n = n->next)
    if (memcmp(n->id, id, WR_PUBKEY_LEN) == 0)
      return n;
  if (!create)
    return NULL;
  n = calloc(1, sizeof(*n));
  if (n == NULL)
    return NULL;
  n->pool = p;
  memcpy(n->id, id, WR_PUBKEY_LEN);
  uv_timer_init(p->loop, &n->idle);
  n->idle.data = n;
  n->next = p->nodes;
  p->nodes = n;
  return n;
}

int gw_pool_set_addr(struct gw_pool *p, const wr_pubkey id, const char *addr) {
  struct sockaddr_storage ss;
  socklen_t len;
  struct gw_node *n;

  if (wr_addr_parse(addr, &ss, &len) != 0 || wr_addr_len((struct sockaddr *)&ss) == 0)
    return WR_ERR_INVAL;
  n = gw_pool_node(p, id, 1);
  if (n == NULL)
    return WR_ERR_NOMEM;
  if (n->has_addr && memcmp(&n->addr, &ss, sizeof(ss)) != 0) {
    char a[WR_ADDRSTRLEN];

    log_info("pool: node address changed to %s",
             wr_addr_format((struct sockaddr *)&ss, a, sizeof(a)));
  }
  n->addr = ss;
  n->has_addr = 1;
  return 0;
}

static void on_idle(uv_timer_t *t) {
  struct gw_node *n = t->data;

  if (n->conn != NULL && n->ntunnels == 0 && n->nwaiters == 0) {
    log_debug("pool: closing idle connection");
    wr_qconn_close(n->conn, WR_QERR_IDLE);
  }
}

static int waiter_push(struct gw_node *n, gw_tunnel *t) {
  if (n->nwaiters == n->capwaiters) {
    size_t cap = n->capwaiters ? n->capwaiters * 2 : 16;
    gw_tunnel **w;

    if (cap > MAX_WAITERS)
      return WR_ERR_TOOBIG;
    w = realloc(n->waiters, cap * sizeof(*w));
    if (w == NULL)
      return WR_ERR_NOMEM;
    n->waiters = w;
    n->capwaiters = cap;
  }
  n->waiters[n->nwaiters++] = t;
  return 0;
}

/* drain_waiters gives streams to waiting tunnels while the connection allows. */
static void drain_waiters(struct gw_node *n) {
  size_t i = 0;

  while (i < n->nwaiters && n->conn != NULL) {
    wr_qstream *s;
    int rv = wr_qconn_open_stream(n->conn, &s);

    if (rv == WR_ERR_AGAIN)
      break;
    if (rv != 0) {
      gw_tunnel_on_fail(n->waiters[i++], rv);
      continue;
    }
    n->ntunnels++;
    uv_timer_stop(&n->idle);
    gw_tunnel_on_stream(n->waiters[i++], s);
  }
  if (i > 0) {
    memmove(n->waiters, n->waiters + i, (n->nwaiters - i) * sizeof(*n->waiters));
    n->nwaiters -= i;
  }
}

void gw_node_acquire(struct gw_node *n, gw_tunnel *t) {
  struct gw_pool *p = n->pool;
  int rv;

  rv = waiter_push(n, t);
  if (rv != 0) {
    gw_tunnel_on_fail(t, rv);
    return;
  }
  if (n->conn == NULL) {
    if (!n->has_addr) {
      n->nwaiters--;
      gw_tunnel_on_fail(t, WR_ERR_NOTFOUND);
      return;
    }
    rv = wr_quic_connect(p->quic, (struct sockaddr *)&n->addr, n->id, &n->conn);
    if (rv != 0) {
      n->conn = NULL;
      n->nwaiters--;
      gw_tunnel_on_fail(t, rv);
      return;
    }
    wr_qconn_set_data(n->conn, n);
    p->st.handshakes++;
    return;
  }
  if (wr_qconn_is_ready(n->conn))
    drain_waiters(n);
}

void gw_node_cancel(struct gw_node *n, gw_tunnel *t) {
  size_t i;

  for (i = 0; i < n->nwaiters; i++) {
    if (n->waiters[i] == t) {
      memmove(n->waiters + i, n->waiters + i + 1, (n->nwaiters - i - 1) * sizeof(*n->waiters));
      n->nwaiters--;
      return;
    }
  }
}

void gw_node_release(struct gw_node *n) {
  if (n->ntunnels > 0)
    n->ntunnels--;
  if (n->ntunnels == 0 && n->conn != NULL)
    uv_timer_start(&n->idle, on_idle, n->pool->idle_ms, 0);
}

void gw_node_count_result(struct gw_node *n, int ok) {
  if (ok)
    n->pool->st.tunnels_opened++;
  else
    n->pool->st.tunnels_failed++;
}
