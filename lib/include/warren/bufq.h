/*
 * bufq.h - a send queue of fixed-size chunks whose memory never moves.
 *
 * QUIC keeps pointers to stream data until the peer acknowledges it (and
 * retransmits from them), so a send buffer must not realloc. The queue holds
 * three cursors over one byte sequence: acknowledged | sent | appended.
 * |cap| bounds the bytes not yet sent: that is the application's
 * backpressure. Bytes sent but not yet acknowledged are bounded by the
 * peer's flow-control window, so they need no cap of their own (capping them
 * would cap the bandwidth-delay product of the stream).
 * wr_bufq_append() adds at the tail (up to |cap| unsent bytes),
 * wr_bufq_peek() exposes the unsent bytes, wr_bufq_sent() advances the send
 * cursor and wr_bufq_ack() frees from the head.
 */
#ifndef WARREN_BUFQ_H
#define WARREN_BUFQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct wr_bufq_chunk;

typedef struct wr_bufq {
  struct wr_bufq_chunk *head; /* oldest chunk holding unacknowledged bytes */
  struct wr_bufq_chunk *tail; /* chunk being appended to */
  struct wr_bufq_chunk *send; /* chunk holding the next unsent byte */
  size_t head_off;            /* acknowledged bytes at the start of head */
  size_t send_off;            /* sent bytes at the start of send */
  size_t len;                 /* unacknowledged bytes */
  size_t unsent;              /* appended but not yet sent */
  size_t chunk_size;
  size_t cap;
} wr_bufq;

/* wr_bufq_init prepares caller-owned |q|. */
void wr_bufq_init(wr_bufq *q, size_t chunk_size, size_t cap);
/* wr_bufq_free releases all chunks (not |q| itself). */
void wr_bufq_free(wr_bufq *q);
/* wr_bufq_append copies as much of |data| as the cap allows and returns the
 * count (>= 0), or WR_ERR_NOMEM when nothing could be stored. */
int wr_bufq_append(wr_bufq *q, const uint8_t *data, size_t n);
/* wr_bufq_peek fills up to |nvec| vectors with unsent bytes; returns the
 * number of vectors used. */
size_t wr_bufq_peek(const wr_bufq *q, struct iovec *vec, size_t nvec);
/* wr_bufq_sent marks |n| unsent bytes as sent (n <= unsent). */
void wr_bufq_sent(wr_bufq *q, size_t n);
/* wr_bufq_ack frees |n| sent bytes from the head (n <= len - unsent). */
void wr_bufq_ack(wr_bufq *q, size_t n);

static inline size_t wr_bufq_space(const wr_bufq *q) {
  return q->cap > q->unsent ? q->cap - q->unsent : 0;
}

#endif
