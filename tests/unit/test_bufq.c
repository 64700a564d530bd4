/* test_bufq.c - the chunked send queue: cap, cursors, stable memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "warren/bufq.h"

static size_t collect(const wr_bufq *q, uint8_t *out, size_t cap) {
  struct iovec v[64];
  size_t n = wr_bufq_peek(q, v, 64), i, off = 0;

  for (i = 0; i < n; i++) {
    assert_true(off + v[i].iov_len <= cap);
    memcpy(out + off, v[i].iov_base, v[i].iov_len);
    off += v[i].iov_len;
  }
  return off;
}

static void test_cap(void **state) {
  wr_bufq q;
  uint8_t data[100];

  (void)state;
  memset(data, 7, sizeof(data));
  wr_bufq_init(&q, 16, 50);
  assert_int_equal(wr_bufq_append(&q, data, 40), 40);
  assert_int_equal(wr_bufq_append(&q, data, 40), 10); /* only what fits */
  assert_int_equal(wr_bufq_append(&q, data, 1), 0);
  assert_int_equal(wr_bufq_space(&q), 0);
  assert_int_equal(q.unsent, 50);
  wr_bufq_free(&q);
}

static void test_cursors_and_order(void **state) {
  wr_bufq q;
  uint8_t in[1000], out[1000];
  size_t i, got;

  (void)state;
  for (i = 0; i < sizeof(in); i++)
    in[i] = (uint8_t)(i * 31);
  wr_bufq_init(&q, 64, 4096);
  assert_int_equal(wr_bufq_append(&q, in, 1000), 1000);
  got = collect(&q, out, sizeof(out));
  assert_int_equal(got, 1000);
  assert_memory_equal(in, out, 1000);
  wr_bufq_sent(&q, 300);
  assert_int_equal(q.unsent, 700);
  got = collect(&q, out, sizeof(out));
  assert_int_equal(got, 700);
  assert_memory_equal(in + 300, out, 700);
  /* Acknowledge part of what was sent: unsent data is unaffected. */
  wr_bufq_ack(&q, 200);
  assert_int_equal(q.len, 800);
  got = collect(&q, out, sizeof(out));
  assert_memory_equal(in + 300, out, 700);
  wr_bufq_sent(&q, 700);
  assert_int_equal(wr_bufq_peek(&q, (struct iovec[1]){{0}}, 1), 0);
  wr_bufq_ack(&q, 800);
  assert_int_equal(q.len, 0);
  /* Reuse after everything was acknowledged. */
  assert_int_equal(wr_bufq_append(&q, in, 10), 10);
  got = collect(&q, out, sizeof(out));
  assert_int_equal(got, 10);
  assert_memory_equal(in, out, 10);
  wr_bufq_free(&q);
}

static void test_memory_stable(void **state) {
  wr_bufq q;
  uint8_t in[256];
  struct iovec v[4];
  const void *first;

  (void)state;
  memset(in, 1, sizeof(in));
  wr_bufq_init(&q, 128, 1 << 20);
  assert_int_equal(wr_bufq_append(&q, in, 100), 100);
  assert_int_equal(wr_bufq_peek(&q, v, 4), 1);
  first = v[0].iov_base;
  wr_bufq_sent(&q, 100);
  /* Appending much more must not move bytes already handed out. */
  for (int i = 0; i < 100; i++)
    assert_int_equal(wr_bufq_append(&q, in, sizeof(in)), (int)sizeof(in));
  wr_bufq_ack(&q, 50);
  /* The unacknowledged half is still where it was (ASan checks the access). */
  assert_int_equal(((const uint8_t *)first)[50], 1);
  assert_int_equal(((const uint8_t *)first)[99], 1);
  wr_bufq_free(&q);
}

static void test_ack_tail_then_append(void **state) {
  wr_bufq q;
  uint8_t a[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, out[32];

  (void)state;
  wr_bufq_init(&q, 16, 64);
  assert_int_equal(wr_bufq_append(&q, a, 10), 10);
  wr_bufq_sent(&q, 10);
  wr_bufq_ack(&q, 10);
  assert_int_equal(wr_bufq_append(&q, a, 10), 10); /* crosses into a new chunk */
  assert_int_equal(collect(&q, out, sizeof(out)), 10);
  assert_memory_equal(out, a, 10);
  wr_bufq_sent(&q, 10);
  wr_bufq_ack(&q, 10);
  assert_int_equal(q.len, 0);
  wr_bufq_free(&q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cap),
      cmocka_unit_test(test_cursors_and_order),
      cmocka_unit_test(test_memory_stable),
      cmocka_unit_test(test_ack_tail_then_append),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
