/*
 * prom.h - Prometheus text exposition format 0.0.4, written into a wr_buf,
 * and a fixed-bucket histogram.
 *
 * Numbers are written as Go's client_golang writes them: "+Inf", "-Inf",
 * "NaN", otherwise the shortest form that reads back as the same double
 * (strconv 'g', -1: 0.005, 1.5e-07, 1.2345675e+06), except that integral
 * values up to 2^53 are written as plain integers ("1000000" where Go writes
 * "1e+06"; both parse to the same value). Counts (uint64) are plain integers.
 *
 * Every writer is atomic: it appends whole lines or, on error, nothing.
 * Errors: WR_ERR_INVAL (bad metric or label name, odd label list, unknown
 * type, a histogram given an "le" label), WR_ERR_TOOBIG (the buffer's cap),
 * WR_ERR_NOMEM.
 */
#ifndef WARREN_PROM_H
#define WARREN_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "warren/buf.h"

/* The Content-Type of a /metrics response in this format. */
#define WR_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* wr_prom_family writes "# HELP name help" (help escaped: \\ and \n; no line
 * when |help| is NULL) and "# TYPE name type"; |type| is one of "counter",
 * "gauge", "histogram", "summary", "untyped". */
int wr_prom_family(struct wr_buf *b, const char *name, const char *type, const char *help);

/* wr_prom_sample writes one sample line, name{k1="v1",...} value. The labels
 * follow as alternating key, value strings ended by NULL; values are escaped
 * (\\, \", \n), keys must be label names. */
int wr_prom_sample(struct wr_buf *b, const char *name, double value,
                   ... /* "k1", "v1", ..., NULL */);

/* A histogram with fixed upper bounds (strictly increasing, finite; the +Inf
 * bucket is implicit). counts[i] holds observations in (bounds[i-1],
 * bounds[i]], counts[nbounds] those above the last bound: not cumulative. */
struct wr_prom_hist {
  const double *bounds; /* borrowed: must outlive the histogram */
  size_t nbounds;
  uint64_t *counts; /* nbounds + 1 */
  double sum;
  uint64_t count;
};

/* wr_prom_hist_init prepares |h| with |bounds| (not copied). Returns 0,
 * WR_ERR_INVAL (bounds not strictly increasing or not finite) or WR_ERR_NOMEM. */
int wr_prom_hist_init(struct wr_prom_hist *h, const double *bounds, size_t nbounds);
/* wr_prom_hist_free releases the counts of |h| (not |h| itself). */
void wr_prom_hist_free(struct wr_prom_hist *h);
/* wr_prom_hist_observe adds |v| to the first bucket whose bound is >= v (NaN
 * goes to +Inf and makes the sum NaN, as in Go). */
void wr_prom_hist_observe(struct wr_prom_hist *h, double v);
/* wr_prom_hist_write writes name_bucket{labels...,le="bound"} with cumulative
 * counts (the last le="+Inf"), name_sum{labels} and name_count{labels}. The
 * labels are given as for wr_prom_sample and must not include "le". */
int wr_prom_hist_write(struct wr_buf *b, const char *name, const struct wr_prom_hist *h,
                       ... /* "k1", "v1", ..., NULL */);

/* wr_prom_format_value writes |v| as described above into |out| (NUL-terminated,
 * truncated to |n|) and returns the length it needs, like snprintf. 32 bytes suffice. */
int wr_prom_format_value(char *out, size_t n, double v);

/* controller-runtime's controller_runtime_reconcile_time_seconds buckets. */
#define WR_PROM_RECONCILE_NBUCKETS 40
extern const double WR_PROM_RECONCILE_BUCKETS[WR_PROM_RECONCILE_NBUCKETS];

#endif
