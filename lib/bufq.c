/* bufq.c - chunked send queue with stable memory (see bufq.h). */
#include <stdlib.h>
#include <string.h>

#include "warren/bufq.h"
#include "warren/err.h"

struct wr_bufq_chunk {
  struct wr_bufq_chunk *next;
  size_t len; /* bytes written into data */
  uint8_t data[];
};

void wr_bufq_init(wr_bufq *q, size_t chunk_size, size_t cap) {
  q->head = q->tail = q->send = NULL;
  q->head_off = q->send_off = 0;
  q->len = q->unsent = 0;
  q->chunk_size = chunk_size;
  q->cap = cap;
}

void wr_bufq_free(wr_bufq *q) {
  struct wr_bufq_chunk *c = q->head, *next;

  for (; c != NULL; c = next) {
    next = c->next;
    free(c);
  }
  wr_bufq_init(q, q->chunk_size, q->cap);
}

int wr_bufq_append(wr_bufq *q, const uint8_t *data, size_t n) {
  size_t done = 0;

  if (n > wr_bufq_space(q))
    n = wr_bufq_space(q);
  while (done < n) {
    struct wr_bufq_chunk *c = q->tail;
    size_t room, take;

    if (c == NULL || c->len == q->chunk_size) {
      c = malloc(sizeof(*c) + q->chunk_size);
      if (c == NULL)
        break;
      c->next = NULL;
      c->len = 0;
      if (q->tail != NULL)
        q->tail->next = c;
      else
        q->head = c;
      q->tail = c;
      if (q->send == NULL) {
        q->send = c;
        q->send_off = 0;
      }
    }
    room = q->chunk_size - c->len;
    take = n - done < room ? n - done : room;
    memcpy(c->data + c->len, data + done, take);
    c->len += take;
    done += take;
  }
  q->len += done;
  q->unsent += done;
  if (done == 0 && n > 0)
    return WR_ERR_NOMEM;
  return (int)done;
}

size_t wr_bufq_peek(const wr_bufq *q, struct iovec *vec, size_t nvec) {
  const struct wr_bufq_chunk *c = q->send;
  size_t off = q->send_off, i = 0;

  for (; c != NULL && i < nvec; c = c->next, off = 0) {
    if (c->len == off)
      continue;
    vec[i].iov_base = (void *)(c->data + off);
    vec[i].iov_len = c->len - off;
    i++;
  }
  return i;
}

void wr_bufq_sent(wr_bufq *q, size_t n) {
  q->unsent -= n;
  while (n > 0) {
    size_t avail = q->send->len - q->send_off;

    if (n < avail) {
      q->send_off += n;
      return;
    }
    n -= avail;
    q->send_off += avail;
    if (q->send->next != NULL) {
      q->send = q->send->next;
      q->send_off = 0;
    }
  }
}

void wr_bufq_ack(wr_bufq *q, size_t n) {
  q->len -= n;
  while (n > 0 && q->head != NULL) {
    struct wr_bufq_chunk *c = q->head;
    size_t avail = c->len - q->head_off;

    if (n < avail || (n == avail && c == q->tail && c->len < q->chunk_size)) {
      /* Partial chunk, or the tail that may still grow: keep it. */
      q->head_off += n;
      return;
    }
    n -= avail;
    q->head = c->next;
    q->head_off = 0;
    if (q->send == c) {
      q->send = c->next;
      q->send_off = 0;
    }
    if (q->tail == c)
      q->tail = NULL;
    free(c);
  }
}
