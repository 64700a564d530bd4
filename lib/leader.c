/*
 * leader.c - leader election on a Lease (see leader.h).
 *
 * One timer drives the cycle: every retry period, GET the Lease, then
 * create it (404) or PUT it conditionally on its resourceVersion when it is
 * ours to take or renew. |observed_*| remember the last record seen and the
 * local monotonic time it was first seen: a foreign holder's lease expires
 * lease_ms after its record last changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "warren/err.h"
#include "warren/leader.h"
#include "warren/log.h"

static const struct wr_kres leases = {"coordination.k8s.io", "v1", "leases"};

struct wr_leader {
  uv_loop_t *loop;
  wr_kclient *kc;
  struct wr_leader_opts o;
  struct wr_leader_cbs cbs;
  void *ud;
  char *ns, *name, *identity;
  char path[WR_KCLIENT_PATH_MAX];  /* the Lease */
  char cpath[WR_KCLIENT_PATH_MAX]; /* the collection, for create */
  uv_timer_t timer;
  wr_kcall *call;
  char observed_rv[64];
  char *observed_holder;
  uint64_t observed_time; /* uv_now when observed_rv was first seen */
  uint64_t last_renew;    /* uv_now of our last successful write as leader */
  json_t *last;           /* the Lease as we last wrote it (for release) */
  unsigned started : 1, leading : 1, releasing : 1, closing : 1;
};

static void cycle(wr_leader *l);

static void micro_time(char *buf, size_t len) {
  struct timeval tv;
  struct tm tm;
  char base[32];

  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, len, "%s.%06ldZ", base, (long)tv.tv_usec);
}

static void on_timer(uv_timer_t *t) {
  cycle(t->data);
}

static void schedule(wr_leader *l, uint64_t ms) {
  if (!l->closing && !l->releasing)
    uv_timer_start(&l->timer, on_timer, ms, 0);
}

static void set_holder(wr_leader *l, const char *holder) {
  if (l->observed_holder != NULL && strcmp(l->observed_holder, holder) == 0)
    return;
  free(l->observed_holder);
  l->observed_holder = strdup(holder);
  if (l->cbs.on_new_leader != NULL)
    l->cbs.on_new_leader(l->ud, holder);
}

static void lose(wr_leader *l, const char *why) {
  if (!l->leading)
    return;
  l->leading = 0;
  log_warnx("leader %s/%s: %s lost the lease: %s", l->ns, l->name, l->identity, why);
  if (l->cbs.on_stopped != NULL)
    l->cbs.on_stopped(l->ud);
}

/* write_failed: a leader that could not renew within the deadline steps down. */
static void write_failed(wr_leader *l, const char *why) {
  if (l->leading && uv_now(l->loop) - l->last_renew >= l->o.renew_ms)
    lose(l, why);
}

static json_t *lease_spec(const char *holder, json_t *old_spec, int lease_s) {
  char now[40];
  json_t *spec = json_is_object(old_spec) ? json_deep_copy(old_spec) : json_object();
  const char *old_holder = json_string_value(json_object_get(spec, "holderIdentity"));
  json_int_t transitions = json_integer_value(json_object_get(spec, "leaseTransitions"));

  if (spec == NULL)
    return NULL;
  micro_time(now, sizeof(now));
  if (holder[0] != '\0' && (old_holder == NULL || strcmp(old_holder, holder) != 0)) {
    json_object_set_new(spec, "acquireTime", json_string(now));
    if (old_holder != NULL && old_holder[0] != '\0')
      transitions++;
  }
  if (holder[0] == '\0')
    json_object_set_new(spec, "acquireTime", json_string(now));
  json_object_set_new(spec, "holderIdentity", json_string(holder));
  json_object_set_new(spec, "leaseDurationSeconds", json_integer(lease_s));
  json_object_set_new(spec, "renewTime", json_string(now));
  json_object_set_new(spec, "leaseTransitions", json_integer(transitions));
  return spec;
}

