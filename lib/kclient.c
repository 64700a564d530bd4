/*
 * kclient.c - the Kubernetes REST client on libcurl's multi-socket API and
 * the libuv loop (see kclient.h).
 *
 * libcurl tells us which sockets to watch (socket_cb) and when to call it
 * back (timer_cb); libuv's poll handles and one timer drive
 * curl_multi_socket_action(); finished transfers are collected in
 * check_done(). A call owns its easy handle, its request body (kept for
 * retries), its header list and a capped response buffer. Its memory goes
 * in the close callback of its retry timer, so nothing is freed while libuv
 * may still touch it.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warren/buf.h"
#include "warren/err.h"
#include "warren/kclient.h"
#include "warren/kconfig.h"
#include "warren/log.h"

#define DEFAULT_MAX_BODY (64u << 20)
#define DEFAULT_TIMEOUT_MS 60000u
#define CONNECT_TIMEOUT_MS 30000L
#define STREAM_ERR_BODY_MAX (64u << 10)
#define RETRY_AFTER_MAX_S 60

struct wr_kclient {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  struct wr_kclient_opts o;
  char *server;               /* without a trailing slash */
  char *ua;                   /* User-Agent */
  struct curl_slist *resolve; /* tls-server-name pinned to the server's address */
  uint8_t *ca, *cert, *key;
  wr_kcall *calls;         /* every live call */
  struct wr_kconfig *kcfg; /* wr_kclient_new_kconfig: the token's source */
  struct wr_kclient_stats stats;
  unsigned dispatching : 1, dying : 1;
};

struct wr_kcall {
  wr_kclient *c;
  wr_kcall *prev, *next;
  CURL *easy;
  uv_timer_t retry; /* also the call's lifetime: freed in its close cb */
  struct curl_slist *headers;
  char method[8];
  char *url;
  char *body;
  size_t body_len;
  char *content_type;
  wr_buf resp;
  int retries;
  int retry_after; /* from the current answer's header, -1: none */
  /* plain call */
  wr_kcall_cb cb;
  /* stream */
  const struct wr_kstream_cbs *scbs;
  unsigned idle_s;
  int stream_stop; /* on_data's non-zero answer */
  void *ud;
  unsigned stream : 1, in_multi : 1, done : 1;
};

struct ksock {
  uv_poll_t poll;
  curl_socket_t fd;
  wr_kclient *c;
};

static void check_done(wr_kclient *c);
static int call_submit(wr_kcall *k);
static void client_finish_del(wr_kclient *c);

/* --- libcurl <-> libuv ------------------------------------------------------ */

static void on_sock_closed(uv_handle_t *h) {
  free(h->data);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  struct ksock *s = p->data;
  wr_kclient *c = s->c;
  int flags = 0, running;

  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(c->multi, s->fd, flags, &running);
  check_done(c);
}

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
  wr_kclient *c = userp;
  struct ksock *s = socketp;
  int events = 0;

  (void)e;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      uv_poll_stop(&s->poll);
      uv_close((uv_handle_t *)&s->poll, on_sock_closed);
      curl_multi_assign(c->multi, fd, NULL);
    }
    return 0;
  }
  if (s == NULL) {
    s = calloc(1, sizeof(*s));
    if (s == NULL)
      return -1;
    s->fd = fd;
    s->c = c;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->poll.data = s;
    curl_multi_assign(c->multi, fd, s);
  }
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

