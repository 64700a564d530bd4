/* pool.c - one QUIC connection per node, shared by its tunnels (see pool.h). */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "tunnel_int.h"
#include "warren/addr.h"
#include "warren/err.h"
#include "warren/log.h"

#define MAX_WAITERS 65536

/* Where a node's current address came from (see gw_pool_set_published). */
enum addr_src { SRC_NONE, SRC_STATIC, SRC_HINT, SRC_DISCOVERY };

struct gw_node {
  struct gw_pool *pool;
  wr_pubkey id;
  struct sockaddr_storage addr; /* dialled by the next connection */
  int has_addr;
  enum addr_src src;
  struct sockaddr_storage static_addr; /* --peer / --routes, the fallback */
  int has_static;
  wr_qconn *conn;
  struct sockaddr_storage conn_addr; /* where conn was dialled */
  gw_tunnel **waiters;               /* tunnels waiting for a stream, in arrival order */
  size_t nwaiters, capwaiters;
  size_t ntunnels; /* tunnels holding a stream on conn */
  int conn_ready;  /* conn finished its handshake */
  uv_timer_t idle;
  struct gw_node *next;
};

/* A connection replaced after its node's address changed: it stays open for
 * the tunnels it still carries and is closed when the last one is gone. */
struct retired {
  wr_qconn *conn;
  size_t ntunnels;
  struct retired *next;
};

struct gw_pool {
  uv_loop_t *loop;
  wr_quic *quic;
  int family; /* of the QUIC socket: the addresses it can dial */
  uint64_t idle_ms;
  uint64_t open_timeout_ms;
  struct gw_node *nodes;
  struct retired *retired;
  uv_timer_t reaper; /* closes drained retired connections, outside QUIC callbacks */
  struct gw_pool_stats st;
};

static void drain_waiters(struct gw_node *n);
static void fail_waiters(struct gw_node *n, int err);

/* retired_find returns the link pointing at |c|'s entry, or NULL. */
static struct retired **retired_find(struct gw_pool *p, const wr_qconn *c) {
  struct retired **pp;

  for (pp = &p->retired; *pp != NULL; pp = &(*pp)->next)
    if ((*pp)->conn == c)
      return pp;
  return NULL;
}

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

  if (n == NULL)
    return;
  if (n->conn != c) {
    struct retired **pp = retired_find(p, c);

    if (pp != NULL) { /* a retired connection died with tunnels on it */
      struct retired *r = *pp;

      *pp = r->next;
      free(r);
      p->st.connections--;
    }
    return;
  }
  n->conn = NULL;
  if (n->conn_ready)
    p->st.connections--;
  n->conn_ready = 0;
  uv_timer_stop(&n->idle);
  fail_waiters(n, err == 0 ? WR_ERR_CLOSED : err);
}

/* fail_waiters fails the tunnels waiting for a stream: they never got one. */
static void fail_waiters(struct gw_node *n, int err) {
  gw_tunnel **w;
  size_t nw, i;

  if (n->nwaiters == 0)
    return;
  /* Detach the list first, since a failing tunnel may start a new acquire. */
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
  {
    struct sockaddr_storage local;

    p->family = wr_quic_local_addr(p->quic, &local) == 0 ? local.ss_family : AF_INET;
  }
  uv_timer_init(p->loop, &p->reaper);
  p->reaper.data = p;
  *out = p;
  return 0;
}

static void on_idle_closed(uv_handle_t *h) {
  struct gw_node *n = h->data;

  free(n->waiters);
  free(n);
}

static void on_reaper_closed(uv_handle_t *h) {
  free(h->data);
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
  while (p->retired != NULL) { /* normally emptied by the shutdown */
    struct retired *r = p->retired;

    p->retired = r->next;
    free(r);
  }
  uv_close((uv_handle_t *)&p->reaper, on_reaper_closed); /* frees p */
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

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  return memcmp(a, b, sizeof(*a)) == 0; /* both zeroed by wr_addr_parse */
}

/* dial starts the node's connection to its current address. */
static int dial(struct gw_node *n) {
  struct gw_pool *p = n->pool;
  int rv;

  if (!n->has_addr)
    return WR_ERR_NOTFOUND;
  rv = wr_quic_connect(p->quic, (struct sockaddr *)&n->addr, n->id, &n->conn);
  if (rv != 0) {
    n->conn = NULL;
    return rv;
  }
  n->conn_addr = n->addr;
  wr_qconn_set_data(n->conn, n);
  p->st.handshakes++;
  return 0;
}

/* retire takes the node's connection away from it because the node's
 * address changed: closed now when no tunnel holds a stream on it, else kept
 * for those tunnels only. Waiting tunnels move to a connection to the new
 * address. */
static void retire(struct gw_node *n) {
  struct gw_pool *p = n->pool;
  wr_qconn *c = n->conn;
  struct retired *r = NULL;
  int rv;

  n->conn = NULL;
  uv_timer_stop(&n->idle);
  if (n->ntunnels > 0)
    r = calloc(1, sizeof(*r));
  if (r != NULL) {
    r->conn = c;
    r->ntunnels = n->ntunnels;
    r->next = p->retired;
    p->retired = r;
    log_debug("pool: old connection kept for its %zu tunnels", n->ntunnels);
  } else {
    wr_qconn_set_data(c, NULL); /* on_conn_closed ignores it */
    if (n->conn_ready)
      p->st.connections--;
    wr_qconn_close(c, WR_QERR_NONE);
  }
  n->ntunnels = 0;
  n->conn_ready = 0;
  if (n->nwaiters > 0 && (rv = dial(n)) != 0)
    fail_waiters(n, rv);
}

/* node_use makes |ss| (NULL: none) the node's address for new connections
 * and moves off a connection dialled elsewhere. */
