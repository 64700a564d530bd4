/*
 * conf.c - capped, alias-free YAML documents with node-positioned errors.
 *
 * Loading is two passes over the input. conf_scan() runs libyaml's event
 * parser once to refuse what the document API would happily build: anchors
 * and aliases (shared nodes, cycles, billion laughs), explicit tags (a value's
 * type comes from the getter that reads it), deep nesting and too many nodes;
 * it also reports syntax errors. Only then does yaml_parser_load()
 * build the documents, and conf_index() records each node's parent so that
 * errors can print the key path of any node.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "warren/buf.h"
#include "warren/conf.h"
#include "warren/err.h"

#define CONF_PATH_MAX 256 /* bytes of a key path in messages */
#define CONF_QUOTE_MAX 48 /* bytes of a value quoted in messages */

/* Where a node hangs in its document. */
struct conf_up {
  int parent;   /* node index of the parent collection, 0 for the root */
  size_t index; /* item index in a sequence, pair index in a mapping */
};

struct conf_doc {
  yaml_document_t doc;
  struct conf_up *up; /* by node index - 1 */
};

struct wr_conf {
  char *name;
  struct conf_doc *docs;
  size_t ndocs;
  char err[WR_CONF_ERR_MAX];
};

/* A bounded string writer: appends what fits and remembers truncation. */
struct conf_out {
  char *buf;
  size_t len;
  size_t pos;
  bool trunc;
};

static void out_init(struct conf_out *o, char *buf, size_t len) {
  o->buf = buf;
  o->len = len;
  o->pos = 0;
  o->trunc = false;
  if (len > 0)
    buf[0] = '\0';
}

static void out_mem(struct conf_out *o, const void *s, size_t n) {
  if (o->len == 0)
    return;
  if (n > o->len - 1 - o->pos) {
    n = o->len - 1 - o->pos;
    o->trunc = true;
  }
  memcpy(o->buf + o->pos, s, n);
  o->pos += n;
  o->buf[o->pos] = '\0';
}

static void out_str(struct conf_out *o, const char *s) {
  out_mem(o, s, strlen(s));
}

/* out_end marks a truncated result with a trailing "...". */
static void out_end(struct conf_out *o) {
  if (!o->trunc || o->len < 4)
    return;
  memcpy(o->buf + o->len - 4, "...", 4);
}

void wr_conf_clean_msg(char *s) {
  for (; *s != '\0'; s++) {
    unsigned char ch = (unsigned char)*s;

    if (ch < 0x20 || ch == 0x7f)
      *s = '?';
  }
}

