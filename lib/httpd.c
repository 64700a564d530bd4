/* httpd.c - minimal HTTP/1.1 server for probes and metrics (see httpd.h). */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "warren/addr.h"
#include "warren/err.h"
#include "warren/httpd.h"
#include "warren/log.h"

#define HD_BACKLOG 128
#define HD_READ_SIZE 4096
/* Responses queued but not yet written, beyond which a pipelining client's
 * further requests wait (reading stops) until it reads what it asked for. */
#define HD_OUT_MAX (1u << 20)
/* After the last response of a connection and our FIN, how long to keep
 * reading (and discarding) before closing: closing with unread input makes
 * the kernel send RST, which can destroy the response before the client read
 * it (RFC 9112 §9.6, "lingering close"). */
#define HD_LINGER_MS 2000
#define HD_RESP_HEAD_MAX 1024
#define HD_CTYPE_MAX 256

/* ---- request head parser (pure) ---- */

static int is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
    return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field values: VCHAR, obs-text, SP and HTAB; every other control (CR, LF,
 * NUL, DEL) is refused, which also rules out header injection downstream. */
static int is_field_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int ieq(const char *a, size_t alen, const char *lit) {
  size_t n = strlen(lit), i;

  if (alen != n)
    return 0;
  for (i = 0; i < n; i++)
    if (lower((unsigned char)a[i]) != lit[i])
      return 0;
  return 1;
}

static int is_ows(char c) {
  return c == ' ' || c == '\t';
}

/* parse_connection scans a Connection value's comma-separated options. */
static void parse_connection(const char *v, size_t n, int *close, int *keep) {
  size_t i = 0;

  while (i < n) {
    size_t start, end;

    while (i < n && (is_ows(v[i]) || v[i] == ','))
      i++;
    start = i;
    while (i < n && v[i] != ',')
      i++;
    end = i;
    while (end > start && is_ows(v[end - 1]))
      end--;
    if (ieq(v + start, end - start, "close"))
      *close = 1;
    else if (ieq(v + start, end - start, "keep-alive"))
      *keep = 1;
  }
}

/* parse_target finds the path of a request target: origin-form ("/p?q"),
 * absolute-form ("http://h/p?q", which servers must accept, RFC 9112 §3.2.2),
 * asterisk-form and, for CONNECT, authority-form (both only ever get 405). */
static int parse_target(const char *t, size_t n, int connect, const char **path, size_t *plen) {
  const char *q;
  size_t skip = 0, i;

  if (t[0] == '/') {
    q = memchr(t, '?', n);
    *path = t;
    *plen = q != NULL ? (size_t)(q - t) : n;
    return 0;
  }
  if (n == 1 && t[0] == '*') {
    *path = t;
    *plen = 1;
    return 0;
  }
  if (connect) {
    *path = t;
    *plen = n;
    return 0;
  }
  if (n > 7 && ieq(t, 7, "http://"))
    skip = 7;
  else if (n > 8 && ieq(t, 8, "https://"))
    skip = 8;
  else
    return WR_ERR_PROTO;
  for (i = skip; i < n && t[i] != '/' && t[i] != '?'; i++)
    ;
  if (i == skip)
    return WR_ERR_PROTO; /* empty authority */
  if (i == n || t[i] == '?') {
    *path = "/";
    *plen = 1;
    return 0;
  }
  q = memchr(t + i, '?', n - i);
  *path = t + i;
  *plen = q != NULL ? (size_t)(q - (t + i)) : n - i;
  return 0;
}

