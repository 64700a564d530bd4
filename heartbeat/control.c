/*
 * control.c - the agent's Connector and Lease (control.h).
 *
 * A small state machine on the loop, one API call at a time:
 *
 *   REGISTER  GET the Connector; 404: create it; another node's live Lease: fatal
 *   PUBLISH   merge-patch status.connectionDetails when it differs
 *   LEASE     GET the Lease (the operator creates it; 404: look again in 1 s)
 *   RENEW     merge-patch spec.{holderIdentity, renewTime} every duration / 3
 *
 * Failures of PUBLISH/LEASE/RENEW are retried after 0.25 s doubling to 1 s:
 * an outage costs at most a second once the API server answers again, and
 * the data plane never depends on any of it.
 */
#include "control.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "warren/err.h"
#include "warren/kclient.h"
#include "warren/kcond.h"
#include "warren/kconfig.h"
#include "warren/log.h"

#define REFRESH_S_DEFAULT 300
#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 1000
#define LEASE_WAIT_MS 1000
#define STOP_WAIT_MS 2000 /* a stop waits this long for a call in flight */
#define NAME_MAX_LEN 253

static const struct wr_kres CONNECTORS = {"networking.datumapis.com", "v1alpha1", "connectors"};
static const struct wr_kres LEASES = {"coordination.k8s.io", "v1", "leases"};

enum state { S_IDLE, S_REGISTER, S_PUBLISH, S_LEASE, S_RENEW, S_STOPPING, S_DONE, S_FATAL };

struct hb_control {
  uv_loop_t *loop;
  struct hb_control_opts o;
  struct hb_control_cbs cbs;
  void *ud;
  struct wr_kconfig kcfg;
  wr_kclient *kc;
  uv_timer_t timer;
  enum state st;
  char ns[64], name[NAME_MAX_LEN + 1], lease[NAME_MAX_LEN + 1];
  json_t *addrs;      /* desired publicKey.addresses */
  json_t *published;  /* connectionDetails last seen on the Connector */
  uint64_t retry_ms;  /* current retry delay */
  int64_t duration_s; /* of the Lease */
  uint64_t refreshed; /* loop ms of the last read of the Connector */
  unsigned registered : 1, busy : 1, dirty : 1, held : 1;
  void (*stop_done)(void *arg);
  void *stop_arg;
};

static void step(hb_control *c);
static void release(hb_control *c);

static void now_micro(char buf[32]) {
  struct timeval tv;
  struct tm tm;

  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  strftime(buf, 21, "%Y-%m-%dT%H:%M:%S", &tm); /* 19 chars for any year < 10000 */
  snprintf(buf + 19, 13, ".%06ldZ", (long)tv.tv_usec % 1000000);
}

