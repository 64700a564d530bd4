/*
 * informer.h - list then watch one resource into a local cache, with
 * indexes: client-go's reflector, store and indexer in one module.
 *
 * The informer lists the collection in pages (a consistent snapshot), then
 * watches from the list's resourceVersion with bookmarks, so that it sees
 * every change exactly once. A watch that ends is resumed from the last
 * resourceVersion seen (events and bookmarks both advance it); one that
 * fails is retried after a capped exponential backoff with jitter (800 ms
 * doubling to 30 s, reset after 2 minutes of health). HTTP 410 or an
 * in-stream ERROR 410 ("too old resource version") leads to a relist from
 * scratch, after which objects that vanished meanwhile are reported deleted
 * with final_state_unknown set.
 *
 * Cached objects are shared, read-only jansson values: callbacks and
 * lookups return borrowed references (json_incref to keep one). Memory is
 * proportional to the objects cached, capped by max_objects; one watch
 * document is capped by max_doc_bytes.
 */
#ifndef WARREN_INFORMER_H
#define WARREN_INFORMER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "warren/kclient.h"

typedef struct wr_informer wr_informer;

struct wr_informer_cbs {
  /* initial: the object came with the first list (before on_synced). */
  void (*on_add)(void *ud, json_t *obj, int initial);
  /* Also called on a relist for objects whose resourceVersion changed. */
  void (*on_update)(void *ud, json_t *old, json_t *obj);
  /* |obj| is the state at deletion (the DELETED event's object), or with
   * final_state_unknown set, when it vanished across a relist, the last
   * state the cache had. */
  void (*on_delete)(void *ud, json_t *obj, int final_state_unknown);
  /* The first list is in the cache (runs once). */
  void (*on_synced)(void *ud);
};

struct wr_informer_opts {
  const char *path;           /* collection path (wr_kpath), one namespace or all */
  const char *label_selector; /* optional */
  const char *field_selector; /* optional */
  unsigned page_size;         /* list page; 0: 500 */
  size_t max_objects;         /* cache cap; 0: 1,000,000 */
  size_t max_doc_bytes;       /* one watch event; 0: WR_KWATCH_MAX_DOC_DEFAULT */
  unsigned watch_min_s;       /* watch timeoutSeconds drawn from [min, 2*min]; 0: 300 */
  unsigned idle_s;            /* a watch silent this long is restarted; 0: none */
  int keep_managed_fields;    /* 0: drop metadata.managedFields from cached objects (they are
                                 server-side apply bookkeeping, often most of an object) */
  /* transform, when set, trims an object before it is cached and handed to
   * the callbacks (controller-runtime's TransformFunc): a cache that only
   * needs metadata and status drops the spec and costs a fraction. Listed
   * objects are transformed as their page arrives. */
  void (*transform)(void *ud, json_t *obj);
  /* compact: keep each object as its compact JSON text (a fraction of a
   * jansson tree: ~1 KiB instead of ~5 for a small object) and parse it on
   * every lookup. Lookups then return a fresh copy that stays valid until
   * the end of the current loop iteration, and wr_informer_objects()
   * values are strings: iterate its keys and look them up. */
  int compact;
};

/* An index function fills |vals| with up to |max| values for |obj| (borrowed
 * strings that live as long as |obj|, or copies in |scratch|) and returns
 * how many; objects are found again by any of these values. */
typedef size_t (*wr_index_fn)(void *ud, json_t *obj, const char **vals, size_t max);

int wr_informer_new(wr_informer **out, uv_loop_t *loop, wr_kclient *kc,
                    const struct wr_informer_opts *o, const struct wr_informer_cbs *cbs, void *ud);
/* wr_informer_add_index registers an index before start. The index
 * "namespace" (metadata.namespace) always exists. */
int wr_informer_add_index(wr_informer *inf, const char *name, wr_index_fn fn, void *fn_ud);
int wr_informer_start(wr_informer *inf);
/* wr_informer_del stops the informer and drops the cache (no callbacks).
 * Not from inside its own callbacks. */
void wr_informer_del(wr_informer *inf);

int wr_informer_synced(const wr_informer *inf);
/* wr_informer_get returns the cached object or NULL; |ns| NULL for
 * cluster-scoped objects. Borrowed: valid until the cache changes (compact
 * caches: until the end of this loop iteration); json_incref to keep it. */
json_t *wr_informer_get(const wr_informer *inf, const char *ns, const char *name);
/* wr_informer_index returns a JSON object whose keys are the cache keys
 * ("ns/name") of the objects with |value| in |index| (NULL: none). Look the
 * objects up with wr_informer_get_key(). Borrowed; valid until the next
 * loop iteration. */
json_t *wr_informer_index(const wr_informer *inf, const char *index, const char *value);
json_t *wr_informer_get_key(const wr_informer *inf, const char *key);
/* wr_informer_ref returns a new reference to the object of |key| (NULL:
 * none); json_decref it. For code that looks up many objects in one loop
 * iteration: a compact cache's parsed copy is released with the reference
 * instead of at the end of the iteration. */
json_t *wr_informer_ref(const wr_informer *inf, const char *key);
/* wr_informer_objects returns the cache: a JSON object key -> object
 * (compact caches: key -> text; use the keys with wr_informer_get_key). */
json_t *wr_informer_objects(const wr_informer *inf);

struct wr_informer_stats {
  uint64_t lists;    /* full lists (the first one and relists) */
  uint64_t watches;  /* watch requests started */
  uint64_t events;   /* watch events applied (bookmarks included) */
  uint64_t expired;  /* 410s that forced a relist */
  uint64_t failures; /* list/watch failures that backed off */
  size_t objects;
  char resource_version[64]; /* last seen */
};
void wr_informer_stats(const wr_informer *inf, struct wr_informer_stats *st);

#endif
