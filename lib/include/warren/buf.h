/*
 * buf.h - a growable byte buffer with a hard cap (curl's dynbuf discipline).
 *
 * The buffer is a FIFO: wr_buf_append() adds at the tail, wr_buf_consume()
 * drops from the head. It never grows beyond |cap| bytes of content; appends
 * that would exceed the cap fail with WR_ERR_TOOBIG and change nothing.
 * Members are private to buf.c; use the functions.
 */
#ifndef WARREN_BUF_H
#define WARREN_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct wr_buf {
  uint8_t *mem; /* allocation */
  size_t off;   /* start of content in mem */
  size_t len;   /* bytes of content */
  size_t size;  /* allocated bytes */
  size_t cap;   /* maximum content */
} wr_buf;

/* wr_buf_init prepares caller-owned |b| with content capped at |cap| bytes. */
void wr_buf_init(wr_buf *b, size_t cap);
/* wr_buf_free releases the memory of |b| (not |b| itself). */
void wr_buf_free(wr_buf *b);
/* wr_buf_append copies |n| bytes to the tail. Returns 0, WR_ERR_TOOBIG or WR_ERR_NOMEM. */
int wr_buf_append(wr_buf *b, const void *data, size_t n);
/* wr_buf_consume drops |n| bytes (at most len) from the head. */
void wr_buf_consume(wr_buf *b, size_t n);
/* wr_buf_reset drops all content and keeps the memory. */
void wr_buf_reset(wr_buf *b);

static inline const uint8_t *wr_buf_data(const wr_buf *b) {
  return b->mem + b->off;
}
static inline size_t wr_buf_len(const wr_buf *b) {
  return b->len;
}
static inline size_t wr_buf_space(const wr_buf *b) {
  return b->cap - b->len;
}

#endif
