/*
 * lease.c - Lease freshness on the operator's clock (lease.h).
 *
 * One JSON object maps each key to [renewTime, duration_s, seen_ms]: the
 * operator keeps at most one entry per Connector.
 */
#include "lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warren/err.h"
#include "warren/kcond.h"

#define DURATION_MAX_S (24 * 3600)

struct op_leases {
  json_t *map;
  int64_t default_duration_s;
};

int op_leases_new(op_leases **out, int64_t default_duration_s) {
  op_leases *l = calloc(1, sizeof(*l));

  if (l == NULL || (l->map = json_object()) == NULL) {
    free(l);
    return WR_ERR_NOMEM;
  }
  l->default_duration_s = default_duration_s;
  *out = l;
  return 0;
}

void op_leases_del(op_leases *l) {
  if (l == NULL)
    return;
  json_decref(l->map);
  free(l);
}

int op_leases_observe(op_leases *l, const char *key, const json_t *lease, uint64_t now_ms,
                      time_t wall) {
  json_t *spec = json_object_get(lease, "spec"), *old = json_object_get(l->map, key), *e;
  const char *rt = json_string_value(json_object_get(spec, "renewTime"));
  const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
  json_int_t dur = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
  int released = holder == NULL || holder[0] == '\0';
  int64_t seen = (int64_t)now_ms;
  time_t t;

  if (dur <= 0 || dur > DURATION_MAX_S)
    dur = l->default_duration_s;
  if (rt == NULL)
    rt = "";
  if (old != NULL && strcmp(json_string_value(json_array_get(old, 0)), rt) == 0) {
    if (json_integer_value(json_array_get(old, 1)) == dur &&
        json_is_true(json_array_get(old, 3)) == released)
      return 0;
    seen = (int64_t)json_integer_value(json_array_get(old, 2));
  } else if (old == NULL && rt[0] != '\0' && wr_kcond_parse_time(rt, &t) == 0) {
    /* First sight: date the renewal by its own clock, never in the future.
     * A renewal older than the monotonic clock's zero (an operator started
     * soon after boot) gives a negative time, so it still counts as old. */
    int64_t age_ms = wall > t ? ((int64_t)wall - (int64_t)t) * 1000 : 0;
    seen = (int64_t)now_ms - age_ms;
  }
  e = json_pack("[s, I, I, b]", rt, (json_int_t)dur, (json_int_t)seen, released);
  if (e == NULL || json_object_set_new(l->map, key, e) != 0)
    return WR_ERR_NOMEM;
  return 1;
}

void op_leases_forget(op_leases *l, const char *key) {
  json_object_del(l->map, key);
}

void op_leases_state(const op_leases *l, const char *key, uint64_t now_ms,
                     struct op_lease_state *st) {
  json_t *e = json_object_get(l->map, key);
  int64_t expiry;

  memset(st, 0, sizeof(*st));
  st->duration_s = l->default_duration_s;
  if (e == NULL)
    return;
  st->duration_s = json_integer_value(json_array_get(e, 1));
  st->renewed = json_string_value(json_array_get(e, 0))[0] != '\0';
  st->released = st->renewed && json_is_true(json_array_get(e, 3));
  if (!st->renewed || st->released)
    return;
  expiry = json_integer_value(json_array_get(e, 2)) + st->duration_s * 1000;
  st->expiry_ms = expiry > 0 ? (uint64_t)expiry : 0; /* 0: expired before the clock began */
  st->fresh = now_ms < st->expiry_ms;
}