static void on_timer(uv_timer_t *t) {
  wr_kclient *c = t->data;
  int running;

  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
  wr_kclient *c = userp;

  (void)m;
  if (timeout_ms < 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

/* --- client ------------------------------------------------------------------ */

static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
  uint8_t *d = malloc(n + 1);

  if (d != NULL) {
    memcpy(d, p, n);
    d[n] = 0;
  }
  return d;
}

/* pin_server_name makes TLS use |name| (SNI and certificate check) while
 * connecting to the address in c->server: libcurl has no SNI override, so
 * the URL names |name| and CURLOPT_RESOLVE maps it to the real address. */
static int pin_server_name(wr_kclient *c, const char *name) {
  const char *scheme_end = strstr(c->server, "://"), *host, *host_end, *port;
  char addr[256], *url, entry[512];
  size_t hlen, n;

  if (scheme_end == NULL || strpbrk(name, ":/[]") != NULL)
    return WR_ERR_INVAL;
  host = scheme_end + 3;
  if (*host == '[') {
    host_end = strchr(host, ']');
    if (host_end == NULL)
      return WR_ERR_INVAL;
    host_end++;
  } else {
    host_end = host + strcspn(host, ":/");
  }
  hlen = (size_t)(host_end - host);
  if (hlen == 0 || hlen >= sizeof(addr))
    return WR_ERR_INVAL;
  memcpy(addr, host, hlen);
  addr[hlen] = '\0';
  port = *host_end == ':' ? host_end + 1 : NULL;
  n = (size_t)snprintf(entry, sizeof(entry), "%s:%d:%s", name, port != NULL ? atoi(port) : 443,
                       addr);
  if (n >= sizeof(entry))
    return WR_ERR_TOOBIG;
  c->resolve = curl_slist_append(NULL, entry);
  n = (size_t)(host - c->server) + strlen(name) + strlen(host_end) + 1;
  url = malloc(n);
  if (c->resolve == NULL || url == NULL) {
    free(url);
    return WR_ERR_NOMEM;
  }
  snprintf(url, n, "%.*s%s%s", (int)(host - c->server), c->server, name, host_end);
  free(c->server);
  c->server = url;
  return 0;
}

static void client_free_mem(wr_kclient *c) {
  free(c->server);
  free(c->ua);
  curl_slist_free_all(c->resolve);
  free(c->ca);
  free(c->cert);
  if (c->key != NULL) {
    memset(c->key, 0, c->o.key_len);
    free(c->key);
  }
  free(c);
}

int wr_kclient_new(wr_kclient **out, uv_loop_t *loop, const struct wr_kclient_opts *o) {
  static int curl_ready;
  wr_kclient *c;
  size_t n;
  int rv = WR_ERR_NOMEM;

  if (o->server == NULL ||
      (strncmp(o->server, "https://", 8) != 0 && strncmp(o->server, "http://", 7) != 0))
    return WR_ERR_INVAL;
  if (!curl_ready) {
    /* Not thread-safe in old libcurl; every warren binary is single-threaded. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      return WR_ERR_NOMEM;
    curl_ready = 1;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return WR_ERR_NOMEM;
  c->loop = loop;
  c->o = *o;
  if (c->o.max_body == 0)
    c->o.max_body = DEFAULT_MAX_BODY;
  if (c->o.timeout_ms == 0)
    c->o.timeout_ms = DEFAULT_TIMEOUT_MS;
  c->server = strdup(o->server);
  c->ua = strdup(o->user_agent != NULL ? o->user_agent : "warren");
  if (c->server == NULL || c->ua == NULL)
    goto fail;
  n = strlen(c->server);
  while (n > 0 && c->server[n - 1] == '/')
    c->server[--n] = '\0';
  if (o->tls_server_name != NULL && o->tls_server_name[0] != '\0' &&
      (rv = pin_server_name(c, o->tls_server_name)) < 0)
    goto fail;
  rv = WR_ERR_NOMEM;
  if (o->ca_pem != NULL && (c->ca = dup_bytes(o->ca_pem, o->ca_len)) == NULL)
    goto fail;
  if (o->cert_pem != NULL && (c->cert = dup_bytes(o->cert_pem, o->cert_len)) == NULL)
    goto fail;
  if (o->key_pem != NULL && (c->key = dup_bytes(o->key_pem, o->key_len)) == NULL)
    goto fail;
  /* The copies above are what the client uses; the caller's pointers are not kept. */
  c->o.server = c->o.user_agent = c->o.tls_server_name = NULL;
  c->o.ca_pem = c->o.cert_pem = c->o.key_pem = NULL;
  c->multi = curl_multi_init();
  if (c->multi == NULL)
    goto fail;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  *out = c;
  return 0;
fail:
  client_free_mem(c);
  return rv;
}

static void on_client_timer_closed(uv_handle_t *h) {
  client_free_mem(h->data);
}

static void client_finish_del(wr_kclient *c) {
  while (c->calls != NULL)
    wr_kcall_cancel(c->calls);
  curl_multi_cleanup(c->multi); /* closes sockets through socket_cb */
  c->multi = NULL;
  uv_close((uv_handle_t *)&c->timer, on_client_timer_closed);
}

void wr_kclient_del(wr_kclient *c) {
  if (c == NULL || c->dying)
    return;
  c->dying = 1;
  if (!c->dispatching)
    client_finish_del(c);
}

static int kconfig_token(void *ud, const char **token) {
  wr_kclient *c = ud;

  return wr_kconfig_token(c->kcfg, uv_now(c->loop), token);
}

static void kconfig_token_invalid(void *ud) {
  wr_kclient *c = ud;

  wr_kconfig_token_invalidate(c->kcfg);
}

int wr_kclient_new_kconfig(wr_kclient **out, uv_loop_t *loop, struct wr_kconfig *cfg) {
  struct wr_kclient_opts o;
  int rv;

  memset(&o, 0, sizeof(o));
  o.server = cfg->server;
  o.tls_server_name = cfg->tls_server_name;
  o.insecure = cfg->insecure;
  o.ca_pem = cfg->ca_pem;
  o.ca_len = cfg->ca_pem_len;
  o.cert_pem = cfg->cert_pem;
  o.cert_len = cfg->cert_pem_len;
  o.key_pem = cfg->key_pem;
  o.key_len = cfg->key_pem_len;
  o.token = kconfig_token;
  o.token_invalid = kconfig_token_invalid;
  rv = wr_kclient_new(out, loop, &o);
  if (rv == 0) {
    (*out)->kcfg = cfg;
    (*out)->o.token_ud = *out;
  }
  return rv;
}

/* --- paths ---------------------------------------------------------------------- */

static int segment_ok(const char *s) {
  if (s == NULL || *s == '\0')
    return 0;
  return strpbrk(s, "/?%#") == NULL && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

int wr_kpath(char *buf, size_t len, const struct wr_kres *r, const char *ns, const char *name,
             const char *sub) {
  int n;

  if (r->group == NULL || !segment_ok(r->version) || !segment_ok(r->resource) ||
      (r->group[0] != '\0' && !segment_ok(r->group)) || (ns != NULL && !segment_ok(ns)) ||
      (name != NULL && !segment_ok(name)) || (sub != NULL && (name == NULL || !segment_ok(sub))))
    return WR_ERR_INVAL;
  if (r->group[0] == '\0')
    n = snprintf(buf, len, "/api/%s", r->version);
  else
    n = snprintf(buf, len, "/apis/%s/%s", r->group, r->version);
  if (ns != NULL)
    n += snprintf(buf + n, (size_t)n < len ? len - (size_t)n : 0, "/namespaces/%s", ns);
  n += snprintf(buf + n, (size_t)n < len ? len - (size_t)n : 0, "/%s", r->resource);
  if (name != NULL)
    n += snprintf(buf + n, (size_t)n < len ? len - (size_t)n : 0, "/%s", name);
  if (sub != NULL)
    n += snprintf(buf + n, (size_t)n < len ? len - (size_t)n : 0, "/%s", sub);
  if (n < 0 || (size_t)n >= len)
    return WR_ERR_TOOBIG;
  return n;
}

int wr_kquery(char *buf, size_t len, const char *key, const char *value) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(buf);
  const unsigned char *p;

  if (n + 1 >= len)
    return WR_ERR_TOOBIG;
  buf[n++] = strchr(buf, '?') != NULL ? '&' : '?';
  for (p = (const unsigned char *)key; *p != '\0'; p++) {
    if (n + 1 >= len)
      return WR_ERR_TOOBIG;
    buf[n++] = (char)*p;
  }
  if (n + 1 >= len)
    return WR_ERR_TOOBIG;
  buf[n++] = '=';
  for (p = (const unsigned char *)value; *p != '\0'; p++) {
    if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
      if (n + 1 >= len)
        return WR_ERR_TOOBIG;
      buf[n++] = (char)*p;
    } else {
      if (n + 3 >= len)
        return WR_ERR_TOOBIG;
      buf[n++] = '%';
      buf[n++] = hex[*p >> 4];
      buf[n++] = hex[*p & 15];
    }
  }
  buf[n] = '\0';
  return (int)n;
}

/* --- Status ------------------------------------------------------------------------ */

static const char *reason_for(int code) {
  switch (code) {
  case 400:
    return "BadRequest";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "NotFound";
  case 405:
    return "MethodNotAllowed";
  case 406:
    return "NotAcceptable";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 413:
    return "RequestEntityTooLarge";
  case 415:
    return "UnsupportedMediaType";
  case 422:
    return "Invalid";
  case 429:
    return "TooManyRequests";
  case 500:
    return "InternalError";
  case 503:
    return "ServiceUnavailable";
  case 504:
    return "Timeout";
  default:
    return "Unknown";
  }
}

void wr_kstatus_decode(struct wr_kstatus *st, int http_code, const char *body, size_t len) {
  json_t *j = NULL, *v;
  size_t i;

  memset(st, 0, sizeof(*st));
  st->code = http_code;
  st->retry_after = -1;
  if (body != NULL && len > 0)
    j = json_loadb(body, len, 0, NULL);
  if (json_is_object(j) && json_is_string(json_object_get(j, "kind")) &&
      strcmp(json_string_value(json_object_get(j, "kind")), "Status") == 0) {
    if (json_is_string(v = json_object_get(j, "reason")))
      snprintf(st->reason, sizeof(st->reason), "%s", json_string_value(v));
    if (json_is_string(v = json_object_get(j, "message")))
      snprintf(st->message, sizeof(st->message), "%s", json_string_value(v));
    if (json_is_integer(v = json_object_get(j, "code")) && json_integer_value(v) > 0 &&
        json_integer_value(v) < 1000)
      st->code = (int)json_integer_value(v);
    v = json_object_get(json_object_get(j, "details"), "retryAfterSeconds");
    if (json_is_integer(v) && json_integer_value(v) >= 0)
      st->retry_after = (int)(json_integer_value(v) < RETRY_AFTER_MAX_S ? json_integer_value(v)
                                                                        : RETRY_AFTER_MAX_S);
  } else if (body != NULL && len > 0) {
    /* Not a Status: keep the first line of whatever it is, printable only. */
    for (i = 0; i < len && i + 1 < sizeof(st->message) && body[i] != '\n'; i++)
      st->message[i] = isprint((unsigned char)body[i]) ? body[i] : '?';
    st->message[i] = '\0';
  }
  if (st->reason[0] == '\0')
    snprintf(st->reason, sizeof(st->reason), "%s", reason_for(st->code));
  if (st->message[0] == '\0')
    snprintf(st->message, sizeof(st->message), "HTTP %d", http_code);
  json_decref(j);
}

/* --- calls ------------------------------------------------------------------------ */

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  wr_kcall *k = ud;
  size_t len = size * n;

  if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
    char tmp[32];
    size_t m = len - 12 < sizeof(tmp) - 1 ? len - 12 : sizeof(tmp) - 1;
    char *end;
    long s;

    memcpy(tmp, p + 12, m);
    tmp[m] = '\0';
    s = strtol(tmp, &end, 10);
    /* Only integer seconds count (an HTTP date is not retried, as client-go). */
    if (end != tmp && s >= 0)
      k->retry_after = s < RETRY_AFTER_MAX_S ? (int)s : RETRY_AFTER_MAX_S;
  } else if (len > 8 && strncasecmp(p, "warning:", 8) == 0) {
    size_t wlen = len - 8;

    while (wlen > 0 && (p[8 + wlen - 1] == '\r' || p[8 + wlen - 1] == '\n'))
      wlen--;
    log_trace(WR_TRACE_KUBE, "kube %s %s: warning:%.*s", k->method, k->url, (int)wlen, p + 8);
  } else if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    k->retry_after = -1; /* a new answer (after a redirect or 100) */
  }
  return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  wr_kcall *k = ud;
  size_t len = size * n;
  long code = 0;

  if (k->stream) {
    curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code == 200) {
      int rv = k->scbs->on_data(k->ud, (const uint8_t *)p, len);

      if (rv != 0) {
        k->stream_stop = rv;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
      }
      return len;
    }
    /* An error answer: keep (the start of) the Status body. */
    if (wr_buf_space(&k->resp) > 0)
      (void)wr_buf_append(&k->resp, p, len < wr_buf_space(&k->resp) ? len : wr_buf_space(&k->resp));
    return len;
  }
  if (wr_buf_append(&k->resp, p, len) < 0)
    return 0; /* over the cap: CURLE_WRITE_ERROR */
  return len;
}

