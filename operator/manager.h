/*
 * manager.h - the operator process: API client, caches, leader election,
 * the two controllers, health probes and metrics, on one libuv loop
 * (controller-runtime's manager).
 */
#ifndef OPERATOR_MANAGER_H
#define OPERATOR_MANAGER_H

#include <stdbool.h>
#include <uv.h>

#include "operator.h"

struct op_manager_opts {
  struct op_settings set;
  const char *kubeconfig;   /* NULL: controller-runtime's order (kconfig.h) */
  bool leader_elect;        /* --leader-elect */
  const char *leader_ns;    /* Lease namespace; NULL: the kubeconfig's namespace */
  const char *leader_name;  /* Lease name, "warren-operator" */
  const char *identity;     /* NULL: hostname + random suffix */
  const char *health_addr;  /* "ip:port" of /healthz and /readyz; NULL: none */
  const char *metrics_addr; /* "ip:port" of /metrics; NULL: none */
};

typedef struct op_manager op_manager;

/* op_manager_new connects nothing yet; op_manager_start loads the API
 * configuration, starts the caches, the election and the servers.
 * Returns 0 or a negative error (logged). */
int op_manager_new(op_manager **out, uv_loop_t *loop, const struct op_manager_opts *o);
int op_manager_start(op_manager *m);
/* op_manager_stop releases leadership (so that a successor takes over at
 * once), then tears everything down; |done| runs when it has. */
void op_manager_stop(op_manager *m, void (*done)(void *arg), void *arg);
void op_manager_del(op_manager *m);
/* op_manager_failed: leadership was lost or the start failed (exit 1). */
bool op_manager_failed(const op_manager *m);

#endif