void wr_conf_set_err(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;

  if (err == NULL || errlen == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  wr_conf_clean_msg(err);
}

/* parser_error turns a libyaml failure into a message and an error code. */
static int parser_error(const yaml_parser_t *p, const char *name, char *err, size_t errlen) {
  const char *problem = p->problem ? p->problem : "syntax error";

  switch (p->error) {
  case YAML_MEMORY_ERROR:
    wr_conf_set_err(err, errlen, "%s: out of memory while parsing YAML", name);
    return WR_ERR_NOMEM;
  case YAML_READER_ERROR:
    wr_conf_set_err(err, errlen, "%s: byte %zu: %s", name, p->problem_offset, problem);
    return WR_ERR_CONFIG;
  default:
    break;
  }
  if (p->context != NULL)
    wr_conf_set_err(err, errlen, "%s:%zu: %s (%s at line %zu)", name, p->problem_mark.line + 1,
                    problem, p->context, p->context_mark.line + 1);
  else
    wr_conf_set_err(err, errlen, "%s:%zu: %s", name, p->problem_mark.line + 1, problem);
  return WR_ERR_CONFIG;
}

/* conf_scan parses the events of |data| once and refuses anchors, aliases,
 * explicit tags, nesting deeper than WR_CONF_DEPTH_MAX and more than
 * WR_CONF_NODES_MAX nodes. */
static int conf_scan(const char *name, const unsigned char *data, size_t len, char *err,
                     size_t errlen) {
  yaml_parser_t p;
  yaml_event_t ev;
  size_t depth = 0, nodes = 0;
  const yaml_char_t *anchor, *tag;
  bool done = false;
  int rv = 0;

  if (!yaml_parser_initialize(&p)) {
    wr_conf_set_err(err, errlen, "%s: out of memory", name);
    return WR_ERR_NOMEM;
  }
  yaml_parser_set_input_string(&p, data, len);
  while (!done && rv == 0) {
    if (!yaml_parser_parse(&p, &ev)) {
      rv = parser_error(&p, name, err, errlen);
      break;
    }
    anchor = tag = NULL;
    switch (ev.type) {
    case YAML_STREAM_END_EVENT:
      done = true;
      break;
    case YAML_ALIAS_EVENT:
      wr_conf_set_err(err, errlen, "%s:%zu: YAML aliases are not supported", name,
                      ev.start_mark.line + 1);
      rv = WR_ERR_CONFIG;
      break;
    case YAML_SCALAR_EVENT:
      anchor = ev.data.scalar.anchor;
      tag = ev.data.scalar.tag;
      nodes++;
      break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
      anchor = ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.anchor
                                                    : ev.data.mapping_start.anchor;
      tag = ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.tag
                                                 : ev.data.mapping_start.tag;
      nodes++;
      if (++depth > WR_CONF_DEPTH_MAX) {
        wr_conf_set_err(err, errlen, "%s:%zu: nesting deeper than %d levels", name,
                        ev.start_mark.line + 1, WR_CONF_DEPTH_MAX);
        rv = WR_ERR_CONFIG;
      }
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      depth--;
      break;
    default:
      break;
    }
    if (rv == 0 && anchor != NULL) {
      wr_conf_set_err(err, errlen, "%s:%zu: YAML anchors are not supported", name,
                      ev.start_mark.line + 1);
      rv = WR_ERR_CONFIG;
    }
    if (rv == 0 && tag != NULL) {
      wr_conf_set_err(err, errlen, "%s:%zu: YAML tags are not supported", name,
                      ev.start_mark.line + 1);
      rv = WR_ERR_CONFIG;
    }
    if (rv == 0 && nodes > WR_CONF_NODES_MAX) {
      wr_conf_set_err(err, errlen, "%s:%zu: more than %u YAML nodes", name, ev.start_mark.line + 1,
                      WR_CONF_NODES_MAX);
      rv = WR_ERR_CONFIG;
    }
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  return rv;
}

static yaml_node_t *node_get(wr_conf_node n) {
  if (n.conf == NULL || n.id <= 0 || n.doc >= n.conf->ndocs)
    return NULL;
  return yaml_document_get_node(&n.conf->docs[n.doc].doc, n.id);
}

static wr_conf_node node_at(wr_conf_node from, int id) {
  wr_conf_node n = {from.conf, from.doc, id};

  return n;
}

/* A mapping key for sorting: its text and pair index. */
struct conf_key {
  const unsigned char *s;
  size_t len;
  size_t pair;
};

static int key_cmp(const void *a, const void *b) {
  const struct conf_key *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int r = memcmp(x->s, y->s, n);

  if (r != 0)
    return r;
  if (x->len != y->len)
    return x->len < y->len ? -1 : 1;
  return x->pair < y->pair ? -1 : (x->pair > y->pair);
}

/* check_map refuses non-scalar and duplicate keys in mapping |m|, with
 * |keys| as scratch space for its pairs. */
static int check_map(wr_conf_node m, struct conf_key *keys) {
  size_t i, n = wr_conf_map_len(m);
  yaml_node_t *k;

  for (i = 0; i < n; i++) {
    wr_conf_node key = wr_conf_map_key(m, i);

    k = node_get(key);
    if (k == NULL || k->type != YAML_SCALAR_NODE)
      return wr_conf_errorf(m, "mapping keys must be scalars, found %s at line %zu",
                            wr_conf_kind_name(wr_conf_kind(key)), wr_conf_line(key));
    keys[i].s = k->data.scalar.value;
    keys[i].len = k->data.scalar.length;
    keys[i].pair = i;
  }
  if (n < 2)
    return 0;
  qsort(keys, n, sizeof(*keys), key_cmp);
  for (i = 1; i < n; i++) {
    if (keys[i].len == keys[i - 1].len && memcmp(keys[i].s, keys[i - 1].s, keys[i].len) == 0) {
      wr_conf_node first = wr_conf_map_key(m, keys[i - 1].pair);
      wr_conf_node again = wr_conf_map_key(m, keys[i].pair);

      return wr_conf_errorf(again, "duplicate key (first at line %zu)", wr_conf_line(first));
    }
  }
  return 0;
}

/* set_up records |child| as item or pair |index| of |parent|. */
static int set_up(struct conf_doc *d, int nnodes, int child, int parent, size_t index) {
  if (child < 1 || child > nnodes || d->up[child - 1].parent != 0 || child == parent)
    return WR_ERR_CONFIG; /* a shared node: conf_scan refused aliases, so never */
  d->up[child - 1].parent = parent;
  d->up[child - 1].index = index;
  return 0;
}

/* conf_index fills the parent table of document |di| and checks its mappings. */
static int conf_index(wr_conf *c, size_t di) {
  struct conf_doc *d = &c->docs[di];
  int nnodes = (int)(d->doc.nodes.top - d->doc.nodes.start);
  struct conf_key *keys = NULL;
  size_t maxpairs = 0, j, n;
  yaml_node_t *node;
  int id, rv = WR_ERR_NOMEM;

  d->up = calloc((size_t)nnodes, sizeof(*d->up));
  if (d->up == NULL)
    goto out;
  for (id = 1; id <= nnodes; id++) {
    node = &d->doc.nodes.start[id - 1];
    rv = 0;
    if (node->type == YAML_SEQUENCE_NODE) {
      n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
      for (j = 0; j < n && rv == 0; j++)
        rv = set_up(d, nnodes, node->data.sequence.items.start[j], id, j);
    } else if (node->type == YAML_MAPPING_NODE) {
      n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
      for (j = 0; j < n && rv == 0; j++) {
        rv = set_up(d, nnodes, node->data.mapping.pairs.start[j].key, id, j);
        if (rv == 0)
          rv = set_up(d, nnodes, node->data.mapping.pairs.start[j].value, id, j);
      }
      if (n > maxpairs)
        maxpairs = n;
    }
    if (rv != 0) {
      snprintf(c->err, sizeof(c->err), "%s:%zu: shared YAML node", c->name,
               node->start_mark.line + 1);
      goto out;
    }
  }
  rv = WR_ERR_NOMEM;
  keys = calloc(maxpairs + 1, sizeof(*keys));
  if (keys == NULL)
    goto out;
  rv = 0;
  for (id = 1; id <= nnodes && rv == 0; id++) {
    if (d->doc.nodes.start[id - 1].type == YAML_MAPPING_NODE) {
      wr_conf_node m = {c, di, id};

      rv = check_map(m, keys);
    }
  }
out:
  if (rv == WR_ERR_NOMEM)
    snprintf(c->err, sizeof(c->err), "%s: out of memory", c->name);
  free(keys);
  return rv;
}

/* conf_add_doc appends |doc| to |c|, which owns it from then on, even on failure. */
static int conf_add_doc(wr_conf *c, yaml_document_t *doc) {
  struct conf_doc *v;

  if (c->ndocs % 16 == 0) {
    v = realloc(c->docs, (c->ndocs + 16) * sizeof(*v));
    if (v == NULL) {
      yaml_document_delete(doc);
      snprintf(c->err, sizeof(c->err), "%s: out of memory", c->name);
      return WR_ERR_NOMEM;
    }
    c->docs = v;
  }
  c->docs[c->ndocs].doc = *doc;
  c->docs[c->ndocs].up = NULL;
  c->ndocs++;
  return conf_index(c, c->ndocs - 1);
}

int wr_conf_load_mem(wr_conf **out, const char *name, const void *data, size_t len, size_t maxbytes,
                     char *err, size_t errlen) {
  const unsigned char *in = len > 0 ? data : (const unsigned char *)"";
  yaml_parser_t p;
  bool parser = false;
  yaml_document_t doc;
  wr_conf *c = NULL;
  int rv;

  if (len > maxbytes) {
    wr_conf_set_err(err, errlen, "%s: larger than %zu bytes", name, maxbytes);
    return WR_ERR_TOOBIG;
  }
  rv = conf_scan(name, in, len, err, errlen);
  if (rv != 0)
    return rv;
  rv = WR_ERR_NOMEM;
  c = calloc(1, sizeof(*c));
  if (c == NULL || (c->name = strdup(name)) == NULL) {
    wr_conf_set_err(err, errlen, "%s: out of memory", name);
    goto out;
  }
  if (!yaml_parser_initialize(&p)) {
    wr_conf_set_err(err, errlen, "%s: out of memory", name);
    goto out;
  }
  parser = true;
  yaml_parser_set_input_string(&p, in, len);
  for (;;) {
    if (!yaml_parser_load(&p, &doc)) {
      rv = parser_error(&p, name, err, errlen);
      goto out;
    }
    if (yaml_document_get_root_node(&doc) == NULL) {
      yaml_document_delete(&doc); /* the end of the stream */
      break;
    }
    rv = conf_add_doc(c, &doc);
    if (rv != 0) {
      wr_conf_set_err(err, errlen, "%s", c->err);
      goto out;
    }
  }
  c->err[0] = '\0';
  *out = c;
  c = NULL;
  rv = 0;
out:
  if (parser)
    yaml_parser_delete(&p);
  wr_conf_del(c);
  return rv;
}

/* read_capped reads at most |maxbytes| of |path| into |b|. */
static int read_capped(const char *path, size_t maxbytes, wr_buf *b, char *err, size_t errlen) {
  unsigned char chunk[16384];
  struct stat st;
  ssize_t n;
  int fd, rv = 0;

  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    rv = -errno;
    wr_conf_set_err(err, errlen, "%s: %s", path, strerror(-rv));
    return rv;
  }
  if (fstat(fd, &st) < 0) {
    rv = -errno;
    wr_conf_set_err(err, errlen, "%s: %s", path, strerror(-rv));
    goto out;
  }
  if (S_ISDIR(st.st_mode)) {
    rv = -EISDIR;
    wr_conf_set_err(err, errlen, "%s: %s", path, strerror(EISDIR));
    goto out;
  }
  if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > maxbytes) {
    rv = WR_ERR_TOOBIG;
    wr_conf_set_err(err, errlen, "%s: larger than %zu bytes", path, maxbytes);
    goto out;
  }
  for (;;) {
    n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rv = -errno;
      wr_conf_set_err(err, errlen, "%s: %s", path, strerror(-rv));
      goto out;
    }
    if (n == 0)
      break;
    rv = wr_buf_append(b, chunk, (size_t)n);
    if (rv == WR_ERR_TOOBIG) {
      wr_conf_set_err(err, errlen, "%s: larger than %zu bytes", path, maxbytes);
      goto out;
    }
    if (rv != 0) {
      wr_conf_set_err(err, errlen, "%s: out of memory", path);
      goto out;
    }
  }
