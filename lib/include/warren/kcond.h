/*
 * kcond.h - metav1.Condition in a status.conditions array, as
 * apimachinery's meta.SetStatusCondition keeps them.
 *
 * Setting a condition keeps its lastTransitionTime unless its status
 * changes; reason, message and observedGeneration are updated in place.
 * A new condition gets the transition time |now|.
 */
#ifndef WARREN_KCOND_H
#define WARREN_KCOND_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

/* wr_kcond_set sets condition |type| in the array |conds| (status "True",
 * "False" or "Unknown"). Returns 1 when something changed, 0 when the
 * condition was already so, WR_ERR_INVAL for a bad argument or WR_ERR_NOMEM. */
int wr_kcond_set(json_t *conds, const char *type, const char *status, const char *reason,
                 const char *message, int64_t observed_generation, time_t now);
/* wr_kcond_find returns the condition |type| (borrowed) or NULL. */
json_t *wr_kcond_find(json_t *conds, const char *type);
/* wr_kcond_is tells whether condition |type| has |status|. */
int wr_kcond_is(json_t *conds, const char *type, const char *status);
/* wr_kcond_remove drops condition |type|; returns 1 if it was there. */
int wr_kcond_remove(json_t *conds, const char *type);
/* wr_kcond_parse_time reads an RFC 3339 UTC time ("2026-01-02T03:04:05Z",
 * with an optional fraction: metav1.Time and MicroTime) into UTC seconds.
 * Returns 0 or WR_ERR_INVAL. */
int wr_kcond_parse_time(const char *s, time_t *out);
/* wr_kcond_time formats |t| as RFC 3339 in UTC (metav1.Time): 21 bytes. */
void wr_kcond_time(char buf[21], time_t t);

#endif
