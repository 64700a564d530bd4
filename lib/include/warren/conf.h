/*
 * conf.h - read-only access to a YAML stream for configuration files.
 *
 * A wr_conf holds every document of one file, loaded with libyaml's document
 * API. Loading is defensive: the input is capped (WR_ERR_TOOBIG); anchors and
 * aliases are refused (no billion laughs, every node has one parent), and so
 * are explicit tags ("!!str 1": a value's type comes from the getter that
 * reads it); nesting is capped at WR_CONF_DEPTH_MAX and the node count at
 * WR_CONF_NODES_MAX; mapping keys must be unique scalars; and libyaml's own
 * errors are reported with their line and problem text.
 *
 * Nodes are small handles (wr_conf_node) valid until wr_conf_del(). Accessors
 * never fail: asking a scalar for a key or a missing index gives the "none"
 * node (kind WR_CONF_NONE), which every accessor accepts. The checked getters
 * (wr_conf_get_*, wr_conf_check_keys, wr_conf_errorf) fail with WR_ERR_CONFIG
 * and leave one message in the wr_conf, positioned h2o-style at a node:
 *
 *   routes.yaml:7: spec.rules[0].backends[0].endpoint: expected a string, found a mapping
 *
 * i.e. "<name>:<line>: <key path from the document root>: <what is wrong>",
 * line 1-based. wr_conf_errmsg() returns it. Control characters in messages
 * are replaced by '?', so values quoted from the input are safe to log.
 *
 * A plain (unquoted) empty scalar, "~", "null", "Null" and "NULL" are null
 * (YAML 1.2 core schema). The getters treat a null value like a missing key.
 */
#ifndef WARREN_CONF_H
#define WARREN_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "warren/log.h"

#define WR_CONF_ERR_MAX 512          /* bytes of one error message, with NUL */
#define WR_CONF_DEPTH_MAX 64         /* nesting of collections */
#define WR_CONF_NODES_MAX (1u << 18) /* nodes in all documents of a stream */

typedef struct wr_conf wr_conf;

/* A node handle. The members are private to conf.c; {0} is the none node. */
typedef struct wr_conf_node {
  wr_conf *conf;
  size_t doc;
  int id; /* libyaml node index, 0 for none */
} wr_conf_node;

enum wr_conf_kind {
  WR_CONF_NONE,   /* no such node */
  WR_CONF_NULL,   /* plain "", "~" or "null" */
  WR_CONF_SCALAR, /* any other scalar */
  WR_CONF_SEQ,
  WR_CONF_MAP
};

/* Flags of the wr_conf_get_* functions. */
#define WR_CONF_OPTIONAL 0u
#define WR_CONF_REQUIRED 1u /* a missing or null key is an error */

/* wr_conf_load_file reads at most |maxbytes| of |path| (fstat, then capped
 * reads) and loads it; messages name |path|. On failure *out is untouched and
 * |err| holds the reason. Returns 0, WR_ERR_CONFIG (YAML error), WR_ERR_TOOBIG,
 * WR_ERR_NOMEM or -errno (open/read). */
int wr_conf_load_file(wr_conf **out, const char *path, size_t maxbytes, char *err, size_t errlen);
/* wr_conf_load_mem loads |len| bytes of |data| (copied as needed, not kept);
 * |name| is used in messages. Same returns as wr_conf_load_file. */
int wr_conf_load_mem(wr_conf **out, const char *name, const void *data, size_t len, size_t maxbytes,
                     char *err, size_t errlen);
/* wr_conf_del frees |c| and every node and string obtained from it. NULL is a no-op. */
void wr_conf_del(wr_conf *c);

/* wr_conf_name returns the name given at load (the path for files). */
const char *wr_conf_name(const wr_conf *c);
/* wr_conf_errmsg returns the message of the last failed check, or "". */
const char *wr_conf_errmsg(const wr_conf *c);
/* wr_conf_ndocs counts the documents; an empty document counts (its root is null). */
size_t wr_conf_ndocs(const wr_conf *c);
/* wr_conf_root returns the root node of document |i|, or none. */
wr_conf_node wr_conf_root(wr_conf *c, size_t i);

/* wr_conf_kind tells what |n| is. */
enum wr_conf_kind wr_conf_kind(wr_conf_node n);
/* wr_conf_kind_name names a kind for messages ("a mapping", "null", ...). */
const char *wr_conf_kind_name(enum wr_conf_kind k);
/* wr_conf_line returns the 1-based line where |n| starts, 0 for none. */
size_t wr_conf_line(wr_conf_node n);
/* wr_conf_path writes the key path of |n| ("spec.rules[0].name"; "" for a
 * root) into |buf|, truncated with "..." when longer. */
