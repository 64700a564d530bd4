/*
 * proxy.c - the HTTPProxy controller: an HTTPProxy, the Connectors it names
 * and the Envoy Gateway status of its policy in; its HTTPRoute, its
 * EnvoyPatchPolicy and its status conditions out.
 *
 * A reconcile translates (translate.c), writes what changed (apply.c; the
 * two writes run at once) and then writes status once, from what the
 * writes said: a refused write is a condition, not a crash or a hot loop.
 * Status is patched only when a condition or the hostnames changed, so
 * reconciling an unchanged HTTPProxy sends nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "operator.h"
#include "warren/err.h"
#include "warren/kcond.h"
#include "warren/log.h"

#define KEY_MAX 512
#define PRIV "_warren" /* computed fields the cache adds to each HTTPProxy */

struct rec {
  struct op_ctx *x;
  wr_controller *c;
  char key[KEY_MAX];
  json_t *proxy;
  struct op_translation t;
  int pending;
  int result;      /* WR_RECONCILE_* so far */
  char reason[64]; /* a write the API refused because of the spec */
  char message[OP_MSG_MAX];
};

struct claim_ctx {
  struct op_ctx *x;
  const char *ns, *key;
};

/* ---- cache: index values computed once per object ---- */

/* transform stores in each cached HTTPProxy the "ns/connector" and
 * "ns/host" values of its indexes, so index functions return strings that
 * live as long as the object. */
static void proxy_transform(void *ud, json_t *obj) {
  const char *ns =
      json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));
  json_t *conns = json_array(), *domains = json_array(), *v;
  char buf[KEY_MAX];
  size_t i;

  (void)ud;
  if (ns == NULL || conns == NULL || domains == NULL || op_proxy_connectors(obj, conns) != 0 ||
      op_proxy_domains(obj, domains) != 0) {
    json_decref(conns);
    json_decref(domains);
    return;
  }
  json_array_foreach(conns, i, v) {
    snprintf(buf, sizeof(buf), "%s/%s", ns, json_string_value(v));
    json_array_set_new(conns, i, json_string(buf));
  }
  json_array_foreach(domains, i, v) {
    snprintf(buf, sizeof(buf), "%s/%s", ns, json_string_value(v));
    json_array_set_new(domains, i, json_string(buf));
  }
  json_object_set_new(obj, PRIV, json_pack("{s:o, s:o}", "connectors", conns, "domains", domains));
}

static size_t priv_values(json_t *obj, const char *field, const char **vals, size_t max) {
  json_t *a = json_object_get(json_object_get(obj, PRIV), field), *v;
  size_t i, n = 0;

  json_array_foreach(a, i, v) {
    if (n < max)
      vals[n++] = json_string_value(v);
  }
  return n;
}

static size_t idx_connector(void *ud, json_t *obj, const char **vals, size_t max) {
  (void)ud;
  return priv_values(obj, "connectors", vals, max);
}

static size_t idx_domain(void *ud, json_t *obj, const char **vals, size_t max) {
  (void)ud;
  return priv_values(obj, "domains", vals, max);
}

static void obj_key(json_t *obj, char *key, size_t len) {
  json_t *m = json_object_get(obj, "metadata");

  snprintf(key, len, "%s/%s", json_string_value(json_object_get(m, "namespace")),
           json_string_value(json_object_get(m, "name")));
}

/* ---- which HTTPProxy registers a shared tunnel host ---- */

/* The owner of a domain is the smallest key among the HTTPProxies naming
 * it: deterministic, and it only changes when that proxy comes or goes, so
 * one event re-reconciles at most the old and the new owner. */
static void owner_recompute(struct op_ctx *x, const char *domain) {
  json_t *set = wr_informer_index(x->proxies, "domain", domain);
  const char *k, *best = NULL, *was;
  json_t *v;

  json_object_foreach(set, k, v) {
    if (best == NULL || strcmp(k, best) < 0)
      best = k;
  }
  was = json_string_value(json_object_get(x->domain_owner, domain));
  if (best == NULL) {
    json_object_del(x->domain_owner, domain);
    return;
  }
  if (was != NULL && strcmp(was, best) == 0)
    return;
  if (was != NULL && x->leading)
    wr_controller_add(x->proxy_ctl, was);
  if (x->leading)
    wr_controller_add(x->proxy_ctl, best);
  json_object_set_new(x->domain_owner, domain, json_string(best));
}

