/* buf.c - capped FIFO byte buffer. */
#include <stdlib.h>
#include <string.h>

#include "warren/buf.h"
#include "warren/err.h"

void wr_buf_init(wr_buf *b, size_t cap) {
  memset(b, 0, sizeof(*b));
  b->cap = cap;
}

void wr_buf_free(wr_buf *b) {
  free(b->mem);
  b->mem = NULL;
  b->off = b->len = b->size = 0;
}

int wr_buf_append(wr_buf *b, const void *data, size_t n) {
  if (n == 0)
    return 0;
  if (n > b->cap - b->len)
    return WR_ERR_TOOBIG;
  if (b->off + b->len + n > b->size) {
    if (b->len + n <= b->size && b->off > 0) {
      /* Enough room once the consumed head is reclaimed. */
      memmove(b->mem, b->mem + b->off, b->len);
      b->off = 0;
    } else {
      size_t want = b->size ? b->size : 256;
      uint8_t *m;

      while (want < b->len + n)
        want *= 2;
      if (want > b->cap)
        want = b->cap;
      if (b->off > 0) {
        memmove(b->mem, b->mem + b->off, b->len);
        b->off = 0;
      }
      m = realloc(b->mem, want);
      if (m == NULL)
        return WR_ERR_NOMEM;
      b->mem = m;
      b->size = want;
    }
  }
  memcpy(b->mem + b->off + b->len, data, n);
  b->len += n;
  return 0;
}

void wr_buf_consume(wr_buf *b, size_t n) {
  if (n >= b->len) {
    b->off = b->len = 0;
    return;
  }
  b->off += n;
  b->len -= n;
}

void wr_buf_reset(wr_buf *b) {
  b->off = b->len = 0;
}
