/*
 * expose.c - the HTTPProxy of `warren-heartbeat expose` (expose.h).
 *
 *   WRITE   POST the HTTPProxy; 409: merge-patch its spec (it is then not ours
 *           to delete); 401/403/422: fatal; else retry after 0.25 s .. 1 s
 *   WAIT    an informer on the one name reports each version; the one with
 *           the written generation and the operator's conditions for it
 *           decides: ready (URL), refused (fatal), or still pending (progress)
 *   READY   still followed: changes are logged, a deletion re-creates it
 *   STOP    DELETE with the uid it created (precondition), or nothing
 */
#include "expose.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warren/err.h"
#include "warren/informer.h"
#include "warren/kclient.h"
#include "warren/kcond.h"
#include "warren/kconfig.h"
#include "warren/log.h"

#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 1000
#define MSG_MAX 512

static const struct wr_kres PROXIES = {"networking.datumapis.com", "v1alpha", "httpproxies"};

enum state { S_IDLE, S_WRITE, S_WAIT, S_READY, S_STOPPING, S_DONE };

struct hb_expose {
  uv_loop_t *loop;
  struct hb_expose_cbs cbs;
  void *ud;
  char ns[64], name[HB_EXPOSE_NAME_MAX + 1], host[HB_EXPOSE_NAME_MAX + 1],
      connector[HB_EXPOSE_NAME_MAX + 1], uid[64];
  uint16_t port;
  const char *kubeconfig;
  struct wr_kconfig kcfg;
  wr_kclient *kc;
  wr_informer *inf;
  uv_timer_t timer;    /* retries, deferred fatal */
  uv_timer_t deadline; /* of a stop */
  int handles;         /* open timers; free at 0 */
  enum state st;
  wr_kcall *call; /* the write or delete in flight */
  int call_create;
  int created;       /* the object named uid is ours: delete it on stop */
  long long min_gen; /* the generation our last write produced; 0: none yet */
  int ready;         /* on_ready was called */
  uint64_t retry_ms;
  char last[MSG_MAX]; /* the last progress message shown */
  char fatal[MSG_MAX];
  void (*stop_done)(void *arg);
  void *stop_arg;
};

static void write_proxy(hb_expose *e);

/* ---- pure ---- */

int hb_expose_hostname_ok(const char *h) {
  size_t n = strlen(h), label = 0, i;

  if (n == 0 || n > 253)
    return 0;
  for (i = 0; i < n; i++) {
    char c = h[i];

    if (c == '.') {
      if (label == 0 || h[i - 1] == '-')
        return 0;
      label = 0;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return 0;
    if (c == '-' && label == 0)
      return 0;
    if (++label > 63)
      return 0;
  }
  return label > 0 && h[n - 1] != '-';
}

int hb_expose_names(const char *connector, uint16_t port, const char *hostname, const char *domain,
                    char *name, size_t namelen, char *host, size_t hostlen, char *err,
                    size_t errlen) {
  int n;
  size_t i;

  if (connector == NULL || connector[0] == '\0') {
    snprintf(err, errlen, "no Connector: give --connector NAME");
    return -1;
  }
  if (port == 0) {
    snprintf(err, errlen, "port 0 cannot be exposed");
    return -1;
  }
  n = snprintf(name, namelen, "%s-%u", connector, (unsigned)port);
  if (n < 0 || (size_t)n >= namelen || (size_t)n > HB_EXPOSE_NAME_MAX) {
    snprintf(err, errlen, "HTTPProxy name %.64s...-%u is longer than %d characters", connector,
             (unsigned)port, HB_EXPOSE_NAME_MAX);
    return -1;
  }
  if (hostname != NULL && hostname[0] != '\0')
    n = snprintf(host, hostlen, "%s", hostname);
  else
    n = snprintf(host, hostlen, "%s.%s", name,
                 domain != NULL && domain[0] != '\0' ? domain : HB_EXPOSE_DEFAULT_DOMAIN);
  if (n < 0 || (size_t)n >= hostlen) {
    snprintf(err, errlen, "hostname too long");
    return -1;
  }
  for (i = 0; host[i] != '\0'; i++)
    host[i] = (char)tolower((unsigned char)host[i]);
  if (!hb_expose_hostname_ok(host)) {
    snprintf(err, errlen, "%s is not a valid hostname (lowercase DNS labels of 1-63 characters%s)",
             host, hostname != NULL && hostname[0] != '\0' ? ", no wildcard" : ": give --hostname");
    return -1;
  }
  return 0;
}

static json_t *proxy_spec(const char *hostname, const char *connector, uint16_t port) {
  char endpoint[64];

  snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", (unsigned)port);
  return json_pack("{s:[s], s:[{s:[{s:s, s:{s:s}}]}]}", "hostnames", hostname, "rules", "backends",
                   "endpoint", endpoint, "connector", "name", connector);
}

json_t *hb_expose_proxy(const char *ns, const char *name, const char *hostname,
                        const char *connector, uint16_t port) {
  return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:o}", "apiVersion",
                   "networking.datumapis.com/v1alpha", "kind", "HTTPProxy", "metadata", "name",
                   name, "namespace", ns, "labels", "app.kubernetes.io/managed-by",
                   HB_EXPOSE_MANAGED_BY, "spec", proxy_spec(hostname, connector, port));
}