static void owners_update(struct op_ctx *x, json_t *old, json_t *obj, bool initial) {
  json_t *a, *v;
  size_t i;

  /* most updates (status writes) leave the domains as they were */
  if (old != NULL && obj != NULL &&
      json_equal(json_object_get(json_object_get(old, PRIV), "domains"),
                 json_object_get(json_object_get(obj, PRIV), "domains")))
    return;

  if (old != NULL) {
    a = json_object_get(json_object_get(old, PRIV), "domains");
    json_array_foreach(a, i, v) owner_recompute(x, json_string_value(v));
  }
  if (obj != NULL) {
    a = json_object_get(json_object_get(obj, PRIV), "domains");
    json_array_foreach(a, i, v) {
      const char *d = json_string_value(v), *was;
      char key[KEY_MAX];

      if (!initial) {
        owner_recompute(x, d);
        continue;
      }
      /* first list: O(1) per object instead of a scan of every sharer */
      obj_key(obj, key, sizeof(key));
      was = json_string_value(json_object_get(x->domain_owner, d));
      if (was == NULL || strcmp(key, was) < 0)
        json_object_set_new(x->domain_owner, d, json_string(key));
    }
  }
}

static bool claim(void *ud, const char *listener, const char *host) {
  struct claim_ctx *cc = ud;
  char domain[KEY_MAX];
  const char *owner;

  (void)listener;
  snprintf(domain, sizeof(domain), "%s/%s", cc->ns, host);
  owner = json_string_value(json_object_get(cc->x->domain_owner, domain));
  return owner == NULL || strcmp(owner, cc->key) == 0;
}

/* ---- informer callbacks ---- */

static void enqueue(struct op_ctx *x, json_t *obj) {
  char key[KEY_MAX];

  if (!x->leading)
    return;
  obj_key(obj, key, sizeof(key));
  wr_controller_add(x->proxy_ctl, key);
}

static void on_proxy_add(void *ud, json_t *obj, int initial) {
  struct op_ctx *x = ud;

  owners_update(x, NULL, obj, initial);
  enqueue(x, obj);
}

static void on_proxy_update(void *ud, json_t *old, json_t *obj) {
  struct op_ctx *x = ud;

  owners_update(x, old, obj, false);
  enqueue(x, obj);
}

static void on_proxy_delete(void *ud, json_t *obj, int unknown) {
  struct op_ctx *x = ud;

  (void)unknown;
  /* the index no longer has it: recompute the owners it held */
  owners_update(x, obj, NULL, false);
  enqueue(x, obj); /* its objects without ownerReference go now */
}

const struct wr_informer_cbs op_proxy_cbs = {on_proxy_add, on_proxy_update, on_proxy_delete, NULL};

/* Owned objects (HTTPRoute, EnvoyPatchPolicy) wake their HTTPProxy: a
 * deleted or edited one is restored, a new Envoy Gateway status is read. */
static void on_swept(void *ud, int rv, const struct wr_kstatus *st) {
  (void)ud;
  if (rv != 0 && !(rv == WR_ERR_REFUSED && (st->code == 404 || st->code == 409)))
    log_warnx("orphan cleanup: %s", wr_strerror(rv));
}

/* sweep deletes an owned object whose HTTPProxy is gone. Objects with an
 * ownerReference go with their owner anyway (garbage collector); policies
 * in another namespace than their HTTPProxy cannot have one, and this is
 * how they go. */
static void sweep(struct op_ctx *x, json_t *obj, const struct wr_kres *res, wr_informer *inf) {
  json_t *m = json_object_get(obj, "metadata");
  char owner[KEY_MAX];

  if (!op_owner(obj, owner, sizeof(owner)) || wr_informer_get_key(x->proxies, owner) != NULL)
    return;
  log_info("deleting %s %s/%s: HTTPProxy %s is gone", res->resource,
           json_string_value(json_object_get(m, "namespace")),
           json_string_value(json_object_get(m, "name")), owner);
  op_delete(x, res, inf, json_string_value(json_object_get(m, "namespace")),
            json_string_value(json_object_get(m, "name")), owner, on_swept, NULL);
}

