/* test_controller - the work queue on a real libuv loop: dedupe, one reconcile per key at a time,
 * rate-limited retries, requeue-after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>
#include <uv.h>

#include "warren/controller.h"
#include "warren/err.h"

#define MAXLOG 64

struct rec {
  uv_loop_t *loop;
  wr_controller *c;
  char keys[MAXLOG][16];
  uint64_t at[MAXLOG];
  int n;
  int active_a, max_active_a;
  int want;                   /* run_until_n */
  int fail_left;              /* ERROR results to give before OK */
  uint64_t async_ms;          /* finish reconciles after this long (0: at once) */
  enum wr_reconcile_result r; /* result once fail_left is 0 */
  uint64_t after_ms;
  int requeues_left;
  uv_timer_t timers[MAXLOG];
  char pending[MAXLOG][16];
};

static void finish(struct rec *x, const char *key) {
  enum wr_reconcile_result r = WR_RECONCILE_OK;

  if (strcmp(key, "a") == 0)
    x->active_a--;
  if (x->fail_left > 0) {
    x->fail_left--;
    r = WR_RECONCILE_ERROR;
  } else if (x->requeues_left > 0) {
    x->requeues_left--;
    r = WR_RECONCILE_REQUEUE;
  }
  wr_controller_done(x->c, key, r, x->after_ms);
}

static void on_finish(uv_timer_t *t) {
  struct rec *x = t->data;
  int i = (int)(t - x->timers);

  finish(x, x->pending[i]);
  uv_close((uv_handle_t *)t, NULL);
}

static void reconcile(void *ud, wr_controller *c, const char *key) {
  struct rec *x = ud;
  int i = x->n;

  (void)c;
  assert_true(x->n < MAXLOG);
  snprintf(x->keys[x->n], sizeof(x->keys[0]), "%s", key);
  x->at[x->n++] = uv_now(x->loop);
  if (strcmp(key, "a") == 0) {
    x->active_a++;
    if (x->active_a > x->max_active_a)
      x->max_active_a = x->active_a;
  }
  if (x->async_ms == 0) {
    finish(x, key);
    return;
  }
  snprintf(x->pending[i], sizeof(x->pending[0]), "%s", key);
  uv_timer_init(x->loop, &x->timers[i]);
  x->timers[i].data = x;
  uv_timer_start(&x->timers[i], on_finish, x->async_ms, 0);
}

static void stop_cb(uv_timer_t *t) {
  uv_stop(t->loop);
}

