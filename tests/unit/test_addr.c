/* test_addr.c - socket address text forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>

#include "warren/addr.h"
#include "warren/err.h"

static void roundtrip(const char *s) {
  struct sockaddr_storage ss;
  socklen_t len;
  char buf[WR_ADDRSTRLEN];

  assert_int_equal(wr_addr_parse(s, &ss, &len), 0);
  assert_int_equal(len, wr_addr_len((struct sockaddr *)&ss));
  assert_string_equal(wr_addr_format((struct sockaddr *)&ss, buf, sizeof(buf)), s);
}

static void test_valid(void **state) {
  (void)state;
  roundtrip("127.0.0.1:4433");
  roundtrip("198.18.0.1:1");
  roundtrip("0.0.0.0:0");
  roundtrip("[::1]:65535");
  roundtrip("[fe80::1]:80");
}

static void test_invalid(void **state) {
  static const char *const bad[] = {"",           "127.0.0.1",   "127.0.0.1:",    ":80",
                                    "1.2.3:80",   "1.2.3.4:x",   "1.2.3.4:65536", "::1:80",
                                    "[::1]80",    "[::1]:",      "[1.2.3.4]:80",  "host:80",
                                    "1.2.3.4:-1", "1.2.3.4: 80", "[::1:80"};
  struct sockaddr_storage ss;
  socklen_t len;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(wr_addr_parse(bad[i], &ss, &len), WR_ERR_INVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_invalid),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
