/* test_workqueue.c - work queue: dedupe, stingy processing, delays, rate limits, shutdown, caps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warren/err.h"
#include "warren/workqueue.h"

static wr_wq *new_queue(const struct wr_wq_config *cfg) {
  wr_wq *q = NULL;

  assert_int_equal(wr_wq_new(&q, cfg), 0);
  assert_non_null(q);
  return q;
}

/* expect_get asserts that get at |now| returns |key| (NULL: nothing). */
static void expect_get(wr_wq *q, uint64_t now, const char *key) {
  const char *got = wr_wq_get(q, now);

  if (key == NULL)
    assert_null(got);
  else {
    assert_non_null(got);
    assert_string_equal(got, key);
  }
}

/* get_done takes |key| at |now| and finishes it. */
static void get_done(wr_wq *q, uint64_t now, const char *key) {
  expect_get(q, now, key);
  assert_int_equal(wr_wq_done(q, key), 0);
}

static void test_new_and_config(void **state) {
  struct wr_wq_config cfg = WR_WQ_CONFIG_DEFAULT;
  static char sentinel;
  wr_wq *q = (wr_wq *)(void *)&sentinel; /* must be cleared on failure */

  (void)state;
  assert_int_equal(cfg.max_keys, 65536);
  assert_int_equal(cfg.base_delay_ms, 5);
  assert_int_equal(cfg.max_delay_ms, 1000000);
  assert_int_equal(cfg.qps, 10);
  assert_int_equal(cfg.burst, 100);
  cfg.max_keys = 0;
  assert_int_equal(wr_wq_new(&q, &cfg), WR_ERR_INVAL);
  assert_null(q);
  cfg.max_keys = 1;
  cfg.burst = 0;
  assert_int_equal(wr_wq_new(&q, &cfg), WR_ERR_INVAL);
  cfg.qps = 0;
  q = new_queue(&cfg);
  wr_wq_del(q);
  wr_wq_del(NULL);
}

static void test_dedupe(void **state) {
  wr_wq *q = new_queue(NULL);

  (void)state;
  assert_int_equal(wr_wq_add(q, "ns/a"), 0);
  assert_int_equal(wr_wq_add(q, "ns/a"), 0);
  assert_int_equal(wr_wq_add(q, "ns/b"), 0);
  assert_int_equal(wr_wq_add(q, "ns/a"), 0);
  assert_int_equal(wr_wq_len(q), 2);
  assert_int_equal(wr_wq_keys(q), 2);
  get_done(q, 0, "ns/a");
  get_done(q, 0, "ns/b");
  expect_get(q, 0, NULL);
  assert_int_equal(wr_wq_keys(q), 0);
  wr_wq_del(q);
}

static void test_fifo_order(void **state) {
  wr_wq *q = new_queue(NULL);
  char key[32];
  int i;

  (void)state;
  for (i = 0; i < 50; i++) {
    snprintf(key, sizeof(key), "key-%d", (i * 7) % 50);
    assert_int_equal(wr_wq_add(q, key), 0);
  }
  /* Re-adding ready keys does not move them. */
  assert_int_equal(wr_wq_add(q, "key-0"), 0);
  assert_int_equal(wr_wq_add(q, "key-49"), 0);
  assert_int_equal(wr_wq_len(q), 50);
  for (i = 0; i < 50; i++) {
    snprintf(key, sizeof(key), "key-%d", (i * 7) % 50);
    get_done(q, 0, key);
  }
  expect_get(q, 0, NULL);
  wr_wq_del(q);
}

static void test_keys_are_copied(void **state) {
  wr_wq *q = new_queue(NULL);
  char key[16] = "ns/copied";

  (void)state;
  assert_int_equal(wr_wq_add(q, key), 0);
  memset(key, 'z', sizeof(key) - 1);
  get_done(q, 0, "ns/copied");
  wr_wq_del(q);
}

