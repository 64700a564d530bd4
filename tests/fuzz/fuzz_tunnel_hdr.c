/*
 * fuzz_tunnel_hdr.c - libFuzzer target for the tunnel stream header decoders.
 *
 * Each input is given to both decoders (the type byte makes at most one of
 * them succeed). A successful decode must be re-encodable, and decoding that
 * encoding must give the same fields and consume exactly the encoded length:
 * the codec is a bijection on the fields it knows. Any difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "warren/err.h"
#include "warren/tunnel_hdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rc(int rc, size_t size) {
  /* Success consumes a whole frame that fits the input; failures use known codes. */
  if (rc > 0) {
    if ((size_t)rc > size || rc > WR_THDR_MAX || rc < WR_THDR_PREFIX)
      abort();
    return;
  }
  if (rc != WR_ERR_TRUNCATED && rc != WR_ERR_TOOBIG && rc != WR_ERR_VERSION && rc != WR_ERR_PROTO)
    abort();
}

static void fuzz_req(const uint8_t *data, size_t size) {
  struct wr_thdr_req a, b;
  uint8_t out[WR_THDR_MAX];
  int rc, n;

  rc = wr_thdr_req_decode(&a, data, size);
  check_rc(rc, size);
  if (rc <= 0)
    return;
  /* One byte less than a frame that decoded is merely incomplete. */
  if (wr_thdr_req_decode(&b, data, (size_t)rc - 1) != WR_ERR_TRUNCATED)
    abort();
  n = wr_thdr_req_encode(out, sizeof(out), &a);
  if (n <= 0 || n > rc)
    abort();
  memset(&b, 0xa5, sizeof(b));
  if (wr_thdr_req_decode(&b, out, (size_t)n) != n)
    abort();
  if (strcmp(a.target, b.target) != 0 || strcmp(a.peer, b.peer) != 0)
    abort();
}

static void fuzz_resp(const uint8_t *data, size_t size) {
  struct wr_thdr_resp a, b;
  uint8_t out[WR_THDR_MAX];
  int rc, n;

  rc = wr_thdr_resp_decode(&a, data, size);
  check_rc(rc, size);
  if (rc <= 0)
    return;
  if (wr_thdr_resp_decode(&b, data, (size_t)rc - 1) != WR_ERR_TRUNCATED)
    abort();
  n = wr_thdr_resp_encode(out, sizeof(out), &a);
  if (n <= 0 || n > rc)
    abort();
  memset(&b, 0xa5, sizeof(b));
  if (wr_thdr_resp_decode(&b, out, (size_t)n) != n)
    abort();
  if (a.code != b.code || strcmp(a.reason, b.reason) != 0)
    abort();
  /* The names and HTTP mapping are total functions. */
  if (wr_thdr_code_str(a.code) == NULL || wr_thdr_code_http(a.code) < 200)
    abort();
}

/* fuzz_target feeds the input, as a string, to the target validator the
 * front ends use; an accepted target must also be accepted by the encoder. */
static void fuzz_target(const uint8_t *data, size_t size) {
  struct wr_thdr_req req;
  uint8_t out[WR_THDR_MAX];

  if (size > WR_THDR_TARGET_MAX + 8)
    return;
  memset(&req, 0, sizeof(req));
  memcpy(req.target, data, size < WR_THDR_TARGET_MAX ? size : WR_THDR_TARGET_MAX);
  if (wr_thdr_target_valid(req.target) && wr_thdr_req_encode(out, sizeof(out), &req) <= 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_req(data, size);
  fuzz_resp(data, size);
  fuzz_target(data, size);
  return 0;
}