out:
  close(fd);
  return rv;
}

int wr_conf_load_file(wr_conf **out, const char *path, size_t maxbytes, char *err, size_t errlen) {
  wr_buf b;
  int rv;

  wr_buf_init(&b, maxbytes);
  rv = read_capped(path, maxbytes, &b, err, errlen);
  if (rv == 0)
    rv = wr_conf_load_mem(out, path, wr_buf_len(&b) > 0 ? wr_buf_data(&b) : NULL, wr_buf_len(&b),
                          maxbytes, err, errlen);
  wr_buf_free(&b);
  return rv;
}

void wr_conf_del(wr_conf *c) {
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < c->ndocs; i++) {
    yaml_document_delete(&c->docs[i].doc);
    free(c->docs[i].up);
  }
  free(c->docs);
  free(c->name);
  free(c);
}

const char *wr_conf_name(const wr_conf *c) {
  return c->name;
}

const char *wr_conf_errmsg(const wr_conf *c) {
  return c->err;
}

size_t wr_conf_ndocs(const wr_conf *c) {
  return c->ndocs;
}

wr_conf_node wr_conf_root(wr_conf *c, size_t i) {
  wr_conf_node n = {c, i, 0};

  if (i < c->ndocs && yaml_document_get_root_node(&c->docs[i].doc) != NULL)
    n.id = 1; /* libyaml numbers the root first */
  return n;
}

