/*
 * workqueue.c - controller work queue with client-go's default rate limiter
 * (docs/internals/workqueue.md).
 *
 * One item per tracked key, found through a chained hash table. An item is
 * linked into the ready FIFO (intrusive singly linked list) or sits in the
 * delayed min-heap (it knows its heap index, so a delay can be brought
 * forward or cancelled in O(log n)), and carries its processing/dirty flags
 * and failure count. An item is freed as soon as it is in none of these
 * states and has no failures.
 */
#include <stdlib.h>
#include <string.h>

#include "warren/err.h"
#include "warren/workqueue.h"

enum {
  WQ_READY = 1 << 0,      /* in the FIFO */
  WQ_DELAYED = 1 << 1,    /* in the heap */
  WQ_PROCESSING = 1 << 2, /* handed out by wr_wq_get */
  WQ_DIRTY = 1 << 3,      /* added while processing: back to the FIFO on done */
};

#define WQ_MILLI 1000 /* token bucket fixed point: 1 token = 1000 units */
#define WQ_BUCKETS_MIN 16

struct wq_item {
  struct wq_item *hnext; /* hash chain */
  struct wq_item *qnext; /* FIFO link */
  uint64_t hash;
  uint64_t due; /* WQ_DELAYED: when it becomes ready */
  uint64_t seq; /* WQ_DELAYED: order among equal due times */
  size_t hidx;  /* WQ_DELAYED: index in the heap */
  uint32_t failures;
  unsigned flags;
  char key[];
};

struct wr_wq {
  struct wr_wq_config cfg;
  struct wq_item **buckets; /* nbuckets, a power of two */
  size_t nbuckets;
  size_t nkeys;
  struct wq_item *head, *tail; /* ready FIFO */
  size_t nready;
  size_t nprocessing;
  struct wq_item **heap; /* delayed items, earliest first */
  size_t heap_len, heap_cap;
  uint64_t seq;
  int64_t tokens;    /* bucket content, in 1/WQ_MILLI tokens */
  uint64_t last;     /* when the bucket was last refilled */
  int bucket_primed; /* tokens/last hold a value */
  int shutdown;
};