static void give_up(hb_control *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void give_up(hb_control *c, const char *fmt, ...) {
  char why[512];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(why, sizeof(why), fmt, ap);
  va_end(ap);
  c->st = S_FATAL;
  uv_timer_stop(&c->timer);
  if (c->cbs.on_fatal != NULL)
    c->cbs.on_fatal(c->ud, why);
}

static void on_timer(uv_timer_t *t) {
  hb_control *c = t->data;

  if (c->st == S_STOPPING) { /* the call in flight did not end in time: leave it */
    log_warnx("connector %s/%s: API not answering; the Lease will expire on its own", c->ns,
              c->name);
    c->st = S_DONE;
    if (c->stop_done != NULL)
      c->stop_done(c->stop_arg);
    return;
  }
  step(c);
}

static void after(hb_control *c, uint64_t ms) {
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* retry schedules the current state again after a capped backoff. */
static void retry(hb_control *c, const char *what, int rv, const struct wr_kstatus *st) {
  log_warnx("connector %s/%s: %s: %s%s%s; retrying", c->ns, c->name, what, wr_strerror(rv),
            rv == WR_ERR_REFUSED ? ": " : "", rv == WR_ERR_REFUSED ? st->message : "");
  c->retry_ms = c->retry_ms == 0
                    ? RETRY_MIN_MS
                    : (c->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : c->retry_ms * 2);
  after(c, c->retry_ms);
}

/* refused tells whether an answer means "this will never work": the agent
 * reports it instead of retrying forever in silence. */
static int refused(int rv, const struct wr_kstatus *st) {
  return rv == WR_ERR_REFUSED && (st->code == 401 || st->code == 403 || st->code == 422);
}

int hb_lease_held_by_other(const void *lease_json, const char *ours, long long now) {
  const json_t *spec = json_object_get((const json_t *)lease_json, "spec");
  const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
  const char *rt = json_string_value(json_object_get(spec, "renewTime"));
  json_int_t dur = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
  time_t t;

  if (holder == NULL || holder[0] == '\0' || (ours != NULL && strcmp(holder, ours) == 0))
    return 0;
  if (rt == NULL || wr_kcond_parse_time(rt, &t) != 0 || dur <= 0)
    return 0;
  return (long long)t + dur > now;
}

/* ---- publish ---- */

static json_t *desired_details(hb_control *c) {
  return json_pack("{s:s, s:{s:s, s:s, s:s, s:O}}", "type", "PublicKey", "publicKey", "id",
                   c->o.endpoint_id, "discoveryMode", "DNS", "homeRelay",
                   c->o.home_relay ? c->o.home_relay : "", "addresses", c->addrs);
}

static void on_published(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  hb_control *c = ud;

  c->busy = 0;
  if (c->st == S_STOPPING) {
    release(c); /* the stop waited for this call: no renewal can land after the release */
    return;
  }
  if (c->st == S_STOPPING || c->st == S_DONE)
    return;
  if (rv != 0) {
    if (refused(rv, st)) {
      give_up(c, "cannot write the status of Connector %s/%s: %s", c->ns, c->name, st->message);
      return;
    }
    retry(c, "publish", rv, st);
    return;
  }
  c->retry_ms = 0;
  json_decref(c->published);
  c->published = json_incref(json_object_get(json_object_get(obj, "status"), "connectionDetails"));
  log_info("connector %s/%s: published %zu address(es)", c->ns, c->name, json_array_size(c->addrs));
  if (!c->registered) {
    c->registered = 1;
    if (c->cbs.on_registered != NULL)
      c->cbs.on_registered(c->ud, c->ns, c->name);
  }
  if (c->st == S_PUBLISH)
    c->st = S_LEASE;
  step(c);
}

static void publish(hb_control *c) {
  char path[WR_KCLIENT_PATH_MAX];
  json_t *want = desired_details(c), *patch;

  if (want == NULL)
    return;
  if (c->published != NULL && json_equal(want, c->published)) {
    json_decref(want);
    c->dirty = 0;
    if (c->st == S_PUBLISH)
      c->st = S_LEASE;
    if (!c->registered) {
      c->registered = 1;
      if (c->cbs.on_registered != NULL)
        c->cbs.on_registered(c->ud, c->ns, c->name);
    }
    step(c);
    return;
  }
  c->dirty = 0;
  patch = json_pack("{s:{s:o}}", "status", "connectionDetails", want);
  if (patch == NULL || wr_kpath(path, sizeof(path), &CONNECTORS, c->ns, c->name, "status") < 0 ||
      wr_kclient_patch(c->kc, path, WR_KPATCH_MERGE, patch, NULL, 0, on_published, c, NULL) < 0) {
    json_decref(patch);
    after(c, RETRY_MAX_MS);
    return;
  }
  c->busy = 1;
  json_decref(patch);
}

/* ---- register ---- */

static void on_holder_lease(void *ud, int rv, json_t *obj, const struct wr_kstatus *st);

static void adopt(hb_control *c, json_t *conn) {
  json_t *status = json_object_get(conn, "status");
  const char *lease =
      json_string_value(json_object_get(json_object_get(status, "leaseRef"), "name"));
  const char *id = json_string_value(json_object_get(
      json_object_get(json_object_get(status, "connectionDetails"), "publicKey"), "id"));
  char path[WR_KCLIENT_PATH_MAX];

  snprintf(c->lease, sizeof(c->lease), "%s", lease && lease[0] ? lease : c->name);
  json_decref(c->published);
  c->published = json_incref(json_object_get(status, "connectionDetails"));
  c->refreshed = uv_now(c->loop);
  if (id == NULL || strcmp(id, c->o.endpoint_id) == 0) {
    c->st = S_PUBLISH;
    step(c);
    return;
  }
  /* another endpoint ID published it: is that node alive? */
  if (wr_kpath(path, sizeof(path), &LEASES, c->ns, c->lease, NULL) < 0 ||
      wr_kclient_get(c->kc, path, on_holder_lease, c, NULL) < 0) {
    after(c, RETRY_MAX_MS);
    return;
  }
  c->busy = 1;
}

static void on_holder_lease(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  hb_control *c = ud;

  c->busy = 0;
  if (c->st == S_STOPPING) {
    release(c); /* the stop waited for this call: no renewal can land after the release */
    return;
  }
  if (c->st != S_REGISTER)
    return;
  if (rv != 0 && !(rv == WR_ERR_REFUSED && st->code == 404)) {
    retry(c, "read lease", rv, st);
    return;
  }
  if (rv == 0 && hb_lease_held_by_other(obj, c->o.endpoint_id, (long long)time(NULL))) {
    give_up(c,
            "Connector %s/%s is held by another node (endpoint %.16s..., Lease %s renewed "
            "recently): refusing to take it over; use another --connector name or stop that node",
            c->ns, c->name,
            json_string_value(json_object_get(json_object_get(obj, "spec"), "holderIdentity")),
            c->lease);
    return;
  }
  log_info("connector %s/%s: adopting it (its previous node is gone)", c->ns, c->name);
  c->st = S_PUBLISH;
  step(c);
}

static void on_created(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  hb_control *c = ud;

  c->busy = 0;
  if (c->st == S_STOPPING) {
    release(c); /* the stop waited for this call: no renewal can land after the release */
    return;
  }
  if (c->st != S_REGISTER)
    return;
  if (rv == 0) {
    log_info("connector %s/%s: created (class %s)", c->ns, c->name, c->o.class_name);
    adopt(c, obj);
  } else if (rv == WR_ERR_REFUSED && st->code == 409) {
    step(c); /* someone created it meanwhile: read it */
  } else if (refused(rv, st)) {
    give_up(c, "cannot create Connector %s/%s: %s", c->ns, c->name, st->message);
  } else {
    retry(c, "create", rv, st);
  }
}

static void on_connector(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  hb_control *c = ud;
  char path[WR_KCLIENT_PATH_MAX];
  json_t *body;

  c->busy = 0;
  if (c->st == S_STOPPING) {
    release(c); /* the stop waited for this call: no renewal can land after the release */
    return;
  }
  if (c->st != S_REGISTER && c->st != S_RENEW)
    return;
  if (rv == 0) {
    c->retry_ms = 0;
    if (c->st == S_REGISTER) {
      adopt(c, obj);
    } else { /* the slow refresh: re-publish if someone changed it */
      json_decref(c->published);
      c->published =
          json_incref(json_object_get(json_object_get(obj, "status"), "connectionDetails"));
      c->refreshed = uv_now(c->loop);
      c->dirty = 1;
      step(c);
    }
    return;
  }
  if (rv == WR_ERR_REFUSED && st->code == 404) {
    if (c->st == S_RENEW)
      c->st = S_REGISTER; /* deleted under us: register again */
    body = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion",
                     "networking.datumapis.com/v1alpha1", "kind", "Connector", "metadata", "name",
                     c->name, "namespace", c->ns, "spec", "connectorClassName", c->o.class_name);
    if (body == NULL || wr_kpath(path, sizeof(path), &CONNECTORS, c->ns, NULL, NULL) < 0 ||
        wr_kclient_create(c->kc, path, body, on_created, c, NULL) < 0) {
      json_decref(body);
      after(c, RETRY_MAX_MS);
      return;
    }
    json_decref(body);
    c->busy = 1;
    return;
  }
  if (refused(rv, st)) {
    give_up(c, "cannot read Connector %s/%s: %s", c->ns, c->name, st->message);
    return;
  }
  retry(c, "read connector", rv, st);
}

static void read_connector(hb_control *c) {
  char path[WR_KCLIENT_PATH_MAX];

  if (wr_kpath(path, sizeof(path), &CONNECTORS, c->ns, c->name, NULL) < 0 ||
      wr_kclient_get(c->kc, path, on_connector, c, NULL) < 0) {
    after(c, RETRY_MAX_MS);
    return;
  }
  c->busy = 1;
}

/* ---- lease ---- */

static void on_renewed(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  hb_control *c = ud;
  json_int_t d;

  c->busy = 0;
  if (c->st == S_STOPPING) {
    release(c); /* the stop waited for this call: no renewal can land after the release */
    return;
  }
  if (c->st != S_RENEW && c->st != S_LEASE)
    return;
  if (rv != 0) {
    if (rv == WR_ERR_REFUSED && st->code == 404) {
      c->st = S_LEASE; /* gone (Connector re-created?): wait for the new one */
      after(c, LEASE_WAIT_MS);
      return;
    }
    retry(c, "renew lease", rv, st);
    return;
  }
  if (c->st == S_LEASE)
    log_info("connector %s/%s: renewing Lease %s", c->ns, c->name, c->lease);
  c->held = 1;
  c->retry_ms = 0;
  c->st = S_RENEW;
  d = json_integer_value(json_object_get(json_object_get(obj, "spec"), "leaseDurationSeconds"));
  c->duration_s = d > 0 && d <= 3600 ? d : 30;
  if (c->dirty) {
    step(c);
    return;
  }
  after(c, (uint64_t)c->duration_s * 1000 / 3);
}

static void renew(hb_control *c) {
  char path[WR_KCLIENT_PATH_MAX], now[32];
  json_t *patch;

  now_micro(now);
  patch = json_pack("{s:{s:s, s:s}}", "spec", "holderIdentity", c->o.endpoint_id, "renewTime", now);
  if (patch == NULL || wr_kpath(path, sizeof(path), &LEASES, c->ns, c->lease, NULL) < 0 ||
      wr_kclient_patch(c->kc, path, WR_KPATCH_MERGE, patch, NULL, 0, on_renewed, c, NULL) < 0) {
    json_decref(patch);
    after(c, RETRY_MAX_MS);
    return;
  }
  json_decref(patch);
  c->busy = 1;
}

/* step does what the state asks, unless a call is on its way. */
static void step(hb_control *c) {
  uv_timer_stop(&c->timer);
  if (c->busy)
    return;
  switch (c->st) {
  case S_REGISTER:
    read_connector(c);
    break;
  case S_PUBLISH:
    publish(c);
    break;
  case S_LEASE:
    /* addresses that changed meanwhile go out first; then the renewal finds
     * out whether the operator created the Lease yet */
    if (c->dirty)
      publish(c);
    else
      renew(c);
    break;
  case S_RENEW:
    if (c->dirty) {
      publish(c);
    } else if (uv_now(c->loop) - c->refreshed >= (uint64_t)c->o.refresh_s * 1000) {
      c->refreshed = uv_now(c->loop);
      read_connector(c);
    } else {
      renew(c);
    }
    break;
  default:
    break;
  }
}

/* ---- lifecycle ---- */

int hb_control_new(hb_control **out, uv_loop_t *loop, const struct hb_control_opts *o,
                   const struct hb_control_cbs *cbs, void *ud) {
  hb_control *c;

  if (o->name == NULL || o->endpoint_id == NULL || strlen(o->endpoint_id) != 64)
    return WR_ERR_INVAL;
  c = calloc(1, sizeof(*c));
  if (c == NULL || (c->addrs = json_array()) == NULL) {
    free(c);
    return WR_ERR_NOMEM;
  }
  c->loop = loop;
  c->o = *o;
  if (c->o.refresh_s == 0)
    c->o.refresh_s = REFRESH_S_DEFAULT;
  if (c->o.class_name == NULL)
    c->o.class_name = "datum-connect";
  if (cbs != NULL)
    c->cbs = *cbs;
  c->ud = ud;
  c->duration_s = 30;
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  snprintf(c->name, sizeof(c->name), "%s", o->name);
  *out = c;
  return 0;
}

int hb_control_start(hb_control *c) {
  char err[512];
  int rv;

  rv = wr_kconfig_load_default(&c->kcfg, c->o.kubeconfig, err, sizeof(err));
  if (rv < 0) {
    log_warnx("kubernetes API: %s", err);
    return rv;
  }
  snprintf(c->ns, sizeof(c->ns), "%s", c->o.ns ? c->o.ns : c->kcfg.namespace);
  rv = wr_kclient_new_kconfig(&c->kc, c->loop, &c->kcfg);
  if (rv < 0)
    return rv;
  log_info("connector %s/%s: API %s", c->ns, c->name, c->kcfg.server);
  c->st = S_REGISTER;
  step(c);
  return 0;
}

void hb_control_set_addrs(hb_control *c, const char (*ips)[46], size_t n, uint16_t port) {
  json_t *a = json_array();
  size_t i;

  if (a == NULL)
    return;
  for (i = 0; i < n && i < HB_PUBLISH_MAX; i++)
    json_array_append_new(a, json_pack("{s:s, s:i}", "address", ips[i], "port", (int)port));
  if (json_equal(a, c->addrs)) {
    json_decref(a);
    return;
  }
  json_decref(c->addrs);
  c->addrs = a;
  c->dirty = 1;
  if (c->st == S_RENEW || c->st == S_LEASE)
    step(c); /* now, not at the next renewal (step waits for a call in flight) */
}

static void on_released(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  hb_control *c = ud;

  (void)obj;
  if (rv != 0)
    log_warnx("connector %s/%s: releasing Lease %s: %s%s%s (it will expire)", c->ns, c->name,
              c->lease, wr_strerror(rv), rv == WR_ERR_REFUSED ? ": " : "",
              rv == WR_ERR_REFUSED ? st->message : "");
  else
    log_info("connector %s/%s: Lease %s released", c->ns, c->name, c->lease);
  c->st = S_DONE;
  if (c->stop_done != NULL)
    c->stop_done(c->stop_arg);
}

static void release(hb_control *c) {
  char path[WR_KCLIENT_PATH_MAX];
  json_t *patch;

  uv_timer_stop(&c->timer);
  /* an empty holder tells the operator the node is gone now */
  patch = c->held ? json_pack("{s:{s:n}}", "spec", "holderIdentity") : NULL;
  if (patch == NULL || wr_kpath(path, sizeof(path), &LEASES, c->ns, c->lease, NULL) < 0 ||
      wr_kclient_patch(c->kc, path, WR_KPATCH_MERGE, patch, NULL, 0, on_released, c, NULL) < 0) {
    json_decref(patch);
    c->st = S_DONE;
    if (c->stop_done != NULL)
      c->stop_done(c->stop_arg);
    return;
  }
  json_decref(patch);
}

void hb_control_stop(hb_control *c, void (*done)(void *arg), void *arg) {
  uv_timer_stop(&c->timer);
  c->stop_done = done;
  c->stop_arg = arg;
  c->st = S_STOPPING;
  /* a call in flight (a renewal could land after the release) finishes
   * first: its callback sends the release */
  if (!c->busy)
    release(c);
  else
    uv_timer_start(&c->timer, on_timer, STOP_WAIT_MS, 0);
}

static void on_closed(uv_handle_t *h) {
  hb_control *c = h->data;

  json_decref(c->addrs);
  json_decref(c->published);
  wr_kconfig_free(&c->kcfg);
  free(c);
}

void hb_control_del(hb_control *c) {
  if (c == NULL)
    return;
  if (c->kc != NULL)
    wr_kclient_del(c->kc);
  uv_close((uv_handle_t *)&c->timer, on_closed);
}