static void owned_changed(struct op_ctx *x, json_t *obj, bool deleted, bool route) {
  char key[KEY_MAX];

  if (!x->leading || !op_owner(obj, key, sizeof(key)))
    return;
  if (wr_informer_get_key(x->proxies, key) != NULL)
    wr_controller_add(x->proxy_ctl, key);
  else if (!deleted)
    sweep(x, obj, route ? &OP_RES_ROUTE : &OP_RES_POLICY, route ? x->routes : x->policies);
}

static void on_route_add(void *ud, json_t *obj, int initial) {
  (void)initial;
  owned_changed(ud, obj, false, true);
}

static void on_route_update(void *ud, json_t *old, json_t *obj) {
  (void)old;
  owned_changed(ud, obj, false, true);
}

static void on_route_delete(void *ud, json_t *obj, int unknown) {
  (void)unknown;
  owned_changed(ud, obj, true, true);
}

static void on_policy_add(void *ud, json_t *obj, int initial) {
  (void)initial;
  owned_changed(ud, obj, false, false);
}

static void on_policy_update(void *ud, json_t *old, json_t *obj) {
  (void)old;
  owned_changed(ud, obj, false, false);
}

static void on_policy_delete(void *ud, json_t *obj, int unknown) {
  (void)unknown;
  owned_changed(ud, obj, true, false);
}

const struct wr_informer_cbs op_route_cbs = {on_route_add, on_route_update, on_route_delete, NULL};
const struct wr_informer_cbs op_policy_cbs = {on_policy_add, on_policy_update, on_policy_delete,
                                              NULL};

/* keep_meta trims metadata to what the operator reads: a cache entry's
 * size is what limits how many objects one operator can hold. */
static void keep_meta(json_t *obj, bool labels, bool hash_only) {
  static const char *const keep[] = {"name",       "namespace", "uid",         "resourceVersion",
                                     "generation", "labels",    "annotations", "deletionTimestamp",
                                     NULL};
  json_t *m = json_object_get(obj, "metadata"), *a, *h;
  const char *key;
  json_t *v;
  void *tmp;
  size_t i;

  json_object_foreach_safe(m, tmp, key, v) {
    for (i = 0; keep[i] != NULL && strcmp(keep[i], key) != 0; i++)
      ;
    if (keep[i] == NULL || (!labels && strcmp(key, "labels") == 0) ||
        (!hash_only && strcmp(key, "annotations") == 0))
      json_object_del(m, key);
  }
  a = json_object_get(m, "annotations");
  if (a != NULL) {
    h = json_incref(json_object_get(a, OP_ANNOT_HASH));
    json_object_clear(a);
    if (h != NULL)
      json_object_set_new(a, OP_ANNOT_HASH, h);
  }
}

/* Owned objects: metadata and, for policies, Envoy Gateway's status; the
 * spec is known from its digest annotation and is most of the bytes. */
void op_owned_transform(void *ud, json_t *obj) {
  (void)ud;
  json_object_del(obj, "spec");
  keep_meta(obj, true, true);
}

void op_route_transform(void *ud, json_t *obj) {
  op_owned_transform(ud, obj);
  json_object_del(obj, "status"); /* nothing in it is read */
}

void op_proxy_transform(void *ud, json_t *obj) {
  keep_meta(obj, false, false);
  proxy_transform(ud, obj);
}

/* ---- reconcile ---- */

static void lookup(void *ud, const char *ns, const char *name, struct op_conn_info *out) {
  struct claim_ctx *cc = ud;
  json_t *c = wr_informer_get(cc->x->connectors, ns, name);
  const char *id;

  memset(out, 0, sizeof(*out));
  out->state = OP_CONN_MISSING;
  if (c == NULL)
    return;
  out->state = OP_CONN_NOT_READY;
  id = op_connector_ready(cc->x, c);
  if (id == NULL)
    return;
  for (size_t i = 0; i < 64; i++)
    out->endpoint_id[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] + 32 : id[i]);
  out->endpoint_id[64] = '\0';
  out->state = OP_CONN_READY;
}

static void rec_free(struct rec *r) {
  op_translation_free(&r->t);
  json_decref(r->proxy);
  free(r);
}

static void rec_end(struct rec *r) {
  wr_controller_done(r->c, r->key, (enum wr_reconcile_result)r->result, 0);
  rec_free(r);
}