static int curl_to_err(CURLcode rc) {
  switch (rc) {
  case CURLE_COULDNT_CONNECT:
    return -ECONNREFUSED;
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE:
  case CURLE_GOT_NOTHING:
    return -ECONNRESET;
  case CURLE_COULDNT_RESOLVE_HOST:
    return -EHOSTUNREACH;
  case CURLE_OPERATION_TIMEDOUT:
    return WR_ERR_TIMEOUT;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
    return WR_ERR_TLS;
  case CURLE_WRITE_ERROR:
    return WR_ERR_TOOBIG;
  case CURLE_OUT_OF_MEMORY:
    return WR_ERR_NOMEM;
  default:
    return WR_ERR_PROTO;
  }
}

static void call_unlink(wr_kcall *k) {
  wr_kclient *c = k->c;

  if (k->in_multi) {
    curl_multi_remove_handle(c->multi, k->easy);
    k->in_multi = 0;
  }
  if (k->prev != NULL)
    k->prev->next = k->next;
  else if (c->calls == k)
    c->calls = k->next;
  if (k->next != NULL)
    k->next->prev = k->prev;
  k->prev = k->next = NULL;
}

static void on_call_closed(uv_handle_t *h) {
  wr_kcall *k = h->data;

  if (k->easy != NULL)
    curl_easy_cleanup(k->easy);
  curl_slist_free_all(k->headers);
  free(k->url);
  free(k->body);
  free(k->content_type);
  wr_buf_free(&k->resp);
  free(k);
}