static void test_stingy(void **state) {
  wr_wq *q = new_queue(NULL);
  const char *k;

  (void)state;
  assert_int_equal(wr_wq_add(q, "a"), 0);
  assert_int_equal(wr_wq_add(q, "b"), 0);
  k = wr_wq_get(q, 0);
  assert_string_equal(k, "a");
  assert_int_equal(wr_wq_processing(q), 1);
  /* Adds while processing mark it dirty: never handed to a second worker. */
  assert_int_equal(wr_wq_add(q, "a"), 0);
  assert_int_equal(wr_wq_add(q, "a"), 0);
  assert_int_equal(wr_wq_len(q), 1);
  expect_get(q, 0, "b");
  expect_get(q, 0, NULL);
  /* done() re-queues it once, at the tail. */
  assert_int_equal(wr_wq_add(q, "c"), 0);
  assert_int_equal(wr_wq_done(q, k), 0);
  assert_int_equal(wr_wq_len(q), 2);
  expect_get(q, 0, "c");
  expect_get(q, 0, "a");
  expect_get(q, 0, NULL);
  assert_int_equal(wr_wq_done(q, "a"), 0);
  assert_int_equal(wr_wq_done(q, "b"), 0);
  assert_int_equal(wr_wq_done(q, "c"), 0);
  expect_get(q, 0, NULL);
  /* Without an add meanwhile, done() forgets the key. */
  assert_int_equal(wr_wq_keys(q), 0);
  assert_int_equal(wr_wq_processing(q), 0);
  /* done() of a key not being processed. */
  assert_int_equal(wr_wq_done(q, "a"), WR_ERR_NOTFOUND);
  assert_int_equal(wr_wq_add(q, "a"), 0);
  assert_int_equal(wr_wq_done(q, "a"), WR_ERR_NOTFOUND);
  assert_int_equal(wr_wq_done(q, ""), WR_ERR_NOTFOUND);
  wr_wq_del(q);
}

static void test_add_after_order(void **state) {
  wr_wq *q = new_queue(NULL);

  (void)state;
  assert_int_equal(wr_wq_next_deadline(q), WR_WQ_NEVER);
  assert_int_equal(wr_wq_add_after(q, "c", 30, 1000), 0);
  assert_int_equal(wr_wq_add_after(q, "a", 10, 1000), 0);
  assert_int_equal(wr_wq_add_after(q, "b", 20, 1000), 0);
  assert_int_equal(wr_wq_delayed(q), 3);
  assert_int_equal(wr_wq_len(q), 0);
  assert_int_equal(wr_wq_next_deadline(q), 1010);
  expect_get(q, 1009, NULL);
  get_done(q, 1010, "a");
  assert_int_equal(wr_wq_next_deadline(q), 1020);
  expect_get(q, 1019, NULL);
  get_done(q, 1025, "b");
  assert_int_equal(wr_wq_next_deadline(q), 1030);
  get_done(q, 5000, "c");
  assert_int_equal(wr_wq_next_deadline(q), WR_WQ_NEVER);

  /* Several due at once come out earliest first, ties in insertion order,
   * after keys that were already ready. */
  assert_int_equal(wr_wq_add_after(q, "x", 30, 0), 0);
  assert_int_equal(wr_wq_add_after(q, "y", 10, 0), 0);
  assert_int_equal(wr_wq_add_after(q, "z", 20, 0), 0);
  assert_int_equal(wr_wq_add_after(q, "w", 20, 0), 0);
  assert_int_equal(wr_wq_add(q, "r"), 0);
  get_done(q, 100, "r");
  assert_int_equal(wr_wq_len(q), 4);
  get_done(q, 100, "y");
  get_done(q, 100, "z");
  get_done(q, 100, "w");
  get_done(q, 100, "x");
  /* A zero delay is a plain add. */
  assert_int_equal(wr_wq_add_after(q, "now", 0, 0), 0);
  assert_int_equal(wr_wq_delayed(q), 0);
  get_done(q, 0, "now");
  /* A delay that overflows the clock saturates. */
  assert_int_equal(wr_wq_add_after(q, "far", UINT64_MAX, 10), 0);
  assert_int_equal(wr_wq_next_deadline(q), UINT64_MAX);
  expect_get(q, UINT64_MAX - 1, NULL);
  wr_wq_del(q);
}

