/*
 * manager.c - wiring of the operator process (manager.h).
 *
 * Every replica keeps its caches warm; only the leader reconciles, and it
 * starts only once every cache has synced (a write decided on a half-filled
 * cache would create what already exists). A replica that loses the lease
 * exits, as controller-runtime's managers do: its caches may have driven
 * writes the new leader does not know about, and a restart is the simple
 * way to start clean.
 */
#include "manager.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <malloc.h>
#include <sodium.h>

#include "warren/err.h"
#include "warren/httpd.h"
#include "warren/kconfig.h"
#include "warren/leader.h"
#include "warren/log.h"
#include "warren/loop.h"
#include "warren/prom.h"

const struct wr_kres OP_RES_PROXY = {"networking.datumapis.com", "v1alpha", "httpproxies"};
const struct wr_kres OP_RES_CONNECTOR = {"networking.datumapis.com", "v1alpha1", "connectors"};
const struct wr_kres OP_RES_CLASS = {"networking.datumapis.com", "v1alpha1", "connectorclasses"};
const struct wr_kres OP_RES_LEASE = {"coordination.k8s.io", "v1", "leases"};
const struct wr_kres OP_RES_ROUTE = {"gateway.networking.k8s.io", "v1", "httproutes"};
const struct wr_kres OP_RES_POLICY = {"gateway.envoyproxy.io", "v1alpha1", "envoypatchpolicies"};

#define NINFORMERS 6
#define SCAVENGE_MS 1000
#define DRAIN_MS 5000 /* a stop waits this long for writes in flight */
#define DRAIN_STEP_MS 20

struct op_manager {
  struct op_ctx x; /* informer callbacks get &x */
  struct op_manager_opts o;
  struct wr_kconfig kcfg;
  wr_leader *leader;
  wr_httpd *health, *metrics;
  char identity[128];
  unsigned synced;  /* informers whose first list is in */
  uv_timer_t defer; /* teardown runs outside the leader's callbacks */
  uv_timer_t scavenge;
  unsigned drained_ms;
  bool leader_now, failed, stopping;
  void (*stop_done)(void *arg);
  void *stop_arg;
};

uint64_t op_now_ms(void) {
  return wr_now() / 1000000;
}

static void on_released(void *ud);

/* ---- running: leader and synced ---- */

static void maybe_run(op_manager *m) {
  if (m->x.leading || !m->leader_now || m->synced < NINFORMERS || m->stopping)
    return;
  m->x.leading = true;
  log_info("reconciling: %zu HTTPProxies, %zu Connectors in cache",
           json_object_size(wr_informer_objects(m->x.proxies)),
           json_object_size(wr_informer_objects(m->x.connectors)));
  op_connector_enqueue_all(&m->x);
  op_proxy_enqueue_all(&m->x);
}

static op_manager *mgr(void *ctx) {
  return (op_manager *)((char *)ctx - offsetof(op_manager, x));
}

static void on_synced(void *ud) {
  op_manager *m = mgr(ud);

  m->synced++;
  maybe_run(m);
}

static void on_started(void *ud) {
  op_manager *m = ud;

  log_info("leader election: %s leads", m->identity);
  m->leader_now = true;
  maybe_run(m);
}

static void on_stopped(void *ud) {
  op_manager *m = ud;

  m->leader_now = false;
  m->x.leading = false;
  if (m->stopping)
    return;
  log_warnx("leader election lost: exiting so that the new leader works alone");
  m->failed = true;
  op_manager_stop(m, NULL, NULL);
}

static void on_new_leader(void *ud, const char *identity) {
  op_manager *m = ud;

  if (strcmp(identity, m->identity) != 0)
    log_info("leader election: %s leads", identity[0] ? identity : "nobody");
}

/* ---- probes and metrics ---- */

static void health(void *ud, const char *method, const char *path, struct wr_httpd_resp *r,
                   struct wr_buf *body) {
  op_manager *m = ud;
  static const char ok[] = "ok\n", wait[] = "caches not synced\n";

  (void)method;
  if (strcmp(path, "/healthz") == 0 || strcmp(path, "/healthz/ping") == 0) {
    r->status = 200; /* liveness never depends on the API server */
    wr_buf_append(body, ok, sizeof(ok) - 1);
  } else if (strcmp(path, "/readyz") == 0 || strcmp(path, "/readyz/informers") == 0) {
    bool ready = m->synced >= NINFORMERS;
    r->status = ready ? 200 : 503;
    wr_buf_append(body, ready ? ok : wait, ready ? sizeof(ok) - 1 : sizeof(wait) - 1);
  } else {
    r->status = 404;
  }
}