static void call_free(wr_kcall *k) {
  call_unlink(k);
  k->done = 1;
  uv_close((uv_handle_t *)&k->retry, on_call_closed);
}

void wr_kcall_cancel(wr_kcall *k) {
  if (k == NULL || k->done)
    return;
  call_free(k);
}

static int build_headers(wr_kcall *k) {
  wr_kclient *c = k->c;
  struct curl_slist *h = NULL, *t;
  const char *token = NULL;
  char line[4096];
  int rv;

  curl_slist_free_all(k->headers);
  k->headers = NULL;
  if (c->o.token != NULL) {
    rv = c->o.token(c->o.token_ud, &token);
    if (rv < 0)
      return rv;
  }
#define ADD(s)                                                                                     \
  do {                                                                                             \
    t = curl_slist_append(h, (s));                                                                 \
    if (t == NULL) {                                                                               \
      curl_slist_free_all(h);                                                                      \
      return WR_ERR_NOMEM;                                                                         \
    }                                                                                              \
    h = t;                                                                                         \
  } while (0)
  ADD("Accept: application/json");
  if (k->content_type != NULL) {
    snprintf(line, sizeof(line), "Content-Type: %s", k->content_type);
    ADD(line);
  }
  if (token != NULL && *token != '\0') {
    if (strlen(token) + 32 > sizeof(line)) {
      curl_slist_free_all(h);
      return WR_ERR_TOOBIG;
    }
    snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
    ADD(line);
    memset(line, 0, sizeof(line));
  }
  ADD("Expect:"); /* no 100-continue round trip for bodies */
#undef ADD
  k->headers = h;
  return 0;
}

