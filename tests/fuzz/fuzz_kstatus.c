/*
 * fuzz_kstatus.c - libFuzzer target for wr_kstatus_decode (lib/kclient.c),
 * which turns whatever body an API server (or anything in front of it)
 * answered with into code, reason and message. The first two bytes choose
 * the HTTP code; the rest is the body. The strings must stay terminated,
 * free of control bytes from a non-Status body, and within their arrays.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "warren/kclient.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct wr_kstatus st;
  int code;

  if (size < 2)
    return 0;
  code = 100 + (data[0] << 8 | data[1]) % 500;
  wr_kstatus_decode(&st, code, (const char *)data + 2, size - 2);
  if (memchr(st.reason, '\0', sizeof(st.reason)) == NULL ||
      memchr(st.message, '\0', sizeof(st.message)) == NULL)
    abort();
  if (st.reason[0] == '\0' || st.message[0] == '\0')
    abort(); /* always something to show */
  if (st.code <= 0 || st.code >= 1000 || st.retry_after < -1 || st.retry_after > 60)
    abort();
  return 0;
}
