/*
 * fuzz_httpd.c - libFuzzer target for wr_httpd_parse_head, the request-head
 * parser of the probe/metrics server.
 *
 * Checks, beyond memory safety: results are one of the documented codes; a
 * complete head fits the input and the cap, its method and path lie inside it
 * (or the path is the static "/"), the path is visible ASCII without '?';
 * parsing is deterministic and every proper prefix of a complete head is
 * merely incomplete; "need more" is never said of 8 KiB or more. Any
 * difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "warren/err.h"
#include "warren/httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const char *p, size_t n, const char *base, size_t len) {
  return p >= base && n <= len && (size_t)(p - base) <= len - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *d = (const char *)data;
  struct wr_httpd_req r, r2;
  size_t i;
  int rc;

  memset(&r, 0, sizeof(r));
  rc = wr_httpd_parse_head(d, size, &r);
  if (rc == WR_ERR_TRUNCATED) {
    if (size >= WR_HTTPD_HEAD_MAX)
      abort();
    return 0;
  }
  if (rc == WR_ERR_TOOBIG) {
    if (size < WR_HTTPD_HEAD_MAX)
      abort();
    return 0;
  }
  if (rc == WR_ERR_PROTO || rc == WR_ERR_VERSION)
    return 0;
  if (rc <= 0 || (size_t)rc > size || rc > WR_HTTPD_HEAD_MAX)
    abort();

  if (r.method_len == 0 || !inside(r.method, r.method_len, d, (size_t)rc))
    abort();
  if (r.path_len == 0)
    abort();
  if (!inside(r.path, r.path_len, d, (size_t)rc) && !(r.path_len == 1 && r.path[0] == '/'))
    abort();
  for (i = 0; i < r.path_len; i++) {
    unsigned char c = (unsigned char)r.path[i];

    /* CONNECT's authority-form target is passed whole. */
    if (c <= 0x20 || c >= 0x7f ||
        (c == '?' && !(r.method_len == 7 && memcmp(r.method, "CONNECT", 7) == 0)))
      abort();
  }
  if (r.minor < 0 || r.minor > 9 || (r.has_body && r.keep_alive))
    abort();

  /* Deterministic, and bytes after the head do not matter. */
  memset(&r2, 0, sizeof(r2));
  if (wr_httpd_parse_head(d, (size_t)rc, &r2) != rc || r2.method != r.method ||
      r2.method_len != r.method_len || r2.path != r.path || r2.path_len != r.path_len ||
      r2.minor != r.minor || r2.keep_alive != r.keep_alive || r2.has_body != r.has_body)
    abort();
  /* A head cut short is incomplete, not wrong: the server waits for the rest. */
  if (wr_httpd_parse_head(d, (size_t)rc - 1, &r2) != WR_ERR_TRUNCATED ||
      wr_httpd_parse_head(d, (size_t)rc / 2, &r2) != WR_ERR_TRUNCATED)
    abort();
  return 0;
}