/* programmed reads Envoy Gateway's verdict on the policy, when it has
 * given one for the policy's current generation. Returns 1 and fills
 * reason/message, or 0. */
static int programmed(struct rec *r, const char *ns, const char *name, char *reason, size_t rlen,
                      char *message, size_t mlen, const char **status) {
  char key[2 * KEY_MAX], pname[KEY_MAX];
  const char *pns = op_policy_name(&r->x->set.gw, ns, name, pname, sizeof(pname));
  json_t *p, *anc, *a, *cond;
  json_int_t gen;
  int found = 0;
  size_t i;

  snprintf(key, sizeof(key), "%s/%s", pns, pname);
  p = wr_informer_ref(r->x->policies, key);
  gen = json_integer_value(json_object_get(json_object_get(p, "metadata"), "generation"));
  anc = json_object_get(json_object_get(p, "status"), "ancestors");
  json_array_foreach(anc, i, a) {
    const char *st;

    cond = wr_kcond_find(json_object_get(a, "conditions"), "Programmed");
    if (cond == NULL)
      continue;
    st = json_string_value(json_object_get(cond, "status"));
    if (json_integer_value(json_object_get(cond, "observedGeneration")) == gen && st != NULL &&
        (strcmp(st, "True") == 0 || strcmp(st, "False") == 0)) {
      *status = strcmp(st, "True") == 0 ? "True" : "False"; /* static: |p| goes below */
      snprintf(reason, rlen, "%s", json_string_value(json_object_get(cond, "reason")));
      snprintf(message, mlen, "Envoy Gateway: %s",
               json_string_value(json_object_get(cond, "message")));
      found = 1;
    }
    break;
  }
  json_decref(p);
  return found;
}

static void on_status(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  struct rec *r = ud;

  (void)obj;
  if (rv != 0 && !(rv == WR_ERR_REFUSED && st->code == 404)) {
    log_warnx("httpproxy %s: status: %s%s%s", r->key, wr_strerror(rv), st ? " " : "",
              st ? st->message : "");
    r->result = WR_RECONCILE_ERROR;
  }
  rec_end(r);
}

static void write_status(struct rec *r) {
  json_t *meta = json_object_get(r->proxy, "metadata"),
         *status = json_object_get(r->proxy, "status");
  json_t *conds = json_deep_copy(json_object_get(status, "conditions")), *patch;
  json_int_t gen = json_integer_value(json_object_get(meta, "generation"));
  const char *ns = json_string_value(json_object_get(meta, "namespace"));
  const char *name = json_string_value(json_object_get(meta, "name"));
  const char *pstatus = "True";
  char path[WR_KCLIENT_PATH_MAX], preason[64] = "Programmed", pmsg[OP_MSG_MAX];
  const struct op_translation *t = &r->t;
  time_t now = time(NULL);
  int changed = 0;
  json_t *hostnames;

  if (conds == NULL || !json_is_array(conds)) {
    json_decref(conds);
    conds = json_array();
  }
  if (t->verdict != OP_OK || r->reason[0] != '\0') {
    const char *reason = r->reason[0] ? r->reason : t->reason;
    const char *msg = r->reason[0] ? r->message : t->message;

    changed |= wr_kcond_set(conds, "Accepted", "False", reason, msg, gen, now) == 1;
    changed |= wr_kcond_set(conds, "Programmed", "False", "Invalid",
                            "not programmed: the HTTPProxy is not accepted", gen, now) == 1;
    changed |= wr_kcond_remove(conds, "ConnectorMetadataProgrammed") == 1;
    hostnames = json_incref(json_object_get(status, "hostnames"));
  } else {
    changed |=
        wr_kcond_set(conds, "Accepted", "True", "Accepted", "HTTPProxy accepted", gen, now) == 1;
    snprintf(pmsg, sizeof(pmsg), "HTTPRoute%s written", t->policy ? " and EnvoyPatchPolicy" : "");
    if (t->policy != NULL)
      programmed(r, ns, name, preason, sizeof(preason), pmsg, sizeof(pmsg), &pstatus);
    changed |= wr_kcond_set(conds, "Programmed", pstatus, preason, pmsg, gen, now) == 1;
    if (t->connector_rules == 0)
      changed |= wr_kcond_remove(conds, "ConnectorMetadataProgrammed") == 1;
    else if (t->offline_rules > 0) {
      snprintf(pmsg, sizeof(pmsg), "%.400s: requests get 503 \"tunnel offline\"", t->offline);
      changed |= wr_kcond_set(conds, "ConnectorMetadataProgrammed", "False", "ConnectorNotReady",
                              pmsg, gen, now) == 1;
    } else
      changed |=
          wr_kcond_set(conds, "ConnectorMetadataProgrammed", "True", "ConnectorMetadataApplied",
                       "Connector tunnel metadata applied", gen, now) == 1;
    hostnames = json_incref(t->hostnames);
  }
  if (!json_equal(hostnames, json_object_get(status, "hostnames")))
    changed = 1;
  if (!changed) {
    r->x->skipped++;
    json_decref(conds);
    json_decref(hostnames);
    rec_end(r);
    return;
  }
  patch = json_pack("{s:{s:o, s:o*}}", "status", "conditions", conds, "hostnames", hostnames);
  if (patch == NULL || wr_kpath(path, sizeof(path), &OP_RES_PROXY, ns, name, "status") < 0 ||
      wr_kclient_patch(r->x->kc, path, WR_KPATCH_MERGE, patch, NULL, 0, on_status, r, NULL) < 0) {
    json_decref(patch);
    r->result = WR_RECONCILE_ERROR;
    rec_end(r);
    return;
  }
  r->x->writes++;
  json_decref(patch);
}