/* cond_for returns condition |type| when it speaks of generation |gen|. */
static json_t *cond_for(json_t *conds, const char *type, long long gen) {
  json_t *c = wr_kcond_find(conds, type);

  if (c == NULL || json_integer_value(json_object_get(c, "observedGeneration")) != gen)
    return NULL;
  return c;
}

static const char *str(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));

  return s != NULL ? s : "";
}

enum hb_expose_state hb_expose_check(const json_t *proxy, long long min_gen, char *msg,
                                     size_t len) {
  json_t *meta = json_object_get(proxy, "metadata");
  json_t *conds = json_object_get(json_object_get(proxy, "status"), "conditions");
  long long gen = json_integer_value(json_object_get(meta, "generation"));
  json_t *acc, *prog, *conn;

  if (gen < min_gen || gen <= 0) {
    snprintf(msg, len, "waiting for the API server to show the update");
    return HB_EXPOSE_PENDING;
  }
  acc = cond_for((json_t *)conds, "Accepted", gen);
  if (acc == NULL) {
    snprintf(msg, len, "waiting for the operator (warren-operator) to accept the HTTPProxy");
    return HB_EXPOSE_PENDING;
  }
  if (strcmp(str(acc, "status"), "True") != 0) {
    if (strcmp(str(acc, "reason"), "ConnectorNotFound") == 0) {
      /* the Connector exists (the agent registered it): the operator's cache is behind */
      snprintf(msg, len, "waiting for the operator to see the Connector: %.400s",
               str(acc, "message"));
      return HB_EXPOSE_PENDING;
    }
    snprintf(msg, len, "%.60s: %.400s", str(acc, "reason"), str(acc, "message"));
    return HB_EXPOSE_REFUSED;
  }
  prog = cond_for((json_t *)conds, "Programmed", gen);
  if (prog == NULL) {
    snprintf(msg, len, "waiting for the operator to program the route");
    return HB_EXPOSE_PENDING;
  }
  if (strcmp(str(prog, "status"), "True") != 0) {
    snprintf(msg, len, "waiting for the edge to program the route: %.60s: %.400s",
             str(prog, "reason"), str(prog, "message"));
    return HB_EXPOSE_PENDING;
  }
  conn = cond_for((json_t *)conds, "ConnectorMetadataProgrammed", gen);
  if (conn == NULL) {
    snprintf(msg, len, "waiting for the operator to route the tunnel");
    return HB_EXPOSE_PENDING;
  }
  if (strcmp(str(conn, "status"), "True") != 0) {
    snprintf(msg, len, "waiting for the Connector to be Ready (the operator sees its Lease)");
    return HB_EXPOSE_PENDING;
  }
  snprintf(msg, len, "programmed");
  return HB_EXPOSE_READY;
}