void wr_conf_path(wr_conf_node n, char *buf, size_t len);

/* wr_conf_scalar returns the text of a scalar (also of a null one), else
 * NULL. It may contain a NUL byte; wr_conf_str refuses those. */
const char *wr_conf_scalar(wr_conf_node n);
/* wr_conf_plain tells whether |n| is a plain (unquoted, non-block) scalar,
 * also a null one: only plain scalars may be read as other types than strings
 * (YAML 1.2 core schema), so a converter needs to know. False for none. */
bool wr_conf_plain(wr_conf_node n);
/* wr_conf_map_get returns the value of |key| in mapping |map|, or none. */
wr_conf_node wr_conf_map_get(wr_conf_node map, const char *key);
/* wr_conf_map_len counts the pairs of a mapping (0 for other kinds). */
size_t wr_conf_map_len(wr_conf_node map);
/* wr_conf_map_key and wr_conf_map_value return pair |i| of a mapping, or none. */
wr_conf_node wr_conf_map_key(wr_conf_node map, size_t i);
wr_conf_node wr_conf_map_value(wr_conf_node map, size_t i);
/* wr_conf_seq_len counts the items of a sequence (0 for other kinds). */
size_t wr_conf_seq_len(wr_conf_node seq);
/* wr_conf_seq_at returns item |i| of a sequence, or none. */
wr_conf_node wr_conf_seq_at(wr_conf_node seq, size_t i);

/* Checked conversions of a node. Each returns 0, or WR_ERR_CONFIG with the
 * message at |n| ("expected ..., found ..."). Strings point into |c| and live
 * until wr_conf_del(). Integers and booleans must be plain (unquoted)
 * scalars: decimal integers in [min, max]; true/True/TRUE or false/False/FALSE. */
int wr_conf_str(wr_conf_node n, const char **out);
int wr_conf_int(wr_conf_node n, long long min, long long max, long long *out);
int wr_conf_bool(wr_conf_node n, bool *out);

/* Checked getters of key |key| of mapping |map| (an error when |map| is not a
 * mapping). With WR_CONF_REQUIRED a missing or null key is an error at |map|
 * ("<path>.<key>: required key is missing"); otherwise 0 is returned and
 * *out left unchanged, so callers set defaults first. */
int wr_conf_get_str(wr_conf_node map, const char *key, unsigned flags, const char **out);
int wr_conf_get_int(wr_conf_node map, const char *key, unsigned flags, long long min, long long max,
                    long long *out);
int wr_conf_get_bool(wr_conf_node map, const char *key, unsigned flags, bool *out);
int wr_conf_get_map(wr_conf_node map, const char *key, unsigned flags, wr_conf_node *out);
/* wr_conf_get_seq also checks that the sequence has |min| to |max| items. */
int wr_conf_get_seq(wr_conf_node map, const char *key, unsigned flags, size_t min, size_t max,
                    wr_conf_node *out);

/* wr_conf_check_keys fails on the first key of |map| that is not in the
 * NULL-terminated list |known| ("<path>.<key>: unknown key"), for callers
 * that want typos caught. Returns 0 or WR_ERR_CONFIG. */
int wr_conf_check_keys(wr_conf_node map, const char *const *known);

/* wr_conf_set_err formats a message for a caller's |err| buffer (NULL or 0
 * length: nothing), with control bytes replaced by wr_conf_clean_msg. */
void wr_conf_set_err(char *err, size_t errlen, const char *fmt, ...) WR_PRINTF(3, 4);
/* wr_conf_clean_msg replaces control bytes in |s| so that a message quoting
 * input is safe to print. */
void wr_conf_clean_msg(char *s);

/* wr_conf_errorf records "<name>:<line>: <path of n>: <message>" and returns
 * WR_ERR_CONFIG, for checks done by the caller. */
int wr_conf_errorf(wr_conf_node n, const char *fmt, ...) WR_PRINTF(2, 3);
/* wr_conf_errorf_key is the same for key |key| of mapping |map|, which may
 * be missing: the line is the mapping's and the path ends in ".<key>". */
int wr_conf_errorf_key(wr_conf_node map, const char *key, const char *fmt, ...) WR_PRINTF(3, 4);

#endif
