/* test_prom.c - Prometheus text exposition: exact output, escaping, numbers, histograms. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warren/buf.h"
#include "warren/err.h"
#include "warren/prom.h"

/* expect_buf compares the whole content of |b| with |want| (as strings, for readable diffs). */
static void expect_buf(const wr_buf *b, const char *want) {
  char *got = malloc(wr_buf_len(b) + 1);

  assert_non_null(got);
  memcpy(got, wr_buf_data(b), wr_buf_len(b));
  got[wr_buf_len(b)] = '\0';
  assert_string_equal(got, want);
  free(got);
}

static void expect_num(double v, const char *want) {
  char out[32];
  int n = wr_prom_format_value(out, sizeof(out), v);

  assert_string_equal(out, want);
  assert_int_equal(n, strlen(want));
}

/* The expected strings are what Go's strconv.FormatFloat(v, 'g', -1, 64) gives,
 * except integral values, which are written without exponent. */
static void test_numbers(void **state) {
  (void)state;
  expect_num(0, "0");
  expect_num(-0.0, "0");
  expect_num(1, "1");
  expect_num(-1, "-1");
  expect_num(42, "42");
  expect_num(1e6, "1000000");
  expect_num(9007199254740992.0, "9007199254740992");
  expect_num(9007199254740994.0, "9.007199254740994e+15");
  expect_num(1e20, "1e+20");
  expect_num(0.005, "0.005");
  expect_num(0.15, "0.15");
  expect_num(1.25, "1.25");
  expect_num(-2.5, "-2.5");
  expect_num(0.1 + 0.2, "0.30000000000000004");
  expect_num(1.0 / 3, "0.3333333333333333");
  expect_num(0.0001, "0.0001");
  expect_num(0.00012, "0.00012");
  expect_num(0.00001, "1e-05");
  expect_num(1.5e-7, "1.5e-07");
  expect_num(123456.7, "123456.7");
  expect_num(1234567.5, "1.2345675e+06");
  expect_num(1e-300, "1e-300");
  expect_num(5e-324, "5e-324");
  expect_num(DBL_MAX, "1.7976931348623157e+308");
  expect_num(NAN, "NaN");
  expect_num(INFINITY, "+Inf");
  expect_num(-INFINITY, "-Inf");
}

static void test_family_and_samples(void **state) {
  wr_buf b;

  (void)state;
  wr_buf_init(&b, 1 << 16);
  assert_int_equal(wr_prom_family(&b, "warren_up", "gauge", "Whether up.\nSecond \\ line \"q\""),
                   0);
  assert_int_equal(wr_prom_sample(&b, "warren_up", 1, NULL), 0);
  assert_int_equal(wr_prom_family(&b, "warren_requests_total", "counter", NULL), 0);
  assert_int_equal(wr_prom_sample(&b, "warren_requests_total", 3, "a", "b\"c\\d\ne", "z", "", NULL),
                   0);
  assert_int_equal(wr_prom_sample(&b, "warren_requests_total", 0.5, "code", "200", NULL), 0);
  assert_int_equal(wr_prom_sample(&b, "ns:rule_x", NAN, NULL), 0);
  expect_buf(&b, "# HELP warren_up Whether up.\\nSecond \\\\ line \"q\"\n"
                 "# TYPE warren_up gauge\n"
                 "warren_up 1\n"
                 "# TYPE warren_requests_total counter\n"
                 "warren_requests_total{a=\"b\\\"c\\\\d\\ne\",z=\"\"} 3\n"
                 "warren_requests_total{code=\"200\"} 0.5\n"
                 "ns:rule_x NaN\n");
  wr_buf_free(&b);
}

static void test_invalid(void **state) {
  wr_buf b;

  (void)state;
  wr_buf_init(&b, 1 << 16);
  assert_int_equal(wr_buf_append(&b, "x\n", 2), 0);
  assert_int_equal(wr_prom_family(&b, "1abc", "gauge", "h"), WR_ERR_INVAL);
  assert_int_equal(wr_prom_family(&b, "", "gauge", "h"), WR_ERR_INVAL);
  assert_int_equal(wr_prom_family(&b, "a-b", "gauge", "h"), WR_ERR_INVAL);
  assert_int_equal(wr_prom_family(&b, "abc", "gauges", "h"), WR_ERR_INVAL);
  assert_int_equal(wr_prom_family(&b, "abc", NULL, "h"), WR_ERR_INVAL);
  assert_int_equal(wr_prom_sample(&b, "abc", 1, "9a", "v", NULL), WR_ERR_INVAL);
  assert_int_equal(wr_prom_sample(&b, "abc", 1, "a:b", "v", NULL), WR_ERR_INVAL);
  assert_int_equal(wr_prom_sample(&b, "abc", 1, "ok", "v", "k", NULL), WR_ERR_INVAL);
  assert_int_equal(wr_prom_sample(&b, "a b", 1, NULL), WR_ERR_INVAL);
  /* Nothing of a failed call reaches the buffer. */
  expect_buf(&b, "x\n");
  wr_buf_free(&b);
}