/* ---- the loop side ---- */

static void on_timer(uv_timer_t *t) {
  hb_expose *e = t->data;

  if (e->fatal[0] != '\0') {
    char why[MSG_MAX];

    memcpy(why, e->fatal, sizeof(why));
    e->fatal[0] = '\0';
    if (e->cbs.on_fatal != NULL)
      e->cbs.on_fatal(e->ud, why);
    return;
  }
  if (e->st == S_WRITE)
    write_proxy(e);
}

/* give_up reports |why| from the timer: the caller may be an informer
 * callback, and on_fatal stops (and deletes) the informer. */
static void give_up(hb_expose *e, const char *fmt, ...) WR_PRINTF(2, 3);
static void give_up(hb_expose *e, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(e->fatal, sizeof(e->fatal), fmt, ap);
  va_end(ap);
  if (e->fatal[0] == '\0')
    snprintf(e->fatal, sizeof(e->fatal), "expose failed");
  uv_timer_start(&e->timer, on_timer, 0, 0);
}

static void retry(hb_expose *e, const char *what, int rv, const struct wr_kstatus *st) {
  log_warnx("HTTPProxy %s/%s: %s: %s%s%s; retrying", e->ns, e->name, what, wr_strerror(rv),
            rv == WR_ERR_REFUSED ? ": " : "", rv == WR_ERR_REFUSED ? st->message : "");
  e->retry_ms = e->retry_ms == 0
                    ? RETRY_MIN_MS
                    : (e->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : e->retry_ms * 2);
  e->st = S_WRITE;
  uv_timer_start(&e->timer, on_timer, e->retry_ms, 0);
}

static int refused(int rv, const struct wr_kstatus *st) {
  return rv == WR_ERR_REFUSED && (st->code == 401 || st->code == 403 || st->code == 422);
}

static void progress(hb_expose *e, const char *msg) {
  if (strcmp(msg, e->last) == 0)
    return;
  snprintf(e->last, sizeof(e->last), "%s", msg);
  if (e->ready)
    log_warnx("HTTPProxy %s/%s: %s", e->ns, e->name, msg);
  else
    log_info("HTTPProxy %s/%s: %s", e->ns, e->name, msg);
}

static void check(hb_expose *e, json_t *obj) {
  char msg[MSG_MAX], url[HB_EXPOSE_NAME_MAX + 16];
  const char *uid = json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));

  if (e->st != S_WAIT && e->st != S_READY)
    return;
  if (e->created && uid != NULL && strcmp(uid, e->uid) != 0)
    return; /* another object of that name: the deletion of ours comes first */
  switch (hb_expose_check(obj, e->min_gen, msg, sizeof(msg))) {
  case HB_EXPOSE_READY:
    if (e->ready) {
      if (strcmp(e->last, msg) != 0)
        log_info("HTTPProxy %s/%s: programmed again", e->ns, e->name);
      snprintf(e->last, sizeof(e->last), "%s", msg);
      return;
    }
    snprintf(e->last, sizeof(e->last), "%s", msg);
    e->ready = 1;
    e->st = S_READY;
    snprintf(url, sizeof(url), "https://%s/", e->host);
    log_info("HTTPProxy %s/%s: programmed: %s -> 127.0.0.1:%u", e->ns, e->name, url,
             (unsigned)e->port);
    if (e->cbs.on_ready != NULL)
      e->cbs.on_ready(e->ud, url);
    return;
  case HB_EXPOSE_REFUSED:
    if (!e->ready) {
      give_up(e, "HTTPProxy %s/%s is not accepted: %s", e->ns, e->name, msg);
      e->st = S_IDLE; /* nothing more until the stop */
      return;
    }
    progress(e, msg);
    return;
  case HB_EXPOSE_PENDING:
    progress(e, msg);
    return;
  }
}

