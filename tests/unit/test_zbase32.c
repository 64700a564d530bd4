/* test_zbase32.c - z-base-32 codec: known vectors, round trips and rejections. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warren/err.h"
#include "warren/zbase32.h"

static int hex_nibble(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  return c - 'a' + 10;
}

static void from_hex(uint8_t *out, const char *hex) {
  size_t i, n = strlen(hex) / 2;

  for (i = 0; i < n; i++)
    out[i] = (uint8_t)(hex_nibble(hex[2 * i]) << 4 | hex_nibble(hex[2 * i + 1]));
}

/* The key and its z32 form come from iroh's test_from_txt_lookup (iroh-relay). */
static const char iroh_hex[] = "1992d53c02cdc04566e5c0edb1ce83305cd550297953a047a445ea3264b54b18";
static const char iroh_z32[] = "dgjpkxyn3zyrk3zfads5duwdgbqpkwbjxfj4yt7rezidr3fijccy";

static void test_encoded_len(void **state) {
  (void)state;
  assert_int_equal(wr_z32_encoded_len(0), 0);
  assert_int_equal(wr_z32_encoded_len(1), 2);
  assert_int_equal(wr_z32_encoded_len(2), 4);
  assert_int_equal(wr_z32_encoded_len(3), 5);
  assert_int_equal(wr_z32_encoded_len(4), 7);
  assert_int_equal(wr_z32_encoded_len(5), 8);
  assert_int_equal(wr_z32_encoded_len(32), 52);
}

static void test_known_vectors(void **state) {
  static const struct {
    const char *plain;
    const char *z32;
  } v[] = {
      {"hello", "pb1sa5dx"},
      {"hello world!", "pb1sa5dxrb5s6huccooo"},
      {"The quick brown fox jumps over the lazy dog.",
       "ktwgkedtqiwsg43ycj3g675qrbug66bypj4s4hdurbzzc3m1rb4go3jyptozw6jyctzsqmo"},
  };
  char out[128];
  uint8_t back[128];
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    size_t n = strlen(v[i].plain);

    assert_int_equal(wr_z32_encode(out, sizeof(out), (const uint8_t *)v[i].plain, n),
                     strlen(v[i].z32));
    assert_string_equal(out, v[i].z32);
    assert_int_equal(wr_z32_decode(back, sizeof(back), v[i].z32, strlen(v[i].z32)), n);
    assert_memory_equal(back, v[i].plain, n);
  }
}

static void test_iroh_key(void **state) {
  uint8_t key[32], back[32];
  char out[53];

  (void)state;
  from_hex(key, iroh_hex);
  assert_int_equal(wr_z32_decode(back, sizeof(back), iroh_z32, 52), 32);
  assert_memory_equal(back, key, 32);
  assert_int_equal(wr_z32_encode(out, sizeof(out), key, 32), 52);
  assert_string_equal(out, iroh_z32);
}

static void test_upper_case_accepted(void **state) {
  uint8_t back[32], key[32];
  char upper[53];
  size_t i;

  (void)state;
  for (i = 0; i < 52; i++)
    upper[i] = (iroh_z32[i] >= 'a' && iroh_z32[i] <= 'z') ? (char)(iroh_z32[i] - 32) : iroh_z32[i];
  upper[52] = '\0';
  from_hex(key, iroh_hex);
  assert_int_equal(wr_z32_decode(back, sizeof(back), upper, 52), 32);
  assert_memory_equal(back, key, 32);
}

static void test_round_trip_random(void **state) {
  uint8_t in[64], back[64];
  char out[128];
  size_t n;
  int iter;

  (void)state;
  srand(12345);
  for (iter = 0; iter < 2000; iter++) {
    size_t i;
    int enc;

    n = (size_t)(rand() % (int)sizeof(in));
    for (i = 0; i < n; i++)
      in[i] = (uint8_t)rand();
    enc = wr_z32_encode(out, sizeof(out), in, n);
    assert_int_equal(enc, wr_z32_encoded_len(n));
    assert_int_equal(strlen(out), enc);
    assert_int_equal(wr_z32_decode(back, sizeof(back), out, (size_t)enc), n);
    assert_memory_equal(back, in, n);
  }
}