static void write_done(struct rec *r) {
  if (--r->pending > 0)
    return;
  write_status(r);
}

static void on_write(void *ud, int rv, const struct wr_kstatus *st) {
  struct rec *r = ud;

  if (rv == WR_ERR_REFUSED && st->code == 409) {
    /* created meanwhile by this very operator, its watch event not in yet:
     * the retry finds it in the cache */
    log_debug("httpproxy %s: write: %s", r->key, st->message);
    r->result = WR_RECONCILE_ERROR;
  } else if (rv == WR_ERR_REFUSED && (st->code == 422 || st->code == 400)) {
    /* the upstream schema refused what the spec asked for */
    snprintf(r->reason, sizeof(r->reason), "Invalid");
    snprintf(r->message, sizeof(r->message), "refused by the API server: %.450s", st->message);
  } else if (rv != 0 && !(rv == WR_ERR_REFUSED && st->code == 404)) {
    log_warnx("httpproxy %s: write: %s%s%s", r->key, wr_strerror(rv),
              rv == WR_ERR_REFUSED ? ": " : "", rv == WR_ERR_REFUSED ? st->message : "");
    r->result = WR_RECONCILE_ERROR;
  }
  write_done(r);
}

static void start_write(struct rec *r, int rv, const char *what) {
  if (rv == OP_APPLY_PENDING) {
    r->pending++;
    return;
  }
  if (rv == OP_APPLY_FOREIGN) {
    snprintf(r->reason, sizeof(r->reason), "Conflict");
    snprintf(r->message, sizeof(r->message), "%s %.300s exists and is not owned by this HTTPProxy",
             what, r->key);
  } else if (rv < 0) {
    log_warnx("httpproxy %s: %s: %s", r->key, what, wr_strerror(rv));
    r->result = WR_RECONCILE_ERROR;
  }
}

/* gone deletes what HTTPProxy |key| left: its policy in another
 * namespace has no ownerReference for the garbage collector to follow
 * (the HTTPRoute, in its own namespace, has one; deleting it here too only
 * saves the collector a step). */
static void gone(struct op_ctx *x, const char *key) {
  char ns[KEY_MAX], pname[KEY_MAX];
  const char *name = strchr(key, '/'), *pns;

  if (name == NULL || (size_t)(name - key) >= sizeof(ns))
    return;
  memcpy(ns, key, (size_t)(name - key));
  ns[name - key] = '\0';
  name++;
  pns = op_policy_name(&x->set.gw, ns, name, pname, sizeof(pname));
  op_delete(x, &OP_RES_POLICY, x->policies, pns, pname, key, on_swept, NULL);
  op_delete(x, &OP_RES_ROUTE, x->routes, ns, name, key, on_swept, NULL);
}

