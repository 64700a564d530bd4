/* prom.c - Prometheus text exposition writer and histogram (see prom.h). */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warren/err.h"
#include "warren/prom.h"

const double WR_PROM_RECONCILE_BUCKETS[WR_PROM_RECONCILE_NBUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1,  0.15, 0.2,  0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6,
    0.7,   0.8,  0.9,   1.0,  1.25, 1.5,  1.75, 2.0,  2.5, 3.0,  3.5, 4.0,  4.5, 5,
    6,     7,    8,     9,    10,   15,   20,   25,   30,  40,   50,  60};

#define PROM_NUM_MAX 32

/* prom_shortest writes finite, non-zero |v| as Go's strconv.FormatFloat(v,
 * 'g', -1, 64): the fewest significant digits that read back as |v|, in
 * %e form when the decimal exponent is < -4 or >= 6. glibc's printf rounds
 * correctly, so the first precision whose output strtod maps back to |v| gives
 * the same digits as Go's shortest conversion. */
static int prom_shortest(char *out, size_t n, double v) {
  char e[PROM_NUM_MAX], digs[20], res[PROM_NUM_MAX];
  const char *q;
  int p, nd = 0, x, dp, i, k = 0;

  for (p = 1; p <= 17; p++) {
    snprintf(e, sizeof(e), "%.*e", p - 1, v);
    if (strtod(e, NULL) == v)
      break;
  }
  q = e;
  if (*q == '-') {
    res[k++] = '-';
    q++;
  }
  for (; *q != '\0' && *q != 'e'; q++)
    if (*q != '.' && nd < (int)sizeof(digs))
      digs[nd++] = *q;
  x = *q == 'e' ? atoi(q + 1) : 0;
  while (nd > 1 && digs[nd - 1] == '0')
    nd--;
  if (x < -4 || x >= 6) {
    res[k++] = digs[0];
    if (nd > 1) {
      res[k++] = '.';
      for (i = 1; i < nd; i++)
        res[k++] = digs[i];
    }
    /* Go writes at least two exponent digits: 1e+06, 1.5e-07. */
    k += snprintf(res + k, sizeof(res) - (size_t)k, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
    return snprintf(out, n, "%s", res);
  }
  dp = x + 1; /* digits before the decimal point */
  if (dp > 0) {
    for (i = 0; i < dp; i++)
      res[k++] = i < nd ? digs[i] : '0';
  } else {
    res[k++] = '0';
  }
  if (nd > dp) {
    res[k++] = '.';
    for (i = dp; i < nd; i++) /* i < 0: zeros after the point */
      res[k++] = i < 0 ? '0' : digs[i];
  }
  res[k] = '\0';
  return snprintf(out, n, "%s", res);
}

int wr_prom_format_value(char *out, size_t n, double v) {
  if (isnan(v))
    return snprintf(out, n, "NaN");
  if (isinf(v))
    return snprintf(out, n, "%s", v > 0 ? "+Inf" : "-Inf");
  if (v == 0)
    return snprintf(out, n, "0"); /* also -0, as Go's f == 0 case */
  /* Integral values that a double holds exactly read best without exponent. */
  if (v == trunc(v) && fabs(v) <= 9007199254740992.0)
    return snprintf(out, n, "%.0f", v);
  return prom_shortest(out, n, v);
}

static int is_alpha_(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static int metric_name_ok(const char *s) {
  size_t i;

  if (s == NULL || s[0] == '\0')
    return 0;
  for (i = 0; s[i] != '\0'; i++)
    if (!is_alpha_(s[i]) && s[i] != ':' && (i == 0 || !is_digit(s[i])))
      return 0;
  return 1;
}

/* Label names: [a-zA-Z_][a-zA-Z0-9_]*. */
static int label_name_ok(const char *s) {
  size_t i;

  if (s == NULL || s[0] == '\0')
    return 0;
  for (i = 0; s[i] != '\0'; i++)
    if (!is_alpha_(s[i]) && (i == 0 || !is_digit(s[i])))
      return 0;
  return 1;
}

static int put(wr_buf *b, const char *s) {
  return wr_buf_append(b, s, strlen(s));
}

/* put_escaped escapes backslash and newline, and double quotes when |quote|
 * (label values; HELP text leaves quotes alone). */
static int put_escaped(wr_buf *b, const char *s, int quote) {
  const char *run = s;
  int rv;

  for (; *s != '\0'; s++) {
    const char *esc = NULL;

    if (*s == '\\')
      esc = "\\\\";
    else if (*s == '\n')
      esc = "\\n";
    else if (*s == '"' && quote)
      esc = "\\\"";
    if (esc == NULL)
      continue;
    if ((rv = wr_buf_append(b, run, (size_t)(s - run))) < 0 || (rv = put(b, esc)) < 0)
      return rv;
    run = s + 1;
  }
  return wr_buf_append(b, run, (size_t)(s - run));
}

/* render_labels writes k1="v1",k2="v2" (no braces) from the NULL-ended list. */
static int render_labels(wr_buf *lb, va_list ap, int forbid_le) {
  const char *k, *v;
  int rv, first = 1;

  while ((k = va_arg(ap, const char *)) != NULL) {
    v = va_arg(ap, const char *);
    if (v == NULL || !label_name_ok(k) || (forbid_le && strcmp(k, "le") == 0))
      return WR_ERR_INVAL;
    if ((!first && (rv = put(lb, ",")) < 0) || (rv = put(lb, k)) < 0 || (rv = put(lb, "=\"")) < 0 ||
        (rv = put_escaped(lb, v, 1)) < 0 || (rv = put(lb, "\"")) < 0)
      return rv;
    first = 0;
  }
  return 0;
}

/* put_line writes name+suffix{labels[,extra]} value\n; |labels| may be empty. */
static int put_line(wr_buf *out, const char *name, const char *suffix, const wr_buf *labels,
                    const char *extra, const char *value) {
  int rv;
  int has_labels = wr_buf_len(labels) > 0 || extra != NULL;

  if ((rv = put(out, name)) < 0 || (rv = put(out, suffix)) < 0)
    return rv;
  if (has_labels) {
    if ((rv = put(out, "{")) < 0 ||
        (rv = wr_buf_append(out, wr_buf_data(labels), wr_buf_len(labels))) < 0)
      return rv;
    if (extra != NULL &&
        ((wr_buf_len(labels) > 0 && (rv = put(out, ",")) < 0) || (rv = put(out, extra)) < 0))
      return rv;
    if ((rv = put(out, "}")) < 0)
      return rv;
  }
  if ((rv = put(out, " ")) < 0 || (rv = put(out, value)) < 0 || (rv = put(out, "\n")) < 0)
    return rv;
  return 0;
}

/* commit appends the finished lines to |b| in one piece (the scratch buffer
 * was capped at |b|'s free space, so this cannot fail for size). */
static int commit(wr_buf *b, wr_buf *out, int rv) {
  if (rv == 0)
    rv = wr_buf_append(b, wr_buf_data(out), wr_buf_len(out));
  wr_buf_free(out);
  return rv;
}

int wr_prom_family(struct wr_buf *b, const char *name, const char *type, const char *help) {
  static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
  wr_buf out;
  size_t i;
  int rv = 0;

  if (b == NULL || !metric_name_ok(name) || type == NULL)
    return WR_ERR_INVAL;
  for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
    if (strcmp(type, types[i]) == 0)
      break;
  if (i == sizeof(types) / sizeof(types[0]))
    return WR_ERR_INVAL;
  wr_buf_init(&out, wr_buf_space(b));
  if (help != NULL &&
      ((rv = put(&out, "# HELP ")) < 0 || (rv = put(&out, name)) < 0 || (rv = put(&out, " ")) < 0 ||
       (rv = put_escaped(&out, help, 0)) < 0 || (rv = put(&out, "\n")) < 0))
    return commit(b, &out, rv);
  if ((rv = put(&out, "# TYPE ")) < 0 || (rv = put(&out, name)) < 0 || (rv = put(&out, " ")) < 0 ||
      (rv = put(&out, type)) < 0 || (rv = put(&out, "\n")) < 0)
    return commit(b, &out, rv);
  return commit(b, &out, 0);
}

int wr_prom_sample(struct wr_buf *b, const char *name, double value, ...) {
  char num[PROM_NUM_MAX];
  wr_buf labels, out;
  va_list ap;
  int rv;

  if (b == NULL || !metric_name_ok(name))
    return WR_ERR_INVAL;
  wr_buf_init(&labels, wr_buf_space(b));
  wr_buf_init(&out, wr_buf_space(b));
  va_start(ap, value);
  rv = render_labels(&labels, ap, 0);
  va_end(ap);
  if (rv == 0) {
    wr_prom_format_value(num, sizeof(num), value);
    rv = put_line(&out, name, "", &labels, NULL, num);
  }
  wr_buf_free(&labels);
  return commit(b, &out, rv);
}

int wr_prom_hist_init(struct wr_prom_hist *h, const double *bounds, size_t nbounds) {
  size_t i;

  memset(h, 0, sizeof(*h));
  if (nbounds > 0 && bounds == NULL)
    return WR_ERR_INVAL;
  for (i = 0; i < nbounds; i++)
    if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
      return WR_ERR_INVAL;
  h->counts = calloc(nbounds + 1, sizeof(*h->counts));
  if (h->counts == NULL)
    return WR_ERR_NOMEM;
  h->bounds = bounds;
  h->nbounds = nbounds;
  return 0;
}

void wr_prom_hist_free(struct wr_prom_hist *h) {
  free(h->counts);
  memset(h, 0, sizeof(*h));
}

void wr_prom_hist_observe(struct wr_prom_hist *h, double v) {
  size_t lo = 0, hi = h->nbounds;

  /* The first bound >= v, like Go's sort.SearchFloat64s; NaN compares false
   * everywhere and lands in +Inf. */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;

    if (h->bounds[mid] >= v)
      hi = mid;
    else
      lo = mid + 1;
  }
  h->counts[lo]++;
  h->sum += v;
  h->count++;
}

int wr_prom_hist_write(struct wr_buf *b, const char *name, const struct wr_prom_hist *h, ...) {
  char num[PROM_NUM_MAX], le[PROM_NUM_MAX + 8];
  wr_buf labels, out;
  uint64_t cum = 0;
  va_list ap;
  size_t i;
  int rv;

  if (b == NULL || h == NULL || h->counts == NULL || !metric_name_ok(name))
    return WR_ERR_INVAL;
  wr_buf_init(&labels, wr_buf_space(b));
  wr_buf_init(&out, wr_buf_space(b));
  va_start(ap, h);
  rv = render_labels(&labels, ap, 1);
  va_end(ap);
  for (i = 0; rv == 0 && i <= h->nbounds; i++) {
    char bound[PROM_NUM_MAX];

    cum += h->counts[i];
    if (i < h->nbounds)
      wr_prom_format_value(bound, sizeof(bound), h->bounds[i]);
    else
      snprintf(bound, sizeof(bound), "+Inf");
    snprintf(le, sizeof(le), "le=\"%s\"", bound);
    snprintf(num, sizeof(num), "%" PRIu64, cum);
    rv = put_line(&out, name, "_bucket", &labels, le, num);
  }
  if (rv == 0) {
    wr_prom_format_value(num, sizeof(num), h->sum);
    rv = put_line(&out, name, "_sum", &labels, NULL, num);
  }
  if (rv == 0) {
    snprintf(num, sizeof(num), "%" PRIu64, h->count);
    rv = put_line(&out, name, "_count", &labels, NULL, num);
  }
  wr_buf_free(&labels);
  return commit(b, &out, rv);
}