static void test_atomic_on_cap(void **state) {
  struct wr_prom_hist h;
  static const double bounds[] = {1, 2};
  wr_buf b;

  (void)state;
  wr_buf_init(&b, 24);
  assert_int_equal(wr_prom_sample(&b, "abc", 1, NULL), 0); /* 6 bytes */
  assert_int_equal(wr_prom_sample(&b, "abcdef", 1, "key", "value", NULL), WR_ERR_TOOBIG);
  assert_int_equal(wr_prom_family(&b, "abc", "gauge", "a help text that is too long"),
                   WR_ERR_TOOBIG);
  assert_int_equal(wr_prom_hist_init(&h, bounds, 2), 0);
  assert_int_equal(wr_prom_hist_write(&b, "h", &h, NULL), WR_ERR_TOOBIG);
  expect_buf(&b, "abc 1\n");
  /* Exactly filling the cap works. */
  assert_int_equal(wr_prom_sample(&b, "abcdefghijklmno", 1, NULL), 0);
  assert_int_equal(wr_buf_len(&b), 24);
  wr_prom_hist_free(&h);
  wr_buf_free(&b);
}

static void test_histogram(void **state) {
  static const double bounds[] = {0.5, 1, 2.5};
  struct wr_prom_hist h;
  wr_buf b;

  (void)state;
  wr_buf_init(&b, 1 << 16);
  assert_int_equal(wr_prom_hist_init(&h, bounds, 3), 0);
  wr_prom_hist_observe(&h, 0.25);
  wr_prom_hist_observe(&h, 0.5); /* bounds are inclusive */
  wr_prom_hist_observe(&h, 0.75);
  wr_prom_hist_observe(&h, 3);
  wr_prom_hist_observe(&h, 100);
  assert_int_equal(h.counts[0], 2);
  assert_int_equal(h.counts[1], 1);
  assert_int_equal(h.counts[2], 0);
  assert_int_equal(h.counts[3], 2);
  assert_int_equal(h.count, 5);
  assert_int_equal(wr_prom_family(&b, "r", "histogram", "Reconcile time."), 0);
  assert_int_equal(wr_prom_hist_write(&b, "r", &h, "controller", "hp", "result", "ok", NULL), 0);
  assert_int_equal(wr_prom_hist_write(&b, "r", &h, NULL), 0);
  expect_buf(&b, "# HELP r Reconcile time.\n"
                 "# TYPE r histogram\n"
                 "r_bucket{controller=\"hp\",result=\"ok\",le=\"0.5\"} 2\n"
                 "r_bucket{controller=\"hp\",result=\"ok\",le=\"1\"} 3\n"
                 "r_bucket{controller=\"hp\",result=\"ok\",le=\"2.5\"} 3\n"
                 "r_bucket{controller=\"hp\",result=\"ok\",le=\"+Inf\"} 5\n"
                 "r_sum{controller=\"hp\",result=\"ok\"} 104.5\n"
                 "r_count{controller=\"hp\",result=\"ok\"} 5\n"
                 "r_bucket{le=\"0.5\"} 2\n"
                 "r_bucket{le=\"1\"} 3\n"
                 "r_bucket{le=\"2.5\"} 3\n"
                 "r_bucket{le=\"+Inf\"} 5\n"
                 "r_sum 104.5\n"
                 "r_count 5\n");
  wr_buf_reset(&b);
  /* "le" is the histogram's own label. */
  assert_int_equal(wr_prom_hist_write(&b, "r", &h, "le", "1", NULL), WR_ERR_INVAL);
  assert_int_equal(wr_buf_len(&b), 0);
  wr_prom_hist_free(&h);
  assert_null(h.counts);
  wr_buf_free(&b);
}

