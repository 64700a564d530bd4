/*
 * informer.c - list + watch into an indexed cache (see informer.h).
 *
 * One request at a time: a list page (a consistent snapshot gathered into
 * |listing|), a watch stream fed to the kwatch parser, or the backoff timer.
 * The cache and the indexes are jansson objects used as hash maps:
 *   cache:  "ns/name" -> object
 *   index:  name -> { value -> { "ns/name": true } }
 * so lookups are O(1) and memory follows the objects cached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warren/err.h"
#include "warren/informer.h"
#include "warren/kwatch.h"
#include "warren/log.h"

#define DEFAULT_PAGE 500u
#define DEFAULT_MAX_OBJECTS 1000000u
#define DEFAULT_WATCH_MIN_S 300u
#define BACKOFF_INITIAL_MS 800u
#define BACKOFF_MAX_MS 30000u
#define BACKOFF_RESET_MS 120000u
#define SHORT_WATCH_MS 1000u
#define MAX_INDEXES 8
#define MAX_INDEX_VALUES 16
#define KEY_MAX 512

struct index {
  char *name;
  wr_index_fn fn;
  void *ud;
  json_t *map; /* value -> { key: true } */
};

struct wr_informer {
  uv_loop_t *loop;
  wr_kclient *kc;
  struct wr_informer_opts o;
  char *path, *labels, *fields;
  struct wr_informer_cbs cbs;
  void *ud;
  json_t *cache;   /* key -> object, or its compact JSON text (o.compact) */
  json_t *scratch; /* compact: objects parsed this loop iteration (released by |check|) */
  uv_check_t check;
  int open_handles;
  json_t *listing; /* key -> object, while a list is in progress */
  char list_rv[64];
  char rv[64]; /* last seen resourceVersion */
  struct index idx[MAX_INDEXES];
  size_t nidx;
  wr_kcall *call;
  wr_kwatch parser;
  uv_timer_t timer; /* backoff */
  uint64_t backoff_ms;
  uint64_t healthy_since; /* ms, loop time when the current watch started */
  uint64_t watch_events;  /* events on the current watch */
  uint64_t rng;
  int need_relist; /* the next list is a relist from scratch */
  int stop_code;   /* Status code of an in-stream ERROR event, 0: none */
  unsigned synced : 1, started : 1, closing : 1;
  struct wr_informer_stats st;
};

static void do_list(wr_informer *inf, const char *cont);
static void do_watch(wr_informer *inf);

/* --- compact cache ------------------------------------------------------------------- */

static void on_check(uv_check_t *h) {
  wr_informer *inf = h->data;

  json_array_clear(inf->scratch);
  uv_check_stop(h);
}

/* cached returns the object a cache value stands for: itself, or in a
 * compact cache a copy parsed from its text, kept until the end of this
 * loop iteration (so callers see the same borrowed-reference rules). */
static json_t *cached(const wr_informer *cinf, json_t *v) {
  wr_informer *inf = (wr_informer *)cinf; /* the scratch list is not observable state */
  json_t *obj;

  if (v == NULL || !inf->o.compact)
    return v;
  obj = json_loadb(json_string_value(v), json_string_length(v), 0, NULL);
  if (obj == NULL || json_array_append_new(inf->scratch, obj) != 0)
    return NULL;
  if (!uv_is_active((uv_handle_t *)&inf->check))
    uv_check_start(&inf->check, on_check);
  return obj;
}

/* load returns a new reference to the object a cache value stands for
 * (for the informer's own use: released at once, not at the end of the
 * iteration, so that a relist of 10,000 objects does not hold them all). */
static json_t *load(const wr_informer *inf, json_t *v) {
  if (v == NULL || !inf->o.compact)
    return json_incref(v);
  return json_loadb(json_string_value(v), json_string_length(v), 0, NULL);
}

/* trim drops what the cache never keeps, before anything else sees it. */
static void trim(wr_informer *inf, json_t *obj) {
  if (!inf->o.keep_managed_fields)
    json_object_del(json_object_get(obj, "metadata"), "managedFields");
  if (inf->o.transform != NULL)
    inf->o.transform(inf->ud, obj);
}