static void on_written(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  wr_leader *l = ud;
  const char *orv;

  l->call = NULL;
  if (rv != 0) {
    log_debug("leader %s/%s: write: %s %d %s", l->ns, l->name, wr_strerror(rv), st->code,
              st->reason);
    write_failed(l, rv == WR_ERR_REFUSED ? st->reason : wr_strerror(rv));
    schedule(l, l->o.retry_ms);
    return;
  }
  orv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
  snprintf(l->observed_rv, sizeof(l->observed_rv), "%s", orv != NULL ? orv : "");
  l->observed_time = l->last_renew = uv_now(l->loop);
  json_decref(l->last);
  l->last = json_incref(obj);
  set_holder(l, l->identity);
  if (!l->leading) {
    l->leading = 1;
    log_info("leader %s/%s: %s is the leader", l->ns, l->name, l->identity);
    if (l->cbs.on_started != NULL)
      l->cbs.on_started(l->ud);
  }
  schedule(l, l->o.retry_ms);
}

static void on_got(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  wr_leader *l = ud;
  json_t *spec, *lease;
  const char *holder, *orv;
  uint64_t now = uv_now(l->loop);
  int r;

  l->call = NULL;
  if (rv == WR_ERR_REFUSED && st->code == 404) {
    lease = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "coordination.k8s.io/v1", "kind",
                      "Lease", "metadata", "name", l->name, "namespace", l->ns);
    spec = lease != NULL ? lease_spec(l->identity, NULL, (int)(l->o.lease_ms / 1000)) : NULL;
    if (spec == NULL || json_object_set_new(lease, "spec", spec) < 0) {
      json_decref(lease);
      schedule(l, l->o.retry_ms);
      return;
    }
    r = wr_kclient_create(l->kc, l->cpath, lease, on_written, l, &l->call);
    json_decref(lease);
    if (r < 0)
      schedule(l, l->o.retry_ms);
    return;
  }
  if (rv != 0) {
    log_debug("leader %s/%s: get: %s %d %s", l->ns, l->name, wr_strerror(rv), st->code, st->reason);
    write_failed(l, rv == WR_ERR_REFUSED ? st->reason : wr_strerror(rv));
    schedule(l, l->o.retry_ms);
    return;
  }
  spec = json_object_get(obj, "spec");
  holder = json_string_value(json_object_get(spec, "holderIdentity"));
  if (holder == NULL)
    holder = "";
  orv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
  if (orv == NULL)
    orv = "";
  if (strcmp(orv, l->observed_rv) != 0) {
    snprintf(l->observed_rv, sizeof(l->observed_rv), "%s", orv);
    l->observed_time = now;
    set_holder(l, holder);
  }
  if (holder[0] != '\0' && strcmp(holder, l->identity) != 0 &&
      now < l->observed_time + l->o.lease_ms) {
    /* Someone else holds a live lease. */
    lose(l, "another candidate holds it");
    schedule(l, l->o.retry_ms);
    return;
  }
  lease = json_deep_copy(obj);
  spec = lease != NULL ? lease_spec(l->identity, spec, (int)(l->o.lease_ms / 1000)) : NULL;
  if (spec == NULL || json_object_set_new(lease, "spec", spec) < 0) {
    json_decref(lease);
    schedule(l, l->o.retry_ms);
    return;
  }
  /* PUT carries the resourceVersion read: a concurrent writer makes it 409. */
  r = wr_kclient_update(l->kc, l->path, lease, on_written, l, &l->call);
  json_decref(lease);
  if (r < 0)
    schedule(l, l->o.retry_ms);
}

static void cycle(wr_leader *l) {
  if (l->closing || l->releasing || l->call != NULL)
    return;
  if (wr_kclient_get(l->kc, l->path, on_got, l, &l->call) < 0)
    schedule(l, l->o.retry_ms);
}