static void test_histogram_edges(void **state) {
  static const double one[] = {1};
  static const double dup[] = {1, 1};
  static const double down[] = {2, 1};
  static const double nan[] = {NAN};
  static const double inf[] = {1, INFINITY};
  struct wr_prom_hist h;
  wr_buf b;

  (void)state;
  assert_int_equal(wr_prom_hist_init(&h, dup, 2), WR_ERR_INVAL);
  assert_int_equal(wr_prom_hist_init(&h, down, 2), WR_ERR_INVAL);
  assert_int_equal(wr_prom_hist_init(&h, nan, 1), WR_ERR_INVAL);
  assert_int_equal(wr_prom_hist_init(&h, inf, 2), WR_ERR_INVAL);
  assert_int_equal(wr_prom_hist_init(&h, NULL, 1), WR_ERR_INVAL);
  wr_buf_init(&b, 1 << 16);
  /* No bounds: only +Inf. */
  assert_int_equal(wr_prom_hist_init(&h, NULL, 0), 0);
  wr_prom_hist_observe(&h, -3);
  assert_int_equal(wr_prom_hist_write(&b, "z", &h, NULL), 0);
  expect_buf(&b, "z_bucket{le=\"+Inf\"} 1\nz_sum -3\nz_count 1\n");
  wr_prom_hist_free(&h);
  /* NaN lands in +Inf and poisons the sum, as in Go. */
  wr_buf_reset(&b);
  assert_int_equal(wr_prom_hist_init(&h, one, 1), 0);
  wr_prom_hist_observe(&h, NAN);
  wr_prom_hist_observe(&h, 1);
  assert_int_equal(wr_prom_hist_write(&b, "n", &h, NULL), 0);
  expect_buf(&b, "n_bucket{le=\"1\"} 1\nn_bucket{le=\"+Inf\"} 2\nn_sum NaN\nn_count 2\n");
  wr_prom_hist_free(&h);
  wr_buf_free(&b);
}

static void test_reconcile_buckets(void **state) {
  static const char *const les[WR_PROM_RECONCILE_NBUCKETS] = {
      "0.005", "0.01", "0.025", "0.05", "0.1", "0.15", "0.2", "0.25", "0.3",  "0.35",
      "0.4",   "0.45", "0.5",   "0.6",  "0.7", "0.8",  "0.9", "1",    "1.25", "1.5",
      "1.75",  "2",    "2.5",   "3",    "3.5", "4",    "4.5", "5",    "6",    "7",
      "8",     "9",    "10",    "15",   "20",  "25",   "30",  "40",   "50",   "60"};
  struct wr_prom_hist h;
  wr_buf b, want;
  size_t i;
  char line[128];

  (void)state;
  assert_int_equal(wr_prom_hist_init(&h, WR_PROM_RECONCILE_BUCKETS, WR_PROM_RECONCILE_NBUCKETS), 0);
  wr_prom_hist_observe(&h, 0.3);  /* exactly a bound: le="0.3" */
  wr_prom_hist_observe(&h, 0.31); /* le="0.35" */
  wr_prom_hist_observe(&h, 61);   /* +Inf only */
  wr_buf_init(&b, 1 << 16);
  wr_buf_init(&want, 1 << 16);
  assert_int_equal(wr_prom_hist_write(&b, "controller_runtime_reconcile_time_seconds", &h,
                                      "controller", "httpproxy", NULL),
                   0);
  for (i = 0; i < WR_PROM_RECONCILE_NBUCKETS; i++) {
    int n = snprintf(line, sizeof(line),
                     "controller_runtime_reconcile_time_seconds_bucket{controller=\"httpproxy\","
                     "le=\"%s\"} %d\n",
                     les[i],
                     i < 8    ? 0
                     : i == 8 ? 1
                              : 2);
    assert_int_equal(wr_buf_append(&want, line, (size_t)n), 0);
  }
  {
    const char *tail =
        "controller_runtime_reconcile_time_seconds_bucket{controller=\"httpproxy\",le=\"+Inf\"} 3\n"
        "controller_runtime_reconcile_time_seconds_sum{controller=\"httpproxy\"} 61.61\n"
        "controller_runtime_reconcile_time_seconds_count{controller=\"httpproxy\"} 3\n";
    assert_int_equal(wr_buf_append(&want, tail, strlen(tail)), 0);
    assert_int_equal(wr_buf_append(&want, "", 1), 0);
  }
  expect_buf(&b, (const char *)wr_buf_data(&want));
  wr_prom_hist_free(&h);
  wr_buf_free(&b);
  wr_buf_free(&want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_numbers),           cmocka_unit_test(test_family_and_samples),
      cmocka_unit_test(test_invalid),           cmocka_unit_test(test_atomic_on_cap),
      cmocka_unit_test(test_histogram),         cmocka_unit_test(test_histogram_edges),
      cmocka_unit_test(test_reconcile_buckets),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
