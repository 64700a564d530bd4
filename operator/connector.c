/*
 * connector.c - the Connector controller: Accepted from its ConnectorClass,
 * the Lease the agent renews (created here, recorded in status.leaseRef),
 * and Ready from that Lease and the connection details the agent writes.
 *
 * Expiry is not polled: a Ready connector is requeued for the instant its
 * Lease expires on the operator's clock (lease.c), and a renewal seen
 * before then simply moves that instant. Every change of a connector's
 * status wakes the HTTPProxies that use it (proxy.c), which switch their
 * patches between the tunnel and the "tunnel offline" answer.
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

struct rec {
  struct op_ctx *x;
  wr_controller *c;
  char key[KEY_MAX];
  json_t *conn;
  int pending;
  int result;
  uint64_t requeue_ms; /* 0: none */
};

static void obj_key(json_t *obj, char *key, size_t len) {
  json_t *m = json_object_get(obj, "metadata");
  const char *ns = json_string_value(json_object_get(m, "namespace"));

  snprintf(key, len, "%s/%s", ns ? ns : "", json_string_value(json_object_get(m, "name")));
}

/* ---- informer callbacks ---- */

static void enqueue(struct op_ctx *x, const char *key) {
  if (x->leading)
    wr_controller_add(x->connector_ctl, key);
}

static void on_conn_add(void *ud, json_t *obj, int initial) {
  char key[KEY_MAX];

  (void)initial;
  obj_key(obj, key, sizeof(key));
  enqueue(ud, key);
}

static const char *details_missing(json_t *status);

/* same_for_proxies: nothing HTTPProxies see of a Connector changed. */
static bool same_for_proxies(json_t *a, json_t *b) {
  json_t *sa = json_object_get(a, "status"), *sb = json_object_get(b, "status");
  json_t *ia =
      json_object_get(json_object_get(json_object_get(sa, "connectionDetails"), "publicKey"), "id");
  json_t *ib =
      json_object_get(json_object_get(json_object_get(sb, "connectionDetails"), "publicKey"), "id");

  return wr_kcond_is(json_object_get(sa, "conditions"), "Ready", "True") ==
             wr_kcond_is(json_object_get(sb, "conditions"), "Ready", "True") &&
         (details_missing(sa) == NULL) == (details_missing(sb) == NULL) &&
         (ia == ib || json_equal(ia, ib));
}

static void on_conn_update(void *ud, json_t *old, json_t *obj) {
  struct op_ctx *x = ud;
  json_t *m = json_object_get(obj, "metadata");
  char key[KEY_MAX];

  obj_key(obj, key, sizeof(key));
  enqueue(x, key);
  if (!same_for_proxies(old, obj))
    op_proxy_enqueue_for_connector(x, json_string_value(json_object_get(m, "namespace")),
                                   json_string_value(json_object_get(m, "name")));
}

static void on_conn_delete(void *ud, json_t *obj, int unknown) {
  struct op_ctx *x = ud;
  json_t *m = json_object_get(obj, "metadata");
  char key[KEY_MAX];

  (void)unknown;
  obj_key(obj, key, sizeof(key));
  op_leases_forget(x->lease_seen, key);
  op_proxy_enqueue_for_connector(x, json_string_value(json_object_get(m, "namespace")),
                                 json_string_value(json_object_get(m, "name")));
}

const struct wr_informer_cbs op_connector_cbs = {on_conn_add, on_conn_update, on_conn_delete, NULL};

/* A Lease is the Connector's of the same name: record what was seen and
 * wake the Connector when its renewal state changed. */
static void lease_seen(struct op_ctx *x, json_t *lease) {
  char key[KEY_MAX];

  obj_key(lease, key, sizeof(key));
  if (op_leases_observe(x->lease_seen, key, lease, op_now_ms(), time(NULL)) == 1)
    enqueue(x, key);
}

static void on_lease_add(void *ud, json_t *obj, int initial) {
  (void)initial;
  lease_seen(ud, obj);
}

