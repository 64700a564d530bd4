/* http1.c - the edge's HTTP/1.1 handler: one client connection, one tunnel. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "warren/buf.h"
#include "warren/err.h"
#include "warren/identity.h"
#include "warren/log.h"
#include "warren/routes.h"
#include "warren/tunnel_hdr.h"

#include "http1.h"
#include "tunnel.h"

#define H1_UP_MAX (256u << 10) /* client bytes the tunnel has not taken: one read + one head */
#define H1_DRAIN_TIMEOUT_MS 30000
#define H1_HOST_MAX 255
#define H1_FIELD_MAX 24
#define H1_DROP_MAX 8

enum h1_state {
  H1_HEAD,  /* reading a request head */
  H1_BODY,  /* passing a request body through */
  H1_RAW,   /* after an Upgrade: a byte pipe */
  H1_DRAIN, /* refusing a later request: waiting for earlier responses to finish */
  H1_DONE,  /* replied or closing; input is ignored */
};

struct h1 {
  struct gw_conn *c;
  const struct gw_edge_env *env;
  http_parser parser;
  enum h1_state state;
  wr_buf head;         /* the request head being read */
  size_t parsed;       /* bytes of head already given to the parser */
  const uint8_t *base; /* head memory during http_parser_execute() */
  wr_buf up;           /* bytes for the tunnel */
  /* What the parser found in the current head. */
  char field[H1_FIELD_MAX + 1];
  size_t field_len;
  size_t line_start; /* offset of the current header line */
  char host[H1_HOST_MAX + 1];
  size_t host_len;
  struct {
    size_t from, to;
  } drop[H1_DROP_MAX];
  size_t ndrop;
  unsigned in_value : 1, drop_cur : 1, host_seen : 1, too_many : 1, head_done : 1, msg_done : 1;
  /* The tunnel. */
  gw_tunnel *t;
  wr_pubkey route_id;
  char route_target[WR_THDR_TARGET_MAX + 1];
  size_t unacked; /* tunnel bytes queued to the client, not yet written */
  int drain_status;
  char drain_reason[128];
  unsigned t_open : 1, client_eof : 1, fin_sent : 1, tunnel_eof : 1, got_response : 1;
  char xff[GW_CONN_PEER_MAX]; /* client address without the port */
};

static const char *h1_strstate(enum h1_state s) {
  static const char *const names[] = {"head", "body", "raw", "drain", "done"};

  return names[s];
}

static void h1_enter_state(struct h1 *h, enum h1_state st) {
  log_trace(WR_TRACE_HTTP, "http1 %s: %s -> %s", gw_conn_peer(h->c), h1_strstate(h->state),
            h1_strstate(st));
  h->state = st;
}

const char *gw_http_status_text(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 421:
    return "Misdirected Request";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Error";
  }
}

void gw_http1_reply(struct gw_conn *c, int status, const char *reason) {
  char why[160], msg[512];
  size_t i;
  int n;

  for (i = 0; reason != NULL && reason[i] != '\0' && i + 1 < sizeof(why); i++)
    why[i] = (reason[i] >= 0x20 && reason[i] < 0x7f) ? reason[i] : ' ';
  why[i] = '\0';
  n = snprintf(msg, sizeof(msg),
               "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: %zu\r\nConnection: close\r\nX-Warren-Error: %s\r\n\r\n%s\n",
               status, gw_http_status_text(status), strlen(why) + 1, why, why);
  if (n > 0 && (size_t)n < sizeof(msg))
    (void)gw_conn_write(c, msg, (size_t)n);
  gw_conn_end(c);
}

static void h1_reply(struct h1 *h, int status, const char *reason) {
  log_debug("http1 %s: %d %s", gw_conn_peer(h->c), status, reason);
  h1_enter_state(h, H1_DONE);
  gw_http1_reply(h->c, status, reason);
}

/* h1_refuse answers |status| now when no tunnel carries earlier requests,
 * else after their responses (the tunnel's EOF). */