static void test_earliest_wins(void **state) {
  wr_wq *q = new_queue(NULL);

  (void)state;
  assert_int_equal(wr_wq_add_after(q, "a", 100, 0), 0);
  assert_int_equal(wr_wq_add_after(q, "a", 50, 0), 0);
  assert_int_equal(wr_wq_next_deadline(q), 50);
  assert_int_equal(wr_wq_add_after(q, "a", 200, 0), 0);
  assert_int_equal(wr_wq_add_after(q, "a", 40, 10), 0); /* equal time: unchanged */
  assert_int_equal(wr_wq_next_deadline(q), 50);
  assert_int_equal(wr_wq_delayed(q), 1);
  assert_int_equal(wr_wq_keys(q), 1);
  /* A plain add supersedes the delay: ready now, no second delivery later. */
  assert_int_equal(wr_wq_add(q, "a"), 0);
  assert_int_equal(wr_wq_delayed(q), 0);
  assert_int_equal(wr_wq_len(q), 1);
  assert_int_equal(wr_wq_next_deadline(q), WR_WQ_NEVER);
  /* A delay for a ready key changes nothing. */
  assert_int_equal(wr_wq_add_after(q, "a", 10, 0), 0);
  assert_int_equal(wr_wq_delayed(q), 0);
  expect_get(q, 0, "a");
  /* While processing, a delay is kept and turns into dirty when due. */
  assert_int_equal(wr_wq_add_after(q, "a", 10, 0), 0);
  assert_int_equal(wr_wq_delayed(q), 1);
  expect_get(q, 10, NULL);
  assert_int_equal(wr_wq_delayed(q), 0);
  assert_int_equal(wr_wq_done(q, "a"), 0);
  expect_get(q, 10, "a");
  /* While processing and dirty, it is due at done(): a delay changes nothing. */
  assert_int_equal(wr_wq_add(q, "a"), 0);
  assert_int_equal(wr_wq_add_after(q, "a", 5, 10), 0);
  assert_int_equal(wr_wq_delayed(q), 0);
  assert_int_equal(wr_wq_done(q, "a"), 0);
  get_done(q, 10, "a");
  /* Processing and delayed, then done: it stays delayed. */
  assert_int_equal(wr_wq_add(q, "b"), 0);
  expect_get(q, 20, "b");
  assert_int_equal(wr_wq_add_after(q, "b", 30, 20), 0);
  assert_int_equal(wr_wq_done(q, "b"), 0);
  assert_int_equal(wr_wq_delayed(q), 1);
  expect_get(q, 49, NULL);
  get_done(q, 50, "b");
  assert_int_equal(wr_wq_keys(q), 0);
  wr_wq_del(q);
}