static int call_submit(wr_kcall *k) {
  wr_kclient *c = k->c;
  CURL *e = k->easy;
  int rv;

  rv = build_headers(k);
  if (rv < 0)
    return rv;
  wr_buf_reset(&k->resp);
  k->retry_after = -1;
  curl_easy_reset(e);
  curl_easy_setopt(e, CURLOPT_URL, k->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, k);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, k->headers);
  curl_easy_setopt(e, CURLOPT_USERAGENT, c->ua);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, k);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, k);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
  curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  if (c->ca != NULL) {
    struct curl_blob b = {c->ca, c->o.ca_len, CURL_BLOB_NOCOPY};
    curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
  }
  if (c->o.insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (c->cert != NULL && c->key != NULL) {
    struct curl_blob cb = {c->cert, c->o.cert_len, CURL_BLOB_NOCOPY};
    struct curl_blob kb = {c->key, c->o.key_len, CURL_BLOB_NOCOPY};
    curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cb);
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &kb);
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
  }
  if (c->resolve != NULL)
    curl_easy_setopt(e, CURLOPT_RESOLVE, c->resolve);
  if (strcmp(k->method, "GET") != 0)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, k->method);
  if (k->body != NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, k->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)k->body_len);
  }
  if (k->stream) {
    if (k->idle_s > 0) {
      curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)k->idle_s);
    }
  } else {
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->o.timeout_ms);
  }
  if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
    return WR_ERR_NOMEM;
  k->in_multi = 1;
  log_trace(WR_TRACE_KUBE, "kube: %s %s", k->method, k->url);
  return 0;
}

