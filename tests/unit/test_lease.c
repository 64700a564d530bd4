/* test_lease - RFC 3339 times and Lease freshness on the operator's clock
 * (operator/lease.c). Epoch values were checked with `date -u -d ... +%s`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "lease.h"
#include "warren/kcond.h"
#include "warren/err.h"

#define DEFAULT_S 40
#define T0 "2026-11-25T00:00:00Z"
#define T0_S 1795564800
#define T1 "2026-11-25T00:00:30.123456Z"

/* ---- wr_kcond_parse_time ---- */

static void test_parse_valid(void **state) {
  static const struct {
    const char *s;
    time_t want;
  } cases[] = {
      {T0, T0_S},
      {"2026-11-25T00:00:00.5Z", T0_S},
      {"2026-11-25T00:00:00.000000001Z", T0_S},
      {"2026-11-25T00:00:00.999999Z", T0_S}, /* fractions are dropped, not rounded */
      {"2026-01-02T03:04:05Z", 1767323045},
      {"1970-01-01T00:00:00Z", 0},
      {"1969-12-31T23:59:59Z", -1},
      {"2023-12-31T23:59:59Z", 1704067199},
      /* leap years: 2024 and 2000 are, 2100 is not */
      {"2024-02-29T12:34:56Z", 1709210096},
      {"2024-03-01T00:00:00Z", 1709251200},
      {"2000-02-29T23:59:59Z", 951868799},
      {"2100-02-28T00:00:00Z", 4107542400 - 86400},
      {"2100-03-01T00:00:00Z", 4107542400},
      {"1600-03-01T00:00:00Z", -11670912000},
      {"2026-11-24T23:59:60Z", T0_S}, /* a leap second is the next minute */
  };
  size_t i;
  time_t t;

  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    t = 12345;
    if (wr_kcond_parse_time(cases[i].s, &t) != 0)
      fail_msg("%s: refused", cases[i].s);
    if (t != cases[i].want)
      fail_msg("%s: got %lld, want %lld", cases[i].s, (long long)t, (long long)cases[i].want);
  }
}

static void test_parse_invalid(void **state) {
  static const char *const cases[] = {
      "",
      "2026-11-25",
      "2026-11-25T00:00:00",
      "2026-11-25T00:00:00+00:00",
      "2026-11-25T00:00:00-01:00",
      "2026-11-25T00:00:00.Z",
      "2026-11-25T00:00:00.1.2Z",
      "2026-11-25T00:00:00.1xZ",
      "2026-11-25T00:00:00z",
      "2026-11-25t00:00:00Z",
      "2026-11-25 00:00:00Z",
      "2026-11-25T00:00:00ZZ",
      "2026-11-25T00:00:00Z ",
      " 2026-11-25T00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2026-00-01T00:00:00Z",
      "2026-01-00T00:00:00Z",
      "2026-01-32T00:00:00Z",
      "2026-11-25T24:00:00Z",
      "2026-11-25T00:60:00Z",
      "2026-11-25T00:00:61Z",
      "2026-1-25T00:00:00Z",
      "26-11-25T00:00:00Z",
      "20261-11-25T00:00:00Z",
      "2026/11/25T00:00:00Z",
      "2026-11-25T0:00:00Z",
      /* only digits where digits go */
      "+026-11-25T00:00:00Z",
      "-026-11-25T00:00:00Z",
      "2026-+1-25T00:00:00Z",
      "2026-1- 5T00:00:00Z",
      "2026-11- 5T00:00:00Z",
      "2026-11-25T 0:00:00Z",
      "2026-11-25T00:00:-1Z",
  };
  size_t i;
  time_t t = 12345;

  (void)state;
  assert_int_equal(wr_kcond_parse_time(NULL, &t), WR_ERR_INVAL);
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    if (wr_kcond_parse_time(cases[i], &t) != WR_ERR_INVAL)
      fail_msg("\"%s\": accepted as %lld", cases[i], (long long)t);
  }
  assert_int_equal(t, 12345); /* untouched on failure */
}