/* run_for runs the loop |ms| milliseconds. */
static void run_for(uv_loop_t *loop, uint64_t ms) {
  uv_timer_t t;

  uv_timer_init(loop, &t);
  uv_timer_start(&t, stop_cb, ms, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

static void check_n(uv_idle_t *h) {
  struct rec *x = h->data;

  if (x->n >= x->want)
    uv_stop(h->loop);
}

/* run_until_n runs the loop until |n| reconciles happened or |max_ms| passed
 * (generous bounds: the assertions are on order and minimum delays). */
static void run_until_n(struct rec *x, int n, uint64_t max_ms) {
  uv_idle_t idle;
  uv_timer_t t;

  x->want = n;
  uv_idle_init(x->loop, &idle);
  idle.data = x;
  uv_idle_start(&idle, check_n);
  uv_timer_init(x->loop, &t);
  uv_timer_start(&t, stop_cb, max_ms, 0);
  uv_run(x->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&idle, NULL);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(x->loop, UV_RUN_NOWAIT);
}

static void setup(struct rec *x, uv_loop_t *loop, unsigned workers) {
  struct wr_controller_opts o = {"test", workers, NULL};

  memset(x, 0, sizeof(*x));
  uv_loop_init(loop);
  x->loop = loop;
  assert_int_equal(wr_controller_new(&x->c, loop, &o, reconcile, x), 0);
}

static void teardown(struct rec *x) {
  wr_controller_del(x->c);
  uv_run(x->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(x->loop), 0);
}

static void test_dedupe(void **state) {
  uv_loop_t loop;
  struct rec x;

  (void)state;
  setup(&x, &loop, 1);
  wr_controller_add(x.c, "a");
  wr_controller_add(x.c, "b");
  wr_controller_add(x.c, "a");
  run_until_n(&x, 2, 5000);
  run_for(&loop, 20); /* and nothing more */
  assert_int_equal(x.n, 2);
  assert_string_equal(x.keys[0], "a");
  assert_string_equal(x.keys[1], "b");
  teardown(&x);
}

static void test_one_reconcile_per_key(void **state) {
  uv_loop_t loop;
  struct rec x;
  struct wr_controller_stats st;

  (void)state;
  setup(&x, &loop, 4);
  x.async_ms = 20;
  wr_controller_add(x.c, "a");
  wr_controller_add(x.c, "b");
  run_for(&loop, 5); /* a and b are running */
  wr_controller_stats(x.c, &st);
  assert_int_equal(st.active, 2);
  wr_controller_add(x.c, "a"); /* twice while a runs: once more after */
  wr_controller_add(x.c, "a");
  run_until_n(&x, 3, 5000);
  run_for(&loop, 50); /* and nothing more */
  assert_int_equal(x.n, 3);
  assert_string_equal(x.keys[2], "a");
  assert_true(x.at[2] >= x.at[0] + 20); /* only after the first finished */
  assert_int_equal(x.max_active_a, 1);
  teardown(&x);
}

static void test_errors_back_off(void **state) {
  uv_loop_t loop;
  struct rec x;
  struct wr_controller_stats st;

  (void)state;
  setup(&x, &loop, 1);
  x.fail_left = 4;
  wr_controller_add(x.c, "a");
  run_until_n(&x, 5, 5000);
  run_for(&loop, 20); /* and nothing more */
  /* 5 reconciles: the first, then retries after 5, 10, 20 and 40 ms */
  assert_int_equal(x.n, 5);
  assert_true(x.at[1] - x.at[0] >= 5);
  assert_true(x.at[2] - x.at[1] >= 10);
  assert_true(x.at[3] - x.at[2] >= 20);
  assert_true(x.at[4] - x.at[3] >= 40);
  wr_controller_stats(x.c, &st);
  assert_int_equal(st.errors, 4);
  assert_int_equal(st.reconciles, 5);
  /* success forgot the failures: the next error backs off 5 ms again */
  x.fail_left = 1;
  wr_controller_add(x.c, "a");
  run_until_n(&x, 7, 5000);
  assert_int_equal(x.n, 7);
  assert_true(x.at[6] - x.at[5] >= 5);
  wr_controller_stats(x.c, &st);
  assert_int_equal(st.errors, 5);
  teardown(&x);
}

static void test_requeue_after(void **state) {
  uv_loop_t loop;
  struct rec x;

  (void)state;
  setup(&x, &loop, 1);
  x.requeues_left = 2;
  x.after_ms = 50;
  wr_controller_add(x.c, "a");
  run_until_n(&x, 3, 5000);
  assert_int_equal(x.n, 3);
  assert_true(x.at[1] - x.at[0] >= 50);
  assert_true(x.at[2] - x.at[1] >= 50);
  run_for(&loop, 100); /* no more requeues */
  assert_int_equal(x.n, 3);
  teardown(&x);
}

static void test_add_after(void **state) {
  uv_loop_t loop;
  struct rec x;
  uint64_t t0;

  (void)state;
  setup(&x, &loop, 1);
  uv_update_time(&loop);
  t0 = uv_now(&loop);
  assert_int_equal(wr_controller_add_after(x.c, "a", 40), 0);
  run_until_n(&x, 1, 5000);
  assert_int_equal(x.n, 1);
  assert_true(x.at[0] - t0 >= 40);
  teardown(&x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dedupe),          cmocka_unit_test(test_one_reconcile_per_key),
      cmocka_unit_test(test_errors_back_off), cmocka_unit_test(test_requeue_after),
      cmocka_unit_test(test_add_after),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