static wr_kcall *call_new(wr_kclient *c, const char *method, const char *path,
                          const char *content_type, const char *body, size_t body_len) {
  wr_kcall *k;
  size_t n;

  if (c->dying || path[0] != '/' || strlen(method) >= sizeof(((wr_kcall *)0)->method))
    return NULL;
  k = calloc(1, sizeof(*k));
  if (k == NULL)
    return NULL;
  k->c = c;
  snprintf(k->method, sizeof(k->method), "%s", method);
  wr_buf_init(&k->resp, c->o.max_body);
  n = strlen(c->server) + strlen(path) + 1;
  k->url = malloc(n);
  k->easy = curl_easy_init();
  if (k->url == NULL || k->easy == NULL)
    goto fail;
  snprintf(k->url, n, "%s%s", c->server, path);
  if (content_type != NULL && (k->content_type = strdup(content_type)) == NULL)
    goto fail;
  if (body != NULL) {
    k->body = malloc(body_len + 1);
    if (k->body == NULL)
      goto fail;
    memcpy(k->body, body, body_len);
    k->body[body_len] = '\0';
    k->body_len = body_len;
  }
  uv_timer_init(c->loop, &k->retry);
  k->retry.data = k;
  k->next = c->calls;
  if (c->calls != NULL)
    c->calls->prev = k;
  c->calls = k;
  return k;
fail:
  if (k->easy != NULL)
    curl_easy_cleanup(k->easy);
  free(k->url);
  free(k->content_type);
  free(k->body);
  wr_buf_free(&k->resp);
  free(k);
  return NULL;
}

/* call_complete ends |k| with its one callback, then frees it. */
static void call_complete(wr_kcall *k, int rv, json_t *obj, const struct wr_kstatus *st) {
  call_unlink(k);
  k->done = 1;
  if (k->stream)
    k->scbs->on_end(k->ud, rv, st);
  else
    k->cb(k->ud, rv, obj, st);
  uv_close((uv_handle_t *)&k->retry, on_call_closed);
}

static void on_retry(uv_timer_t *t) {
  wr_kcall *k = t->data;
  wr_kclient *c = k->c;
  struct wr_kstatus st;
  int rv = call_submit(k);

  if (rv == 0)
    return;
  memset(&st, 0, sizeof(st));
  st.retry_after = -1;
  c->dispatching = 1;
  call_complete(k, rv, NULL, &st);
  c->dispatching = 0;
  if (c->dying)
    client_finish_del(c);
}

/* count records one answered (or failed) attempt, retries included, as
 * client-go's rest_client_requests_total does. */
static void count(wr_kclient *c, const char *method, long code) {
  static const char *const methods[WR_KMETHODS] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  size_t m, cls = code >= 200 && code < 600 ? (size_t)(code / 100) - 1 : 0;

  for (m = 0; m < WR_KMETHODS - 1 && strcmp(methods[m], method) != 0; m++)
    ;
  c->stats.requests[m][cls]++;
  c->stats.total++;
}