static void h1_refuse(struct h1 *h, int status, const char *reason) {
  if (h->t == NULL && !h->got_response) {
    h1_reply(h, status, reason);
    return;
  }
  h->drain_status = status;
  snprintf(h->drain_reason, sizeof(h->drain_reason), "%s", reason);
  h1_enter_state(h, H1_DRAIN);
  gw_conn_read_stop(h->c);
  gw_conn_set_timeout(h->c, H1_DRAIN_TIMEOUT_MS);
  if (h->t == NULL || h->tunnel_eof)
    h1_reply(h, h->drain_status, h->drain_reason);
}

static void h1_up_flush(struct h1 *h) {
  int n;

  if (h->t != NULL && h->t_open) {
    while (wr_buf_len(&h->up) > 0) {
      n = gw_tunnel_write(h->t, wr_buf_data(&h->up), wr_buf_len(&h->up), 0);
      if (n < 0) {
        gw_conn_close(h->c);
        return;
      }
      if (n == 0)
        break;
      wr_buf_consume(&h->up, (size_t)n);
    }
    if (wr_buf_len(&h->up) == 0 && (h->client_eof || h->state == H1_DRAIN) && !h->fin_sent) {
      if (gw_tunnel_write(h->t, NULL, 0, 1) >= 0)
        h->fin_sent = 1;
    }
  }
  if (wr_buf_len(&h->up) > 0 || h->client_eof || h->state == H1_DRAIN || h->state == H1_DONE)
    gw_conn_read_stop(h->c);
  else
    gw_conn_read_start(h->c);
}

/* http-parser callbacks. Only heads are inspected; pointers are into h->head. */

static void h1_end_line(struct h1 *h, size_t end) {
  if (!h->drop_cur)
    return;
  if (h->ndrop == H1_DROP_MAX) {
    h->too_many = 1;
    return;
  }
  h->drop[h->ndrop].from = h->line_start;
  h->drop[h->ndrop].to = end;
  h->ndrop++;
  h->drop_cur = 0;
}

static int h1_on_header_field(http_parser *p, const char *at, size_t len) {
  struct h1 *h = p->data;
  size_t i;

  if (h->state != H1_HEAD)
    return 0; /* trailers */
  if (h->in_value || h->field_len == 0) {
    h1_end_line(h, (size_t)((const uint8_t *)at - h->base));
    h->line_start = (size_t)((const uint8_t *)at - h->base);
    h->field_len = 0;
    h->in_value = 0;
  }
  for (i = 0; i < len && h->field_len < H1_FIELD_MAX; i++)
    h->field[h->field_len++] = (char)tolower((unsigned char)at[i]);
  h->field[h->field_len] = '\0';
  return 0;
}

static int h1_on_header_value(http_parser *p, const char *at, size_t len) {
  struct h1 *h = p->data;
  int is_host;

  if (h->state != H1_HEAD)
    return 0;
  is_host = strcmp(h->field, "host") == 0;
  if (!h->in_value) {
    h->in_value = 1;
    if (strcmp(h->field, "x-forwarded-for") == 0 || strcmp(h->field, "x-forwarded-proto") == 0 ||
        strcmp(h->field, "x-forwarded-host") == 0)
      h->drop_cur = 1;
    if (is_host) {
      if (h->host_seen)
        h->too_many = 1; /* two Host headers: refuse (RFC 9112 §3.2) */
      h->host_seen = 1;
      h->host_len = 0;
    }
  }
  if (is_host) {
    if (h->host_len + len > H1_HOST_MAX) {
      h->too_many = 1;
      return 0;
    }
    memcpy(h->host + h->host_len, at, len);
    h->host_len += len;
    h->host[h->host_len] = '\0';
  }
  return 0;
}

static int h1_on_headers_complete(http_parser *p) {
  struct h1 *h = p->data;

  if (h->state == H1_HEAD) {
    h->head_done = 1;
    http_parser_pause(p, 1); /* execute returns at the head's last LF */
  }
  return 0;
}

static int h1_on_message_complete(http_parser *p) {
  struct h1 *h = p->data;

  h->msg_done = 1;
  http_parser_pause(p, 1); /* execute returns just after the message */
  return 0;
}

static const http_parser_settings h1_settings = {
    .on_header_field = h1_on_header_field,
    .on_header_value = h1_on_header_value,
    .on_headers_complete = h1_on_headers_complete,
    .on_message_complete = h1_on_message_complete,
};

