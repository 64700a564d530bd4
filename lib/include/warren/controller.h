/*
 * controller.h - a work queue on the libuv loop: keys in, reconciles out
 * (controller-runtime's controller, asynchronous).
 *
 * Keys ("ns/name") are added by event handlers (typically informer
 * callbacks). Up to |workers| reconciles run at once, never two for one
 * key; a reconcile is asynchronous and ends with wr_controller_done(), whose
 * result decides what happens next:
 *   WR_RECONCILE_OK       forget the key's failures;
 *   WR_RECONCILE_ERROR    re-add it rate-limited (5 ms doubling to 1000 s per
 *                         key, and 10 qps / burst 100 overall);
 *   WR_RECONCILE_REQUEUE  forget its failures and re-add it after |after_ms|.
 * A key added while it is being reconciled is reconciled once more after.
 */
#ifndef WARREN_CONTROLLER_H
#define WARREN_CONTROLLER_H

#include <stdint.h>
#include <uv.h>

#include "warren/workqueue.h"

typedef struct wr_controller wr_controller;

enum wr_reconcile_result { WR_RECONCILE_OK, WR_RECONCILE_ERROR, WR_RECONCILE_REQUEUE };

/* reconcile starts work on |key| (owned by the controller, valid until
 * wr_controller_done for it) and later calls wr_controller_done once. */
typedef void (*wr_reconcile_fn)(void *ud, wr_controller *c, const char *key);

struct wr_controller_opts {
  const char *name;        /* for logs */
  unsigned workers;        /* concurrent reconciles; 0: 1 */
  struct wr_wq_config *wq; /* NULL: WR_WQ_CONFIG_DEFAULT */
};

int wr_controller_new(wr_controller **out, uv_loop_t *loop, const struct wr_controller_opts *o,
                      wr_reconcile_fn fn, void *ud);
/* wr_controller_del drops the queue; reconciles still running must not call
 * wr_controller_done afterwards. */
void wr_controller_del(wr_controller *c);

int wr_controller_add(wr_controller *c, const char *key);
int wr_controller_add_after(wr_controller *c, const char *key, uint64_t after_ms);
void wr_controller_done(wr_controller *c, const char *key, enum wr_reconcile_result r,
                        uint64_t after_ms);

struct wr_controller_stats {
  uint64_t reconciles, errors, requeues;
  size_t depth, delayed, active;
};
void wr_controller_stats(const wr_controller *c, struct wr_controller_stats *st);

#endif