/* ---- op_leases ---- */

static json_t *lease(const char *renew, json_t *duration) {
  json_t *spec = json_pack("{s:s}", "holderIdentity", "agent");

  assert_non_null(spec);
  if (renew != NULL)
    json_object_set_new(spec, "renewTime", json_string(renew));
  if (duration != NULL)
    json_object_set_new(spec, "leaseDurationSeconds", duration);
  return json_pack("{s:{s:s, s:s}, s:o}", "metadata", "name", "laptop", "namespace", "default",
                   "spec", spec);
}

/* observe records lease(|renew|, |duration| (stolen)) and returns the result. */
static int observe(op_leases *l, const char *renew, json_t *duration, uint64_t now_ms,
                   time_t wall) {
  json_t *o = lease(renew, duration);
  int rv = op_leases_observe(l, "default/laptop", o, now_ms, wall);

  json_decref(o);
  return rv;
}

static struct op_lease_state state_at(op_leases *l, uint64_t now_ms) {
  struct op_lease_state st;

  memset(&st, 0xa5, sizeof(st));
  op_leases_state(l, "default/laptop", now_ms, &st);
  return st;
}

static int setup(void **state) {
  op_leases *l;

  assert_int_equal(op_leases_new(&l, DEFAULT_S), 0);
  *state = l;
  return 0;
}

static int teardown(void **state) {
  op_leases_del(*state);
  op_leases_del(NULL);
  return 0;
}

static void test_unknown(void **state) {
  struct op_lease_state st = state_at(*state, 1000);

  assert_false(st.renewed);
  assert_false(st.fresh);
  assert_int_equal(st.expiry_ms, 0);
  assert_int_equal(st.duration_s, DEFAULT_S);
}

static void test_unrenewed(void **state) {
  op_leases *l = *state;
  struct op_lease_state st;

  assert_int_equal(observe(l, NULL, json_integer(30), 1000, T0_S), 1);
  st = state_at(l, 1000);
  assert_false(st.renewed);
  assert_false(st.fresh);
  assert_int_equal(st.expiry_ms, 0);
  assert_int_equal(st.duration_s, 30);
  assert_int_equal(observe(l, NULL, json_integer(30), 2000, T0_S), 0);
  assert_int_equal(observe(l, "", json_integer(30), 3000, T0_S), 0); /* "" is unset too */
  /* the first renewal seen afterwards is dated now, whatever renewTime says */
  assert_int_equal(observe(l, T0, json_integer(30), 5000, T0_S + 3600), 1);
  st = state_at(l, 5000);
  assert_true(st.renewed);
  assert_true(st.fresh);
  assert_int_equal(st.expiry_ms, 5000 + 30000);
  /* garbage leases are unrenewed */
  assert_int_equal(op_leases_observe(l, "default/laptop", NULL, 6000, T0_S), 1);
  assert_false(state_at(l, 6000).renewed);
  assert_int_equal(state_at(l, 6000).duration_s, DEFAULT_S);
}

static void test_first_sight(void **state) {
  op_leases *l = *state;
  struct op_lease_state st;

  /* renewed 10 s ago by the operator's wall clock: 50 s left of 60 */
  assert_int_equal(observe(l, T0, json_integer(60), 1000000, T0_S + 10), 1);
  st = state_at(l, 1000000);
  assert_true(st.renewed);
  assert_true(st.fresh);
  assert_int_equal(st.duration_s, 60);
  assert_int_equal(st.expiry_ms, 1000000 - 10000 + 60000);
  assert_true(state_at(l, 1049999).fresh);
  assert_false(state_at(l, 1050000).fresh);
  assert_true(state_at(l, 1050000).renewed);

  /* an agent clock ahead of ours: dated now, never in the future */
  op_leases_forget(l, "default/laptop");
  assert_int_equal(observe(l, T0, json_integer(60), 1000000, T0_S - 300), 1);
  assert_int_equal(state_at(l, 0).expiry_ms, 1000000 + 60000);

  /* the fraction is dropped: renewed 10 s ago */
  op_leases_forget(l, "default/laptop");
  assert_int_equal(observe(l, T1, json_integer(60), 1000000, T0_S + 40), 1);
  assert_int_equal(state_at(l, 0).expiry_ms, 1000000 - 10000 + 60000);

  /* long expired on first sight */
  op_leases_forget(l, "default/laptop");
  assert_int_equal(observe(l, T0, json_integer(60), 1000000, T0_S + 3600), 1);
  assert_false(state_at(l, 1000000).fresh);
  assert_true(state_at(l, 1000000).renewed);

  /* an unparsable renewTime is dated now */
  op_leases_forget(l, "default/laptop");
  assert_int_equal(observe(l, "yesterday", json_integer(60), 1000000, T0_S), 1);
  st = state_at(l, 1000000);
  assert_true(st.renewed);
  assert_int_equal(st.expiry_ms, 1000000 + 60000);
}