static void test_backoff_sequence(void **state) {
  wr_wq *q = new_queue(NULL);
  uint64_t now = 7, want = 5;
  unsigned i;

  (void)state;
  for (i = 0; i < 30; i++) {
    assert_int_equal(wr_wq_add_rate_limited(q, "ns/failing", now), 0);
    assert_int_equal(wr_wq_num_requeues(q, "ns/failing"), i + 1);
    assert_int_equal(wr_wq_next_deadline(q) - now, want);
    expect_get(q, now + want - 1, NULL);
    now += want;
    get_done(q, now, "ns/failing");
    /* 5, 10, 20, ... 655360 ms, then capped at 1000 s. */
    want = want * 2 > 1000000 ? 1000000 : want * 2;
  }
  /* The failure count outlives done(); forget() resets it. */
  assert_int_equal(wr_wq_keys(q), 1);
  wr_wq_forget(q, "ns/failing");
  assert_int_equal(wr_wq_num_requeues(q, "ns/failing"), 0);
  assert_int_equal(wr_wq_keys(q), 0);
  assert_int_equal(wr_wq_add_rate_limited(q, "ns/failing", now), 0);
  assert_int_equal(wr_wq_next_deadline(q) - now, 5);
  assert_int_equal(wr_wq_add_rate_limited(q, "ns/failing", now), 0);
  assert_int_equal(wr_wq_num_requeues(q, "ns/failing"), 2);
  /* The second failure's 10 ms is later than the pending 5 ms: earliest wins. */
  assert_int_equal(wr_wq_next_deadline(q) - now, 5);
  /* forget() while queued keeps the key queued. */
  wr_wq_forget(q, "ns/failing");
  wr_wq_forget(q, "unknown");
  assert_int_equal(wr_wq_num_requeues(q, "unknown"), 0);
  assert_int_equal(wr_wq_delayed(q), 1);
  get_done(q, now + 5, "ns/failing");
  assert_int_equal(wr_wq_keys(q), 0);
  wr_wq_del(q);
}

static void test_backoff_custom(void **state) {
  struct wr_wq_config cfg = WR_WQ_CONFIG_DEFAULT;
  wr_wq *q;
  unsigned i;

  (void)state;
  /* A huge base saturates at the cap instead of overflowing. */
  cfg.base_delay_ms = UINT64_MAX / 2;
  cfg.max_delay_ms = 3000;
  cfg.qps = 0;
  q = new_queue(&cfg);
  for (i = 0; i < 70; i++) {
    assert_int_equal(wr_wq_add_rate_limited(q, "k", 0), 0);
    assert_int_equal(wr_wq_next_deadline(q), 3000);
    get_done(q, 3000, "k");
  }
  assert_int_equal(wr_wq_num_requeues(q, "k"), 70);
  wr_wq_del(q);
}

static void test_token_bucket(void **state) {
  wr_wq *q = new_queue(NULL);
  const uint64_t t0 = 50000;
  char key[32];
  int i;

  (void)state;
  /* A burst of 100 distinct keys: each waits only its own 5 ms backoff. */
  for (i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "burst-%d", i);
    assert_int_equal(wr_wq_add_rate_limited(q, key, t0), 0);
  }
  assert_int_equal(wr_wq_delayed(q), 100);
  assert_int_equal(wr_wq_next_deadline(q), t0 + 5);
  /* The bucket is empty: the 101st waits 100 ms (10 qps), the 102nd 200 ms. */
  assert_int_equal(wr_wq_add_rate_limited(q, "late-1", t0), 0);
  assert_int_equal(wr_wq_add_rate_limited(q, "late-2", t0), 0);
  for (i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "burst-%d", i);
    get_done(q, t0 + 5, key);
  }
  expect_get(q, t0 + 5, NULL);
  assert_int_equal(wr_wq_next_deadline(q), t0 + 100);
  expect_get(q, t0 + 99, NULL);
  get_done(q, t0 + 100, "late-1");
  assert_int_equal(wr_wq_next_deadline(q), t0 + 200);
  get_done(q, t0 + 200, "late-2");
  /* At t0 + 200 ms two tokens came back, both owed: the next one waits 100 ms. */
  assert_int_equal(wr_wq_add_rate_limited(q, "late-3", t0 + 200), 0);
  assert_int_equal(wr_wq_next_deadline(q), t0 + 300);
  get_done(q, t0 + 300, "late-3");
  /* 10 s later the bucket is full again (not fuller): 100 more pass at once. */
  for (i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "again-%d", i);
    assert_int_equal(wr_wq_add_rate_limited(q, key, t0 + 20000), 0);
  }
  assert_int_equal(wr_wq_add_rate_limited(q, "again-late", t0 + 20000), 0);
  for (i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "again-%d", i);
    get_done(q, t0 + 20005, key);
  }
  assert_int_equal(wr_wq_next_deadline(q), t0 + 20100);
  /* A clock that steps back refills nothing and does not underflow. */
  assert_int_equal(wr_wq_add_rate_limited(q, "back", t0), 0);
  assert_int_equal(wr_wq_next_deadline(q), t0 + 200);
  wr_wq_del(q);
}

