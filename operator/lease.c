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
  static const char form[] = "dddd-dd-ddTdd:dd:dd"; /* d: a digit, nothing else */
  unsigned y, mo, d, h, mi, sec;
  int i, n = 0;

  for (i = 0; s != NULL && form[i] != '\0'; i++) {
    if (form[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != form[i])
      return WR_ERR_INVAL; /* sscanf alone takes signs and spaces ("+026", "- 1") */
  }
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
  int64_t seen = (int64_t)now_ms; /* < 0: before the monotonic clock's zero */
  time_t t;

  if (dur <= 0 || dur > DURATION_MAX_S)
    dur = l->default_duration_s;
  if (rt == NULL)
    rt = "";
  if (old != NULL && strcmp(json_string_value(json_array_get(old, 0)), rt) == 0) {
    if (json_integer_value(json_array_get(old, 1)) == dur)
      return 0;
    seen = json_integer_value(json_array_get(old, 2));
  } else if (old == NULL && rt[0] != '\0' && op_parse_time(rt, &t) == 0) {
    /* First sight: date the renewal by its own clock, never in the future. */
    uint64_t age = wall > t ? (uint64_t)(wall - t) * 1000 : 0;
    seen = (int64_t)now_ms - (int64_t)age;
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
  int64_t expiry;

  memset(st, 0, sizeof(*st));
  st->duration_s = l->default_duration_s;
  if (e == NULL)
    return;
  st->duration_s = json_integer_value(json_array_get(e, 1));
  st->renewed = json_string_value(json_array_get(e, 0))[0] != '\0';
  if (!st->renewed)
    return;
  expiry = json_integer_value(json_array_get(e, 2)) + st->duration_s * 1000;
  st->expiry_ms = expiry > 0 ? (uint64_t)expiry : 0; /* 0: expired before the clock began */
  st->fresh = now_ms < st->expiry_ms;
}