/* A renewal long before the monotonic clock's zero (an operator started
 * soon after boot) must still be expired, not dated at 0. */
static void test_first_sight_before_clock_zero(void **state) {
  op_leases *l = *state;
  struct op_lease_state st;

  assert_int_equal(observe(l, T0, json_integer(60), 5000, T0_S + 3600), 1);
  st = state_at(l, 5000);
  assert_true(st.renewed);
  assert_false(st.fresh);
  /* renewed 30 s ago, 5 s after boot: fresh for another 30 s */
  op_leases_forget(l, "default/laptop");
  assert_int_equal(observe(l, T0, json_integer(60), 5000, T0_S + 30), 1);
  st = state_at(l, 5000);
  assert_true(st.fresh);
  assert_int_equal(st.expiry_ms, 35000);
  assert_false(state_at(l, 35000).fresh);
}

static void test_renewals(void **state) {
  op_leases *l = *state;
  struct op_lease_state st;

  assert_int_equal(observe(l, T0, json_integer(60), 1000000, T0_S), 1);
  assert_int_equal(state_at(l, 0).expiry_ms, 1060000);
  /* unchanged renewTime: nothing moves, however late */
  assert_int_equal(observe(l, T0, json_integer(60), 1050000, T0_S + 50), 0);
  assert_int_equal(observe(l, T0, json_integer(60), 2000000, T0_S + 1000), 0);
  st = state_at(l, 2000000);
  assert_false(st.fresh);
  assert_int_equal(st.expiry_ms, 1060000);
  /* a renewal: dated when seen, the agent's clock ignored (even going back) */
  assert_int_equal(observe(l, "2026-11-24T00:00:00Z", json_integer(60), 2000000, T0_S), 1);
  st = state_at(l, 2000000);
  assert_true(st.fresh);
  assert_int_equal(st.expiry_ms, 2060000);
  assert_int_equal(observe(l, T1, json_integer(60), 2010000, T0_S - 7200), 1);
  assert_int_equal(state_at(l, 0).expiry_ms, 2070000);
  /* the duration changes: same renewal, new expiry */
  assert_int_equal(observe(l, T1, json_integer(120), 2020000, T0_S), 1);
  st = state_at(l, 2020000);
  assert_int_equal(st.duration_s, 120);
  assert_int_equal(st.expiry_ms, 2010000 + 120000);
  assert_int_equal(observe(l, T1, json_integer(120), 2030000, T0_S), 0);
  assert_int_equal(observe(l, T1, json_integer(10), 2030000, T0_S), 1);
  st = state_at(l, 2030000);
  assert_false(st.fresh);
  assert_int_equal(st.expiry_ms, 2020000);
  /* the renewal unset again */
  assert_int_equal(observe(l, NULL, json_integer(10), 2040000, T0_S), 1);
  st = state_at(l, 2040000);
  assert_false(st.renewed);
  assert_false(st.fresh);
}