/* parse_request_line parses "method SP target SP HTTP/d.d" (|n| bytes, no EOL). */
static int parse_request_line(const char *l, size_t n, struct wr_httpd_req *req) {
  size_t i = 0, t0, tn;
  const char *v;

  while (i < n && is_tchar((unsigned char)l[i]))
    i++;
  if (i == 0 || i == n || l[i] != ' ')
    return WR_ERR_PROTO;
  req->method = l;
  req->method_len = i;
  t0 = ++i;
  while (i < n && (unsigned char)l[i] > 0x20 && (unsigned char)l[i] < 0x7f)
    i++;
  tn = i - t0;
  if (tn == 0 || i == n || l[i] != ' ')
    return WR_ERR_PROTO;
  i++;
  /* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive. */
  v = l + i;
  if (n - i != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
      v[7] < '0' || v[7] > '9')
    return WR_ERR_PROTO;
  if (parse_target(l + t0, tn, req->method_len == 7 && memcmp(l, "CONNECT", 7) == 0, &req->path,
                   &req->path_len) < 0)
    return WR_ERR_PROTO;
  if (v[5] != '1')
    return WR_ERR_VERSION;
  req->minor = v[7] - '0';
  return 0;
}

/* Header fields this parser acts on, accumulated over the head. */
struct hd_fields {
  int hosts;
  int cl_seen;
  uint64_t cl;
  int te;
  int close, keep;
};