/* stored is what the cache keeps for |obj|: a reference, or its text. */
static json_t *stored(const wr_informer *inf, json_t *obj) {
  char *text;
  json_t *v;

  if (!inf->o.compact)
    return json_incref(obj);
  text = json_dumps(obj, JSON_COMPACT);
  v = text != NULL ? json_string_nocheck(text) : NULL;
  free(text);
  return v;
}
static void backoff(wr_informer *inf, int relist);

/* --- keys and indexes ------------------------------------------------------------ */

static const char *meta_str(json_t *obj, const char *field) {
  json_t *v = json_object_get(json_object_get(obj, "metadata"), field);

  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int obj_key(json_t *obj, char *key, size_t len) {
  const char *ns = meta_str(obj, "namespace"), *name = meta_str(obj, "name");
  int n;

  if (name == NULL)
    return WR_ERR_PROTO;
  n = ns != NULL && *ns != '\0' ? snprintf(key, len, "%s/%s", ns, name)
                                : snprintf(key, len, "%s", name);
  return n < 0 || (size_t)n >= len ? WR_ERR_TOOBIG : 0;
}

static size_t index_namespace(void *ud, json_t *obj, const char **vals, size_t max) {
  const char *ns = meta_str(obj, "namespace");

  (void)ud;
  if (max == 0)
    return 0;
  vals[0] = ns != NULL ? ns : "";
  return 1;
}

static void index_update(wr_informer *inf, const char *key, json_t *old, json_t *obj) {
  const char *vals[MAX_INDEX_VALUES];
  size_t i, j, n;

  for (i = 0; i < inf->nidx; i++) {
    struct index *x = &inf->idx[i];

    if (old != NULL) {
      n = x->fn(x->ud, old, vals, MAX_INDEX_VALUES);
      for (j = 0; j < n; j++) {
        json_t *set = json_object_get(x->map, vals[j]);

        json_object_del(set, key);
        if (set != NULL && json_object_size(set) == 0)
          json_object_del(x->map, vals[j]);
      }
    }
    if (obj != NULL) {
      n = x->fn(x->ud, obj, vals, MAX_INDEX_VALUES);
      for (j = 0; j < n; j++) {
        json_t *set = json_object_get(x->map, vals[j]);

        if (set == NULL) {
          set = json_object();
          if (set == NULL || json_object_set_new(x->map, vals[j], set) < 0)
            continue;
        }
        json_object_set_new(set, key, json_true());
      }
    }
  }
}

/* --- cache changes (callbacks run here) ------------------------------------------------ */

static void cache_put(wr_informer *inf, json_t *obj, int from_list) {
  char key[KEY_MAX];
  json_t *old;

  if (obj_key(obj, key, sizeof(key)) < 0)
    return;
  if (!from_list) /* listed objects were trimmed as their page arrived */
    trim(inf, obj);
  old = load(inf, json_object_get(inf->cache, key));
  if (old == NULL && json_object_size(inf->cache) >= inf->o.max_objects) {
    log_warnx("informer %s: cache full (%zu objects): %s not cached", inf->path, inf->o.max_objects,
              key);
    return;
  }
  index_update(inf, key, old, obj);
  if (json_object_set_new(inf->cache, key, stored(inf, obj)) != 0) {
    log_warnx("informer %s: out of memory: %s not cached", inf->path, key);
    json_decref(old);
    return;
  }
  if (old == NULL) {
    if (inf->cbs.on_add != NULL)
      inf->cbs.on_add(inf->ud, obj, from_list && !inf->synced);
  } else {
    const char *a = meta_str(old, "resourceVersion"), *b = meta_str(obj, "resourceVersion");

    /* A relist re-reports only objects that changed. */
    if (inf->cbs.on_update != NULL && (!from_list || a == NULL || b == NULL || strcmp(a, b) != 0))
      inf->cbs.on_update(inf->ud, old, obj);
  }
  json_decref(old);
}

/* cache_remove drops |key|. |final| is the object's state at deletion (a
 * DELETED event's object); NULL after a relist, when only the cached state
 * is known. */
static void cache_remove(wr_informer *inf, const char *key, json_t *final) {
  json_t *old = load(inf, json_object_get(inf->cache, key));

  if (old == NULL)
    return;
  index_update(inf, key, old, NULL);
  json_object_del(inf->cache, key);
  if (inf->cbs.on_delete != NULL)
    inf->cbs.on_delete(inf->ud, final != NULL ? final : old, final == NULL);
  json_decref(old);
}

/* --- list ---------------------------------------------------------------------------- */

static void list_done(wr_informer *inf) {
  const char *key;
  json_t *obj, *gone;
  void *tmp;

  /* Objects cached but absent from the snapshot vanished meanwhile. */
  gone = json_array();
  json_object_foreach_safe(inf->cache, tmp, key, obj) {
    if (json_object_get(inf->listing, key) == NULL)
      json_array_append_new(gone, json_string(key));
  }
  json_object_foreach(inf->listing, key, obj) {
    json_t *o = load(inf, obj);

    if (o != NULL)
      cache_put(inf, o, 1);
    json_decref(o);
  }
  {
    size_t i;
    json_t *k;

    json_array_foreach(gone, i, k) {
      cache_remove(inf, json_string_value(k), NULL);
    }
  }
  json_decref(gone);
  json_object_clear(inf->listing);
  snprintf(inf->rv, sizeof(inf->rv), "%s", inf->list_rv);
  inf->need_relist = 0;
  inf->st.lists++;
  log_debug("informer %s: listed %zu objects at resourceVersion %s", inf->path,
            json_object_size(inf->cache), inf->rv);
  if (!inf->synced) {
    inf->synced = 1;
    if (inf->cbs.on_synced != NULL)
      inf->cbs.on_synced(inf->ud);
  }
  if (!inf->closing)
    do_watch(inf);
}

static void on_list(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  wr_informer *inf = ud;
  json_t *items, *it, *meta;
  const char *cont;
  size_t i;

  inf->call = NULL;
  if (rv != 0) {
    if (rv == WR_ERR_REFUSED)
      log_warnx("informer %s: list: %d %s: %s", inf->path, st->code, st->reason, st->message);
    else
      log_warnx("informer %s: list: %s", inf->path, wr_strerror(rv));
    /* An expired continue token: start the list again from scratch. */
    json_object_clear(inf->listing);
    backoff(inf, 1);
    return;
  }
  items = json_object_get(obj, "items");
  meta = json_object_get(obj, "metadata");
  if (!json_is_array(items) || !json_is_object(meta)) {
    log_warnx("informer %s: list: answer without items or metadata", inf->path);
    json_object_clear(inf->listing);
    backoff(inf, 1);
    return;
  }
  if (inf->list_rv[0] == '\0' && json_is_string(json_object_get(meta, "resourceVersion")))
    snprintf(inf->list_rv, sizeof(inf->list_rv), "%s",
             json_string_value(json_object_get(meta, "resourceVersion")));
  json_array_foreach(items, i, it) {
    char key[KEY_MAX];

    /* a page at a time: the snapshot is held trimmed (and as text in a
     * compact cache), never as the whole list of full objects */
    if (obj_key(it, key, sizeof(key)) == 0) {
      trim(inf, it);
      json_object_set_new(inf->listing, key, stored(inf, it));
    }
  }
  cont = json_string_value(json_object_get(meta, "continue"));
  if (cont != NULL && *cont != '\0')
    do_list(inf, cont);
  else
    list_done(inf);
}

/* add_selectors appends the selectors to a path. */
static int add_selectors(wr_informer *inf, char *p, size_t len) {
  int rv = 0;

  if (inf->labels != NULL)
    rv = wr_kquery(p, len, "labelSelector", inf->labels);
  if (rv >= 0 && inf->fields != NULL)
    rv = wr_kquery(p, len, "fieldSelector", inf->fields);
  return rv < 0 ? rv : 0;
}

static void do_list(wr_informer *inf, const char *cont) {
  char p[WR_KCLIENT_PATH_MAX], limit[16];
  int rv;

  if (cont == NULL)
    inf->list_rv[0] = '\0';
  snprintf(p, sizeof(p), "%s", inf->path);
  snprintf(limit, sizeof(limit), "%u", inf->o.page_size);
  rv = add_selectors(inf, p, sizeof(p));
  if (rv >= 0)
    rv = wr_kquery(p, sizeof(p), "limit", limit);
  if (rv >= 0 && cont != NULL)
    rv = wr_kquery(p, sizeof(p), "continue", cont);
  if (rv >= 0)
    rv = wr_kclient_get(inf->kc, p, on_list, inf, &inf->call);
  if (rv < 0) {
    log_warnx("informer %s: list: %s", inf->path, wr_strerror(rv));
    backoff(inf, 1);
  }
}

/* --- watch ------------------------------------------------------------------------------ */

static int on_event(void *ud, const struct wr_kwatch_event *ev) {
  wr_informer *inf = ud;
  char key[KEY_MAX];

  inf->st.events++;
  inf->watch_events++;
  switch (ev->type) {
  case WR_KWATCH_ADDED:
  case WR_KWATCH_MODIFIED:
    cache_put(inf, ev->object, 0);
    break;
  case WR_KWATCH_DELETED:
    if (obj_key(ev->object, key, sizeof(key)) == 0)
      cache_remove(inf, key, ev->object);
    break;
  case WR_KWATCH_BOOKMARK:
    break;
  case WR_KWATCH_ERROR:
    log_debug("informer %s: watch error %d %s: %s", inf->path, ev->code,
              ev->reason != NULL ? ev->reason : "", ev->message != NULL ? ev->message : "");
    inf->stop_code = ev->code != 0 ? ev->code : 500;
    return 1; /* ends the stream; on_watch_end decides */
  }
  if (ev->resource_version != NULL)
    snprintf(inf->rv, sizeof(inf->rv), "%s", ev->resource_version);
  return inf->closing ? 1 : 0;
}

/* on_watch_data feeds the parser; non-zero ends the stream (on_watch_end
 * then sees that value). */
static int on_watch_data(void *ud, const uint8_t *data, size_t len) {
  wr_informer *inf = ud;
  int rv = wr_kwatch_feed(&inf->parser, data, len);

  if (rv == WR_ERR_STOPPED)
    return 1;
  if (rv < 0) {
    log_warnx("informer %s: watch stream: %s", inf->path, wr_strerror(rv));
    return rv;
  }
  return 0;
}

static void on_watch_end(void *ud, int rv, const struct wr_kstatus *st) {
  wr_informer *inf = ud;
  uint64_t lived = uv_now(inf->loop) - inf->healthy_since;
  int expired = 0;

  inf->call = NULL;
  if (inf->closing)
    return;
  if (rv == WR_ERR_REFUSED &&
      (st->code == 410 || strcmp(st->reason, "Expired") == 0 || strcmp(st->reason, "Gone") == 0))
    expired = 1;
  /* An in-stream ERROR event stopped the parser. */
  if (inf->stop_code == 410)
    expired = 1;
  if (expired) {
    inf->st.expired++;
    log_info("informer %s: resourceVersion %s expired: relisting", inf->path, inf->rv);
    inf->need_relist = 1;
    do_list(inf, NULL);
    return;
  }
  if (rv == 1 && inf->stop_code != 0) {
    log_warnx("informer %s: watch: ERROR event %d", inf->path, inf->stop_code);
  } else if (rv == 0 && (lived >= SHORT_WATCH_MS || inf->watch_events > 0)) {
    /* The server ended the watch (timeoutSeconds): resume at once. */
    if (lived >= BACKOFF_RESET_MS)
      inf->backoff_ms = 0;
    do_watch(inf);
    return;
  } else if (rv == WR_ERR_REFUSED)
    log_warnx("informer %s: watch: %d %s: %s", inf->path, st->code, st->reason, st->message);
  else if (rv == 0)
    log_warnx("informer %s: watch closed after %llu ms without events", inf->path,
              (unsigned long long)lived);
  else
    log_warnx("informer %s: watch: %s", inf->path, wr_strerror(rv));
  if (lived >= BACKOFF_RESET_MS)
    inf->backoff_ms = 0;
  backoff(inf, 0);
}

static const struct wr_kstream_cbs watch_cbs = {on_watch_data, on_watch_end};

static void do_watch(wr_informer *inf) {
  char p[WR_KCLIENT_PATH_MAX], timeout[16];
  int rv;

  wr_kwatch_reset(&inf->parser);
  inf->stop_code = 0;
  inf->watch_events = 0;
  inf->healthy_since = uv_now(inf->loop);
  inf->rng ^= inf->rng << 13;
  inf->rng ^= inf->rng >> 7;
  inf->rng ^= inf->rng << 17;
  snprintf(timeout, sizeof(timeout), "%u",
           inf->o.watch_min_s + (unsigned)(inf->rng % (inf->o.watch_min_s + 1)));
  snprintf(p, sizeof(p), "%s", inf->path);
  rv = add_selectors(inf, p, sizeof(p));
  if (rv >= 0)
    rv = wr_kquery(p, sizeof(p), "watch", "1");
  if (rv >= 0)
    rv = wr_kquery(p, sizeof(p), "resourceVersion", inf->rv);
  if (rv >= 0)
    rv = wr_kquery(p, sizeof(p), "allowWatchBookmarks", "true");
  if (rv >= 0)
    rv = wr_kquery(p, sizeof(p), "timeoutSeconds", timeout);
  if (rv >= 0)
    rv = wr_kclient_stream(inf->kc, p, inf->o.idle_s, &watch_cbs, inf, &inf->call);
  if (rv < 0) {
    log_warnx("informer %s: watch: %s", inf->path, wr_strerror(rv));
    backoff(inf, 0);
    return;
  }
  inf->st.watches++;
}

/* --- backoff ------------------------------------------------------------------------------ */

static void on_backoff(uv_timer_t *t) {
  wr_informer *inf = t->data;

  if (inf->need_relist || !inf->synced || inf->rv[0] == '\0')
    do_list(inf, NULL);
  else
    do_watch(inf);
}

static void backoff(wr_informer *inf, int relist) {
  uint64_t d;

  inf->st.failures++;
  if (relist)
    inf->need_relist = 1;
  inf->backoff_ms = inf->backoff_ms == 0 ? BACKOFF_INITIAL_MS : inf->backoff_ms * 2;
  if (inf->backoff_ms > BACKOFF_MAX_MS)
    inf->backoff_ms = BACKOFF_MAX_MS;
  /* Jitter 1.0: wait between d and 2d. */
  inf->rng ^= inf->rng << 13;
  inf->rng ^= inf->rng >> 7;
  inf->rng ^= inf->rng << 17;
  d = inf->backoff_ms + inf->rng % (inf->backoff_ms + 1);
  log_debug("informer %s: retry in %llu ms", inf->path, (unsigned long long)d);
  uv_timer_start(&inf->timer, on_backoff, d, 0);
}

/* --- lifecycle ------------------------------------------------------------------------------ */

int wr_informer_new(wr_informer **out, uv_loop_t *loop, wr_kclient *kc,
                    const struct wr_informer_opts *o, const struct wr_informer_cbs *cbs, void *ud) {
  wr_informer *inf;

  if (o->path == NULL || o->path[0] != '/')
    return WR_ERR_INVAL;
  inf = calloc(1, sizeof(*inf));
  if (inf == NULL)
    return WR_ERR_NOMEM;
  uv_timer_init(loop, &inf->timer);
  inf->timer.data = inf;
  inf->loop = loop;
  inf->kc = kc;
  inf->o = *o;
  if (inf->o.page_size == 0)
    inf->o.page_size = DEFAULT_PAGE;
  if (inf->o.max_objects == 0)
    inf->o.max_objects = DEFAULT_MAX_OBJECTS;
  if (inf->o.max_doc_bytes == 0)
    inf->o.max_doc_bytes = WR_KWATCH_MAX_DOC_DEFAULT;
  if (inf->o.watch_min_s == 0)
    inf->o.watch_min_s = DEFAULT_WATCH_MIN_S;
  if (cbs != NULL)
    inf->cbs = *cbs;
  inf->ud = ud;
  inf->path = strdup(o->path);
  inf->labels = o->label_selector != NULL ? strdup(o->label_selector) : NULL;
  inf->fields = o->field_selector != NULL ? strdup(o->field_selector) : NULL;
  inf->cache = json_object();
  inf->scratch = json_array();
  inf->listing = json_object();
  uv_check_init(loop, &inf->check);
  inf->check.data = inf;
  uv_unref((uv_handle_t *)&inf->check);
  inf->open_handles = 2;
  inf->rng = uv_hrtime() | 1;
  wr_kwatch_init(&inf->parser, inf->o.max_doc_bytes, on_event, inf);
  if (inf->path == NULL || inf->cache == NULL || inf->listing == NULL || inf->scratch == NULL ||
      (o->label_selector != NULL && inf->labels == NULL) ||
      (o->field_selector != NULL && inf->fields == NULL)) {
    wr_informer_del(inf);
    return WR_ERR_NOMEM;
  }
  inf->o.path = inf->o.label_selector = inf->o.field_selector = NULL;
  if (wr_informer_add_index(inf, "namespace", index_namespace, NULL) < 0) {
    wr_informer_del(inf);
    return WR_ERR_NOMEM;
  }
  *out = inf;
  return 0;
}

static void on_timer_closed(uv_handle_t *h) {
  wr_informer *inf = h->data;
  size_t i;

  if (--inf->open_handles > 0)
    return;
  for (i = 0; i < inf->nidx; i++) {
    free(inf->idx[i].name);
    json_decref(inf->idx[i].map);
  }
  json_decref(inf->cache);
  json_decref(inf->scratch);
  json_decref(inf->listing);
  wr_kwatch_free(&inf->parser);
  free(inf->path);
  free(inf->labels);
  free(inf->fields);
  free(inf);
}

void wr_informer_del(wr_informer *inf) {
  if (inf == NULL || inf->closing)
    return;
  inf->closing = 1;
  if (inf->call != NULL)
    wr_kcall_cancel(inf->call);
  inf->call = NULL;
  uv_close((uv_handle_t *)&inf->timer, on_timer_closed);
  uv_close((uv_handle_t *)&inf->check, on_timer_closed);
}

int wr_informer_add_index(wr_informer *inf, const char *name, wr_index_fn fn, void *fn_ud) {
  struct index *x;
  size_t i;

  if (inf->started || fn == NULL || name == NULL)
    return WR_ERR_INVAL;
  for (i = 0; i < inf->nidx; i++) {
    if (strcmp(inf->idx[i].name, name) == 0)
      return WR_ERR_INVAL;
  }
  if (inf->nidx == MAX_INDEXES)
    return WR_ERR_TOOBIG;
  x = &inf->idx[inf->nidx];
  x->name = strdup(name);
  x->map = json_object();
  if (x->name == NULL || x->map == NULL) {
    free(x->name);
    json_decref(x->map);
    return WR_ERR_NOMEM;
  }
  x->fn = fn;
  x->ud = fn_ud;
  inf->nidx++;
  return 0;
}

int wr_informer_start(wr_informer *inf) {
  if (inf->started || inf->closing)
    return WR_ERR_INVAL;
  inf->started = 1;
  do_list(inf, NULL);
  return 0;
}

int wr_informer_synced(const wr_informer *inf) {
  return inf->synced;
}

json_t *wr_informer_get_key(const wr_informer *inf, const char *key) {
  return cached(inf, json_object_get(inf->cache, key));
}

json_t *wr_informer_ref(const wr_informer *inf, const char *key) {
  return load(inf, json_object_get(inf->cache, key));
}

json_t *wr_informer_get(const wr_informer *inf, const char *ns, const char *name) {
  char key[KEY_MAX];
  int n = ns != NULL && *ns != '\0' ? snprintf(key, sizeof(key), "%s/%s", ns, name)
                                    : snprintf(key, sizeof(key), "%s", name);

  if (n < 0 || (size_t)n >= sizeof(key))
    return NULL;
  return cached(inf, json_object_get(inf->cache, key));
}

json_t *wr_informer_index(const wr_informer *inf, const char *index, const char *value) {
  size_t i;

  for (i = 0; i < inf->nidx; i++) {
    if (strcmp(inf->idx[i].name, index) == 0)
      return json_object_get(inf->idx[i].map, value);
  }
  return NULL;
}

json_t *wr_informer_objects(const wr_informer *inf) {
  return inf->cache;
}

void wr_informer_stats(const wr_informer *inf, struct wr_informer_stats *st) {
  *st = inf->st;
  st->objects = json_object_size(inf->cache);
  snprintf(st->resource_version, sizeof(st->resource_version), "%s", inf->rv);
}