static void inf_add(void *ud, json_t *obj, int initial) {
  (void)initial;
  check(ud, obj);
}

static void inf_update(void *ud, json_t *old, json_t *obj) {
  (void)old;
  check(ud, obj);
}

static void inf_delete(void *ud, json_t *obj, int unknown) {
  hb_expose *e = ud;
  const char *uid = json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));

  (void)unknown;
  if (e->st != S_WAIT && e->st != S_READY)
    return;
  if (e->created && uid != NULL && strcmp(uid, e->uid) != 0)
    return;
  log_warnx("HTTPProxy %s/%s was deleted: creating it again", e->ns, e->name);
  e->created = 0;
  e->uid[0] = '\0';
  e->min_gen = 0;
  e->st = S_WRITE;
  write_proxy(e);
}

static const struct wr_informer_cbs inf_cbs = {inf_add, inf_update, inf_delete, NULL};

/* written: our write landed as |obj|; what the cache holds may already
 * show the operator's verdict. */
static void written(hb_expose *e, json_t *obj) {
  json_t *meta = json_object_get(obj, "metadata"), *cached;

  e->retry_ms = 0;
  e->min_gen = json_integer_value(json_object_get(meta, "generation"));
  e->st = S_WAIT;
  cached = e->inf != NULL ? wr_informer_get(e->inf, e->ns, e->name) : NULL;
  if (cached == NULL || json_integer_value(json_object_get(json_object_get(cached, "metadata"),
                                                           "generation")) < e->min_gen)
    cached = obj;
  check(e, cached);
}

static void on_patched(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  hb_expose *e = ud;

  e->call = NULL;
  if (e->st == S_STOPPING)
    return;
  if (rv == 0) {
    e->created = 0;
    e->uid[0] = '\0';
    log_info("HTTPProxy %s/%s existed: spec updated (it is left in place on exit)", e->ns, e->name);
    written(e, obj);
  } else if (rv == WR_ERR_REFUSED && st->code == 404) {
    write_proxy(e); /* deleted meanwhile: create it */
  } else if (refused(rv, st)) {
    give_up(e, "cannot update HTTPProxy %s/%s: %s", e->ns, e->name, st->message);
  } else {
    retry(e, "update", rv, st);
  }
}

static void stop_now(hb_expose *e);

static void on_created(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  hb_expose *e = ud;
  char path[WR_KCLIENT_PATH_MAX];
  json_t *patch;

  e->call = NULL;
  if (rv == 0) {
    const char *uid = json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));

    e->created = 1;
    snprintf(e->uid, sizeof(e->uid), "%s", uid ? uid : "");
    if (e->st == S_STOPPING) { /* stopped while the create was on its way */
      stop_now(e);
      return;
    }
    log_info("HTTPProxy %s/%s created: %s -> http://127.0.0.1:%u via Connector %s", e->ns, e->name,
             e->host, (unsigned)e->port, e->connector);
    written(e, obj);
    return;
  }
  if (e->st == S_STOPPING) {
    stop_now(e);
    return;
  }
  if (rv == WR_ERR_REFUSED && st->code == 409) {
    patch = json_pack("{s:o}", "spec", proxy_spec(e->host, e->connector, e->port));
    if (patch == NULL || wr_kpath(path, sizeof(path), &PROXIES, e->ns, e->name, NULL) < 0 ||
        wr_kclient_patch(e->kc, path, WR_KPATCH_MERGE, patch, NULL, 0, on_patched, e, &e->call) <
            0) {
      json_decref(patch);
      retry(e, "update", WR_ERR_NOMEM, st);
      return;
    }
    json_decref(patch);
    e->call_create = 0;
    return;
  }
  if (refused(rv, st)) {
    give_up(e, "cannot create HTTPProxy %s/%s: %s", e->ns, e->name, st->message);
    return;
  }
  retry(e, "create", rv, st);
}