static int parse_content_length(const char *v, size_t n, struct hd_fields *f) {
  uint64_t x = 0;
  size_t i;

  if (n == 0)
    return WR_ERR_PROTO;
  for (i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9' || x > (UINT64_MAX - 9) / 10)
      return WR_ERR_PROTO;
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  /* Repeated Content-Length fields must agree (RFC 9112 §6.3 item 5). */
  if (f->cl_seen && f->cl != x)
    return WR_ERR_PROTO;
  f->cl_seen = 1;
  f->cl = x;
  return 0;
}

/* parse_field parses one "name: value" line (|n| bytes, no EOL). */
static int parse_field(const char *l, size_t n, struct hd_fields *f) {
  size_t i = 0, vs, ve, k;

  /* A line starting with whitespace is obs-fold; whitespace before the colon
   * is refused too (RFC 9112 §5.1, §5.2): both have been used for smuggling. */
  while (i < n && is_tchar((unsigned char)l[i]))
    i++;
  if (i == 0 || i == n || l[i] != ':')
    return WR_ERR_PROTO;
  for (k = i + 1; k < n; k++)
    if (!is_field_char((unsigned char)l[k]))
      return WR_ERR_PROTO;
  vs = i + 1;
  ve = n;
  while (vs < ve && is_ows(l[vs]))
    vs++;
  while (ve > vs && is_ows(l[ve - 1]))
    ve--;
  if (ieq(l, i, "host"))
    f->hosts++;
  else if (ieq(l, i, "content-length"))
    return parse_content_length(l + vs, ve - vs, f);
  else if (ieq(l, i, "transfer-encoding"))
    f->te = 1;
  else if (ieq(l, i, "connection"))
    parse_connection(l + vs, ve - vs, &f->close, &f->keep);
  return 0;
}

int wr_httpd_parse_head(const char *data, size_t len, struct wr_httpd_req *req) {
  /* Only the first WR_HTTPD_HEAD_MAX bytes can belong to an acceptable head. */
  size_t lim = len < WR_HTTPD_HEAD_MAX ? len : WR_HTTPD_HEAD_MAX;
  size_t pos = 0;
  int have_line = 0;
  struct hd_fields f;
  struct wr_httpd_req r;
  int rv;

  memset(&f, 0, sizeof(f));
  memset(&r, 0, sizeof(r));
  for (;;) {
    const char *lf = memchr(data + pos, '\n', lim - pos);
    size_t n;

    if (lf == NULL)
      return len >= WR_HTTPD_HEAD_MAX ? WR_ERR_TOOBIG : WR_ERR_TRUNCATED;
    n = (size_t)(lf - (data + pos));
    if (n > 0 && data[pos + n - 1] == '\r')
      n--;
    if (!have_line) {
      /* Empty lines before the request line are ignored (RFC 9112 §2.2). */
      if (n > 0) {
        rv = parse_request_line(data + pos, n, &r);
        if (rv < 0)
          return rv;
        have_line = 1;
      }
    } else if (n == 0) {
      pos = (size_t)(lf - data) + 1;
      break;
    } else {
      rv = parse_field(data + pos, n, &f);
      if (rv < 0)
        return rv;
    }
    pos = (size_t)(lf - data) + 1;
  }
  /* HTTP/1.1 requires exactly one Host (RFC 9112 §3.2); never more than one. */
  if (f.hosts > 1 || (r.minor >= 1 && f.hosts != 1))
    return WR_ERR_PROTO;
  /* Both framings at once is the classic smuggling vector (RFC 9112 §6.3). */
  if (f.te && f.cl_seen)
    return WR_ERR_PROTO;
  r.has_body = f.te || f.cl > 0;
  r.keep_alive = r.minor >= 1 ? !f.close : f.keep && !f.close;
  /* A body is never read, so the connection cannot be reused after it. */
  if (r.has_body)
    r.keep_alive = 0;
  *req = r;
  return (int)pos;
}

/* ---- server ---- */

struct hd_conn {
  struct wr_httpd *s; /* NULL once closing */
  struct hd_conn *prev, *next;
  uv_tcp_t tcp;
  uv_timer_t timer; /* idle timeout, then linger */
  uv_shutdown_t sreq;
  int handles; /* open handles; the connection is freed with the last */
  unsigned closing : 1;
  unsigned ending : 1;  /* last response queued: input is discarded, FIN follows */
  unsigned reading : 1; /* uv_read_start in effect */
  unsigned eof : 1;     /* the client finished sending */
  unsigned shut : 1;    /* our FIN is out */
  wr_buf in;            /* request bytes not yet answered */
  char rbuf[HD_READ_SIZE];
};

/* One response in flight: the head and the body's memory live until uv_write is done. */
struct hd_write {
  uv_write_t req;
  struct hd_conn *c;
  wr_buf body;
  char head[HD_RESP_HEAD_MAX];
};

struct wr_httpd {
  uv_loop_t *loop;
  uv_tcp_t listener;
  wr_httpd_handler h;
  void *ud;
  struct hd_conn *conns;
  int nconns;
  int port;
  uint64_t idle_ms;
};

static void hd_process(struct hd_conn *c);
static void hd_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void hd_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void hd_on_closed(uv_handle_t *h) {
  struct hd_conn *c = h->data;

  if (--c->handles > 0)
    return;
  wr_buf_free(&c->in);
  free(c);
}

static void hd_close(struct hd_conn *c) {
  struct wr_httpd *s = c->s;

  if (c->closing)
    return;
  c->closing = 1;
  /* The socket is closed right here, so the slot is free again at once. */
  if (s != NULL) {
    if (c->prev != NULL)
      c->prev->next = c->next;
    else
      s->conns = c->next;
    if (c->next != NULL)
      c->next->prev = c->prev;
    s->nconns--;
    c->s = NULL;
  }
  uv_close((uv_handle_t *)&c->tcp, hd_on_closed);
  uv_close((uv_handle_t *)&c->timer, hd_on_closed);
}

static void hd_on_timer(uv_timer_t *t) {
  struct hd_conn *c = t->data;

  log_trace(WR_TRACE_HTTP, "httpd %p: %s", (void *)c, c->ending ? "linger over" : "idle timeout");
  hd_close(c);
}

static void hd_arm(struct hd_conn *c, uint64_t ms) {
  if (ms == 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, hd_on_timer, ms, 0);
}

/* hd_update_reading reads while there is room: always when discarding the
 * input of an ending connection, otherwise while the client reads its responses. */
static void hd_update_reading(struct hd_conn *c) {
  int want;

  if (c->closing)
    return;
  want =
      !c->eof && (c->ending || uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < HD_OUT_MAX);
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, hd_on_alloc, hd_on_read) == 0)
      c->reading = 1;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

static void hd_on_shutdown(uv_shutdown_t *req, int status) {
  struct hd_conn *c = req->data;

  if (c->closing)
    return;
  c->shut = 1;
  if (status < 0 || c->eof) {
    hd_close(c);
    return;
  }
  hd_arm(c, HD_LINGER_MS);
}