size_t wr_kclient_inflight(const wr_kclient *c) {
  const wr_kcall *k;
  size_t n = 0;

  for (k = c->calls; k != NULL; k = k->next)
    n += !k->stream;
  return n;
}

void wr_kclient_stats(const wr_kclient *c, struct wr_kclient_stats *st) {
  *st = c->stats;
}

/* finish decides what a completed transfer means and runs the callback. */
static void finish(wr_kcall *k, CURLcode rc) {
  wr_kclient *c = k->c;
  struct wr_kstatus st;
  json_t *obj = NULL;
  long code = 0;
  int rv = 0;

  memset(&st, 0, sizeof(st));
  st.retry_after = -1;
  curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &code);
  curl_multi_remove_handle(c->multi, k->easy);
  k->in_multi = 0;
  count(c, k->method, rc == CURLE_OK ? code : 0);
  if (k->stream && rc == CURLE_WRITE_ERROR && k->stream_stop != 0) {
    rv = k->stream_stop;
  } else if (rc != CURLE_OK) {
    rv = curl_to_err(rc);
    log_trace(WR_TRACE_KUBE, "kube: %s %s: %s", k->method, k->url, curl_easy_strerror(rc));
  } else if (code < 200 || code > 299) {
    wr_kstatus_decode(&st, (int)code, (const char *)wr_buf_data(&k->resp), wr_buf_len(&k->resp));
    if (st.retry_after < 0)
      st.retry_after = k->retry_after;
    if (code == 401 && c->o.token_invalid != NULL)
      c->o.token_invalid(c->o.token_ud);
    if ((code == 429 || code >= 500) && k->retry_after >= 0 &&
        k->retries < WR_KCLIENT_MAX_RETRIES) {
      k->retries++;
      log_debug("kube: %s %s: %ld %s, retry %d in %d s", k->method, k->url, code, st.reason,
                k->retries, k->retry_after);
      uv_timer_start(&k->retry, on_retry, (uint64_t)k->retry_after * 1000, 0);
      return;
    }
    rv = WR_ERR_REFUSED;
    log_trace(WR_TRACE_KUBE, "kube: %s %s: %d %s: %s", k->method, k->url, st.code, st.reason,
              st.message);
  } else if (!k->stream && wr_buf_len(&k->resp) > 0) {
    json_error_t je;

    obj = json_loadb((const char *)wr_buf_data(&k->resp), wr_buf_len(&k->resp), 0, &je);
    if (obj == NULL) {
      rv = WR_ERR_PROTO;
      log_debug("kube: %s %s: bad JSON in answer: %s", k->method, k->url, je.text);
    }
  }
  call_complete(k, rv, obj, &st);
  json_decref(obj);
}

static void check_done(wr_kclient *c) {
  CURLMsg *m;
  int left;

  if (c->dispatching)
    return;
  c->dispatching = 1;
  while (!c->dying && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
    wr_kcall *k = NULL;

    if (m->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&k);
    if (k != NULL && !k->done)
      finish(k, m->data.result);
  }
  c->dispatching = 0;
  if (c->dying)
    client_finish_del(c);
}

/* --- public verbs ------------------------------------------------------------------ */

/* call_start submits a new call; a call that cannot start is freed. */
static int call_start(wr_kcall *k, wr_kcall **out) {
  int rv = call_submit(k);

  if (rv < 0) {
    call_free(k);
    return rv;
  }
  if (out != NULL)
    *out = k;
  return 0;
}

int wr_kclient_call(wr_kclient *c, const char *method, const char *path, const char *content_type,
                    const char *body, size_t body_len, wr_kcall_cb cb, void *ud, wr_kcall **out) {
  wr_kcall *k = call_new(c, method, path, content_type, body, body_len);

  if (k == NULL)
    return c->dying || path[0] != '/' ? WR_ERR_INVAL : WR_ERR_NOMEM;
  k->cb = cb;
  k->ud = ud;
  return call_start(k, out);
}

