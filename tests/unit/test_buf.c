/* test_buf.c - the capped FIFO byte buffer: cap enforcement, consume, reuse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "warren/buf.h"
#include "warren/err.h"

static void test_init_empty(void **state) {
  wr_buf b;

  (void)state;
  wr_buf_init(&b, 100);
  assert_int_equal(wr_buf_len(&b), 0);
  assert_int_equal(wr_buf_space(&b), 100);
  assert_int_equal(wr_buf_append(&b, "x", 0), 0);
  assert_int_equal(wr_buf_len(&b), 0);
  wr_buf_free(&b);
  wr_buf_free(&b); /* freeing twice is harmless */
}

static void test_append_fifo(void **state) {
  wr_buf b;

  (void)state;
  wr_buf_init(&b, 64);
  assert_int_equal(wr_buf_append(&b, "hello ", 6), 0);
  assert_int_equal(wr_buf_append(&b, "world", 5), 0);
  assert_int_equal(wr_buf_len(&b), 11);
  assert_memory_equal(wr_buf_data(&b), "hello world", 11);
  wr_buf_consume(&b, 6);
  assert_int_equal(wr_buf_len(&b), 5);
  assert_memory_equal(wr_buf_data(&b), "world", 5);
  wr_buf_free(&b);
}

static void test_cap_enforced(void **state) {
  uint8_t data[300];
  wr_buf b;

  (void)state;
  memset(data, 'a', sizeof(data));
  wr_buf_init(&b, 10);
  assert_int_equal(wr_buf_append(&b, data, 11), WR_ERR_TOOBIG);
  assert_int_equal(wr_buf_len(&b), 0);
  assert_int_equal(wr_buf_append(&b, data, 7), 0);
  /* A failed append changes nothing. */
  assert_int_equal(wr_buf_append(&b, "0123", 4), WR_ERR_TOOBIG);
  assert_int_equal(wr_buf_len(&b), 7);
  assert_memory_equal(wr_buf_data(&b), data, 7);
  assert_int_equal(wr_buf_append(&b, "012", 3), 0);
  assert_int_equal(wr_buf_len(&b), 10);
  assert_int_equal(wr_buf_space(&b), 0);
  assert_int_equal(wr_buf_append(&b, "x", 1), WR_ERR_TOOBIG);
  assert_memory_equal(wr_buf_data(&b) + 7, "012", 3);
  wr_buf_free(&b);

  /* The allocation itself never exceeds the cap, even past the first size. */
  wr_buf_init(&b, 300);
  assert_int_equal(wr_buf_append(&b, data, 257), 0);
  assert_true(b.size <= 300);
  assert_int_equal(wr_buf_append(&b, data, 43), 0);
  assert_int_equal(wr_buf_len(&b), 300);
  assert_int_equal(wr_buf_append(&b, data, 1), WR_ERR_TOOBIG);
  wr_buf_free(&b);
}

static void test_cap_zero(void **state) {
  wr_buf b;

  (void)state;
  wr_buf_init(&b, 0);
  assert_int_equal(wr_buf_append(&b, "x", 1), WR_ERR_TOOBIG);
  assert_int_equal(wr_buf_append(&b, "x", 0), 0);
  wr_buf_free(&b);
}

static void test_consume(void **state) {
  wr_buf b;

  (void)state;
  wr_buf_init(&b, 32);
  assert_int_equal(wr_buf_append(&b, "abcdef", 6), 0);
  wr_buf_consume(&b, 0);
  assert_int_equal(wr_buf_len(&b), 6);
  wr_buf_consume(&b, 2);
  assert_memory_equal(wr_buf_data(&b), "cdef", 4);
  assert_int_equal(wr_buf_space(&b), 28);
  /* Consuming more than the content empties the buffer. */
  wr_buf_consume(&b, 100);
  assert_int_equal(wr_buf_len(&b), 0);
  assert_int_equal(wr_buf_space(&b), 32);
  wr_buf_consume(&b, 1);
  assert_int_equal(wr_buf_len(&b), 0);
  wr_buf_free(&b);
}