/* hd_end stops answering: FIN once the queued responses are written, then
 * close on the client's EOF or when the linger timer fires. */
static void hd_end(struct hd_conn *c) {
  struct wr_httpd *s = c->s;

  if (c->ending || c->closing)
    return;
  c->ending = 1;
  wr_buf_reset(&c->in);
  /* Until the FIN is out, the idle timeout bounds a client that reads nothing. */
  hd_arm(c, s != NULL && s->idle_ms > 0 ? s->idle_ms : HD_LINGER_MS);
  c->sreq.data = c;
  if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, hd_on_shutdown) < 0)
    hd_close(c);
}

static void hd_on_write(uv_write_t *req, int status) {
  struct hd_write *w = req->data;
  struct hd_conn *c = w->c;

  wr_buf_free(&w->body);
  free(w);
  if (c->closing)
    return;
  if (status < 0) {
    hd_close(c);
    return;
  }
  /* Requests held back while the client was not reading can go on now. */
  if (!c->ending && !c->reading)
    hd_process(c);
}

static const char *hd_reason(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 304:
    return "Not Modified";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return ""; /* the reason phrase may be empty (RFC 9112 §4) */
  }
}

/* hd_date formats the IMF-fixdate by hand: strftime's names follow the locale. */
static void hd_date(char *out, size_t n) {
  static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t now = time(NULL);
  struct tm tm;

  if (gmtime_r(&now, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
      tm.tm_mon > 11) {
    snprintf(out, n, "Thu, 01 Jan 1970 00:00:00 GMT");
    return;
  }
  snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
           months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int hd_ctype_ok(const char *t) {
  size_t n = strlen(t), i;

  if (n == 0 || n > HD_CTYPE_MAX)
    return 0;
  for (i = 0; i < n; i++)
    if (!is_field_char((unsigned char)t[i]) || t[i] == '\t')
      return 0;
  return 1;
}

/* hd_send queues one response, taking |body|'s memory. Whether the body is
 * sent (not for HEAD) only changes what is written, never Content-Length. */
static void hd_send(struct hd_conn *c, int status, const char *ctype, wr_buf *body, int send_body,
                    int keep_alive, int minor) {
  struct hd_write *w = calloc(1, sizeof(*w));
  /* 204 and 304 have no content, and 204 must not even announce a length (RFC 9110 §8.6). */
  int bodiless = status == 204 || status == 304;
  char date[40];
  uv_buf_t bufs[2];
  unsigned nbufs = 1;
  int n;

  if (w == NULL) {
    wr_buf_free(body);
    hd_close(c);
    return;
  }
  w->c = c;
  w->req.data = w;
  w->body = *body;
  wr_buf_init(body, 0);
  hd_date(date, sizeof(date));
  n = snprintf(w->head, sizeof(w->head), "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
               hd_reason(status), date);
  if (!bodiless)
    n += snprintf(w->head + n, sizeof(w->head) - (size_t)n,
                  "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype, wr_buf_len(&w->body));
  if (status == 405)
    n += snprintf(w->head + n, sizeof(w->head) - (size_t)n, "Allow: GET, HEAD\r\n");
  if (!keep_alive)
    n += snprintf(w->head + n, sizeof(w->head) - (size_t)n, "Connection: close\r\n");
  else if (minor == 0)
    n += snprintf(w->head + n, sizeof(w->head) - (size_t)n, "Connection: keep-alive\r\n");
  n += snprintf(w->head + n, sizeof(w->head) - (size_t)n, "\r\n");
  /* Cannot truncate: the content type is capped at HD_CTYPE_MAX and the rest is bounded. */
  bufs[0] = uv_buf_init(w->head, (unsigned)n);
  if (send_body && !bodiless && wr_buf_len(&w->body) > 0)
    bufs[nbufs++] =
        uv_buf_init((char *)(uintptr_t)wr_buf_data(&w->body), (unsigned)wr_buf_len(&w->body));
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, nbufs, hd_on_write) < 0) {
    wr_buf_free(&w->body);
    free(w);
    hd_close(c);
    return;
  }
  if (!keep_alive)
    hd_end(c);
}

/* hd_send_text answers with a fixed plain-text message. */
static void hd_send_text(struct hd_conn *c, int status, const char *msg, int send_body,
                         int keep_alive, int minor) {
  wr_buf body;

  wr_buf_init(&body, strlen(msg));
  if (wr_buf_append(&body, msg, strlen(msg)) < 0) {
    wr_buf_free(&body);
    hd_close(c);
    return;
  }
  hd_send(c, status, WR_HTTPD_CONTENT_TYPE_DEFAULT, &body, send_body, keep_alive, minor);
}

static void hd_answer(struct hd_conn *c, const struct wr_httpd_req *req) {
  struct wr_httpd *s = c->s;
  int head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
  int get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
  char path[WR_HTTPD_HEAD_MAX + 1];
  struct wr_httpd_resp r = {.status = 200, .content_type = NULL};
  const char *ctype;
  wr_buf body;

  if (!get && !head) {
    hd_send_text(c, 405, "method not allowed\n", 1, req->keep_alive, req->minor);
    return;
  }
  memcpy(path, req->path, req->path_len);
  path[req->path_len] = '\0';
  wr_buf_init(&body, WR_HTTPD_BODY_MAX);
  s->h(s->ud, head ? "HEAD" : "GET", path, &r, &body);
  if (c->closing) { /* the handler deleted the server */
    wr_buf_free(&body);
    return;
  }
  ctype = r.content_type != NULL ? r.content_type : WR_HTTPD_CONTENT_TYPE_DEFAULT;
  if (r.status < 200 || r.status > 599 || !hd_ctype_ok(ctype)) {
    log_warnx("httpd: handler answered %s with status %d, content type '%.40s'", path, r.status,
              ctype);
    wr_buf_free(&body);
    hd_send_text(c, 500, "internal error\n", !head, req->keep_alive, req->minor);
    return;
  }
  hd_send(c, r.status, ctype, &body, !head, req->keep_alive, req->minor);
}

static void hd_process(struct hd_conn *c) {
  while (!c->closing && !c->ending) {
    struct wr_httpd_req req;
    int rv;

    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) >= HD_OUT_MAX)
      break;
    rv = wr_httpd_parse_head((const char *)wr_buf_data(&c->in), wr_buf_len(&c->in), &req);
    if (rv == WR_ERR_TRUNCATED)
      break;
    if (rv < 0) {
      log_trace(WR_TRACE_HTTP, "httpd %p: bad request: %s", (void *)c, wr_strerror(rv));
      if (rv == WR_ERR_TOOBIG)
        hd_send_text(c, 431, "request header fields too large\n", 1, 0, 1);
      else if (rv == WR_ERR_VERSION)
        hd_send_text(c, 505, "http version not supported\n", 1, 0, 1);
      else
        hd_send_text(c, 400, "bad request\n", 1, 0, 1);
      break;
    }
    hd_answer(c, &req);
    wr_buf_consume(&c->in, (size_t)rv);
    /* The idle timeout counts from the last complete request. */
    if (!c->closing && !c->ending && c->s != NULL)
      hd_arm(c, c->s->idle_ms);
  }
  hd_update_reading(c);
}