static void test_next_deadline(void **state) {
  wr_wq *q = new_queue(NULL);

  (void)state;
  assert_int_equal(wr_wq_next_deadline(q), WR_WQ_NEVER);
  assert_int_equal(wr_wq_add(q, "ready"), 0);
  assert_int_equal(wr_wq_next_deadline(q), WR_WQ_NEVER);
  assert_int_equal(wr_wq_add_after(q, "d1", 500, 100), 0);
  assert_int_equal(wr_wq_next_deadline(q), 600);
  assert_int_equal(wr_wq_add_after(q, "d2", 100, 300), 0);
  assert_int_equal(wr_wq_next_deadline(q), 400);
  /* Cancelling the head (a plain add) exposes the next one. */
  assert_int_equal(wr_wq_add(q, "d2"), 0);
  assert_int_equal(wr_wq_next_deadline(q), 600);
  get_done(q, 0, "ready");
  get_done(q, 0, "d2");
  expect_get(q, 599, NULL);
  get_done(q, 600, "d1");
  assert_int_equal(wr_wq_next_deadline(q), WR_WQ_NEVER);
  wr_wq_del(q);
}

static void test_shutdown(void **state) {
  wr_wq *q = new_queue(NULL);

  (void)state;
  assert_int_equal(wr_wq_add(q, "a"), 0);
  assert_int_equal(wr_wq_add(q, "b"), 0);
  assert_int_equal(wr_wq_add_after(q, "later", 10, 0), 0);
  assert_int_equal(wr_wq_add_rate_limited(q, "failed", 0), 0);
  expect_get(q, 0, "a");
  assert_int_equal(wr_wq_add(q, "a"), 0); /* dirty before shutdown */
  assert_false(wr_wq_is_shutdown(q));
  wr_wq_shutdown(q);
  assert_true(wr_wq_is_shutdown(q));
  /* Intake stops, delayed keys are dropped. */
  assert_int_equal(wr_wq_add(q, "c"), WR_ERR_CLOSED);
  assert_int_equal(wr_wq_add_after(q, "c", 5, 0), WR_ERR_CLOSED);
  assert_int_equal(wr_wq_add_rate_limited(q, "c", 0), WR_ERR_CLOSED);
  assert_int_equal(wr_wq_num_requeues(q, "c"), 0);
  assert_int_equal(wr_wq_delayed(q), 0);
  assert_int_equal(wr_wq_next_deadline(q), WR_WQ_NEVER);
  /* Ready keys are still handed out; processing ones may finish. */
  assert_false(wr_wq_drained(q));
  get_done(q, 100, "b");
  expect_get(q, 100, NULL);
  assert_false(wr_wq_drained(q));
  assert_int_equal(wr_wq_done(q, "a"), 0);
  get_done(q, 100, "a");
  expect_get(q, 100, NULL);
  assert_true(wr_wq_drained(q));
  /* Only the failure count of "failed" remains, until forgotten. */
  assert_int_equal(wr_wq_keys(q), 1);
  wr_wq_forget(q, "failed");
  assert_int_equal(wr_wq_keys(q), 0);
  wr_wq_shutdown(q);
  assert_true(wr_wq_drained(q));
  wr_wq_del(q);
}