static bool is_null(const yaml_node_t *node) {
  const char *s = (const char *)node->data.scalar.value;

  if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  return node->data.scalar.length == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
         strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

enum wr_conf_kind wr_conf_kind(wr_conf_node n) {
  yaml_node_t *node = node_get(n);

  if (node == NULL)
    return WR_CONF_NONE;
  switch (node->type) {
  case YAML_SCALAR_NODE:
    return is_null(node) ? WR_CONF_NULL : WR_CONF_SCALAR;
  case YAML_SEQUENCE_NODE:
    return WR_CONF_SEQ;
  case YAML_MAPPING_NODE:
    return WR_CONF_MAP;
  default:
    return WR_CONF_NONE;
  }
}

const char *wr_conf_kind_name(enum wr_conf_kind k) {
  switch (k) {
  case WR_CONF_NULL:
    return "null";
  case WR_CONF_SCALAR:
    return "a scalar";
  case WR_CONF_SEQ:
    return "a sequence";
  case WR_CONF_MAP:
    return "a mapping";
  default:
    return "nothing";
  }
}

size_t wr_conf_line(wr_conf_node n) {
  yaml_node_t *node = node_get(n);

  return node ? node->start_mark.line + 1 : 0;
}

void wr_conf_path(wr_conf_node n, char *buf, size_t len) {
  int chain[WR_CONF_DEPTH_MAX + 2];
  struct conf_out o;
  struct conf_doc *d;
  size_t depth = 0;
  int id;

  out_init(&o, buf, len);
  if (node_get(n) == NULL)
    return;
  d = &n.conf->docs[n.doc];
  for (id = n.id; id != 0 && depth < sizeof(chain) / sizeof(chain[0]); id = d->up[id - 1].parent)
    chain[depth++] = id;
  while (depth-- > 0) {
    const struct conf_up *up = &d->up[chain[depth] - 1];
    yaml_node_t *parent = node_get(node_at(n, up->parent)), *key;
    char index[32];

    if (parent == NULL)
      continue; /* the root */
    if (parent->type == YAML_SEQUENCE_NODE) {
      snprintf(index, sizeof(index), "[%zu]", up->index);
      out_str(&o, index);
      continue;
    }
    if (o.pos > 0)
      out_str(&o, ".");
    key = node_get(node_at(n, parent->data.mapping.pairs.start[up->index].key));
    if (key != NULL && key->type == YAML_SCALAR_NODE)
      out_mem(&o, key->data.scalar.value, key->data.scalar.length);
    else
      out_str(&o, "?");
  }
  out_end(&o);
}

const char *wr_conf_scalar(wr_conf_node n) {
  yaml_node_t *node = node_get(n);

  if (node == NULL || node->type != YAML_SCALAR_NODE)
    return NULL;
  return (const char *)node->data.scalar.value;
}

bool wr_conf_plain(wr_conf_node n) {
  yaml_node_t *node = node_get(n);

  return node != NULL && node->type == YAML_SCALAR_NODE &&
         node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

wr_conf_node wr_conf_map_get(wr_conf_node map, const char *key) {
  yaml_node_t *node = node_get(map), *k;
  size_t klen = strlen(key);
  yaml_node_pair_t *pair;

  if (node == NULL || node->type != YAML_MAPPING_NODE)
    return node_at(map, 0);
  for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
    k = node_get(node_at(map, pair->key));
    if (k != NULL && k->type == YAML_SCALAR_NODE && k->data.scalar.length == klen &&
        memcmp(k->data.scalar.value, key, klen) == 0)
      return node_at(map, pair->value);
  }
  return node_at(map, 0);
}

size_t wr_conf_map_len(wr_conf_node map) {
  yaml_node_t *node = node_get(map);

  if (node == NULL || node->type != YAML_MAPPING_NODE)
    return 0;
  return (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
}

/* map_pair returns pair |i| of mapping |map|, or NULL. */
static const yaml_node_pair_t *map_pair(wr_conf_node map, size_t i) {
  yaml_node_t *node = node_get(map);

  if (node == NULL || node->type != YAML_MAPPING_NODE ||
      i >= (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start))
    return NULL;
  return &node->data.mapping.pairs.start[i];
}

wr_conf_node wr_conf_map_key(wr_conf_node map, size_t i) {
  const yaml_node_pair_t *pair = map_pair(map, i);

  return node_at(map, pair ? pair->key : 0);
}

wr_conf_node wr_conf_map_value(wr_conf_node map, size_t i) {
  const yaml_node_pair_t *pair = map_pair(map, i);

  return node_at(map, pair ? pair->value : 0);
}

size_t wr_conf_seq_len(wr_conf_node seq) {
  yaml_node_t *node = node_get(seq);

  if (node == NULL || node->type != YAML_SEQUENCE_NODE)
    return 0;
  return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
}

wr_conf_node wr_conf_seq_at(wr_conf_node seq, size_t i) {
  yaml_node_t *node = node_get(seq);

  if (node == NULL || node->type != YAML_SEQUENCE_NODE ||
      i >= (size_t)(node->data.sequence.items.top - node->data.sequence.items.start))
    return node_at(seq, 0);
  return node_at(seq, node->data.sequence.items.start[i]);
}

static int conf_verrorf(wr_conf_node n, const char *key, const char *fmt, va_list ap)
    WR_PRINTF(3, 0);

static int conf_verrorf(wr_conf_node n, const char *key, const char *fmt, va_list ap) {
  char path[CONF_PATH_MAX], msg[WR_CONF_ERR_MAX], num[32];
  size_t line = wr_conf_line(n);
  wr_conf *c = n.conf;
  struct conf_out o;

  if (c == NULL)
    return WR_ERR_CONFIG; /* a {0} node: nowhere to put the message */
  wr_conf_path(n, path, sizeof(path));
  if (key != NULL) {
    out_init(&o, path + strlen(path), sizeof(path) - strlen(path));
    if (path[0] != '\0')
      out_str(&o, ".");
    out_str(&o, key);
    out_end(&o);
  }
  vsnprintf(msg, sizeof(msg), fmt, ap);
  out_init(&o, c->err, sizeof(c->err));
  out_str(&o, c->name);
  if (line > 0) {
    snprintf(num, sizeof(num), ":%zu", line);
    out_str(&o, num);
  }
  out_str(&o, ": ");
  if (path[0] != '\0') {
    out_str(&o, path);
    out_str(&o, ": ");
  }
  out_str(&o, msg);
  out_end(&o);
  wr_conf_clean_msg(c->err);
  return WR_ERR_CONFIG;
}

int wr_conf_errorf(wr_conf_node n, const char *fmt, ...) {
  va_list ap;
  int rv;

  va_start(ap, fmt);
  rv = conf_verrorf(n, NULL, fmt, ap);
  va_end(ap);
  return rv;
}

int wr_conf_errorf_key(wr_conf_node map, const char *key, const char *fmt, ...) {
  va_list ap;
  int rv;

  va_start(ap, fmt);
  rv = conf_verrorf(map, key, fmt, ap);
  va_end(ap);
  return rv;
}

/* found describes |n| for "found ..." in messages: a quoted, capped scalar or a kind. */
static const char *found(wr_conf_node n, char *buf, size_t len) {
  yaml_node_t *node = node_get(n);
  struct conf_out o;

  if (node == NULL || wr_conf_kind(n) != WR_CONF_SCALAR)
    return wr_conf_kind_name(wr_conf_kind(n));
  out_init(&o, buf, len);
  out_str(&o, "\"");
  if (node->data.scalar.length > CONF_QUOTE_MAX) {
    out_mem(&o, node->data.scalar.value, CONF_QUOTE_MAX);
    out_str(&o, "...");
  } else {
    out_mem(&o, node->data.scalar.value, node->data.scalar.length);
  }
  out_str(&o, "\"");
  return buf;
}

int wr_conf_str(wr_conf_node n, const char **out) {
  yaml_node_t *node = node_get(n);

  if (node == NULL || wr_conf_kind(n) != WR_CONF_SCALAR)
    return wr_conf_errorf(n, "expected a string, found %s", wr_conf_kind_name(wr_conf_kind(n)));
  if (memchr(node->data.scalar.value, '\0', node->data.scalar.length) != NULL)
    return wr_conf_errorf(n, "expected a string, found one with a NUL byte");
  *out = (const char *)node->data.scalar.value;
  return 0;
}

int wr_conf_int(wr_conf_node n, long long min, long long max, long long *out) {
  yaml_node_t *node = node_get(n);
  const unsigned char *s, *end;
  unsigned long long v = 0, lim;
  bool neg = false;
  char desc[CONF_QUOTE_MAX + 8];

  if (node == NULL || wr_conf_kind(n) != WR_CONF_SCALAR ||
      node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    goto bad;
  s = node->data.scalar.value;
  end = s + node->data.scalar.length;
  if (s < end && (*s == '-' || *s == '+'))
    neg = *s++ == '-';
  if (s == end)
    goto bad;
  lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
  for (; s < end; s++) {
    if (*s < '0' || *s > '9')
      goto bad;
    if (v > (lim - (unsigned)(*s - '0')) / 10)
      goto range;
    v = v * 10 + (unsigned)(*s - '0');
  }
  if (neg)
    *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
  else
    *out = (long long)v;
  if (*out < min || *out > max)
    goto range;
  return 0;
range:
  return wr_conf_errorf(n, "expected an integer from %lld to %lld, found %s", min, max,
                        found(n, desc, sizeof(desc)));
bad:
  if (node != NULL && node->type == YAML_SCALAR_NODE &&
      node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return wr_conf_errorf(n, "expected an integer, found the quoted string %s",
                          found(n, desc, sizeof(desc)));
  return wr_conf_errorf(n, "expected an integer, found %s", found(n, desc, sizeof(desc)));
}

int wr_conf_bool(wr_conf_node n, bool *out) {
  static const char *const yes[] = {"true", "True", "TRUE"};
  static const char *const no[] = {"false", "False", "FALSE"};
  yaml_node_t *node = node_get(n);
  char desc[CONF_QUOTE_MAX + 8];
  size_t i;

  if (node != NULL && wr_conf_kind(n) == WR_CONF_SCALAR &&
      node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
    for (i = 0; i < 3; i++) {
      if (strcmp((const char *)node->data.scalar.value, yes[i]) == 0) {
        *out = true;
        return 0;
      }
      if (strcmp((const char *)node->data.scalar.value, no[i]) == 0) {
        *out = false;
        return 0;
      }
    }
  }
  return wr_conf_errorf(n, "expected true or false, found %s", found(n, desc, sizeof(desc)));
}

/* get_value finds |key| in |map|: 0 with a none *v when optional and missing or null. */
static int get_value(wr_conf_node map, const char *key, unsigned flags, wr_conf_node *v) {
  *v = node_at(map, 0);
  if (wr_conf_kind(map) != WR_CONF_MAP)
    return wr_conf_errorf(map, "expected a mapping, found %s",
                          wr_conf_kind_name(wr_conf_kind(map)));
  *v = wr_conf_map_get(map, key);
  if (wr_conf_kind(*v) == WR_CONF_NONE || wr_conf_kind(*v) == WR_CONF_NULL) {
    if (flags & WR_CONF_REQUIRED)
      return wr_conf_errorf_key(map, key, "required key is missing");
    v->id = 0;
  }
  return 0;
}

int wr_conf_get_str(wr_conf_node map, const char *key, unsigned flags, const char **out) {
  wr_conf_node v;
  int rv = get_value(map, key, flags, &v);

  if (rv != 0 || v.id == 0)
    return rv;
  return wr_conf_str(v, out);
}

int wr_conf_get_int(wr_conf_node map, const char *key, unsigned flags, long long min, long long max,
                    long long *out) {
  wr_conf_node v;
  int rv = get_value(map, key, flags, &v);

  if (rv != 0 || v.id == 0)
    return rv;
  return wr_conf_int(v, min, max, out);
}

int wr_conf_get_bool(wr_conf_node map, const char *key, unsigned flags, bool *out) {
  wr_conf_node v;
  int rv = get_value(map, key, flags, &v);

  if (rv != 0 || v.id == 0)
    return rv;
  return wr_conf_bool(v, out);
}

int wr_conf_get_map(wr_conf_node map, const char *key, unsigned flags, wr_conf_node *out) {
  wr_conf_node v;
  int rv = get_value(map, key, flags, &v);

  if (rv != 0 || v.id == 0)
    return rv;
  if (wr_conf_kind(v) != WR_CONF_MAP)
    return wr_conf_errorf(v, "expected a mapping, found %s", wr_conf_kind_name(wr_conf_kind(v)));
  *out = v;
  return 0;
}

int wr_conf_get_seq(wr_conf_node map, const char *key, unsigned flags, size_t min, size_t max,
                    wr_conf_node *out) {
  wr_conf_node v;
  size_t n;
  int rv = get_value(map, key, flags, &v);

  if (rv != 0 || v.id == 0)
    return rv;
  if (wr_conf_kind(v) != WR_CONF_SEQ)
    return wr_conf_errorf(v, "expected a sequence, found %s", wr_conf_kind_name(wr_conf_kind(v)));
  n = wr_conf_seq_len(v);
  if (n < min || n > max)
    return wr_conf_errorf(v, "expected %zu to %zu items, found %zu", min, max, n);
  *out = v;
  return 0;
}

int wr_conf_check_keys(wr_conf_node map, const char *const *known) {
  size_t i, n = wr_conf_map_len(map);
  const char *const *k;
  const char *s;

  if (wr_conf_kind(map) != WR_CONF_MAP)
    return wr_conf_errorf(map, "expected a mapping, found %s",
                          wr_conf_kind_name(wr_conf_kind(map)));
  for (i = 0; i < n; i++) {
    wr_conf_node key = wr_conf_map_key(map, i);
    yaml_node_t *node = node_get(key);

    if (node == NULL || node->type != YAML_SCALAR_NODE)
      return wr_conf_errorf(key, "unknown key");
    s = (const char *)node->data.scalar.value;
    for (k = known; *k != NULL; k++) {
      if (strlen(*k) == node->data.scalar.length && strcmp(s, *k) == 0)
        break;
    }
    if (*k == NULL)
      return wr_conf_errorf(key, "unknown key");
  }
  return 0;
}
