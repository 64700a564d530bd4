/*
 * control.h - the agent's side of the control plane: its Connector and its
 * Lease (DESIGN.md §5, issue 5).
 *
 * Given API access and a Connector name, the agent registers (creates the
 * Connector with the configured ConnectorClass, or adopts an existing one
 * unless another node holds it: a different endpoint ID renewing the Lease),
 * publishes its connection details (endpoint ID, discovery mode, home relay,
 * addresses) whenever they change and on a slow refresh, and renews the
 * Lease the operator created for it at a third of its duration, with
 * holderIdentity = its endpoint ID. API failures never stop the tunnels:
 * renewals are retried within a second, so the agent catches up as soon as
 * the API server is back. Stopping releases the Lease (empty holder), which
 * the operator takes as "gone" at once instead of waiting for expiry.
 */
#ifndef WARREN_HB_CONTROL_H
#define WARREN_HB_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HB_PUBLISH_MAX 16 /* the CRD's maxItems for publicKey.addresses */

typedef struct hb_control hb_control;

struct hb_control_opts {
  const char *kubeconfig;  /* NULL: $KUBECONFIG, in-cluster, ~/.kube/config */
  const char *ns;          /* NULL: the kubeconfig's namespace */
  const char *name;        /* the Connector */
  const char *class_name;  /* ConnectorClass of a Connector it creates */
  const char *endpoint_id; /* 64 lowercase hex */
  const char *home_relay;  /* URL, or "" */
  unsigned refresh_s;      /* re-publish details at least this often; 0: 300 */
};

struct hb_control_cbs {
  /* The Connector is ours and its details are published (once). */
  void (*on_registered)(void *ud, const char *ns, const char *name);
  /* Registration cannot succeed (another node holds the Connector, access
   * denied, bad configuration): |why| says what to do. */
  void (*on_fatal)(void *ud, const char *why);
};

int hb_control_new(hb_control **out, uv_loop_t *loop, const struct hb_control_opts *o,
                   const struct hb_control_cbs *cbs, void *ud);
int hb_control_start(hb_control *c);
/* hb_control_set_addrs sets the addresses to publish ("ip:port" pairs as
 * address + port), replacing the previous set; published at once when they
 * differ from what the Connector shows. */
void hb_control_set_addrs(hb_control *c, const char (*ips)[46], size_t n, uint16_t port);
/* hb_control_stop releases the Lease, then runs |done| (also when the
 * release fails: the Lease then expires on its own). */
void hb_control_stop(hb_control *c, void (*done)(void *arg), void *arg);
void hb_control_del(hb_control *c);

/* hb_lease_fresh tells whether a Lease object is held by someone other
 * than |ours| and was renewed less than its duration before |now| (UTC
 * seconds): the test for "another live node holds it". Pure. */
int hb_lease_held_by_other(const void *lease_json, const char *ours, long long now);

#endif
