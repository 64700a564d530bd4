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

/* days_from_civil: days since 1970-01-01 of a proleptic Gregorian date
 * (H. Hinnant's algorithm), so that no timezone state (timegm) is used. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  int64_t era;
  unsigned yoe, doy, doe;

  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = (unsigned)(y - era * 400);
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

int op_parse_time(const char *s, time_t *out) {
  unsigned y, mo, d, h, mi, sec;
  int n = 0;

  if (s == NULL || sscanf(s, "%4u-%2u-%2uT%2u:%2u:%2u%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
      n != 19)
    return WR_ERR_INVAL;
  s += n;
  if (*s == '.') {
    s++;
    if (strspn(s, "0123456789") == 0)
      return WR_ERR_INVAL;
    s += strspn(s, "0123456789");
  }
  if (strcmp(s, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return WR_ERR_INVAL;
  *out = (time_t)(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec);
  return 0;
}

int op_leases_observe(op_leases *l, const char *key, const json_t *lease, uint64_t now_ms,
                      time_t wall) {
  json_t *spec = json_object_get(lease, "spec"), *old = json_object_get(l->map, key), *e;
  const char *rt = json_string_value(json_object_get(spec, "renewTime"));
  json_int_t dur = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
  uint64_t seen = now_ms;
  time_t t;

  if (dur <= 0 || dur > DURATION_MAX_S)
    dur = l->default_duration_s;
  if (rt == NULL)
    rt = "";
  if (old != NULL && strcmp(json_string_value(json_array_get(old, 0)), rt) == 0) {
    if (json_integer_value(json_array_get(old, 1)) == dur)
      return 0;
    seen = (uint64_t)json_integer_value(json_array_get(old, 2));
  } else if (old == NULL && rt[0] != '\0' && op_parse_time(rt, &t) == 0) {
    /* First sight: date the renewal by its own clock, never in the future. */
    uint64_t age = wall > t ? (uint64_t)(wall - t) * 1000 : 0;
    seen = age < now_ms ? now_ms - age : 0;
  }
  e = json_pack("[s, I, I]", rt, (json_int_t)dur, (json_int_t)seen);
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

  memset(st, 0, sizeof(*st));
  st->duration_s = l->default_duration_s;
  if (e == NULL)
    return;
  st->duration_s = json_integer_value(json_array_get(e, 1));
  st->renewed = json_string_value(json_array_get(e, 0))[0] != '\0';
  if (!st->renewed)
    return;
  st->expiry_ms =
      (uint64_t)json_integer_value(json_array_get(e, 2)) + (uint64_t)st->duration_s * 1000;
  st->fresh = now_ms < st->expiry_ms;
}