static void h1_reset_head(struct h1 *h) {
  wr_buf_reset(&h->head);
  h->parsed = 0;
  h->field_len = 0;
  h->field[0] = '\0';
  h->host_len = 0;
  h->host[0] = '\0';
  h->ndrop = 0;
  h->in_value = h->drop_cur = h->host_seen = h->too_many = h->head_done = 0;
}

static const struct gw_tunnel_cbs h1_tunnel_cbs;

/* h1_route checks the head's Host and opens the tunnel on the first request.
 * Returns 0 when the request may go on, else it has been refused. */
static int h1_route(struct h1 *h) {
  const struct wr_route *r;
  struct gw_tunnel_req req;
  char why[H1_HOST_MAX + 64];
  int rv;

  if (h->parser.method == HTTP_CONNECT) {
    h1_refuse(h, 405, "CONNECT is not supported here");
    return -1;
  }
  if (!h->host_seen || h->host_len == 0 || h->too_many) {
    h1_refuse(h, 400, "exactly one non-empty Host header is required");
    return -1;
  }
  r = wr_routes_match(h->env->routes, h->host);
  if (h->t != NULL || h->got_response) {
    if (r == NULL || memcmp(r->endpoint_id, h->route_id, sizeof(h->route_id)) != 0 ||
        strcmp(r->target, h->route_target) != 0) {
      snprintf(why, sizeof(why), "this connection serves another host than %s", h->host);
      h1_refuse(h, 421, why);
      return -1;
    }
    return 0;
  }
  if (r == NULL) {
    snprintf(why, sizeof(why), "no route for host %s", h->host);
    h1_refuse(h, 404, why);
    return -1;
  }
  memcpy(h->route_id, r->endpoint_id, sizeof(h->route_id));
  snprintf(h->route_target, sizeof(h->route_target), "%s", r->target);
  req.endpoint_id = h->route_id;
  req.node_addr = r->node_addr;
  req.target = h->route_target;
  req.peer = gw_conn_peer(h->c);
  rv = gw_tunnel_open(h->env->pool, &req, &h1_tunnel_cbs, h, &h->t);
  if (rv < 0) {
    h->t = NULL;
    h1_refuse(h, 502, wr_strerror(rv));
    return -1;
  }
  gw_conn_set_timeout(h->c, 0);
  return 0;
}

/* h1_forward_head queues head[0, end) for the tunnel, with the client's
 * X-Forwarded-* lines replaced by ours before the empty line. */
static int h1_forward_head(struct h1 *h, size_t end) {
  const uint8_t *b = wr_buf_data(&h->head);
  size_t fin = (end >= 2 && b[end - 2] == '\r') ? 2 : 1; /* the empty line */
  size_t pos = 0, i;
  char xf[GW_CONN_PEER_MAX + H1_HOST_MAX + 96];
  int n, rv = 0;

  for (i = 0; i < h->ndrop && rv == 0; i++) {
    rv = wr_buf_append(&h->up, b + pos, h->drop[i].from - pos);
    pos = h->drop[i].to;
  }
  if (rv == 0)
    rv = wr_buf_append(&h->up, b + pos, end - fin - pos);
  n = snprintf(xf, sizeof(xf),
               "X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\n"
               "X-Forwarded-Host: %s\r\n",
               h->xff, gw_conn_is_tls(h->c) ? "https" : "http", h->host);
  if (rv == 0 && (n < 0 || (size_t)n >= sizeof(xf)))
    rv = WR_ERR_TOOBIG;
  if (rv == 0)
    rv = wr_buf_append(&h->up, xf, (size_t)n);
  if (rv == 0)
    rv = wr_buf_append(&h->up, b + end - fin, fin);
  return rv;
}