static void node_use(struct gw_node *n, const struct sockaddr_storage *ss, enum addr_src src) {
  char a[WR_ADDRSTRLEN], hex[WR_ID_HEX_LEN + 1];

  if (ss == NULL) {
    /* Forgotten: no new connections, but one already established is still
     * to the right key and is left to finish (or idle out). */
    n->has_addr = 0;
    n->src = SRC_NONE;
    return;
  }
  if (n->has_addr && same_addr(&n->addr, ss)) {
    if (src == SRC_DISCOVERY) /* discovery vouches for it: discovery may forget it */
      n->src = src;
    return;
  }
  n->src = src;
  if (n->has_addr || n->conn != NULL) {
    wr_id_to_hex(n->id, hex);
    log_info("pool: node %.8s address changed to %s%s", hex,
             wr_addr_format((const struct sockaddr *)ss, a, sizeof(a)),
             n->conn != NULL && !same_addr(&n->conn_addr, ss) ? ": moving off its connection" : "");
  }
  n->addr = *ss;
  n->has_addr = 1;
  if (n->conn != NULL && !same_addr(&n->conn_addr, ss))
    retire(n);
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss) {
  socklen_t len;

  if (wr_addr_parse(addr, ss, &len) != 0 || wr_addr_len((struct sockaddr *)ss) == 0 ||
      ((struct sockaddr_in *)ss)->sin_port == 0) /* same offset in sockaddr_in6 */
    return WR_ERR_INVAL;
  return 0;
}

int gw_pool_set_addr(struct gw_pool *p, const wr_pubkey id, const char *addr) {
  struct sockaddr_storage ss;
  struct gw_node *n;

  if (parse_addr(addr, &ss) != 0)
    return WR_ERR_INVAL;
  n = gw_pool_node(p, id, 1);
  if (n == NULL)
    return WR_ERR_NOMEM;
  node_use(n, &ss, SRC_HINT);
  return 0;
}

int gw_pool_set_static_addr(struct gw_pool *p, const wr_pubkey id, const char *addr) {
  struct sockaddr_storage ss;
  struct gw_node *n;

  if (parse_addr(addr, &ss) != 0)
    return WR_ERR_INVAL;
  n = gw_pool_node(p, id, 1);
  if (n == NULL)
    return WR_ERR_NOMEM;
  n->static_addr = ss;
  n->has_static = 1;
  if (n->src != SRC_DISCOVERY)
    node_use(n, &ss, SRC_STATIC);
  return 0;
}

int gw_pool_set_published(struct gw_pool *p, const wr_pubkey id, const char *const *addrs,
                          size_t naddrs, char *cur, size_t curlen) {
  struct sockaddr_storage ss, pick;
  struct gw_node *n;
  int have_pick = 0, changed;
  size_t i;

  if (cur != NULL && curlen > 0)
    cur[0] = '\0';
  for (i = 0; i < naddrs; i++)
    if (parse_addr(addrs[i], &ss) != 0)
      return WR_ERR_INVAL;
  n = gw_pool_node(p, id, naddrs > 0);
  if (n == NULL)
    return naddrs > 0 ? WR_ERR_NOMEM : 0;
  if (naddrs == 0) {
    if (n->src != SRC_DISCOVERY)
      changed = 0; /* a hint or the static address: not discovery's to drop */
    else if (n->has_static) {
      changed = !same_addr(&n->addr, &n->static_addr);
      node_use(n, &n->static_addr, SRC_STATIC);
    } else {
      changed = 1;
      node_use(n, NULL, SRC_NONE);
    }
  } else {
    /* Keep the current address if still published; else the first one the
     * QUIC socket can dial (its family), else the first. */
    for (i = 0; i < naddrs; i++) {
      (void)parse_addr(addrs[i], &ss);
      if (n->has_addr && same_addr(&ss, &n->addr)) {
        pick = ss;
        have_pick = 2;
        break;
      }
      if (have_pick == 0 && ss.ss_family == p->family) {
        pick = ss;
        have_pick = 1;
      }
    }
    if (have_pick == 0)
      (void)parse_addr(addrs[0], &pick);
    changed = !n->has_addr || !same_addr(&n->addr, &pick);
    node_use(n, &pick, SRC_DISCOVERY);
  }
  if (n->has_addr && cur != NULL && curlen > 0)
    wr_addr_format((struct sockaddr *)&n->addr, cur, curlen);
  return changed;
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
  int rv;

  rv = waiter_push(n, t);
  if (rv != 0) {
    gw_tunnel_on_fail(t, rv);
    return;
  }
  if (n->conn == NULL) {
    rv = dial(n);
    if (rv != 0) {
      n->nwaiters--;
      gw_tunnel_on_fail(t, rv);
    }
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

static void on_reap(uv_timer_t *t) {
  struct gw_pool *p = t->data;
  struct retired **pp = &p->retired;

  while (*pp != NULL) {
    struct retired *r = *pp;

    if (r->ntunnels > 0) {
      pp = &r->next;
      continue;
    }
    *pp = r->next;
    wr_qconn_set_data(r->conn, NULL);
    p->st.connections--;
    log_debug("pool: closing a replaced connection, its last tunnel is done");
    wr_qconn_close(r->conn, WR_QERR_IDLE);
    free(r);
  }
}

void gw_node_release(struct gw_node *n, wr_qconn *c) {
  if (c != n->conn && c != NULL) {
    struct retired **pp = retired_find(n->pool, c);

    /* Closing from here could free streams under the QUIC callback that
     * got us here: the reaper runs from the loop. */
    if (pp != NULL && (*pp)->ntunnels > 0 && --(*pp)->ntunnels == 0)
      uv_timer_start(&n->pool->reaper, on_reap, 0, 0);
    return;
  }
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
