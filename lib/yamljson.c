/*
 * yamljson.c - YAML streams to jansson values and back (yamljson.h).
 *
 * Reading walks a wr_conf (lib/conf.c), which has already refused anchors,
 * aliases, tags, deep nesting, too many nodes and duplicate or non-scalar
 * keys, so the walk's recursion is bounded by WR_CONF_DEPTH_MAX and every
 * error can be positioned with wr_conf_errorf(). Only plain scalars are typed
 * (scalar_class(), the YAML 1.2 core schema); quoted and block ones are strings.
 *
 * Writing drives libyaml's emitter with events, so indentation, escaping and
 * key syntax are libyaml's. What we decide is the style of each scalar: plain
 * when it reads back as the same string, double-quoted otherwise. We write
 * nothing that our own reader would refuse (depth, node count, NUL bytes), so
 * a round trip is exact; the fuzzer checks it.
 *
 * Numbers go through strtod() and printf("%g"), which assume the C locale;
 * warren never calls setlocale().
 */
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "warren/conf.h"
#include "warren/err.h"
#include "warren/yamljson.h"

/* jansson is built with long long integers (JSON_INTEGER_IS_LONG_LONG), the int64 of Kubernetes. */
_Static_assert(sizeof(json_int_t) == sizeof(long long), "json_int_t is not long long");

#define YJ_REAL_MAX 40 /* bytes of a printed double: "-1.2345678901234567e-308" and ".0" */

/* What a plain scalar means under the YAML 1.2 core schema. */
enum yj_class {
  YJ_STR,
  YJ_NULL,
  YJ_BOOL,
  YJ_INT,   /* [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+ (any magnitude) */
  YJ_FLOAT, /* the core schema's float pattern (any magnitude) */
  YJ_NONFINITE
};

static bool is_word(const char *s, size_t len, const char *const *words) {
  for (; *words != NULL; words++) {
    if (strlen(*words) == len && memcmp(s, *words, len) == 0)
      return true;
  }
  return false;
}

/* digits counts the leading bytes of s[0..len) that are in |set|. */
static size_t digits(const char *s, size_t len, const char *set) {
  size_t i = 0;

  while (i < len && s[i] != '\0' && strchr(set, s[i]) != NULL)
    i++;
  return i;
}

/* is_float matches [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? exactly. */
static bool is_float(const char *s, size_t len) {
  size_t i = 0, n;

  if (i < len && (s[i] == '-' || s[i] == '+'))
    i++;
  if (i < len && s[i] == '.') {
    n = digits(s + i + 1, len - i - 1, "0123456789");
    if (n == 0)
      return false;
    i += 1 + n;
  } else {
    n = digits(s + i, len - i, "0123456789");
    if (n == 0)
      return false;
    i += n;
    if (i < len && s[i] == '.')
      i += 1 + digits(s + i + 1, len - i - 1, "0123456789");
  }
  if (i < len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < len && (s[i] == '-' || s[i] == '+'))
      i++;
    n = digits(s + i, len - i, "0123456789");
    if (n == 0)
      return false;
    i += n;
  }
  return i == len;
}

static enum yj_class scalar_class(const char *s, size_t len) {
  static const char *const nulls[] = {"~", "null", "Null", "NULL", NULL};
  static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE", NULL};
  static const char *const nonfinite[] = {".inf",  ".Inf",  ".INF",  "+.inf", "+.Inf",
                                          "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
                                          ".NaN",  ".NAN",  NULL};
  size_t sign = len > 0 && (s[0] == '-' || s[0] == '+');

  if (len == 0 || is_word(s, len, nulls))
    return YJ_NULL;
  if (is_word(s, len, bools))
    return YJ_BOOL;
  if (len > sign && digits(s + sign, len - sign, "0123456789") == len - sign)
    return YJ_INT;
  if (len > 2 && s[0] == '0' && s[1] == 'o' && digits(s + 2, len - 2, "01234567") == len - 2)
    return YJ_INT;
  if (len > 2 && s[0] == '0' && s[1] == 'x' &&
      digits(s + 2, len - 2, "0123456789abcdefABCDEF") == len - 2)
    return YJ_INT;
  if (is_float(s, len))
    return YJ_FLOAT;
  if (is_word(s, len, nonfinite))
    return YJ_NONFINITE;
  return YJ_STR;
}