int wr_leader_new(wr_leader **out, uv_loop_t *loop, wr_kclient *kc, const struct wr_leader_opts *o,
                  const struct wr_leader_cbs *cbs, void *ud) {
  wr_leader *l;

  if (o->ns == NULL || o->name == NULL || o->identity == NULL || o->identity[0] == '\0')
    return WR_ERR_INVAL;
  l = calloc(1, sizeof(*l));
  if (l == NULL)
    return WR_ERR_NOMEM;
  l->loop = loop;
  l->kc = kc;
  l->o = *o;
  if (l->o.lease_ms == 0)
    l->o.lease_ms = 15000;
  if (l->o.renew_ms == 0)
    l->o.renew_ms = 10000;
  if (l->o.retry_ms == 0)
    l->o.retry_ms = 2000;
  if (cbs != NULL)
    l->cbs = *cbs;
  l->ud = ud;
  l->ns = strdup(o->ns);
  l->name = strdup(o->name);
  l->identity = strdup(o->identity);
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  if (l->ns == NULL || l->name == NULL || l->identity == NULL || l->o.renew_ms >= l->o.lease_ms ||
      l->o.retry_ms >= l->o.renew_ms ||
      wr_kpath(l->path, sizeof(l->path), &leases, l->ns, l->name, NULL) < 0 ||
      wr_kpath(l->cpath, sizeof(l->cpath), &leases, l->ns, NULL, NULL) < 0) {
    int bad = l->ns != NULL && l->name != NULL && l->identity != NULL;

    wr_leader_del(l);
    return bad ? WR_ERR_INVAL : WR_ERR_NOMEM;
  }
  l->o.ns = l->o.name = l->o.identity = NULL;
  *out = l;
  return 0;
}

int wr_leader_start(wr_leader *l) {
  if (l->started || l->closing)
    return WR_ERR_INVAL;
  l->started = 1;
  cycle(l);
  return 0;
}

int wr_leader_is_leader(const wr_leader *l) {
  return l->leading;
}

static void on_released(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  wr_leader *l = ud;

  (void)obj;
  l->call = NULL;
  if (rv != 0)
    log_warnx("leader %s/%s: release: %s %d %s", l->ns, l->name, wr_strerror(rv), st->code,
              st->reason);
  else
    log_info("leader %s/%s: %s released the lease", l->ns, l->name, l->identity);
  lose(l, "released");
  if (l->cbs.on_released != NULL)
    l->cbs.on_released(l->ud);
}

void wr_leader_release(wr_leader *l) {
  json_t *lease, *spec;

  if (l->releasing || l->closing)
    return;
  l->releasing = 1;
  uv_timer_stop(&l->timer);
  if (l->call != NULL) {
    wr_kcall_cancel(l->call);
    l->call = NULL;
  }
  if (!l->leading || l->last == NULL) {
    if (l->cbs.on_released != NULL)
      l->cbs.on_released(l->ud);
    return;
  }
  /* As client-go: holder "", lease 1 s, so that a successor need not wait. */
  lease = json_deep_copy(l->last);
  spec = lease != NULL ? lease_spec("", json_object_get(l->last, "spec"), 1) : NULL;
  if (spec == NULL || json_object_set_new(lease, "spec", spec) < 0 ||
      wr_kclient_update(l->kc, l->path, lease, on_released, l, &l->call) < 0) {
    json_decref(lease);
    lose(l, "release failed");
    if (l->cbs.on_released != NULL)
      l->cbs.on_released(l->ud);
    return;
  }
  json_decref(lease);
}

static void on_closed(uv_handle_t *h) {
  wr_leader *l = h->data;

  json_decref(l->last);
  free(l->observed_holder);
  free(l->ns);
  free(l->name);
  free(l->identity);
  free(l);
}

void wr_leader_del(wr_leader *l) {
  if (l == NULL || l->closing)
    return;
  l->closing = 1;
  if (l->call != NULL)
    wr_kcall_cancel(l->call);
  l->call = NULL;
  uv_close((uv_handle_t *)&l->timer, on_closed);
}