static void controller_metrics(struct wr_buf *b, wr_controller *c, const char *name) {
  struct wr_controller_stats st;

  wr_controller_stats(c, &st);
  wr_prom_sample(b, "controller_runtime_reconcile_total",
                 (double)(st.reconciles - st.errors - st.requeues), "controller", name, "result",
                 "success", NULL);
  wr_prom_sample(b, "controller_runtime_reconcile_total", (double)st.errors, "controller", name,
                 "result", "error", NULL);
  wr_prom_sample(b, "controller_runtime_reconcile_total", (double)st.requeues, "controller", name,
                 "result", "requeue_after", NULL);
}

static void metrics(void *ud, const char *method, const char *path, struct wr_httpd_resp *r,
                    struct wr_buf *body) {
  static const char *const methods[WR_KMETHODS] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  static const char *const codes[5] = {"<error>", "2xx", "3xx", "4xx", "5xx"};
  op_manager *m = ud;
  struct wr_controller_stats cs;
  struct wr_kclient_stats ks;
  struct wr_informer_stats is;
  size_t i, j;

  (void)method;
  if (strcmp(path, "/metrics") != 0) {
    r->status = 404;
    return;
  }
  r->status = 200;
  r->content_type = "text/plain; version=0.0.4; charset=utf-8";
  wr_prom_family(body, "controller_runtime_reconcile_total", "counter",
                 "Total number of reconciliations per controller");
  if (m->x.proxy_ctl != NULL)
    controller_metrics(body, m->x.proxy_ctl, "httpproxy");
  if (m->x.connector_ctl != NULL)
    controller_metrics(body, m->x.connector_ctl, "connector");
  wr_prom_family(body, "controller_runtime_reconcile_errors_total", "counter",
                 "Total number of reconciliation errors per controller");
  wr_prom_family(body, "workqueue_depth", "gauge", "Current depth of workqueue");
  wr_prom_family(body, "controller_runtime_active_workers", "gauge",
                 "Number of currently used workers per controller");
  for (i = 0; i < 2; i++) {
    wr_controller *c = i == 0 ? m->x.proxy_ctl : m->x.connector_ctl;
    const char *name = i == 0 ? "httpproxy" : "connector";
    if (c == NULL)
      continue;
    wr_controller_stats(c, &cs);
    wr_prom_sample(body, "controller_runtime_reconcile_errors_total", (double)cs.errors,
                   "controller", name, NULL);
    wr_prom_sample(body, "workqueue_depth", (double)(cs.depth + cs.delayed), "name", name,
                   "controller", name, NULL);
    wr_prom_sample(body, "controller_runtime_active_workers", (double)cs.active, "controller", name,
                   NULL);
  }
  wr_kclient_stats(m->x.kc, &ks);
  wr_prom_family(body, "rest_client_requests_total", "counter",
                 "Number of HTTP requests, partitioned by status code class and method");
  for (i = 0; i < WR_KMETHODS; i++) {
    for (j = 0; j < 5; j++) {
      if (ks.requests[i][j] > 0)
        wr_prom_sample(body, "rest_client_requests_total", (double)ks.requests[i][j], "code",
                       codes[j], "method", methods[i], NULL);
    }
  }
  wr_prom_family(body, "leader_election_master_status", "gauge",
                 "1 while this replica leads, 0 otherwise");
  wr_prom_sample(body, "leader_election_master_status", m->leader_now ? 1 : 0, "name",
                 m->o.leader_name, NULL);
  wr_prom_family(body, "warren_operator_writes_total", "counter",
                 "Create, patch and delete requests sent by reconciles");
  wr_prom_sample(body, "warren_operator_writes_total", (double)m->x.writes, NULL);
  wr_prom_family(body, "warren_operator_writes_skipped_total", "counter",
                 "Writes not sent because the object was already as desired");
  wr_prom_sample(body, "warren_operator_writes_skipped_total", (double)m->x.skipped, NULL);
  wr_prom_family(body, "warren_operator_cached_objects", "gauge", "Objects in each cache");
  {
    wr_informer *infs[NINFORMERS] = {m->x.proxies, m->x.connectors, m->x.classes,
                                     m->x.leases,  m->x.routes,     m->x.policies};
    static const char *const names[NINFORMERS] = {"httpproxies",      "connectors",
                                                  "connectorclasses", "leases",
                                                  "httproutes",       "envoypatchpolicies"};
    for (i = 0; i < NINFORMERS; i++) {
      if (infs[i] == NULL)
        continue;
      wr_informer_stats(infs[i], &is);
      wr_prom_sample(body, "warren_operator_cached_objects", (double)is.objects, "resource",
                     names[i], NULL);
    }
  }
}

