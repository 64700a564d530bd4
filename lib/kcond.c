/* kcond.c - status conditions (see kcond.h). */
#include <stdio.h>
#include <string.h>

#include "warren/err.h"
#include "warren/kcond.h"

void wr_kcond_time(char buf[21], time_t t) {
  struct tm tm;

  gmtime_r(&t, &tm);
  strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *wr_kcond_find(json_t *conds, const char *type) {
  json_t *c;
  size_t i;

  json_array_foreach(conds, i, c) {
    const char *t = json_string_value(json_object_get(c, "type"));

    if (t != NULL && strcmp(t, type) == 0)
      return c;
  }
  return NULL;
}

int wr_kcond_is(json_t *conds, const char *type, const char *status) {
  const char *s = json_string_value(json_object_get(wr_kcond_find(conds, type), "status"));

  return s != NULL && strcmp(s, status) == 0;
}

int wr_kcond_remove(json_t *conds, const char *type) {
  json_t *c;
  size_t i;

  json_array_foreach(conds, i, c) {
    const char *t = json_string_value(json_object_get(c, "type"));

    if (t != NULL && strcmp(t, type) == 0) {
      json_array_remove(conds, i);
      return 1;
    }
  }
  return 0;
}

/* set_str sets |key| to |val| in |c| unless it is equal already; 1 if changed. */
static int set_str(json_t *c, const char *key, const char *val, int *err) {
  const char *cur = json_string_value(json_object_get(c, key));

  if (cur != NULL && strcmp(cur, val) == 0)
    return 0;
  if (json_object_set_new(c, key, json_string(val)) < 0)
    *err = WR_ERR_NOMEM;
  return 1;
}

int wr_kcond_set(json_t *conds, const char *type, const char *status, const char *reason,
                 const char *message, int64_t observed_generation, time_t now) {
  char ts[21];
  json_t *c;
  int changed = 0, err = 0;

  if (!json_is_array(conds) || type == NULL || *type == '\0' || status == NULL ||
      (strcmp(status, "True") != 0 && strcmp(status, "False") != 0 &&
       strcmp(status, "Unknown") != 0) ||
      reason == NULL || *reason == '\0' || message == NULL)
    return WR_ERR_INVAL;
  wr_kcond_time(ts, now);
  c = wr_kcond_find(conds, type);
  if (c == NULL) {
    c = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", type, "status", status, "reason", reason,
                  "message", message, "lastTransitionTime", ts);
    if (c == NULL)
      return WR_ERR_NOMEM;
    if (observed_generation > 0)
      json_object_set_new(c, "observedGeneration", json_integer(observed_generation));
    return json_array_append_new(conds, c) < 0 ? WR_ERR_NOMEM : 1;
  }
  if (set_str(c, "status", status, &err)) {
    changed = 1;
    json_object_set_new(c, "lastTransitionTime", json_string(ts));
  }
  changed |= set_str(c, "reason", reason, &err);
  changed |= set_str(c, "message", message, &err);
  if (observed_generation > 0 &&
      json_integer_value(json_object_get(c, "observedGeneration")) != observed_generation) {
    json_object_set_new(c, "observedGeneration", json_integer(observed_generation));
    changed = 1;
  }
  return err < 0 ? err : changed;
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

int wr_kcond_parse_time(const char *s, time_t *out) {
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