static void write_proxy(hb_expose *e) {
  char path[WR_KCLIENT_PATH_MAX];
  json_t *body = hb_expose_proxy(e->ns, e->name, e->host, e->connector, e->port);

  e->st = S_WRITE;
  if (body == NULL || wr_kpath(path, sizeof(path), &PROXIES, e->ns, NULL, NULL) < 0 ||
      wr_kclient_create(e->kc, path, body, on_created, e, &e->call) < 0) {
    json_decref(body);
    e->retry_ms = RETRY_MAX_MS;
    uv_timer_start(&e->timer, on_timer, RETRY_MAX_MS, 0);
    return;
  }
  json_decref(body);
  e->call_create = 1;
}

/* ---- lifecycle ---- */

int hb_expose_new(hb_expose **out, uv_loop_t *loop, const struct hb_expose_opts *o,
                  const struct hb_expose_cbs *cbs, void *ud) {
  char err[WR_KCONFIG_ERR_MAX];
  hb_expose *e;
  int rv;

  if (o->name == NULL || o->hostname == NULL || o->connector == NULL || o->port == 0 ||
      strlen(o->name) > HB_EXPOSE_NAME_MAX || strlen(o->hostname) > HB_EXPOSE_NAME_MAX ||
      strlen(o->connector) > HB_EXPOSE_NAME_MAX)
    return WR_ERR_INVAL;
  e = calloc(1, sizeof(*e));
  if (e == NULL)
    return WR_ERR_NOMEM;
  e->loop = loop;
  if (cbs != NULL)
    e->cbs = *cbs;
  e->ud = ud;
  snprintf(e->name, sizeof(e->name), "%s", o->name);
  snprintf(e->host, sizeof(e->host), "%s", o->hostname);
  snprintf(e->connector, sizeof(e->connector), "%s", o->connector);
  e->port = o->port;
  rv = wr_kconfig_load_default(&e->kcfg, o->kubeconfig, err, sizeof(err));
  if (rv < 0) {
    log_warnx("kubernetes API: %s", err);
    free(e);
    return rv;
  }
  rv = wr_kclient_new_kconfig(&e->kc, loop, &e->kcfg);
  if (rv < 0) {
    wr_kconfig_free(&e->kcfg);
    free(e);
    return rv;
  }
  uv_timer_init(loop, &e->timer);
  uv_timer_init(loop, &e->deadline);
  e->timer.data = e;
  e->deadline.data = e;
  e->handles = 2;
  *out = e;
  return 0;
}

int hb_expose_start(hb_expose *e, const char *ns) {
  char path[WR_KCLIENT_PATH_MAX], fields[HB_EXPOSE_NAME_MAX + 32];
  struct wr_informer_opts io;
  int rv;

  if (e->st != S_IDLE || e->inf != NULL)
    return WR_ERR_INVAL;
  snprintf(e->ns, sizeof(e->ns), "%s", ns);
  snprintf(fields, sizeof(fields), "metadata.name=%s", e->name);
  rv = wr_kpath(path, sizeof(path), &PROXIES, e->ns, NULL, NULL);
  if (rv < 0)
    return rv;
  memset(&io, 0, sizeof(io));
  io.path = path;
  io.field_selector = fields;
  io.watch_min_s = 60;
  io.max_objects = 4;
  rv = wr_informer_new(&e->inf, e->loop, e->kc, &io, &inf_cbs, e);
  if (rv == 0)
    rv = wr_informer_start(e->inf);
  if (rv < 0)
    return rv;
  log_info("HTTPProxy %s/%s: exposing 127.0.0.1:%u as https://%s/ (Connector %s)", e->ns, e->name,
           (unsigned)e->port, e->host, e->connector);
  write_proxy(e);
  return 0;
}