static void on_lease_update(void *ud, json_t *old, json_t *obj) {
  (void)old;
  lease_seen(ud, obj);
}

static void on_lease_delete(void *ud, json_t *obj, int unknown) {
  struct op_ctx *x = ud;
  char key[KEY_MAX];

  (void)unknown;
  obj_key(obj, key, sizeof(key));
  op_leases_forget(x->lease_seen, key);
  enqueue(x, key); /* recreate it */
}

const struct wr_informer_cbs op_lease_cbs = {on_lease_add, on_lease_update, on_lease_delete, NULL};

/* A ConnectorClass coming or going changes Accepted of its Connectors. */
static void class_changed(struct op_ctx *x, json_t *cls) {
  const char *name = json_string_value(json_object_get(json_object_get(cls, "metadata"), "name"));
  const char *key;
  json_t *c;

  if (!x->leading || name == NULL)
    return;
  json_object_foreach(wr_informer_objects(x->connectors), key, c) {
    c = wr_informer_get_key(x->connectors, key);
    const char *want =
        json_string_value(json_object_get(json_object_get(c, "spec"), "connectorClassName"));
    if (want != NULL && strcmp(want, name) == 0)
      wr_controller_add(x->connector_ctl, key);
  }
}

static void on_class_add(void *ud, json_t *obj, int initial) {
  if (!initial)
    class_changed(ud, obj);
}

static void on_class_update(void *ud, json_t *old, json_t *obj) {
  (void)old;
  (void)ud;
  (void)obj; /* the class has no field a Connector's status depends on */
}

static void on_class_delete(void *ud, json_t *obj, int unknown) {
  (void)unknown;
  class_changed(ud, obj);
}

const struct wr_informer_cbs op_class_cbs = {on_class_add, on_class_update, on_class_delete, NULL};

/* ---- reconcile ---- */

static void rec_end(struct rec *r) {
  if (r->result == WR_RECONCILE_OK && r->requeue_ms > 0)
    wr_controller_done(r->c, r->key, WR_RECONCILE_REQUEUE, r->requeue_ms);
  else
    wr_controller_done(r->c, r->key, (enum wr_reconcile_result)r->result, 0);
  json_decref(r->conn);
  free(r);
}

/* details_missing names what status.connectionDetails lacks for a tunnel,
 * or returns NULL when it is complete. */
static const char *details_missing(json_t *status) {
  json_t *cd = json_object_get(status, "connectionDetails");
  json_t *pk = json_object_get(cd, "publicKey");
  const char *type = json_string_value(json_object_get(cd, "type"));
  const char *id = json_string_value(json_object_get(pk, "id"));
  const char *relay = json_string_value(json_object_get(pk, "homeRelay"));

  if (cd == NULL)
    return "no connectionDetails yet";
  if (type == NULL || strcmp(type, "PublicKey") != 0)
    return "connectionDetails.type is not PublicKey";
  if (id == NULL || strlen(id) != 64 || strspn(id, "0123456789abcdefABCDEF") != 64)
    return "connectionDetails.publicKey.id is not a 64-digit hex endpoint ID";
  if ((relay == NULL || relay[0] == '\0') && json_array_size(json_object_get(pk, "addresses")) == 0)
    return "connectionDetails.publicKey has neither a homeRelay nor an address";
  return NULL;
}

const char *op_connector_ready(struct op_ctx *x, json_t *conn) {
  json_t *m = json_object_get(conn, "metadata");
  struct op_lease_state ls;
  char key[KEY_MAX];

  if (details_missing(json_object_get(conn, "status")) != NULL)
    return NULL;
  snprintf(key, sizeof(key), "%s/%s", json_string_value(json_object_get(m, "namespace")),
           json_string_value(json_object_get(m, "name")));
  op_leases_state(x->lease_seen, key, op_now_ms(), &ls);
  if (!ls.fresh)
    return NULL;
  return json_string_value(json_object_get(
      json_object_get(json_object_get(json_object_get(conn, "status"), "connectionDetails"),
                      "publicKey"),
      "id"));
}