/* h1_head_complete handles a whole head, head[0, end). */
static int h1_head_complete(struct h1 *h, size_t end) {
  const uint8_t *lf;
  size_t fin;

  /* The last header line ends where the empty line starts. */
  fin = (end >= 2 && wr_buf_data(&h->head)[end - 2] == '\r') ? 2 : 1;
  h1_end_line(h, end - fin);
  if (h1_route(h) < 0)
    return -1;
  if (h1_forward_head(h, end) < 0) {
    gw_conn_close(h->c);
    return -1;
  }
  log_trace(WR_TRACE_HTTP, "http1 %s: %s %s", gw_conn_peer(h->c),
            http_method_str((enum http_method)h->parser.method), h->host);
  /* Let the parser see the head's last LF, which it stopped on. */
  http_parser_pause(&h->parser, 0);
  h->msg_done = 0;
  lf = wr_buf_data(&h->head) + end - 1;
  h->state = H1_BODY; /* header callbacks from here on are trailers */
  (void)http_parser_execute(&h->parser, &h1_settings, (const char *)lf, 1);
  if (HTTP_PARSER_ERRNO(&h->parser) == HPE_PAUSED)
    http_parser_pause(&h->parser, 0);
  if (h->msg_done)
    h1_enter_state(h, h->parser.upgrade ? H1_RAW : H1_HEAD);
  else
    h1_enter_state(h, H1_BODY);
  return 0;
}

static void h1_input(struct h1 *h, const uint8_t *data, size_t len) {
  size_t take, n, end, leftover;

  while (len > 0) {
    switch (h->state) {
    case H1_HEAD:
      take = len;
      if (take > GW_HTTP1_HEAD_MAX - wr_buf_len(&h->head))
        take = GW_HTTP1_HEAD_MAX - wr_buf_len(&h->head);
      if (take == 0) {
        h1_refuse(h, 431, "request head too large");
        return;
      }
      if (wr_buf_append(&h->head, data, take) < 0) {
        gw_conn_close(h->c);
        return;
      }
      h->base = wr_buf_data(&h->head);
      n = http_parser_execute(&h->parser, &h1_settings, (const char *)h->base + h->parsed,
                              wr_buf_len(&h->head) - h->parsed);
      if (!h->head_done) {
        if (HTTP_PARSER_ERRNO(&h->parser) != HPE_OK) {
          h1_refuse(h, 400, http_errno_description(HTTP_PARSER_ERRNO(&h->parser)));
          return;
        }
        h->parsed = wr_buf_len(&h->head);
        data += take;
        len -= take;
        break;
      }
      end = h->parsed + n + 1;
      leftover = wr_buf_len(&h->head) - end;
      data += take - leftover;
      len -= take - leftover;
      if (h1_head_complete(h, end) < 0)
        return;
      h1_reset_head(h);
      break;
    case H1_BODY:
      h->msg_done = 0;
      n = http_parser_execute(&h->parser, &h1_settings, (const char *)data, len);
      if (HTTP_PARSER_ERRNO(&h->parser) != HPE_OK && !h->msg_done) {
        log_debug("http1 %s: request body: %s", gw_conn_peer(h->c),
                  http_errno_description(HTTP_PARSER_ERRNO(&h->parser)));
        gw_conn_close(h->c);
        return;
      }
      if (h->msg_done) {
        http_parser_pause(&h->parser, 0);
        h1_enter_state(h, h->parser.upgrade ? H1_RAW : H1_HEAD);
      } else {
        n = len;
      }
      if (wr_buf_append(&h->up, data, n) < 0) {
        gw_conn_close(h->c);
        return;
      }
      data += n;
      len -= n;
      break;
    case H1_RAW:
      if (wr_buf_append(&h->up, data, len) < 0) {
        gw_conn_close(h->c);
        return;
      }
      len = 0;
      break;
    case H1_DRAIN:
    case H1_DONE:
      return;
    }
  }
}

/* Tunnel callbacks. */

static void h1_on_open(gw_tunnel *t, int status, const char *reason, void *ud) {
  struct h1 *h = ud;

  (void)t;
  if (status != 200) {
    h1_reply(h, status, reason != NULL ? reason : "refused");
    return;
  }
  h->t_open = 1;
  h1_up_flush(h);
}

static void h1_on_data(gw_tunnel *t, const uint8_t *data, size_t len, void *ud) {
  struct h1 *h = ud;

  (void)t;
  h->got_response = 1;
  if (gw_conn_write(h->c, data, len) < 0) {
    gw_conn_close(h->c);
    return;
  }
  h->unacked += len;
}