static void test_empty(void **state) {
  uint8_t back[1];
  char out[1] = {'x'};

  (void)state;
  assert_int_equal(wr_z32_encode(out, sizeof(out), NULL, 0), 0);
  assert_int_equal(out[0], '\0');
  assert_int_equal(wr_z32_decode(back, 0, "", 0), 0);
}

static void test_bad_char(void **state) {
  uint8_t back[32];
  char bad[53];
  /* '0', 'l', 'v' and '2' are left out of the alphabet; the rest are not letters. */
  static const char rejects[] = "0lv2=-_ .LV\xff";
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(rejects) - 1; i++) {
    memcpy(bad, iroh_z32, sizeof(bad));
    bad[10] = rejects[i];
    assert_int_equal(wr_z32_decode(back, sizeof(back), bad, 52), WR_ERR_INVAL);
  }
  /* A NUL inside the counted length is a bad character too. */
  memcpy(bad, iroh_z32, sizeof(bad));
  bad[51] = '\0';
  assert_int_equal(wr_z32_decode(back, sizeof(back), bad, 52), WR_ERR_INVAL);
}

static void test_trailing_bits(void **state) {
  uint8_t back[32];
  char bad[53];

  (void)state;
  /* 52 chars carry 260 bits; the last char's low 4 bits must be zero. The
   * last char of the vector is 'y' (0); 'b' (1) sets a padding bit. */
  memcpy(bad, iroh_z32, sizeof(bad));
  assert_int_equal(bad[51], 'y');
  bad[51] = 'b';
  assert_int_equal(wr_z32_decode(back, sizeof(back), bad, 52), WR_ERR_INVAL);
  /* One byte is two chars (10 bits): "yb" has a padding bit set, "yy" not. */
  assert_int_equal(wr_z32_decode(back, sizeof(back), "yy", 2), 1);
  assert_int_equal(back[0], 0);
  assert_int_equal(wr_z32_decode(back, sizeof(back), "yb", 2), WR_ERR_INVAL);
  assert_int_equal(wr_z32_decode(back, sizeof(back), "9h", 2), 1);
  assert_int_equal(back[0], 0xff);
  assert_int_equal(wr_z32_decode(back, sizeof(back), "99", 2), WR_ERR_INVAL);
}

static void test_impossible_lengths(void **state) {
  uint8_t back[32];

  (void)state;
  /* 1, 3 and 6 chars (mod 8) leave 5 or more bits: never produced by an encoder. */
  assert_int_equal(wr_z32_decode(back, sizeof(back), "y", 1), WR_ERR_INVAL);
  assert_int_equal(wr_z32_decode(back, sizeof(back), "yyy", 3), WR_ERR_INVAL);
  assert_int_equal(wr_z32_decode(back, sizeof(back), "yyyyyy", 6), WR_ERR_INVAL);
  assert_int_equal(wr_z32_decode(back, sizeof(back), "yyyyyyyyy", 9), WR_ERR_INVAL);
  assert_int_equal(wr_z32_decode(back, sizeof(back), iroh_z32, 51), WR_ERR_INVAL);
}

static void test_output_too_small(void **state) {
  uint8_t key[32], back[31];
  char out[52];

  (void)state;
  from_hex(key, iroh_hex);
  /* 52 chars need 53 bytes with the NUL. */
  assert_int_equal(wr_z32_encode(out, sizeof(out), key, 32), WR_ERR_TOOBIG);
  assert_int_equal(wr_z32_decode(back, sizeof(back), iroh_z32, 52), WR_ERR_TOOBIG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_encoded_len),        cmocka_unit_test(test_known_vectors),
      cmocka_unit_test(test_iroh_key),           cmocka_unit_test(test_upper_case_accepted),
      cmocka_unit_test(test_round_trip_random),  cmocka_unit_test(test_empty),
      cmocka_unit_test(test_bad_char),           cmocka_unit_test(test_trailing_bits),
      cmocka_unit_test(test_impossible_lengths), cmocka_unit_test(test_output_too_small),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