static void test_durations(void **state) {
  op_leases *l = *state;
  json_t *bad[] = {
      json_integer(0), json_integer(-5), json_integer(24 * 3600 + 1), json_string("30"),
      json_real(30.0), json_null(),      json_integer(INT64_MAX),     NULL};
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    op_leases_forget(l, "default/laptop");
    assert_int_equal(observe(l, T0, bad[i], 1000000, T0_S), 1);
    assert_int_equal(state_at(l, 0).duration_s, DEFAULT_S);
    assert_int_equal(state_at(l, 0).expiry_ms, 1000000 + DEFAULT_S * 1000);
  }
  /* the default and a missing duration are the same: no change */
  assert_int_equal(observe(l, T0, json_integer(DEFAULT_S), 1000000, T0_S), 0);
  assert_int_equal(observe(l, T0, json_integer(24 * 3600), 1000000, T0_S), 1);
  assert_int_equal(state_at(l, 0).duration_s, 24 * 3600);
  assert_int_equal(observe(l, T0, json_integer(1), 1000000, T0_S), 1);
  assert_int_equal(state_at(l, 0).expiry_ms, 1001000);
}

static void test_forget_and_keys(void **state) {
  op_leases *l = *state;
  json_t *o = lease(T0, json_integer(60));

  assert_int_equal(op_leases_observe(l, "a/x", o, 1000000, T0_S), 1);
  assert_int_equal(op_leases_observe(l, "b/x", o, 2000000, T0_S), 1);
  op_leases_forget(l, "nobody/here");
  op_leases_forget(l, "a/x");
  {
    struct op_lease_state st;
    op_leases_state(l, "a/x", 1000, &st);
    assert_false(st.renewed);
    assert_int_equal(st.duration_s, DEFAULT_S);
    op_leases_state(l, "b/x", 1000, &st);
    assert_true(st.renewed);
    assert_int_equal(st.expiry_ms, 2060000);
  }
  /* seen again after forget: first sight, dated from renewTime */
  assert_int_equal(op_leases_observe(l, "a/x", o, 3000000, T0_S + 20), 1);
  {
    struct op_lease_state st;
    op_leases_state(l, "a/x", 3000000, &st);
    assert_int_equal(st.expiry_ms, 3000000 - 20000 + 60000);
  }
  json_decref(o);
}

/* An agent that stops empties holderIdentity: released at once, fresh again
 * when it renews with a holder. */
static void test_released(void **state) {
  op_leases *l = *state;
  struct op_lease_state st;
  json_t *o = lease("2026-11-25T10:00:00Z", json_integer(30));

  assert_int_equal(op_leases_observe(l, "default/laptop", o, 1000000, T0_S), 1);
  st = state_at(l, 1000001);
  assert_true(st.fresh);
  assert_false(st.released);
  json_object_set_new(json_object_get(o, "spec"), "holderIdentity", json_null());
  assert_int_equal(op_leases_observe(l, "default/laptop", o, 1001000, T0_S), 1);
  assert_int_equal(op_leases_observe(l, "default/laptop", o, 1001500, T0_S), 0);
  st = state_at(l, 1001001);
  assert_true(st.renewed);
  assert_true(st.released);
  assert_false(st.fresh);
  json_object_set_new(json_object_get(o, "spec"), "holderIdentity", json_string("agent"));
  json_object_set_new(json_object_get(o, "spec"), "renewTime",
                      json_string("2026-11-25T10:00:09.5Z"));
  assert_int_equal(op_leases_observe(l, "default/laptop", o, 1002000, T0_S), 1);
  st = state_at(l, 1002001);
  assert_true(st.fresh);
  assert_false(st.released);
  assert_int_equal(st.expiry_ms, 1002000 + 30000);
  json_decref(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_valid),
      cmocka_unit_test(test_parse_invalid),
      cmocka_unit_test_setup_teardown(test_unknown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unrenewed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_first_sight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_first_sight_before_clock_zero, setup, teardown),
      cmocka_unit_test_setup_teardown(test_renewals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_durations, setup, teardown),
      cmocka_unit_test_setup_teardown(test_forget_and_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_released, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
