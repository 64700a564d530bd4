/*
 * workqueue.h - the controller work queue (docs/internals/workqueue.md).
 *
 * client-go's workqueue with its default controller rate limiter, as a pure
 * core: no threads, no clock, no I/O. Time is passed in by the caller as
 * |now|, in milliseconds on any monotonic clock (uv_now() fits), so tests are
 * deterministic; the queue never reads a clock itself.
 *
 * - Keys are strings, copied on the first add. A key is in at most one of:
 *   ready (FIFO), delayed (min-heap on due time), processing (handed out by
 *   wr_wq_get and not yet wr_wq_done).
 * - De-duplicating: adding a ready key does nothing.
 * - Stingy: a key being processed is never handed out again; an add meanwhile
 *   marks it dirty and wr_wq_done() puts it back at the tail of the FIFO.
 * - Delays: each key has at most one pending due time and the earliest wins;
 *   a plain add is "due now", so it supersedes a pending delay.
 * - Rate limiting: wr_wq_add_rate_limited() delays by the larger of the
 *   per-key backoff (base * 2^failures, capped) and the overall token bucket
 *   (qps, burst), like client-go's DefaultControllerRateLimiter.
 * - Bounded: at most max_keys distinct keys are tracked (ready, delayed,
 *   processing or with a failure count); keys are at most WR_WQ_KEY_MAX bytes.
 *
 * Every operation is O(1) (hash set, FIFO) or O(log n) (heap).
 */
#ifndef WARREN_WORKQUEUE_H
#define WARREN_WORKQUEUE_H

#include <stddef.h>
#include <stdint.h>

#define WR_WQ_KEY_MAX 1024     /* bytes of one key, without the NUL */
#define WR_WQ_NEVER UINT64_MAX /* wr_wq_next_deadline() with nothing delayed */

struct wr_wq_config {
  size_t max_keys;        /* distinct keys tracked at once */
  uint64_t base_delay_ms; /* per-key backoff: base_delay_ms * 2^failures ... */
  uint64_t max_delay_ms;  /* ... capped at max_delay_ms */
  uint32_t qps;           /* overall token bucket refill per second; 0: no bucket */
  uint32_t burst;         /* bucket size (and initial tokens) */
};

/* client-go's DefaultControllerRateLimiter: 5 ms .. 1000 s per key, 10 qps with
 * a burst of 100 overall; 65,536 keys. */
#define WR_WQ_CONFIG_DEFAULT                                                                       \
  ((struct wr_wq_config){.max_keys = 65536,                                                        \
                         .base_delay_ms = 5,                                                       \
                         .max_delay_ms = 1000 * 1000,                                              \
                         .qps = 10,                                                                \
                         .burst = 100})

typedef struct wr_wq wr_wq;

/* wr_wq_new allocates a queue with |cfg| (NULL: WR_WQ_CONFIG_DEFAULT) into
 * *|qp|. Returns 0, WR_ERR_INVAL (max_keys 0, or burst 0 with qps set) or
 * WR_ERR_NOMEM. */
int wr_wq_new(wr_wq **qp, const struct wr_wq_config *cfg);
/* wr_wq_del frees |q| and every key in it; keys returned by wr_wq_get become
 * invalid. NULL is ignored. */
void wr_wq_del(wr_wq *q);

/*
 * wr_wq_add makes |key| ready now: it joins the FIFO tail unless it is
 * already ready, or is marked dirty if it is being processed; a pending delay
 * is cancelled. Returns 0, WR_ERR_CLOSED after shutdown (the key is dropped),
 * WR_ERR_INVAL for an empty key, WR_ERR_TOOBIG for a key over WR_WQ_KEY_MAX
 * or a new key beyond max_keys, WR_ERR_NOMEM.
 */
int wr_wq_add(wr_wq *q, const char *key);
/* wr_wq_add_after makes |key| due at |now| + |delay_ms| (at once when 0). If
 * the key is already due earlier or at the same time (ready, dirty, or delayed
 * until then) nothing changes; a later pending time is brought forward.
 * Returns as wr_wq_add. */
int wr_wq_add_after(wr_wq *q, const char *key, uint64_t delay_ms, uint64_t now);
/* wr_wq_add_rate_limited counts a failure of |key| and adds it after the
 * larger of its backoff and the token bucket's delay (which takes a token
 * even when the key is already queued, as client-go does). Returns as
 * wr_wq_add. */
int wr_wq_add_rate_limited(wr_wq *q, const char *key, uint64_t now);
/* wr_wq_forget resets the failure count of |key| (call it on success). */
void wr_wq_forget(wr_wq *q, const char *key);
/* wr_wq_num_requeues returns the failure count of |key| (0 when unknown). */
unsigned wr_wq_num_requeues(const wr_wq *q, const char *key);

/*
 * wr_wq_get first moves every delayed key due at |now| to the FIFO (earliest
 * first), then pops the FIFO head and marks it processing. Returns the key,
 * owned by the queue and valid until wr_wq_done() for it, or NULL when no key
 * is ready (after shutdown too, once the FIFO is empty).
 */
const char *wr_wq_get(wr_wq *q, uint64_t now);
/* wr_wq_done ends the processing of |key| (it may be the pointer wr_wq_get
 * returned): a dirty key goes back to the FIFO tail. Returns 0 or
 * WR_ERR_NOTFOUND when |key| is not being processed. */
int wr_wq_done(wr_wq *q, const char *key);

/* wr_wq_next_deadline returns when the earliest delayed key becomes due (ms,
 * same clock as |now|), or WR_WQ_NEVER; arm a timer for it. Keys already
 * ready are not counted: check wr_wq_len(). */
uint64_t wr_wq_next_deadline(const wr_wq *q);

/* wr_wq_shutdown stops intake: delayed keys are dropped, later adds return
 * WR_ERR_CLOSED, while ready keys are still handed out and processing keys
 * may finish (a dirty one is handed out once more). Shutdown is final. */
void wr_wq_shutdown(wr_wq *q);
/* wr_wq_is_shutdown tells whether wr_wq_shutdown() was called. */
int wr_wq_is_shutdown(const wr_wq *q);
/* wr_wq_drained tells whether the queue is shut down with nothing ready or
 * processing: workers may exit. */
int wr_wq_drained(const wr_wq *q);

/* Sizes, for metrics (workqueue_depth is wr_wq_len). */
size_t wr_wq_len(const wr_wq *q);        /* ready keys */
size_t wr_wq_delayed(const wr_wq *q);    /* delayed keys */
size_t wr_wq_processing(const wr_wq *q); /* keys handed out, not yet done */
size_t wr_wq_keys(const wr_wq *q);       /* keys tracked, the figure max_keys caps */

#endif
