/* test_kcond - status conditions keep lastTransitionTime unless status changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "warren/err.h"
#include "warren/kcond.h"

static const char *field(json_t *conds, const char *type, const char *key) {
  return json_string_value(json_object_get(wr_kcond_find(conds, type), key));
}

static void test_new_condition(void **state) {
  json_t *conds = json_array();

  (void)state;
  assert_int_equal(wr_kcond_set(conds, "Ready", "False", "Pending", "waiting", 3, 1000), 1);
  assert_int_equal(json_array_size(conds), 1);
  assert_string_equal(field(conds, "Ready", "status"), "False");
  assert_string_equal(field(conds, "Ready", "reason"), "Pending");
  assert_string_equal(field(conds, "Ready", "lastTransitionTime"), "1970-01-01T00:16:40Z");
  assert_int_equal(
      json_integer_value(json_object_get(wr_kcond_find(conds, "Ready"), "observedGeneration")), 3);
  json_decref(conds);
}

static void test_same_status_keeps_time(void **state) {
  json_t *conds = json_array();

  (void)state;
  wr_kcond_set(conds, "Ready", "True", "Up", "fine", 1, 1000);
  /* nothing changes: 0, time kept */
  assert_int_equal(wr_kcond_set(conds, "Ready", "True", "Up", "fine", 1, 5000), 0);
  assert_string_equal(field(conds, "Ready", "lastTransitionTime"), "1970-01-01T00:16:40Z");
  /* reason/message/generation change: 1, time still kept */
  assert_int_equal(wr_kcond_set(conds, "Ready", "True", "Up2", "finer", 2, 6000), 1);
  assert_string_equal(field(conds, "Ready", "reason"), "Up2");
  assert_string_equal(field(conds, "Ready", "message"), "finer");
  assert_string_equal(field(conds, "Ready", "lastTransitionTime"), "1970-01-01T00:16:40Z");
  /* status change: new time */
  assert_int_equal(wr_kcond_set(conds, "Ready", "False", "Down", "gone", 2, 7000), 1);
  assert_string_equal(field(conds, "Ready", "lastTransitionTime"), "1970-01-01T01:56:40Z");
  assert_true(wr_kcond_is(conds, "Ready", "False"));
  assert_false(wr_kcond_is(conds, "Ready", "True"));
  json_decref(conds);
}

static void test_several_and_remove(void **state) {
  json_t *conds = json_array();

  (void)state;
  wr_kcond_set(conds, "Accepted", "True", "Ok", "", 0, 1);
  wr_kcond_set(conds, "Programmed", "Unknown", "Pending", "", 0, 1);
  assert_int_equal(json_array_size(conds), 2);
  assert_null(json_object_get(wr_kcond_find(conds, "Accepted"), "observedGeneration"));
  assert_int_equal(wr_kcond_remove(conds, "Accepted"), 1);
  assert_int_equal(wr_kcond_remove(conds, "Accepted"), 0);
  assert_null(wr_kcond_find(conds, "Accepted"));
  assert_non_null(wr_kcond_find(conds, "Programmed"));
  json_decref(conds);
}

static void test_invalid(void **state) {
  json_t *conds = json_array(), *notarray = json_object();

  (void)state;
  assert_int_equal(wr_kcond_set(conds, "Ready", "Maybe", "R", "", 0, 1), WR_ERR_INVAL);
  assert_int_equal(wr_kcond_set(conds, "", "True", "R", "", 0, 1), WR_ERR_INVAL);
  assert_int_equal(wr_kcond_set(conds, "Ready", "True", "", "", 0, 1), WR_ERR_INVAL);
  assert_int_equal(wr_kcond_set(notarray, "Ready", "True", "R", "", 0, 1), WR_ERR_INVAL);
  assert_int_equal(json_array_size(conds), 0);
  json_decref(conds);
  json_decref(notarray);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_condition),
      cmocka_unit_test(test_same_status_keeps_time),
      cmocka_unit_test(test_several_and_remove),
      cmocka_unit_test(test_invalid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
