/* kcond.c - status conditions (see kcond.h). */
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