static void test_caps(void **state) {
  struct wr_wq_config cfg = WR_WQ_CONFIG_DEFAULT;
  char key[WR_WQ_KEY_MAX + 2];
  wr_wq *q;

  (void)state;
  cfg.max_keys = 3;
  q = new_queue(&cfg);
  assert_int_equal(wr_wq_add(q, "a"), 0);
  assert_int_equal(wr_wq_add_after(q, "b", 10, 0), 0);
  assert_int_equal(wr_wq_add_rate_limited(q, "c", 0), 0);
  assert_int_equal(wr_wq_add(q, "d"), WR_ERR_TOOBIG);
  assert_int_equal(wr_wq_add_after(q, "d", 10, 0), WR_ERR_TOOBIG);
  assert_int_equal(wr_wq_add_rate_limited(q, "d", 0), WR_ERR_TOOBIG);
  assert_int_equal(wr_wq_num_requeues(q, "d"), 0);
  /* Keys already tracked are still accepted. */
  assert_int_equal(wr_wq_add(q, "a"), 0);
  assert_int_equal(wr_wq_add(q, "b"), 0);
  assert_int_equal(wr_wq_keys(q), 3);
  /* A finished key frees its slot; one with failures keeps it until forget(). */
  get_done(q, 0, "a");
  assert_int_equal(wr_wq_add(q, "d"), 0);
  get_done(q, 100, "b");
  get_done(q, 100, "d");
  get_done(q, 100, "c"); /* due at 5 ms, queued when get ran at 100 */
  assert_int_equal(wr_wq_keys(q), 1);
  assert_int_equal(wr_wq_add(q, "e"), 0);
  assert_int_equal(wr_wq_add(q, "f"), 0);
  assert_int_equal(wr_wq_add(q, "g"), WR_ERR_TOOBIG);
  wr_wq_forget(q, "c");
  assert_int_equal(wr_wq_add(q, "g"), 0);

  /* Key length: up to WR_WQ_KEY_MAX bytes; empty keys are invalid. */
  get_done(q, 100, "e");
  get_done(q, 100, "f");
  get_done(q, 100, "g");
  memset(key, 'k', WR_WQ_KEY_MAX);
  key[WR_WQ_KEY_MAX] = '\0';
  assert_int_equal(wr_wq_add(q, key), 0);
  get_done(q, 0, key);
  key[WR_WQ_KEY_MAX] = 'k';
  key[WR_WQ_KEY_MAX + 1] = '\0';
  assert_int_equal(wr_wq_add(q, key), WR_ERR_TOOBIG);
  assert_int_equal(wr_wq_add_after(q, key, 1, 0), WR_ERR_TOOBIG);
  assert_int_equal(wr_wq_add_rate_limited(q, key, 0), WR_ERR_TOOBIG);
  assert_int_equal(wr_wq_add(q, ""), WR_ERR_INVAL);
  assert_int_equal(wr_wq_add(q, NULL), WR_ERR_INVAL);
  assert_int_equal(wr_wq_keys(q), 0);
  wr_wq_del(q);
}

/*
 * A reference model, written the obvious O(n) way, driven with the queue
 * by random operations: every get must return what the model says.
 */
#define MODEL_KEYS 40

struct model_key {
  int ready, delayed, processing, dirty;
  uint64_t ready_seq; /* FIFO position */
  uint64_t due, dseq; /* delayed order */
};

struct model {
  struct model_key k[MODEL_KEYS];
  uint64_t seq, dseq;
};

static void model_make_ready(struct model *m, int i) {
  struct model_key *k = &m->k[i];

  if (k->ready || k->dirty)
    return;
  k->delayed = 0;
  if (k->processing)
    k->dirty = 1;
  else {
    k->ready = 1;
    k->ready_seq = m->seq++;
  }
}

static void model_add_after(struct model *m, int i, uint64_t delay, uint64_t now) {
  struct model_key *k = &m->k[i];

  if (delay == 0) {
    model_make_ready(m, i);
    return;
  }
  if (k->ready || k->dirty)
    return;
  if (k->delayed && k->due <= now + delay)
    return;
  k->delayed = 1;
  k->due = now + delay;
  k->dseq = m->dseq++;
}