static void hd_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct hd_conn *c = h->data;

  (void)hint;
  /* libuv fills the buffer and calls hd_on_read before asking again, and the
   * bytes are copied out there, so one buffer per connection is enough. */
  *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void hd_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct hd_conn *c = st->data;

  if (nread == 0 || c->closing)
    return;
  if (nread < 0) {
    c->eof = 1;
    uv_read_stop(st);
    c->reading = 0;
    if (nread != UV_EOF || c->shut)
      hd_close(c); /* reset, or EOF after our FIN: nothing left to do */
    else if (!c->ending)
      hd_end(c); /* answers already queued still go out, then close */
    /* else: hd_on_shutdown closes once the FIN is out */
    return;
  }
  if (c->ending)
    return; /* lingering: discard */
  if (wr_buf_append(&c->in, buf->base, (size_t)nread) < 0) {
    hd_close(c);
    return;
  }
  hd_process(c);
}

static void hd_on_rejected(uv_handle_t *h) {
  free(h);
}

/* hd_reject accepts and closes a connection: libuv stops accepting until the
 * pending one is taken, so over the limit it must still be accepted. */
static void hd_reject(uv_stream_t *server) {
  uv_tcp_t *t = malloc(sizeof(*t));

  if (t == NULL)
    return;
  if (uv_tcp_init(server->loop, t) < 0) {
    free(t);
    return;
  }
  (void)uv_accept(server, (uv_stream_t *)t);
  uv_close((uv_handle_t *)t, hd_on_rejected);
}