static void on_status(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  struct rec *r = ud;

  (void)obj;
  if (rv != 0 && !(rv == WR_ERR_REFUSED && st->code == 404)) {
    log_warnx("connector %s: status: %s%s%s", r->key, wr_strerror(rv),
              rv == WR_ERR_REFUSED ? ": " : "", rv == WR_ERR_REFUSED ? st->message : "");
    r->result = WR_RECONCILE_ERROR;
  }
  rec_end(r);
}

static void write_status(struct rec *r) {
  struct op_ctx *x = r->x;
  json_t *meta = json_object_get(r->conn, "metadata"), *status = json_object_get(r->conn, "status");
  json_t *conds = json_deep_copy(json_object_get(status, "conditions")), *patch;
  json_int_t gen = json_integer_value(json_object_get(meta, "generation"));
  const char *ns = json_string_value(json_object_get(meta, "namespace"));
  const char *name = json_string_value(json_object_get(meta, "name"));
  const char *cls =
      json_string_value(json_object_get(json_object_get(r->conn, "spec"), "connectorClassName"));
  const char *missing, *have_ref;
  char path[WR_KCLIENT_PATH_MAX], msg[OP_MSG_MAX];
  struct op_lease_state ls;
  time_t now = time(NULL);
  uint64_t now_ms = op_now_ms();
  int changed = 0, was_ready;

  if (conds == NULL || !json_is_array(conds)) {
    json_decref(conds);
    conds = json_array();
  }
  if (cls != NULL && wr_informer_get(x->classes, NULL, cls) != NULL) {
    snprintf(msg, sizeof(msg), "ConnectorClass %s found", cls);
    changed |= wr_kcond_set(conds, "Accepted", "True", "Accepted", msg, gen, now) == 1;
  } else {
    snprintf(msg, sizeof(msg), "ConnectorClass %.253s not found", cls ? cls : "");
    changed |=
        wr_kcond_set(conds, "Accepted", "False", "ConnectorClassNotFound", msg, gen, now) == 1;
  }
  op_leases_state(x->lease_seen, r->key, now_ms, &ls);
  missing = details_missing(status);
  was_ready = wr_kcond_is(conds, "Ready", "True");
  if (!ls.renewed) {
    snprintf(msg, sizeof(msg), "waiting for the agent to renew Lease %s", name);
    changed |= wr_kcond_set(conds, "Ready", "False", "Pending", msg, gen, now) == 1;
  } else if (ls.released) {
    snprintf(msg, sizeof(msg), "the agent released Lease %s (it stopped)", name);
    changed |= wr_kcond_set(conds, "Ready", "False", "NotReady", msg, gen, now) == 1;
  } else if (!ls.fresh) {
    snprintf(msg, sizeof(msg), "Lease %s not renewed for more than %llds", name,
             (long long)ls.duration_s);
    changed |= wr_kcond_set(conds, "Ready", "False", "NotReady", msg, gen, now) == 1;
  } else if (missing != NULL) {
    changed |= wr_kcond_set(conds, "Ready", "False", "Pending", missing, gen, now) == 1;
  } else {
    changed |=
        wr_kcond_set(conds, "Ready", "True", "Ready", "the agent renews its lease", gen, now) == 1;
  }
  if (ls.fresh)
    r->requeue_ms = ls.expiry_ms - now_ms + 1;
  /* HTTPProxies judge readiness themselves (op_connector_ready) and need
   * not wait for this status write: wake them now */
  if (was_ready != wr_kcond_is(conds, "Ready", "True"))
    op_proxy_enqueue_for_connector(x, ns, name);
  have_ref = json_string_value(json_object_get(json_object_get(status, "leaseRef"), "name"));
  if (have_ref == NULL || strcmp(have_ref, name) != 0)
    changed = 1;
  if (!changed) {
    x->skipped++;
    json_decref(conds);
    rec_end(r);
    return;
  }
  patch = json_pack("{s:{s:o, s:{s:s}}}", "status", "conditions", conds, "leaseRef", "name", name);
  if (patch == NULL || wr_kpath(path, sizeof(path), &OP_RES_CONNECTOR, ns, name, "status") < 0 ||
      wr_kclient_patch(x->kc, path, WR_KPATCH_MERGE, patch, NULL, 0, on_status, r, NULL) < 0) {
    json_decref(patch);
    r->result = WR_RECONCILE_ERROR;
    rec_end(r);
    return;
  }
  x->writes++;
  json_decref(patch);
}