static void h1_on_eof(gw_tunnel *t, void *ud) {
  struct h1 *h = ud;

  (void)t;
  h->tunnel_eof = 1;
  if (h->state == H1_DRAIN) {
    h1_reply(h, h->drain_status, h->drain_reason);
  } else if (h->state != H1_DONE) {
    h1_enter_state(h, H1_DONE);
    gw_conn_end(h->c);
  }
}

static void h1_on_writable(gw_tunnel *t, void *ud) {
  (void)t;
  h1_up_flush(ud);
}

static void h1_on_close(gw_tunnel *t, int err, void *ud) {
  struct h1 *h = ud;

  (void)t;
  h->t = NULL;
  if (h->state == H1_DONE)
    return;
  if (h->state == H1_DRAIN)
    h1_reply(h, h->drain_status, h->drain_reason);
  else if (!h->got_response)
    h1_reply(h, 502, err != 0 ? wr_strerror(err) : "the node closed the connection");
  else if (err == 0)
    gw_conn_end(h->c);
  else
    gw_conn_close(h->c);
}

static const struct gw_tunnel_cbs h1_tunnel_cbs = {
    .on_open = h1_on_open,
    .on_data = h1_on_data,
    .on_eof = h1_on_eof,
    .on_writable = h1_on_writable,
    .on_close = h1_on_close,
};

/* Client connection callbacks. */

static void h1_conn_read(struct gw_conn *c, const uint8_t *data, size_t len, void *ud) {
  struct h1 *h = ud;

  (void)c;
  h1_input(h, data, len);
  if (h->state != H1_DONE)
    h1_up_flush(h);
}

static void h1_conn_eof(struct gw_conn *c, void *ud) {
  struct h1 *h = ud;

  h->client_eof = 1;
  if (h->t == NULL && h->state != H1_DONE && h->state != H1_DRAIN) {
    gw_conn_close(c);
    return;
  }
  h1_up_flush(h);
}

static void h1_conn_written(struct gw_conn *c, size_t n, void *ud) {
  struct h1 *h = ud;
  size_t k = n < h->unacked ? n : h->unacked;

  (void)c;
  h->unacked -= k;
  if (k > 0 && h->t != NULL)
    gw_tunnel_consume(h->t, k);
}

static void h1_conn_close(struct gw_conn *c, void *ud) {
  struct h1 *h = ud;

  (void)c;
  if (h->t != NULL)
    gw_tunnel_abort(h->t);
  wr_buf_free(&h->head);
  wr_buf_free(&h->up);
  free(h);
}

static const struct gw_conn_cbs h1_conn_cbs = {
    .on_read = h1_conn_read,
    .on_eof = h1_conn_eof,
    .on_written = h1_conn_written,
    .on_close = h1_conn_close,
};

static const struct gw_conn_cbs h1_dead_cbs = {0};

int gw_http1_new(struct gw_conn *c, const struct gw_edge_env *env, const uint8_t *pre,
                 size_t prelen) {
  const char *peer = gw_conn_peer(c);
  struct h1 *h;
  size_t n;

  h = calloc(1, sizeof(*h));
  if (h == NULL) {
    gw_conn_set_cbs(c, &h1_dead_cbs, NULL);
    gw_conn_close(c);
    return WR_ERR_NOMEM;
  }
  h->c = c;
  h->env = env;
  http_parser_init(&h->parser, HTTP_REQUEST);
  h->parser.data = h;
  wr_buf_init(&h->head, GW_HTTP1_HEAD_MAX);
  wr_buf_init(&h->up, H1_UP_MAX);
  /* X-Forwarded-For carries the address without the port or brackets. */
  if (peer[0] == '[') {
    n = strcspn(peer + 1, "]");
    snprintf(h->xff, sizeof(h->xff), "%.*s", (int)n, peer + 1);
  } else {
    n = strcspn(peer, ":");
    snprintf(h->xff, sizeof(h->xff), "%.*s", (int)n, peer);
  }
  gw_conn_set_cbs(c, &h1_conn_cbs, h);
  gw_conn_set_timeout(c, GW_HTTP1_HEAD_TIMEOUT_MS);
  if (prelen > 0)
    h1_conn_read(c, pre, prelen, h);
  return 0;
}