/* parse_int reads a YJ_INT scalar into *out; false when it is outside json_int_t. */
static bool parse_int(const char *s, size_t len, json_int_t *out) {
  unsigned long long v = 0, lim = (unsigned long long)LLONG_MAX, d;
  unsigned base = 10;
  bool neg = false;
  size_t i = 0;

  if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    base = s[1] == 'x' ? 16 : 8;
    i = 2;
  } else if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    i = 1;
    if (neg)
      lim++; /* the magnitude of LLONG_MIN */
  }
  for (; i < len; i++) {
    if (s[i] >= '0' && s[i] <= '9')
      d = (unsigned)(s[i] - '0');
    else if (s[i] >= 'a' && s[i] <= 'f')
      d = (unsigned)(s[i] - 'a' + 10);
    else
      d = (unsigned)(s[i] - 'A' + 10);
    if (v > (lim - d) / base)
      return false;
    v = v * base + d;
  }
  if (neg)
    *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(json_int_t)v;
  else
    *out = (json_int_t)v;
  return true;
}

/* utf8_next decodes the code point at s[0..len) into *cp and returns its
 * length, or 0 for invalid UTF-8 (overlong forms, surrogates, > U+10FFFF). */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp) {
  size_t n, i;
  uint32_t c, min;

  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  if ((s[0] & 0xe0) == 0xc0) {
    n = 2, c = s[0] & 0x1f, min = 0x80;
  } else if ((s[0] & 0xf0) == 0xe0) {
    n = 3, c = s[0] & 0x0f, min = 0x800;
  } else if ((s[0] & 0xf8) == 0xf0) {
    n = 4, c = s[0] & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (n > len)
    return 0;
  for (i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    c = (c << 6) | (s[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
    return 0;
  *cp = c;
  return n;
}

static bool utf8_valid(const char *s, size_t len) {
  size_t i = 0, n;
  uint32_t cp;

  for (; i < len; i += n) {
    n = utf8_next((const unsigned char *)s + i, len - i, &cp);
    if (n == 0)
      return false;
  }
  return true;
}

/* --- YAML to JSON --- */

/* scalar_string makes the string value of scalar |n|: NUL bytes are refused
 * because C callers (and jansson's object keys) end strings there. */
static int scalar_string(wr_conf_node n, json_t **out) {
  const char *s;

  if (wr_conf_kind(n) == WR_CONF_NULL) {
    s = wr_conf_scalar(n); /* a key spelled "~" or "null": its text */
  } else if (wr_conf_str(n, &s) != 0) {
    return wr_conf_errorf(n, "NUL byte in a string");
  }
  *out = json_stringn(s, strlen(s));
  if (*out != NULL)
    return 0;
  if (!utf8_valid(s, strlen(s))) /* libyaml's reader should have refused it */
    return wr_conf_errorf(n, "invalid UTF-8 in a string");
  return WR_ERR_NOMEM;
}

/* scalar_value types a plain scalar by the core schema; others are strings. */
static int scalar_value(wr_conf_node n, json_t **out) {
  const char *s = wr_conf_scalar(n);
  size_t len;
  json_int_t i;
  double d;

  if (!wr_conf_plain(n))
    return scalar_string(n, out);
  len = strlen(s); /* plain scalars cannot hold a NUL: libyaml's reader refuses it */
  switch (scalar_class(s, len)) {
  case YJ_NULL:
    *out = json_null();
    break;
  case YJ_BOOL:
    *out = json_boolean(s[0] == 't' || s[0] == 'T');
    break;
  case YJ_INT:
    if (!parse_int(s, len, &i))
      return scalar_string(n, out); /* JSON (jansson) cannot hold it: keep the text */
    *out = json_integer(i);
    break;
  case YJ_FLOAT:
    d = strtod(s, NULL); /* the pattern was checked, so strtod reads all of it */
    if (!isfinite(d))
      return scalar_string(n, out); /* overflow: JSON has no infinity */
    *out = json_real(d);
    break;
  default:
    return scalar_string(n, out); /* YJ_NONFINITE too */
  }
  return *out != NULL ? 0 : WR_ERR_NOMEM;
}

/* node_value converts |n| and what is under it; recursion is bounded by
 * conf's nesting cap. */
static int node_value(wr_conf_node n, json_t **out) {
  json_t *v = NULL, *item, *key;
  size_t i, count;
  int rv;

  switch (wr_conf_kind(n)) {
  case WR_CONF_NULL:
  case WR_CONF_SCALAR:
    return scalar_value(n, out);
  case WR_CONF_SEQ:
    v = json_array();
    if (v == NULL)
      return WR_ERR_NOMEM;
    count = wr_conf_seq_len(n);
    for (i = 0; i < count; i++) {
      rv = node_value(wr_conf_seq_at(n, i), &item);
      if (rv != 0)
        goto fail;
      if (json_array_append_new(v, item) != 0) {
        rv = WR_ERR_NOMEM;
        goto fail;
      }
    }
    break;
  case WR_CONF_MAP:
    v = json_object();
    if (v == NULL)
      return WR_ERR_NOMEM;
    count = wr_conf_map_len(n);
    for (i = 0; i < count; i++) {
      /* conf refused non-scalar and duplicate keys, so no pair overwrites another. */
      rv = scalar_string(wr_conf_map_key(n, i), &key);
      if (rv != 0)
        goto fail;
      rv = node_value(wr_conf_map_value(n, i), &item);
      if (rv == 0 && json_object_set_new(v, json_string_value(key), item) != 0)
        rv = WR_ERR_NOMEM; /* set_new released |item| */
      json_decref(key);
      if (rv != 0)
        goto fail;
    }
    break;
  default:
    return wr_conf_errorf(n, "unexpected YAML node");
  }
  *out = v;
  return 0;
fail:
  json_decref(v);
  return rv;
}

/* is_empty_doc tells a document with nothing in it ("---" alone, or only
 * comments) from one holding a null such as "--- null" or "--- ~". */
static bool is_empty_doc(wr_conf_node root) {
  return wr_conf_kind(root) == WR_CONF_NULL && wr_conf_plain(root) &&
         wr_conf_scalar(root)[0] == '\0';
}

/* conf_to_json converts every non-empty document of |c|. */
static int conf_to_json(wr_conf *c, json_t **docs, char *err, size_t errlen) {
  json_t *arr = json_array(), *v;
  size_t i;
  int rv = WR_ERR_NOMEM;

  if (arr == NULL)
    goto fail;
  for (i = 0; i < wr_conf_ndocs(c); i++) {
    wr_conf_node root = wr_conf_root(c, i);

    if (is_empty_doc(root))
      continue;
    rv = node_value(root, &v);
    if (rv != 0)
      goto fail;
    if (json_array_append_new(arr, v) != 0) {
      rv = WR_ERR_NOMEM;
      goto fail;
    }
  }
  *docs = arr;
  return 0;
fail:
  json_decref(arr);
  if (rv == WR_ERR_NOMEM)
    wr_conf_set_err(err, errlen, "%s: out of memory", wr_conf_name(c));
  else
    wr_conf_set_err(err, errlen, "%s", wr_conf_errmsg(c));
  return rv;
}

int wr_yaml_to_json(const char *name, const void *data, size_t len, size_t maxbytes, json_t **docs,
                    char *err, size_t errlen) {
  wr_conf *c = NULL;
  int rv = wr_conf_load_mem(&c, name, data, len, maxbytes, err, errlen);

  if (rv != 0)
    return rv;
  rv = conf_to_json(c, docs, err, errlen);
  wr_conf_del(c);
  return rv;
}

int wr_yaml_file_to_json(const char *path, size_t maxbytes, json_t **docs, char *err,
                         size_t errlen) {
  wr_conf *c = NULL;
  int rv = wr_conf_load_file(&c, path, maxbytes, err, errlen);

  if (rv != 0)
    return rv;
  rv = conf_to_json(c, docs, err, errlen);
  wr_conf_del(c);
  return rv;
}

/* --- JSON to YAML --- */

/* The emitter's output: grown geometrically here and appended to the
 * caller's buffer only on success. Its size is bounded by the document's
 * (nesting is capped, so indentation is too). */
struct yj_out {
  char *mem;
  size_t len;
  size_t size;
  int rv; /* the first failure of out_write */
};

static int out_append(struct yj_out *o, const void *data, size_t n) {
  size_t size;
  char *mem;

  if (n > o->size - o->len) {
    if (n > SIZE_MAX / 4 - o->len)
      return WR_ERR_NOMEM;
    size = o->size > 0 ? o->size : 4096;
    while (size < o->len + n)
      size *= 2;
    mem = realloc(o->mem, size);
    if (mem == NULL)
      return WR_ERR_NOMEM;
    o->mem = mem;
    o->size = size;
  }
  memcpy(o->mem + o->len, data, n);
  o->len += n;
  return 0;
}

/* out_write is libyaml's write handler: 1 on success. */
static int out_write(void *data, unsigned char *buffer, size_t size) {
  struct yj_out *o = data;

  if (o->rv == 0)
    o->rv = out_append(o, buffer, size);
  return o->rv == 0;
}

struct yj_emit {
  yaml_emitter_t e;
  struct yj_out *out;
  size_t nodes; /* scalars (keys too) and collections, as conf counts them */
};

/* emit passes |ev| to the emitter, which owns it from then on. */
static int emit(struct yj_emit *em, yaml_event_t *ev) {
  if (yaml_emitter_emit(&em->e, ev))
    return 0;
  if (em->e.error == YAML_WRITER_ERROR && em->out->rv != 0)
    return em->out->rv;
  return em->e.error == YAML_MEMORY_ERROR ? WR_ERR_NOMEM : WR_ERR_INVAL;
}

/* needs_quotes tells whether string s[0..len) must be double-quoted to read
 * back as itself; WR_ERR_INVAL (via *rv) for a NUL byte or invalid UTF-8. */
static bool needs_quotes(const char *s, size_t len, int *rv) {
  /* Words that YAML 1.1 readers (go-yaml v2, hence kubectl and sigs.k8s.io/yaml)
   * take for booleans, plus go-yaml's merge key. */
  static const char *const yaml11[] = {"y",   "Y",   "yes", "Yes", "YES", "n",  "N",
                                       "no",  "No",  "NO",  "on",  "On",  "ON", "off",
                                       "Off", "OFF", "<<",  "=",   NULL};
  const unsigned char *u = (const unsigned char *)s;
  bool quote = false;
  uint32_t cp;
  size_t i, n;

  *rv = 0;
  for (i = 0; i < len; i += n) {
    n = utf8_next(u + i, len - i, &cp);
    if (n == 0 || cp == 0) {
      *rv = WR_ERR_INVAL;
      return true;
    }
    /* Control characters, line breaks (also NEL, LS, PS), DEL, C1 controls,
     * the BOM and non-characters need escapes, which only double quotes have. */
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff ||
        cp == 0xfffe || cp == 0xffff)
      quote = true;
    /* ": " and " #" start a value and a comment; a trailing ':' too. */
    if (cp == ':' && (i + 1 == len || s[i + 1] == ' '))
      quote = true;
    if (cp == '#' && i > 0 && s[i - 1] == ' ')
      quote = true;
  }
  if (quote || len == 0 || scalar_class(s, len) != YJ_STR || is_word(s, len, yaml11))
    return true;
  /* Indicators at the start, and surrounding spaces that plain style trims. */
  if (strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]) != NULL || s[len - 1] == ' ')
    return true;
  /* Digits first: YAML 1.1 readers also have 1_000, 0b101, 1:20, dates and times. */
  if ((s[0] >= '0' && s[0] <= '9') ||
      ((s[0] == '+' || s[0] == '.') && len > 1 && ((s[1] >= '0' && s[1] <= '9') || s[1] == '.')))
    return true;
  return false;
}

static int emit_scalar(struct yj_emit *em, const char *s, size_t len, bool typed) {
  yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
  yaml_event_t ev;
  int rv = 0;

  if (len > INT_MAX)
    return WR_ERR_INVAL; /* libyaml's length is an int */
  if (!typed && needs_quotes(s, len, &rv))
    style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
  if (rv != 0)
    return rv;
  if (++em->nodes > WR_CONF_NODES_MAX)
    return WR_ERR_INVAL;
  /* Valid UTF-8 was checked (or the text is ours), so failing is a memory error. */
  if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)len, 1, 1, style))
    return WR_ERR_NOMEM;
  return emit(em, &ev);
}