/* ---- lifecycle ---- */

/* on_scavenge gives freed heap pages back to the system. The caches are
 * long-lived texts allocated between the short-lived trees every watch
 * event and lookup parses; glibc keeps the holes between them as resident
 * memory (measured: 75 MB resident for 14 MB in use after a cold start of
 * 3,000 HTTPProxies), and malloc_trim releases the pages of those holes. */
static void on_scavenge(uv_timer_t *t) {
  (void)t;
  malloc_trim(0);
}

int op_manager_new(op_manager **out, uv_loop_t *loop, const struct op_manager_opts *o) {
  op_manager *m = calloc(1, sizeof(*m));
  char host[64] = "warren-operator";
  unsigned char rnd[4];
  char hex[9];

  if (m == NULL)
    return WR_ERR_NOMEM;
  m->o = *o;
  m->x.loop = loop;
  uv_timer_init(loop, &m->defer);
  m->defer.data = m;
  uv_unref((uv_handle_t *)&m->defer);
  uv_timer_init(loop, &m->scavenge);
  uv_unref((uv_handle_t *)&m->scavenge);
  uv_timer_start(&m->scavenge, on_scavenge, SCAVENGE_MS, SCAVENGE_MS);
  m->x.set = o->set;
  if (o->identity != NULL) {
    snprintf(m->identity, sizeof(m->identity), "%s", o->identity);
  } else {
    gethostname(host, sizeof(host) - 1);
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
    snprintf(m->identity, sizeof(m->identity), "%s_%s", host, hex);
  }
  *out = m;
  return 0;
}

static int informer(op_manager *m, wr_informer **out, const struct wr_kres *res, const char *ns,
                    const char *selector, void (*transform)(void *, json_t *),
                    const struct wr_informer_cbs *cbs) {
  struct wr_informer_cbs c = *cbs;
  struct wr_informer_opts io;
  char path[WR_KCLIENT_PATH_MAX];
  int rv;

  rv = wr_kpath(path, sizeof(path), res, ns, NULL, NULL);
  if (rv < 0)
    return rv;
  memset(&io, 0, sizeof(io));
  io.path = path;
  io.label_selector = selector;
  io.transform = transform;
  /* the big caches (one entry per HTTPProxy) are kept as text */
  io.compact = res == &OP_RES_PROXY || res == &OP_RES_ROUTE || res == &OP_RES_POLICY;
  io.idle_s = 120;
  c.on_synced = on_synced;
  return wr_informer_new(out, m->x.loop, m->x.kc, &io, &c, &m->x);
}