static void on_lease_written(void *ud, int rv, const struct wr_kstatus *st) {
  struct rec *r = ud;

  /* 409: the agent (or a previous run) created it meanwhile: fine */
  if (rv != 0 && !(rv == WR_ERR_REFUSED && st->code == 409)) {
    log_warnx("connector %s: lease: %s%s%s", r->key, wr_strerror(rv),
              rv == WR_ERR_REFUSED ? ": " : "", rv == WR_ERR_REFUSED ? st->message : "");
    r->result = WR_RECONCILE_ERROR;
  }
  write_status(r);
}

static void reconcile(void *ud, wr_controller *c, const char *key) {
  struct op_ctx *x = ud;
  json_t *conn = wr_informer_get_key(x->connectors, key), *meta, *lease;
  const char *ns, *name, *uid;
  struct rec *r;
  int rv;

  if (x->stopping) { /* shutting down: no new writes */
    wr_controller_done(c, key, WR_RECONCILE_OK, 0);
    return;
  }
  meta = json_object_get(conn, "metadata");
  if (conn == NULL || json_object_get(meta, "deletionTimestamp") != NULL) {
    wr_controller_done(c, key, WR_RECONCILE_OK, 0);
    return;
  }
  r = calloc(1, sizeof(*r));
  if (r == NULL) {
    wr_controller_done(c, key, WR_RECONCILE_ERROR, 0);
    return;
  }
  r->x = x;
  r->c = c;
  snprintf(r->key, sizeof(r->key), "%s", key);
  r->conn = json_incref(conn);
  r->result = WR_RECONCILE_OK;
  ns = json_string_value(json_object_get(meta, "namespace"));
  name = json_string_value(json_object_get(meta, "name"));
  uid = json_string_value(json_object_get(meta, "uid"));
  /* The Lease: holder is the agent, which sets renewTime; the operator only
   * creates it (owned by the Connector, so it goes with it). */
  lease =
      json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}, s:[{s:s, s:s, s:s, s:s, s:b, s:b}]}, "
                "s:{s:I}}",
                "apiVersion", "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", name,
                "namespace", ns, "labels", OP_LABEL_MANAGED_BY, OP_MANAGER, "ownerReferences",
                "apiVersion", "networking.datumapis.com/v1alpha1", "kind", "Connector", "name",
                name, "uid", uid ? uid : "", "controller", 1, "blockOwnerDeletion", 1, "spec",
                "leaseDurationSeconds", (json_int_t)x->set.lease_duration_s);
  rv = lease ? op_apply(x, &OP_RES_LEASE, x->leases, lease, NULL, true, on_lease_written, r)
             : WR_ERR_NOMEM;
  json_decref(lease);
  if (rv == OP_APPLY_PENDING)
    return;
  if (rv < 0) {
    log_warnx("connector %s: lease: %s", key, wr_strerror(rv));
    r->result = WR_RECONCILE_ERROR;
  }
  write_status(r);
}

int op_connector_setup(struct op_ctx *x) {
  struct wr_controller_opts o = {.name = "connector", .workers = x->set.workers};

  return wr_controller_new(&x->connector_ctl, x->loop, &o, reconcile, x);
}

void op_connector_enqueue_all(struct op_ctx *x) {
  const char *key;
  json_t *obj;

  json_object_foreach(wr_informer_objects(x->connectors), key, obj) {
    wr_controller_add(x->connector_ctl, key);
  }
}