/* format_real prints |v| in the fewest digits (15 to 17) that strtod() reads
 * back equal. A mantissa without a '.' gets ".0" ("1.0", "1.0e+20"): the core
 * schema reads "1" as an integer, and YAML 1.1 readers (PyYAML) read "1e+20"
 * as a string. */
static void format_real(double v, char *buf, size_t len) {
  char *e;
  int prec;

  for (prec = 15; prec <= 17; prec++) {
    snprintf(buf, len, "%.*g", prec, v);
    if (strtod(buf, NULL) == v)
      break;
  }
  if (strchr(buf, '.') != NULL || strlen(buf) + 3 > len)
    return;
  e = strchr(buf, 'e');
  if (e == NULL)
    e = buf + strlen(buf);
  memmove(e + 2, e, strlen(e) + 1);
  memcpy(e, ".0", 2);
}

static int emit_value(struct yj_emit *em, const json_t *v, size_t depth) {
  char num[YJ_REAL_MAX];
  yaml_event_t ev;
  size_t i;
  void *it;
  int rv;

  switch (json_typeof(v)) {
  case JSON_NULL:
    return emit_scalar(em, "null", 4, true);
  case JSON_TRUE:
    return emit_scalar(em, "true", 4, true);
  case JSON_FALSE:
    return emit_scalar(em, "false", 5, true);
  case JSON_INTEGER:
    snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return emit_scalar(em, num, strlen(num), true);
  case JSON_REAL:
    format_real(json_real_value(v), num, sizeof(num));
    return emit_scalar(em, num, strlen(num), true);
  case JSON_STRING:
    return emit_scalar(em, json_string_value(v), json_string_length(v), false);
  case JSON_ARRAY:
  case JSON_OBJECT:
    break;
  default:
    return WR_ERR_INVAL;
  }
  /* The reader's caps, which also bound this recursion and stop cycles. */
  if (depth >= WR_CONF_DEPTH_MAX || ++em->nodes > WR_CONF_NODES_MAX)
    return WR_ERR_INVAL;
  if (json_is_array(v)) {
    if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE))
      return WR_ERR_NOMEM;
    rv = emit(em, &ev);
    for (i = 0; rv == 0 && i < json_array_size(v); i++)
      rv = emit_value(em, json_array_get(v, i), depth + 1);
    if (rv == 0 && !yaml_sequence_end_event_initialize(&ev))
      rv = WR_ERR_NOMEM;
  } else {
    if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE))
      return WR_ERR_NOMEM;
    rv = emit(em, &ev);
    /* The iterator follows insertion order; the const cast is jansson's API. */
    for (it = json_object_iter((json_t *)v); rv == 0 && it != NULL;
         it = json_object_iter_next((json_t *)v, it)) {
      rv = emit_scalar(em, json_object_iter_key(it), json_object_iter_key_len(it), false);
      if (rv == 0)
        rv = emit_value(em, json_object_iter_value(it), depth + 1);
    }
    if (rv == 0 && !yaml_mapping_end_event_initialize(&ev))
      rv = WR_ERR_NOMEM;
  }
  return rv == 0 ? emit(em, &ev) : rv;
}