int wr_kclient_stream(wr_kclient *c, const char *path, unsigned idle_s,
                      const struct wr_kstream_cbs *cbs, void *ud, wr_kcall **out) {
  wr_kcall *k = call_new(c, "GET", path, NULL, NULL, 0);

  if (k == NULL)
    return c->dying || path[0] != '/' ? WR_ERR_INVAL : WR_ERR_NOMEM;
  k->stream = 1;
  k->scbs = cbs;
  k->idle_s = idle_s;
  k->ud = ud;
  wr_buf_free(&k->resp);
  wr_buf_init(&k->resp, STREAM_ERR_BODY_MAX);
  return call_start(k, out);
}

int wr_kclient_get(wr_kclient *c, const char *path, wr_kcall_cb cb, void *ud, wr_kcall **out) {
  return wr_kclient_call(c, "GET", path, NULL, NULL, 0, cb, ud, out);
}

static int call_json(wr_kclient *c, const char *method, const char *path, const char *ctype,
                     json_t *obj, wr_kcall_cb cb, void *ud, wr_kcall **out) {
  char *body = json_dumps(obj, JSON_COMPACT);
  int rv;

  if (body == NULL)
    return WR_ERR_INVAL;
  rv = wr_kclient_call(c, method, path, ctype, body, strlen(body), cb, ud, out);
  free(body);
  return rv;
}

int wr_kclient_create(wr_kclient *c, const char *path, json_t *obj, wr_kcall_cb cb, void *ud,
                      wr_kcall **out) {
  return call_json(c, "POST", path, "application/json", obj, cb, ud, out);
}

int wr_kclient_update(wr_kclient *c, const char *path, json_t *obj, wr_kcall_cb cb, void *ud,
                      wr_kcall **out) {
  return call_json(c, "PUT", path, "application/json", obj, cb, ud, out);
}

int wr_kclient_patch(wr_kclient *c, const char *path, enum wr_kpatch type, json_t *patch,
                     const char *field_manager, int force, wr_kcall_cb cb, void *ud,
                     wr_kcall **out) {
  static const char *const ctypes[] = {"application/merge-patch+json",
                                       "application/json-patch+json",
                                       "application/apply-patch+yaml"};
  char p[WR_KCLIENT_PATH_MAX];
  int rv;

  if ((unsigned)type > WR_KPATCH_APPLY || (type == WR_KPATCH_APPLY && field_manager == NULL))
    return WR_ERR_INVAL;
  if (strlen(path) >= sizeof(p))
    return WR_ERR_TOOBIG;
  strcpy(p, path);
  if (field_manager != NULL && (rv = wr_kquery(p, sizeof(p), "fieldManager", field_manager)) < 0)
    return rv;
  if (type == WR_KPATCH_APPLY && force && (rv = wr_kquery(p, sizeof(p), "force", "true")) < 0)
    return rv;
  /* JSON is YAML: an apply patch is sent as JSON. */
  return call_json(c, "PATCH", p, ctypes[type], patch, cb, ud, out);
}

int wr_kclient_delete(wr_kclient *c, const char *path, const char *uid, const char *rv,
                      const char *propagation, wr_kcall_cb cb, void *ud, wr_kcall **out) {
  json_t *opts, *pre;
  int r;

  if (uid == NULL && rv == NULL && propagation == NULL)
    return wr_kclient_call(c, "DELETE", path, NULL, NULL, 0, cb, ud, out);
  opts = json_pack("{s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1");
  if (opts == NULL)
    return WR_ERR_NOMEM;
  if (uid != NULL || rv != NULL) {
    pre = json_object();
    if (uid != NULL)
      json_object_set_new(pre, "uid", json_string(uid));
    if (rv != NULL)
      json_object_set_new(pre, "resourceVersion", json_string(rv));
    json_object_set_new(opts, "preconditions", pre);
  }
  if (propagation != NULL)
    json_object_set_new(opts, "propagationPolicy", json_string(propagation));
  r = call_json(c, "DELETE", path, "application/json", opts, cb, ud, out);
  json_decref(opts);
  return r;
}