static void hd_on_connection(uv_stream_t *server, int status) {
  struct wr_httpd *s = server->data;
  struct hd_conn *c;

  if (status < 0) {
    log_warnx("httpd: accept: %s", uv_strerror(status));
    return;
  }
  if (s->nconns >= WR_HTTPD_MAX_CONNS) {
    log_trace(WR_TRACE_HTTP, "httpd: %d connections, refusing one", s->nconns);
    hd_reject(server);
    return;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL || uv_tcp_init(s->loop, &c->tcp) < 0) {
    free(c);
    hd_reject(server);
    return;
  }
  uv_timer_init(s->loop, &c->timer);
  c->handles = 2;
  c->tcp.data = c;
  c->timer.data = c;
  /* Room for a head just under the cap plus one read. */
  wr_buf_init(&c->in, WR_HTTPD_HEAD_MAX + HD_READ_SIZE);
  c->s = s;
  c->next = s->conns;
  if (s->conns != NULL)
    s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
    hd_close(c);
    return;
  }
  /* Pipelined responses go out as separate writes; Nagle would hold the second one back. */
  (void)uv_tcp_nodelay(&c->tcp, 1);
  hd_arm(c, s->idle_ms);
  hd_update_reading(c);
  if (!c->reading)
    hd_close(c);
}

static void hd_on_listener_closed(uv_handle_t *h) {
  free(h->data);
}

int wr_httpd_new(wr_httpd **out, uv_loop_t *loop, const char *addr, wr_httpd_handler h, void *ud) {
  struct sockaddr_storage ss;
  socklen_t sslen;
  struct wr_httpd *s;
  int namelen, rv;

  if (out == NULL)
    return WR_ERR_INVAL;
  *out = NULL;
  if (loop == NULL || addr == NULL || h == NULL)
    return WR_ERR_INVAL;
  rv = wr_addr_parse(addr, &ss, &sslen);
  if (rv < 0)
    return rv;
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return WR_ERR_NOMEM;
  s->loop = loop;
  s->h = h;
  s->ud = ud;
  s->idle_ms = WR_HTTPD_IDLE_MS;
  rv = uv_tcp_init(loop, &s->listener);
  if (rv < 0) {
    free(s);
    return rv;
  }
  s->listener.data = s;
  rv = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
  if (rv == 0)
    rv = uv_listen((uv_stream_t *)&s->listener, HD_BACKLOG, hd_on_connection);
  if (rv == 0) {
    namelen = sizeof(ss);
    rv = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &namelen);
  }
  if (rv < 0) {
    uv_close((uv_handle_t *)&s->listener, hd_on_listener_closed);
    return rv;
  }
  if (ss.ss_family == AF_INET6)
    s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  else
    s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  *out = s;
  return 0;
}

int wr_httpd_port(const wr_httpd *s) {
  return s->port;
}

void wr_httpd_set_idle_timeout(wr_httpd *s, uint64_t ms) {
  s->idle_ms = ms;
}

void wr_httpd_del(wr_httpd *s) {
  if (s == NULL)
    return;
  while (s->conns != NULL)
    hd_close(s->conns);
  uv_close((uv_handle_t *)&s->listener, hd_on_listener_closed);
}