/* emit_doc writes |doc| into em->out after the caller's "---\n". The
 * document start is left implicit for libyaml, which then writes no marker of
 * its own, so that every document starts with the same line whatever its
 * root ("--- foo" for a scalar otherwise). */
static int emit_doc(struct yj_emit *em, const json_t *doc) {
  yaml_event_t ev;
  int rv;

  if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING))
    return WR_ERR_NOMEM;
  rv = emit(em, &ev);
  if (rv == 0 && !yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1))
    rv = WR_ERR_NOMEM;
  if (rv == 0)
    rv = emit(em, &ev);
  if (rv == 0)
    rv = emit_value(em, doc, 0);
  if (rv == 0 && !yaml_document_end_event_initialize(&ev, 1))
    rv = WR_ERR_NOMEM;
  if (rv == 0)
    rv = emit(em, &ev);
  if (rv == 0 && !yaml_stream_end_event_initialize(&ev))
    rv = WR_ERR_NOMEM;
  if (rv == 0)
    rv = emit(em, &ev); /* flushes */
  return rv;
}

int wr_json_to_yaml(const json_t *doc, char **buf, size_t *len) {
  struct yj_out out = {NULL, 0, 0, 0};
  struct yj_emit em;
  char *mem;
  int rv;

  if (doc == NULL || buf == NULL || len == NULL || (*buf == NULL && *len != 0))
    return WR_ERR_INVAL;
  memset(&em, 0, sizeof(em));
  if (!yaml_emitter_initialize(&em.e))
    return WR_ERR_NOMEM;
  em.out = &out;
  rv = out_append(&out, "---\n", 4);
  if (rv != 0) {
    yaml_emitter_delete(&em.e);
    return rv;
  }
  yaml_emitter_set_output(&em.e, out_write, &out);
  yaml_emitter_set_unicode(&em.e, 1); /* UTF-8 as is, not \u escapes */
  yaml_emitter_set_width(&em.e, -1);  /* never fold long strings: -1 is unlimited */
  rv = emit_doc(&em, doc);
  yaml_emitter_delete(&em.e);
  if (rv != 0)
    goto out;
  rv = WR_ERR_NOMEM;
  if (out.len > SIZE_MAX - 1 - *len)
    goto out;
  mem = realloc(*buf, *len + out.len + 1);
  if (mem == NULL)
    goto out;
  memcpy(mem + *len, out.mem, out.len);
  *len += out.len;
  mem[*len] = '\0';
  *buf = mem;
  rv = 0;
out:
  free(out.mem);
  return rv;
}