int op_manager_start(op_manager *m) {
  static const char *const sel = OP_LABEL_MANAGED_BY "=" OP_MANAGER;
  const char *ns = m->x.set.namespace;
  /* policies live in the Gateway's namespace when it has a fixed one */
  const char *pns = m->x.set.gw.namespace ? m->x.set.gw.namespace : ns;
  char err[512];
  int rv;

  rv = wr_kconfig_load_default(&m->kcfg, m->o.kubeconfig, err, sizeof(err));
  if (rv < 0) {
    log_warnx("kubernetes API: %s", err);
    return rv;
  }
  log_info("kubernetes API: %s (%s)", m->kcfg.server, m->kcfg.source);
  rv = wr_kclient_new_kconfig(&m->x.kc, m->x.loop, &m->kcfg);
  if (rv == 0)
    rv = op_leases_new(&m->x.lease_seen, m->x.set.lease_duration_s);
  if (rv == 0 && (m->x.domain_owner = json_object()) == NULL)
    rv = WR_ERR_NOMEM;
  if (rv == 0)
    rv = informer(m, &m->x.proxies, &OP_RES_PROXY, ns, NULL, op_proxy_transform, &op_proxy_cbs);
  if (rv == 0)
    rv = informer(m, &m->x.connectors, &OP_RES_CONNECTOR, ns, NULL, NULL, &op_connector_cbs);
  if (rv == 0)
    rv = informer(m, &m->x.classes, &OP_RES_CLASS, NULL, NULL, NULL, &op_class_cbs);
  if (rv == 0)
    rv = informer(m, &m->x.leases, &OP_RES_LEASE, ns, sel, NULL, &op_lease_cbs);
  if (rv == 0)
    rv = informer(m, &m->x.routes, &OP_RES_ROUTE, ns, sel, op_route_transform, &op_route_cbs);
  if (rv == 0)
    rv = informer(m, &m->x.policies, &OP_RES_POLICY, pns, sel, op_owned_transform, &op_policy_cbs);
  if (rv == 0)
    rv = op_proxy_setup(&m->x);
  if (rv == 0)
    rv = op_connector_setup(&m->x);
  if (rv < 0) {
    log_warnx("operator: %s", wr_strerror(rv));
    return rv;
  }
  {
    wr_informer *infs[NINFORMERS] = {m->x.proxies, m->x.connectors, m->x.classes,
                                     m->x.leases,  m->x.routes,     m->x.policies};
    for (int i = 0; i < NINFORMERS && rv == 0; i++)
      rv = wr_informer_start(infs[i]);
  }
  if (rv == 0 && m->o.health_addr != NULL)
    rv = wr_httpd_new(&m->health, m->x.loop, m->o.health_addr, health, m);
  if (rv == 0 && m->o.metrics_addr != NULL)
    rv = wr_httpd_new(&m->metrics, m->x.loop, m->o.metrics_addr, metrics, m);
  if (rv < 0) {
    log_warnx("operator: start: %s", wr_strerror(rv));
    return rv;
  }
  if (!m->o.leader_elect) {
    m->leader_now = true;
    return 0;
  }
  {
    struct wr_leader_opts lo = {.ns = m->o.leader_ns ? m->o.leader_ns : m->kcfg.namespace,
                                .name = m->o.leader_name,
                                .identity = m->identity};
    struct wr_leader_cbs lc = {on_started, on_stopped, on_new_leader, on_released};
    rv = wr_leader_new(&m->leader, m->x.loop, m->x.kc, &lo, &lc, m);
    if (rv == 0)
      rv = wr_leader_start(m->leader);
  }
  return rv;
}

static void teardown(op_manager *m) {
  wr_informer *infs[NINFORMERS] = {m->x.proxies, m->x.connectors, m->x.classes,
                                   m->x.leases,  m->x.routes,     m->x.policies};

  for (int i = 0; i < NINFORMERS; i++)
    wr_informer_del(infs[i]);
  m->x.proxies = m->x.connectors = m->x.classes = m->x.leases = m->x.routes = m->x.policies = NULL;
  wr_controller_del(m->x.proxy_ctl);
  wr_controller_del(m->x.connector_ctl);
  m->x.proxy_ctl = m->x.connector_ctl = NULL;
  wr_leader_del(m->leader);
  m->leader = NULL;
  wr_httpd_del(m->health);
  wr_httpd_del(m->metrics);
  m->health = m->metrics = NULL;
  if (m->x.kc != NULL)
    wr_kclient_del(m->x.kc);
  m->x.kc = NULL;
  uv_close((uv_handle_t *)&m->defer, NULL);
  uv_close((uv_handle_t *)&m->scavenge, NULL);
  if (m->stop_done != NULL)
    m->stop_done(m->stop_arg);
}

/* on_defer tears down once the writes in flight have been answered (their
 * callbacks free their reconciles), or after DRAIN_MS of a silent API. */
static void on_defer(uv_timer_t *t) {
  op_manager *m = t->data;

  if (m->x.kc != NULL && wr_kclient_inflight(m->x.kc) > 0 && m->drained_ms < DRAIN_MS) {
    m->drained_ms += DRAIN_STEP_MS;
    uv_timer_start(&m->defer, on_defer, DRAIN_STEP_MS, 0);
    return;
  }
  teardown(m);
}

static void on_released(void *ud) {
  op_manager *m = ud;

  uv_timer_start(&m->defer, on_defer, 0, 0);
}

void op_manager_stop(op_manager *m, void (*done)(void *arg), void *arg) {
  if (m->stopping) {
    return;
  }
  m->stopping = true;
  m->x.stopping = true;
  m->x.leading = false;
  m->stop_done = done;
  m->stop_arg = arg;
  if (m->leader != NULL && m->leader_now) {
    /* wait for the release write; teardown runs from on_released */
    wr_leader_release(m->leader);
    return;
  }
  uv_timer_start(&m->defer, on_defer, 0, 0);
}

void op_manager_del(op_manager *m) {
  if (m == NULL)
    return;
  op_leases_del(m->x.lease_seen);
  json_decref(m->x.domain_owner);
  wr_kconfig_free(&m->kcfg);
  free(m);
}

bool op_manager_failed(const op_manager *m) {
  return m->failed;
}