/* model_get returns the key index handed out at |now|, or -1. */
static int model_get(struct model *m, uint64_t now) {
  int i, best;

  for (;;) {
    best = -1;
    for (i = 0; i < MODEL_KEYS; i++) {
      struct model_key *k = &m->k[i];

      if (k->delayed && k->due <= now &&
          (best < 0 || k->due < m->k[best].due ||
           (k->due == m->k[best].due && k->dseq < m->k[best].dseq)))
        best = i;
    }
    if (best < 0)
      break;
    m->k[best].delayed = 0;
    model_make_ready(m, best);
  }
  best = -1;
  for (i = 0; i < MODEL_KEYS; i++) {
    if (m->k[i].ready && (best < 0 || m->k[i].ready_seq < m->k[best].ready_seq))
      best = i;
  }
  if (best >= 0) {
    m->k[best].ready = 0;
    m->k[best].processing = 1;
  }
  return best;
}

static void model_done(struct model *m, int i) {
  struct model_key *k = &m->k[i];

  k->processing = 0;
  if (k->dirty) {
    k->dirty = 0;
    k->ready = 1;
    k->ready_seq = m->seq++;
  }
}

static void test_against_model(void **state) {
  struct model m;
  wr_wq *q = new_queue(NULL);
  uint32_t rng = 99;
  uint64_t now = 0;
  char key[16];
  int step, i;

  (void)state;
  memset(&m, 0, sizeof(m));
  for (step = 0; step < 200000; step++) {
    unsigned op, r;

    rng = rng * 1103515245u + 12345u;
    r = rng >> 8;
    op = r % 10;
    i = (int)((r / 10) % MODEL_KEYS);
    snprintf(key, sizeof(key), "k%d", i);
    if (op < 3) {
      assert_int_equal(wr_wq_add(q, key), 0);
      model_make_ready(&m, i);
    } else if (op < 6) {
      uint64_t delay = (r / 400) % 50;

      assert_int_equal(wr_wq_add_after(q, key, delay, now), 0);
      model_add_after(&m, i, delay, now);
    } else if (op < 8) {
      int want = model_get(&m, now);
      const char *got = wr_wq_get(q, now);

      if (want < 0)
        assert_null(got);
      else {
        snprintf(key, sizeof(key), "k%d", want);
        assert_non_null(got);
        assert_string_equal(got, key);
      }
    } else if (op == 8) {
      assert_int_equal(wr_wq_done(q, key), m.k[i].processing ? 0 : WR_ERR_NOTFOUND);
      if (m.k[i].processing)
        model_done(&m, i);
    } else {
      now += (r / 10) % 7;
    }
    if (step % 1000 == 0) {
      size_t ready = 0, delayed = 0, processing = 0;
      uint64_t deadline = WR_WQ_NEVER;

      for (i = 0; i < MODEL_KEYS; i++) {
        ready += (size_t)m.k[i].ready;
        delayed += (size_t)m.k[i].delayed;
        processing += (size_t)m.k[i].processing;
        if (m.k[i].delayed && m.k[i].due < deadline)
          deadline = m.k[i].due;
      }
      assert_int_equal(wr_wq_len(q), ready);
      assert_int_equal(wr_wq_delayed(q), delayed);
      assert_int_equal(wr_wq_processing(q), processing);
      assert_int_equal(wr_wq_next_deadline(q), deadline);
    }
  }
  wr_wq_del(q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_and_config), cmocka_unit_test(test_dedupe),
      cmocka_unit_test(test_fifo_order),     cmocka_unit_test(test_keys_are_copied),
      cmocka_unit_test(test_stingy),         cmocka_unit_test(test_add_after_order),
      cmocka_unit_test(test_earliest_wins),  cmocka_unit_test(test_backoff_sequence),
      cmocka_unit_test(test_backoff_custom), cmocka_unit_test(test_token_bucket),
      cmocka_unit_test(test_next_deadline),  cmocka_unit_test(test_shutdown),
      cmocka_unit_test(test_caps),           cmocka_unit_test(test_against_model),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
