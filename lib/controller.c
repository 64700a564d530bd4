/*
 * controller.c - the work queue driven by the loop (see controller.h).
 *
 * pump() hands ready keys to reconcile while fewer than |workers| run, then
 * arms the timer for the next delayed key. It runs from a uv_idle handle
 * (started whenever something may have become ready: an add or a done) and
 * from the timer, never from inside the caller's stack, so a reconcile that
 * finishes synchronously does not recurse.
 */
#include <stdlib.h>
#include <string.h>

#include "warren/controller.h"
#include "warren/err.h"
#include "warren/log.h"

struct wr_controller {
  uv_loop_t *loop;
  wr_wq *q;
  uv_timer_t timer;
  uv_idle_t kick;
  wr_reconcile_fn fn;
  void *ud;
  char *name;
  unsigned workers, active;
  int handles; /* open uv handles, for the deferred free */
  int closing;
  struct wr_controller_stats st;
};

static void on_timer(uv_timer_t *t);

static void pump(wr_controller *c) {
  uint64_t now = uv_now(c->loop), next;
  const char *key;

  while (!c->closing && c->active < c->workers && (key = wr_wq_get(c->q, now)) != NULL) {
    c->active++;
    c->st.reconciles++;
    c->fn(c->ud, c, key);
  }
  if (c->closing)
    return;
  next = wr_wq_next_deadline(c->q);
  if (next == WR_WQ_NEVER)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timer, next > now ? next - now : 0, 0);
}

static void on_timer(uv_timer_t *t) {
  pump(t->data);
}

static void on_kick(uv_idle_t *h) {
  uv_idle_stop(h);
  pump(h->data);
}

static void kick(wr_controller *c) {
  if (!c->closing)
    uv_idle_start(&c->kick, on_kick);
}

int wr_controller_new(wr_controller **out, uv_loop_t *loop, const struct wr_controller_opts *o,
                      wr_reconcile_fn fn, void *ud) {
  wr_controller *c;
  int rv;

  if (fn == NULL)
    return WR_ERR_INVAL;
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return WR_ERR_NOMEM;
  rv = wr_wq_new(&c->q, o != NULL ? o->wq : NULL);
  if (rv < 0) {
    free(c);
    return rv;
  }
  c->name = strdup(o != NULL && o->name != NULL ? o->name : "controller");
  if (c->name == NULL) {
    wr_wq_del(c->q);
    free(c);
    return WR_ERR_NOMEM;
  }
  c->loop = loop;
  c->fn = fn;
  c->ud = ud;
  c->workers = o != NULL && o->workers > 0 ? o->workers : 1;
  uv_timer_init(loop, &c->timer);
  uv_idle_init(loop, &c->kick);
  c->timer.data = c->kick.data = c;
  c->handles = 2;
  *out = c;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  wr_controller *c = h->data;

  if (--c->handles > 0)
    return;
  wr_wq_del(c->q);
  free(c->name);
  free(c);
}

void wr_controller_del(wr_controller *c) {
  if (c == NULL || c->closing)
    return;
  c->closing = 1;
  wr_wq_shutdown(c->q);
  uv_close((uv_handle_t *)&c->timer, on_closed);
  uv_close((uv_handle_t *)&c->kick, on_closed);
}

int wr_controller_add(wr_controller *c, const char *key) {
  int rv = wr_wq_add(c->q, key);

  if (rv == 0)
    kick(c);
  else
    log_warnx("%s: cannot queue %s: %s", c->name, key, wr_strerror(rv));
  return rv;
}

int wr_controller_add_after(wr_controller *c, const char *key, uint64_t after_ms) {
  int rv = wr_wq_add_after(c->q, key, after_ms, uv_now(c->loop));

  if (rv == 0)
    kick(c);
  else
    log_warnx("%s: cannot queue %s: %s", c->name, key, wr_strerror(rv));
  return rv;
}

void wr_controller_done(wr_controller *c, const char *key, enum wr_reconcile_result r,
                        uint64_t after_ms) {
  uint64_t now = uv_now(c->loop);
  char *k;

  if (c->closing)
    return;
  /* |key| may be the queue's own string, which wr_wq_done can free. */
  k = strdup(key);
  if (k == NULL)
    return;
  switch (r) {
  case WR_RECONCILE_OK:
    wr_wq_forget(c->q, k);
    break;
  case WR_RECONCILE_ERROR:
    c->st.errors++;
    log_debug("%s: %s failed %u times, backing off", c->name, k, wr_wq_num_requeues(c->q, k) + 1);
    (void)wr_wq_add_rate_limited(c->q, k, now);
    break;
  case WR_RECONCILE_REQUEUE:
    c->st.requeues++;
    wr_wq_forget(c->q, k);
    (void)wr_wq_add_after(c->q, k, after_ms, now);
    break;
  }
  if (wr_wq_done(c->q, k) == 0 && c->active > 0)
    c->active--;
  free(k);
  kick(c);
}

void wr_controller_stats(const wr_controller *c, struct wr_controller_stats *st) {
  *st = c->st;
  st->depth = wr_wq_len(c->q);
  st->delayed = wr_wq_delayed(c->q);
  st->active = c->active;
}
