/*
 * operator.h - what the operator's controllers share: the API client, the
 * caches, the settings. Built and torn down by manager.c; proxy.c and
 * connector.c reconcile through it.
 */
#ifndef OPERATOR_OPERATOR_H
#define OPERATOR_OPERATOR_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lease.h"
#include "translate.h"
#include "warren/controller.h"
#include "warren/informer.h"
#include "warren/kclient.h"

/* The resources the operator reads and writes. */
extern const struct wr_kres OP_RES_PROXY, OP_RES_CONNECTOR, OP_RES_CLASS, OP_RES_LEASE,
    OP_RES_ROUTE, OP_RES_POLICY;

/* Annotation holding a hash of what the operator last wrote into an
 * object, so that an unchanged desired state costs no request even though
 * the API server defaults fields of what was written. */
#define OP_ANNOT_HASH "networking.datumapis.com/config-hash"
#define OP_FIELD_MANAGER "warren-operator"

struct op_settings {
  const char *namespace; /* watch one namespace; NULL: all */
  struct op_gateway gw;
  int64_t lease_duration_s; /* Leases the operator creates */
  unsigned workers;
};

struct op_ctx {
  uv_loop_t *loop;
  wr_kclient *kc;
  struct op_settings set;
  wr_informer *proxies, *connectors, *classes, *leases, *routes, *policies;
  wr_controller *proxy_ctl, *connector_ctl;
  op_leases *lease_seen;
  json_t *domain_owner; /* "ns/host" -> "ns/name" of the HTTPProxy that registers it */
  bool leading;         /* controllers run only on the leader */
  bool stopping;        /* reconciles end at once: the manager drains its writes */
  uint64_t writes;      /* create/patch/delete requests issued by reconciles */
  uint64_t skipped;     /* writes avoided because nothing changed */
};

/* op_now_ms: monotonic milliseconds (the clock of Lease expiry). */
uint64_t op_now_ms(void);

/* op_hash_json writes a hex digest of |v| (canonical: sorted keys) into
 * |out| (33 bytes). */
void op_hash_json(const json_t *v, char out[33]);

/* Informer callbacks and cache transforms (proxy.c, connector.c); their
 * |ud| is the struct op_ctx. */
extern const struct wr_informer_cbs op_proxy_cbs, op_route_cbs, op_policy_cbs, op_connector_cbs,
    op_lease_cbs, op_class_cbs;
void op_proxy_transform(void *ud, json_t *obj);
void op_owned_transform(void *ud, json_t *obj);
void op_route_transform(void *ud, json_t *obj);

/* Controllers (proxy.c, connector.c). *_setup registers informer indexes
 * and creates the controller; *_on_* are informer callbacks. */
int op_proxy_setup(struct op_ctx *x);
void op_proxy_enqueue_all(struct op_ctx *x);
void op_proxy_enqueue_for_connector(struct op_ctx *x, const char *ns, const char *name);
int op_connector_setup(struct op_ctx *x);
/* op_connector_ready returns the endpoint ID (hex) of Connector |conn| when
 * it is Ready by the same rule its Ready condition follows (a fresh Lease
 * and complete connection details), or NULL: HTTPProxies use it directly so
 * they do not wait for the Connector's status write. */
const char *op_connector_ready(struct op_ctx *x, json_t *conn);
void op_connector_enqueue_all(struct op_ctx *x);

#endif