static void reconcile(void *ud, wr_controller *c, const char *key) {
  struct op_ctx *x = ud;
  json_t *proxy = wr_informer_ref(x->proxies, key), *meta;
  struct claim_ctx cc;
  char owner[KEY_MAX], pname[KEY_MAX];
  const char *pns;
  struct rec *r;

  if (x->stopping) { /* shutting down: no new writes */
    json_decref(proxy);
    wr_controller_done(c, key, WR_RECONCILE_OK, 0);
    return;
  }
  meta = json_object_get(proxy, "metadata");
  if (proxy == NULL) {
    gone(x, key);
    wr_controller_done(c, key, WR_RECONCILE_OK, 0);
    return;
  }
  if (json_object_get(meta, "deletionTimestamp") != NULL) {
    json_decref(proxy);
    wr_controller_done(c, key, WR_RECONCILE_OK, 0);
    return;
  }
  r = calloc(1, sizeof(*r));
  if (r == NULL) {
    json_decref(proxy);
    wr_controller_done(c, key, WR_RECONCILE_ERROR, 0);
    return;
  }
  r->x = x;
  r->c = c;
  snprintf(r->key, sizeof(r->key), "%s", key);
  r->proxy = proxy; /* our reference */
  r->result = WR_RECONCILE_OK;
  cc.x = x;
  cc.ns = json_string_value(json_object_get(meta, "namespace"));
  cc.key = r->key;
  snprintf(owner, sizeof(owner), "%s", key);
  if (op_translate(proxy, &x->set.gw, lookup, claim, &cc, &r->t) != 0) {
    r->result = WR_RECONCILE_ERROR;
    rec_end(r);
    return;
  }
  r->pending = 1; /* held until every write has started */
  if (r->t.verdict == OP_OK) {
    const char *name = json_string_value(json_object_get(meta, "name"));

    start_write(r, op_apply(x, &OP_RES_ROUTE, x->routes, r->t.route, owner, false, on_write, r),
                "HTTPRoute");
    if (r->t.policy != NULL) {
      start_write(r,
                  op_apply(x, &OP_RES_POLICY, x->policies, r->t.policy, owner, false, on_write, r),
                  "EnvoyPatchPolicy");
    } else {
      pns = op_policy_name(&x->set.gw, cc.ns, name, pname, sizeof(pname));
      start_write(r, op_delete(x, &OP_RES_POLICY, x->policies, pns, pname, owner, on_write, r),
                  "EnvoyPatchPolicy");
    }
  }
  write_done(r);
}

/* ---- setup ---- */

int op_proxy_setup(struct op_ctx *x) {
  struct wr_controller_opts o = {.name = "httpproxy", .workers = x->set.workers};
  int rv;

  rv = wr_informer_add_index(x->proxies, "connector", idx_connector, NULL);
  if (rv == 0)
    rv = wr_informer_add_index(x->proxies, "domain", idx_domain, NULL);
  if (rv == 0)
    rv = wr_controller_new(&x->proxy_ctl, x->loop, &o, reconcile, x);
  return rv;
}

void op_proxy_enqueue_all(struct op_ctx *x) {
  const char *key;
  json_t *obj;

  json_object_foreach(wr_informer_objects(x->proxies), key, obj) {
    wr_controller_add(x->proxy_ctl, key);
  }
  /* what was left behind while no operator ran */
  json_object_foreach(wr_informer_objects(x->routes), key, obj) {
    obj = wr_informer_ref(x->routes, key);
    sweep(x, obj, &OP_RES_ROUTE, x->routes);
    json_decref(obj);
  }
  json_object_foreach(wr_informer_objects(x->policies), key, obj) {
    obj = wr_informer_ref(x->policies, key);
    sweep(x, obj, &OP_RES_POLICY, x->policies);
    json_decref(obj);
  }
}

void op_proxy_enqueue_for_connector(struct op_ctx *x, const char *ns, const char *name) {
  char v[KEY_MAX];
  const char *key;
  json_t *set, *b;

  if (!x->leading)
    return;
  snprintf(v, sizeof(v), "%s/%s", ns, name);
  set = wr_informer_index(x->proxies, "connector", v);
  json_object_foreach(set, key, b) {
    wr_controller_add(x->proxy_ctl, key);
  }
}