/* FNV-1a, 64-bit. */
static uint64_t hash_key(const char *key, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  size_t i;

  for (i = 0; i < n; i++) {
    h ^= (uint8_t)key[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

/* key_check validates |key| and sets *n to its length. */
static int key_check(const char *key, size_t *n) {
  if (key == NULL || key[0] == '\0')
    return WR_ERR_INVAL;
  *n = strnlen(key, WR_WQ_KEY_MAX + 1);
  return *n > WR_WQ_KEY_MAX ? WR_ERR_TOOBIG : 0;
}

static struct wq_item *lookup(const wr_wq *q, const char *key, size_t n, uint64_t h) {
  struct wq_item *it;

  for (it = q->buckets[h & (q->nbuckets - 1)]; it != NULL; it = it->hnext) {
    if (it->hash == h && strncmp(it->key, key, n) == 0 && it->key[n] == '\0')
      return it;
  }
  return NULL;
}

static struct wq_item *find(const wr_wq *q, const char *key) {
  size_t n;

  if (key_check(key, &n) != 0)
    return NULL;
  return lookup(q, key, n, hash_key(key, n));
}

/* grow doubles the bucket array; failure only leaves chains longer. */
static void grow(wr_wq *q) {
  size_t nb = q->nbuckets * 2, i;
  struct wq_item **b = calloc(nb, sizeof(*b));

  if (b == NULL)
    return;
  for (i = 0; i < q->nbuckets; i++) {
    struct wq_item *it = q->buckets[i], *next;

    for (; it != NULL; it = next) {
      next = it->hnext;
      it->hnext = b[it->hash & (nb - 1)];
      b[it->hash & (nb - 1)] = it;
    }
  }
  free(q->buckets);
  q->buckets = b;
  q->nbuckets = nb;
}

/* intern finds |key| or creates an idle item for it. */
static int intern(wr_wq *q, const char *key, struct wq_item **out) {
  struct wq_item *it;
  uint64_t h;
  size_t n;
  int rv;

  rv = key_check(key, &n);
  if (rv != 0)
    return rv;
  h = hash_key(key, n);
  it = lookup(q, key, n, h);
  if (it == NULL) {
    if (q->nkeys >= q->cfg.max_keys)
      return WR_ERR_TOOBIG;
    it = calloc(1, sizeof(*it) + n + 1);
    if (it == NULL)
      return WR_ERR_NOMEM;
    memcpy(it->key, key, n);
    it->hash = h;
    if (q->nkeys >= q->nbuckets)
      grow(q);
    it->hnext = q->buckets[h & (q->nbuckets - 1)];
    q->buckets[h & (q->nbuckets - 1)] = it;
    q->nkeys++;
  }
  *out = it;
  return 0;
}

/* release frees |it| when nothing refers to it any more. */
static void release(wr_wq *q, struct wq_item *it) {
  struct wq_item **pp;

  if (it->flags != 0 || it->failures != 0)
    return;
  for (pp = &q->buckets[it->hash & (q->nbuckets - 1)]; *pp != it; pp = &(*pp)->hnext)
    ;
  *pp = it->hnext;
  q->nkeys--;
  free(it);
}

/* Ready FIFO. */

static void push_ready(wr_wq *q, struct wq_item *it) {
  it->flags |= WQ_READY;
  it->qnext = NULL;
  if (q->tail != NULL)
    q->tail->qnext = it;
  else
    q->head = it;
  q->tail = it;
  q->nready++;
}

static struct wq_item *pop_ready(wr_wq *q) {
  struct wq_item *it = q->head;

  if (it == NULL)
    return NULL;
  q->head = it->qnext;
  if (q->head == NULL)
    q->tail = NULL;
  it->qnext = NULL;
  it->flags &= ~(unsigned)WQ_READY;
  q->nready--;
  return it;
}

/* Delayed min-heap, ordered by (due, seq). */

static int heap_less(const struct wq_item *a, const struct wq_item *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(wr_wq *q, size_t i, struct wq_item *it) {
  q->heap[i] = it;
  it->hidx = i;
}

static void sift_up(wr_wq *q, size_t i) {
  struct wq_item *it = q->heap[i];

  while (i > 0) {
    size_t parent = (i - 1) / 2;

    if (!heap_less(it, q->heap[parent]))
      break;
    heap_set(q, i, q->heap[parent]);
    i = parent;
  }
  heap_set(q, i, it);
}

static void sift_down(wr_wq *q, size_t i) {
  struct wq_item *it = q->heap[i];

  for (;;) {
    size_t child = 2 * i + 1;

    if (child >= q->heap_len)
      break;
    if (child + 1 < q->heap_len && heap_less(q->heap[child + 1], q->heap[child]))
      child++;
    if (!heap_less(q->heap[child], it))
      break;
    heap_set(q, i, q->heap[child]);
    i = child;
  }
  heap_set(q, i, it);
}

static int heap_push(wr_wq *q, struct wq_item *it, uint64_t due) {
  if (q->heap_len == q->heap_cap) {
    size_t cap = q->heap_cap ? q->heap_cap * 2 : 16;
    struct wq_item **h;

    if (cap > q->cfg.max_keys)
      cap = q->cfg.max_keys;
    h = realloc(q->heap, cap * sizeof(*h));
    if (h == NULL)
      return WR_ERR_NOMEM;
    q->heap = h;
    q->heap_cap = cap;
  }
  it->due = due;
  it->seq = q->seq++;
  it->flags |= WQ_DELAYED;
  heap_set(q, q->heap_len++, it);
  sift_up(q, it->hidx);
  return 0;
}

static void heap_remove(wr_wq *q, struct wq_item *it) {
  struct wq_item *last;
  size_t i = it->hidx;

  it->flags &= ~(unsigned)WQ_DELAYED;
  last = q->heap[--q->heap_len];
  if (last == it)
    return;
  /* The last item fills the hole, then moves up or down to its place. */
  heap_set(q, i, last);
  sift_up(q, i);
  sift_down(q, last->hidx);
}

/* make_ready is the core of every add: |it| is due now. */
static void make_ready(wr_wq *q, struct wq_item *it) {
  if (it->flags & (WQ_READY | WQ_DIRTY))
    return;
  if (it->flags & WQ_DELAYED)
    heap_remove(q, it);
  if (it->flags & WQ_PROCESSING)
    it->flags |= WQ_DIRTY;
  else
    push_ready(q, it);
}

int wr_wq_new(wr_wq **qp, const struct wr_wq_config *cfg) {
  const struct wr_wq_config def = WR_WQ_CONFIG_DEFAULT;
  wr_wq *q;

  *qp = NULL;
  if (cfg == NULL)
    cfg = &def;
  if (cfg->max_keys == 0 || (cfg->qps > 0 && cfg->burst == 0))
    return WR_ERR_INVAL;
  q = calloc(1, sizeof(*q));
  if (q == NULL)
    return WR_ERR_NOMEM;
  q->cfg = *cfg;
  q->nbuckets = WQ_BUCKETS_MIN;
  q->buckets = calloc(q->nbuckets, sizeof(*q->buckets));
  if (q->buckets == NULL) {
    free(q);
    return WR_ERR_NOMEM;
  }
  *qp = q;
  return 0;
}

void wr_wq_del(wr_wq *q) {
  size_t i;

  if (q == NULL)
    return;
  for (i = 0; i < q->nbuckets; i++) {
    struct wq_item *it = q->buckets[i], *next;

    for (; it != NULL; it = next) {
      next = it->hnext;
      free(it);
    }
  }
  free(q->buckets);
  free(q->heap);
  free(q);
}

int wr_wq_add(wr_wq *q, const char *key) {
  struct wq_item *it;
  int rv;

  if (q->shutdown)
    return WR_ERR_CLOSED;
  rv = intern(q, key, &it);
  if (rv != 0)
    return rv;
  make_ready(q, it);
  return 0;
}

int wr_wq_add_after(wr_wq *q, const char *key, uint64_t delay_ms, uint64_t now) {
  struct wq_item *it;
  uint64_t due;
  int rv;

  if (delay_ms == 0)
    return wr_wq_add(q, key);
  if (q->shutdown)
    return WR_ERR_CLOSED;
  rv = intern(q, key, &it);
  if (rv != 0)
    return rv;
  if (it->flags & (WQ_READY | WQ_DIRTY))
    return 0; /* already due now */
  due = now + delay_ms < now ? WR_WQ_NEVER : now + delay_ms;
  if (it->flags & WQ_DELAYED) {
    if (due < it->due) {
      it->due = due;
      it->seq = q->seq++;
      sift_up(q, it->hidx);
    }
    return 0;
  }
  rv = heap_push(q, it, due);
  if (rv != 0)
    release(q, it);
  return rv;
}

/* item_backoff is base * 2^failures, capped at max_delay_ms. */
static uint64_t item_backoff(const wr_wq *q, uint32_t failures) {
  uint64_t base = q->cfg.base_delay_ms, max = q->cfg.max_delay_ms;

  if (base == 0)
    return 0;
  if (failures >= 64 || base > (max >> failures))
    return max;
  return base << failures;
}

/* bucket_delay takes one token and returns how long the caller must wait
 * for it (golang.org/x/time/rate's Reserve().Delay(): tokens may go negative,
 * so a burst of reservations is spread out at qps). */
static uint64_t bucket_delay(wr_wq *q, uint64_t now) {
  int64_t cap = (int64_t)q->cfg.burst * WQ_MILLI;
  int64_t qps = (int64_t)q->cfg.qps;

  if (qps == 0)
    return 0;
  if (!q->bucket_primed) {
    q->bucket_primed = 1;
    q->tokens = cap;
    q->last = now;
  }
  if (now > q->last) {
    uint64_t elapsed = now - q->last;

    /* Refill up to the cap (comparing first, so a long idle time cannot overflow). */
    if (elapsed > (uint64_t)((cap - q->tokens) / qps))
      q->tokens = cap;
    else
      q->tokens += (int64_t)elapsed * qps;
  }
  q->last = now;
  q->tokens -= WQ_MILLI;
  if (q->tokens >= 0)
    return 0;
  return (uint64_t)((-q->tokens + qps - 1) / qps);
}

int wr_wq_add_rate_limited(wr_wq *q, const char *key, uint64_t now) {
  struct wq_item *it;
  uint64_t backoff, wait;
  int rv;

  if (q->shutdown)
    return WR_ERR_CLOSED;
  rv = intern(q, key, &it);
  if (rv != 0)
    return rv;
  backoff = item_backoff(q, it->failures);
  if (it->failures < UINT32_MAX)
    it->failures++;
  wait = bucket_delay(q, now);
  return wr_wq_add_after(q, it->key, backoff > wait ? backoff : wait, now);
}

void wr_wq_forget(wr_wq *q, const char *key) {
  struct wq_item *it = find(q, key);

  if (it == NULL)
    return;
  it->failures = 0;
  release(q, it);
}

unsigned wr_wq_num_requeues(const wr_wq *q, const char *key) {
  const struct wq_item *it = find(q, key);

  return it != NULL ? it->failures : 0;
}

const char *wr_wq_get(wr_wq *q, uint64_t now) {
  struct wq_item *it;

  while (q->heap_len > 0 && q->heap[0]->due <= now) {
    it = q->heap[0];
    heap_remove(q, it);
    make_ready(q, it);
  }
  it = pop_ready(q);
  if (it == NULL)
    return NULL;
  it->flags |= WQ_PROCESSING;
  q->nprocessing++;
  return it->key;
}

int wr_wq_done(wr_wq *q, const char *key) {
  struct wq_item *it = find(q, key);

  if (it == NULL || !(it->flags & WQ_PROCESSING))
    return WR_ERR_NOTFOUND;
  it->flags &= ~(unsigned)WQ_PROCESSING;
  q->nprocessing--;
  if (it->flags & WQ_DIRTY) {
    it->flags &= ~(unsigned)WQ_DIRTY;
    push_ready(q, it);
  }
  release(q, it);
  return 0;
}

uint64_t wr_wq_next_deadline(const wr_wq *q) {
  return q->heap_len > 0 ? q->heap[0]->due : WR_WQ_NEVER;
}

void wr_wq_shutdown(wr_wq *q) {
  size_t i, n = q->heap_len;

  q->shutdown = 1;
  q->heap_len = 0;
  for (i = 0; i < n; i++) {
    struct wq_item *it = q->heap[i];

    it->flags &= ~(unsigned)WQ_DELAYED;
    release(q, it);
  }
}

int wr_wq_is_shutdown(const wr_wq *q) {
  return q->shutdown;
}

int wr_wq_drained(const wr_wq *q) {
  return q->shutdown && q->nready == 0 && q->nprocessing == 0;
}

size_t wr_wq_len(const wr_wq *q) {
  return q->nready;
}

size_t wr_wq_delayed(const wr_wq *q) {
  return q->heap_len;
}

size_t wr_wq_processing(const wr_wq *q) {
  return q->nprocessing;
}

size_t wr_wq_keys(const wr_wq *q) {
  return q->nkeys;
}
