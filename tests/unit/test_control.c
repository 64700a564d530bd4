/* test_control.c - the pure part of heartbeat/control.c: whose Lease is live. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "control.h"
#include "warren/kcond.h"

#define NOW 1795564800LL /* 2026-11-25T00:00:00Z */

static int held(const char *holder, const char *renew, int duration, const char *ours) {
  json_t *spec = json_object(), *lease;
  int rv;

  if (holder != NULL)
    json_object_set_new(spec, "holderIdentity", json_string(holder));
  if (renew != NULL)
    json_object_set_new(spec, "renewTime", json_string(renew));
  if (duration != 0)
    json_object_set_new(spec, "leaseDurationSeconds", json_integer(duration));
  lease = json_pack("{s:o}", "spec", spec);
  rv = hb_lease_held_by_other(lease, ours, NOW);
  json_decref(lease);
  return rv;
}

static void test_held_by_other(void **state) {
  (void)state;
  /* another node renewed 10 s ago, 30 s lease: live */
  assert_true(held("bbbb", "2026-11-24T23:59:50.123456Z", 30, "aaaa"));
  /* ... 31 s ago: gone */
  assert_false(held("bbbb", "2026-11-24T23:59:29Z", 30, "aaaa"));
  /* ours, released (empty holder), never renewed, garbage: not another live node */
  assert_false(held("aaaa", "2026-11-24T23:59:50Z", 30, "aaaa"));
  assert_false(held("", "2026-11-24T23:59:50Z", 30, "aaaa"));
  assert_false(held(NULL, "2026-11-24T23:59:50Z", 30, "aaaa"));
  assert_false(held("bbbb", NULL, 30, "aaaa"));
  assert_false(held("bbbb", "yesterday", 30, "aaaa"));
  assert_false(held("bbbb", "2026-11-24T23:59:50Z", 0, "aaaa"));
  /* a renewal "in the future" (skewed clock) is live */
  assert_true(held("bbbb", "2026-11-25T00:05:00Z", 30, "aaaa"));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_held_by_other)};

  return cmocka_run_group_tests(tests, NULL, NULL);
}