static void test_consumed_space_reused(void **state) {
  uint8_t chunk[8];
  uint8_t expect[16];
  size_t size;
  wr_buf b;
  int i;

  (void)state;
  wr_buf_init(&b, 16);
  memset(chunk, 'x', sizeof(chunk));
  assert_int_equal(wr_buf_append(&b, chunk, 8), 0);
  assert_int_equal(wr_buf_append(&b, "ABCDEFGH", 8), 0);
  size = b.size;
  /* Full; dropping the head makes room again without growing. */
  wr_buf_consume(&b, 8);
  assert_int_equal(wr_buf_append(&b, "IJKLMNOP", 8), 0);
  assert_int_equal(b.size, size);
  assert_memory_equal(wr_buf_data(&b), "ABCDEFGHIJKLMNOP", 16);

  /* Many small cycles keep the content in order and the size fixed. */
  for (i = 0; i < 1000; i++) {
    uint8_t c = (uint8_t)i;

    wr_buf_consume(&b, 1);
    assert_int_equal(wr_buf_append(&b, &c, 1), 0);
  }
  for (i = 0; i < 16; i++)
    expect[i] = (uint8_t)(1000 - 16 + i);
  assert_memory_equal(wr_buf_data(&b), expect, 16);
  assert_int_equal(b.size, size);
  wr_buf_free(&b);
}

static void test_reset_keeps_memory(void **state) {
  const uint8_t *mem;
  wr_buf b;

  (void)state;
  wr_buf_init(&b, 1024);
  assert_int_equal(wr_buf_append(&b, "0123456789", 10), 0);
  mem = b.mem;
  wr_buf_reset(&b);
  assert_int_equal(wr_buf_len(&b), 0);
  assert_int_equal(wr_buf_space(&b), 1024);
  assert_ptr_equal(b.mem, mem);
  assert_int_equal(wr_buf_append(&b, "abc", 3), 0);
  assert_memory_equal(wr_buf_data(&b), "abc", 3);
  assert_ptr_equal(b.mem, mem);
  wr_buf_free(&b);
  assert_null(b.mem);
  assert_int_equal(wr_buf_len(&b), 0);
  /* A freed buffer can be used again. */
  assert_int_equal(wr_buf_append(&b, "z", 1), 0);
  assert_memory_equal(wr_buf_data(&b), "z", 1);
  wr_buf_free(&b);
}

static void test_grow_preserves_content(void **state) {
  uint8_t data[4096];
  size_t i, off = 0;
  wr_buf b;

  (void)state;
  for (i = 0; i < sizeof(data); i++)
    data[i] = (uint8_t)(i * 7);
  wr_buf_init(&b, sizeof(data));
  /* Interleave appends and consumes so growth happens with a non-zero head. */
  for (i = 0; i < sizeof(data); i += 100) {
    size_t n = sizeof(data) - i < 100 ? sizeof(data) - i : 100;

    assert_int_equal(wr_buf_append(&b, data + i, n), 0);
    if (i % 300 == 0) {
      wr_buf_consume(&b, 10);
      off += 10;
    }
  }
  assert_int_equal(wr_buf_len(&b), sizeof(data) - off);
  assert_memory_equal(wr_buf_data(&b), data + off, sizeof(data) - off);
  assert_true(b.size <= b.cap);
  wr_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_init_empty),
      cmocka_unit_test(test_append_fifo),
      cmocka_unit_test(test_cap_enforced),
      cmocka_unit_test(test_cap_zero),
      cmocka_unit_test(test_consume),
      cmocka_unit_test(test_consumed_space_reused),
      cmocka_unit_test(test_reset_keeps_memory),
      cmocka_unit_test(test_grow_preserves_content),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
