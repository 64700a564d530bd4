/*
 * leader.h - leader election on a coordination.k8s.io/v1 Lease, as
 * client-go's leaderelection package does it.
 *
 * Every retry period a candidate reads the Lease. It takes the Lease when
 * nobody holds it, when the holder released it, or when the record has not
 * changed for a whole lease duration as measured by the candidate's own
 * monotonic clock (never by comparing the holder's timestamps with ours, so
 * clock skew between nodes does not matter). Writes are conditional on the
 * resourceVersion read, so two candidates never both win. The leader renews
 * every retry period and gives up leadership when it could not renew for
 * the renew deadline. Releasing (on shutdown) empties holderIdentity so a
 * successor takes over at its next retry instead of after the lease
 * duration.
 */
#ifndef WARREN_LEADER_H
#define WARREN_LEADER_H

#include <uv.h>

#include "warren/kclient.h"

typedef struct wr_leader wr_leader;

struct wr_leader_opts {
  const char *ns;       /* namespace of the Lease */
  const char *name;     /* Lease name */
  const char *identity; /* this candidate (pod name, hostname_uuid, ...) */
  unsigned lease_ms;    /* 0: 15 s */
  unsigned renew_ms;    /* renew deadline; 0: 10 s */
  unsigned retry_ms;    /* 0: 2 s */
};

struct wr_leader_cbs {
  void (*on_started)(void *ud); /* we lead */
  void (*on_stopped)(void *ud); /* we lost the lease (or released it) */
  /* The holder changed (|identity| may be ours; "" when released). */
  void (*on_new_leader)(void *ud, const char *identity);
  /* wr_leader_release finished (the Lease no longer names us, or the
   * attempt failed: we stopped renewing either way). */
  void (*on_released)(void *ud);
};

int wr_leader_new(wr_leader **out, uv_loop_t *loop, wr_kclient *kc, const struct wr_leader_opts *o,
                  const struct wr_leader_cbs *cbs, void *ud);
int wr_leader_start(wr_leader *l);
int wr_leader_is_leader(const wr_leader *l);
/* wr_leader_release stops campaigning; a leader empties the Lease's
 * holder first. on_released runs when done. */
void wr_leader_release(wr_leader *l);
/* wr_leader_del frees |l| (no more callbacks). */
void wr_leader_del(wr_leader *l);

#endif