static void stop_finish(hb_expose *e) {
  void (*done)(void *) = e->stop_done;

  if (e->st == S_DONE)
    return;
  e->st = S_DONE;
  uv_timer_stop(&e->deadline);
  if (e->call != NULL) {
    wr_kcall_cancel(e->call);
    e->call = NULL;
  }
  e->stop_done = NULL;
  if (done != NULL)
    done(e->stop_arg);
}

static void on_deleted(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  hb_expose *e = ud;

  (void)obj;
  e->call = NULL;
  if (rv == 0)
    log_info("HTTPProxy %s/%s deleted", e->ns, e->name);
  else if (rv == WR_ERR_REFUSED && st->code == 404)
    log_info("HTTPProxy %s/%s was already gone", e->ns, e->name);
  else if (rv == WR_ERR_REFUSED && st->code == 409)
    log_info("HTTPProxy %s/%s was replaced by someone else: left in place", e->ns, e->name);
  else
    log_warnx("HTTPProxy %s/%s: delete: %s%s%s: left behind", e->ns, e->name, wr_strerror(rv),
              rv == WR_ERR_REFUSED ? ": " : "", rv == WR_ERR_REFUSED ? st->message : "");
  stop_finish(e);
}

/* stop_now deletes what we created, or finishes. */
static void stop_now(hb_expose *e) {
  char path[WR_KCLIENT_PATH_MAX];

  if (!e->created) {
    if (e->ns[0] != '\0' && e->min_gen > 0)
      log_info("HTTPProxy %s/%s existed before: left in place", e->ns, e->name);
    stop_finish(e);
    return;
  }
  if (wr_kpath(path, sizeof(path), &PROXIES, e->ns, e->name, NULL) < 0 ||
      wr_kclient_delete(e->kc, path, e->uid[0] ? e->uid : NULL, NULL, "Background", on_deleted, e,
                        &e->call) < 0) {
    log_warnx("HTTPProxy %s/%s: cannot delete it: left behind", e->ns, e->name);
    stop_finish(e);
  }
}

static void on_deadline(uv_timer_t *t) {
  hb_expose *e = t->data;

  log_warnx("HTTPProxy %s/%s: the API did not answer within %d ms: %s", e->ns, e->name,
            HB_EXPOSE_STOP_MS, e->created ? "left behind" : "stopping");
  stop_finish(e);
}

void hb_expose_stop(hb_expose *e, void (*done)(void *arg), void *arg) {
  int create_in_flight = e->call != NULL && e->call_create;

  e->stop_done = done;
  e->stop_arg = arg;
  if (e->st == S_STOPPING || e->st == S_DONE) {
    if (e->st == S_DONE && done != NULL) {
      e->stop_done = NULL;
      done(arg);
    }
    return;
  }
  e->st = S_STOPPING;
  uv_timer_stop(&e->timer);
  e->fatal[0] = '\0';
  if (e->inf != NULL) {
    wr_informer_del(e->inf);
    e->inf = NULL;
  }
  uv_timer_start(&e->deadline, on_deadline, HB_EXPOSE_STOP_MS, 0);
  if (create_in_flight)
    return; /* its answer says whether there is something to delete */
  if (e->call != NULL) {
    wr_kcall_cancel(e->call);
    e->call = NULL;
  }
  stop_now(e);
}

static void on_closed(uv_handle_t *h) {
  hb_expose *e = h->data;

  if (--e->handles == 0) {
    wr_kconfig_free(&e->kcfg);
    free(e);
  }
}

void hb_expose_del(hb_expose *e) {
  if (e == NULL)
    return;
  if (e->inf != NULL)
    wr_informer_del(e->inf);
  if (e->call != NULL)
    wr_kcall_cancel(e->call);
  if (e->kc != NULL)
    wr_kclient_del(e->kc);
  uv_close((uv_handle_t *)&e->timer, on_closed);
  uv_close((uv_handle_t *)&e->deadline, on_closed);
}
