/*
 * lease.h - when does a Connector's Lease expire, on the operator's clock.
 *
 * The agent renews its Lease by writing spec.renewTime with *its* wall
 * clock, which may be minutes off on a laptop. So freshness is measured as
 * leader election measures it: the Lease is fresh for leaseDurationSeconds
 * after the operator *saw* renewTime change, on the operator's monotonic
 * clock. Only a Lease seen for the first time (the operator just started)
 * is dated from its renewTime against the operator's wall clock, because
 * nothing better is known; from the next renewal on, skew no longer
 * matters. No I/O: times come in as arguments.
 */
#ifndef OPERATOR_LEASE_H
#define OPERATOR_LEASE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

typedef struct op_leases op_leases;

struct op_lease_state {
  bool renewed;       /* renewTime was ever set */
  bool released;      /* renewed, then its holder emptied it: the agent stopped */
  bool fresh;         /* renewed and not expired at |now_ms| */
  uint64_t expiry_ms; /* monotonic ms when it expires (renewed only) */
  int64_t duration_s; /* leaseDurationSeconds in effect */
};

int op_leases_new(op_leases **out, int64_t default_duration_s);
void op_leases_del(op_leases *l);

/* op_leases_observe records Lease object |lease| under |key| ("ns/name")
 * as seen at |now_ms| (monotonic) / |wall| (UTC seconds). Returns 1 when
 * its renewal state changed (renewTime, duration, or the holder emptied or
 * set), 0 when not, or WR_ERR_NOMEM. A renewed Lease whose holderIdentity
 * is empty was released: not fresh, whatever its renewTime. */
int op_leases_observe(op_leases *l, const char *key, const json_t *lease, uint64_t now_ms,
                      time_t wall);
void op_leases_forget(op_leases *l, const char *key);
/* op_leases_state tells what is known of |key| at |now_ms|. Unknown keys
 * are neither renewed nor fresh. */
void op_leases_state(const op_leases *l, const char *key, uint64_t now_ms,
                     struct op_lease_state *st);

#endif
