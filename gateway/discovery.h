/*
 * discovery.h - where nodes listen, from the control plane.
 *
 * Watches Connector objects (networking.datumapis.com/v1alpha1, read-only:
 * get, list, watch) in one namespace or all, and gives the pool the UDP
 * addresses each publishes in status.connectionDetails.publicKey for its
 * endpoint ID (gw_pool_set_published). A Connector deleted, or left without
 * usable details, withdraws its addresses; the static directory (--peer,
 * --routes) is the fallback. docs/internals/gateway-discovery.md.
 */
#ifndef WARREN_GW_DISCOVERY_H
#define WARREN_GW_DISCOVERY_H

#include <uv.h>

struct gw_pool;
struct gw_discovery;

/* gw_discovery_new loads the Kubernetes client configuration (|kubeconfig|,
 * or NULL for the default order: $KUBECONFIG, in-cluster, ~/.kube/config)
 * and starts watching the Connectors of |ns| (NULL: all namespaces). The
 * API being unreachable later is retried with backoff; only a missing or
 * invalid configuration fails here. Returns 0 or WR_ERR_* (logged). */
int gw_discovery_new(struct gw_discovery **out, uv_loop_t *loop, struct gw_pool *pool,
                     const char *kubeconfig, const char *ns);
/* gw_discovery_del stops watching; the addresses given to the pool stay. */
void gw_discovery_del(struct gw_discovery *d);

#endif
