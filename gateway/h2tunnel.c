/* h2tunnel.c - one HTTP/2 server stream bridged to one tunnel. */
#include <stdio.h>
#include <string.h>

#include "warren/err.h"
#include "warren/log.h"

#include "h2tunnel.h"

#define H2TUN_NV(nva, n, name, value)                                                              \
  ((nva)[(n)++] = (nghttp2_nv){(uint8_t *)(name), (uint8_t *)(value), strlen(name), strlen(value), \
                               NGHTTP2_NV_FLAG_NONE})

nghttp2_session *gw_h2tun_session(struct gw_h2tun *ht) {
  return gw_h2s_session(ht->h2);
}

struct gw_h2tun *gw_h2tun_get(nghttp2_session *session, int32_t id) {
  return nghttp2_session_get_stream_user_data(session, id);
}

struct gw_h2tun *gw_h2tun_request(nghttp2_session *session, const nghttp2_frame *frame) {
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return NULL;
  return gw_h2tun_get(session, frame->hd.stream_id);
}

void gw_h2tun_init(struct gw_h2tun *ht, struct gw_h2tun **list, struct gw_h2s *h2, int32_t id,
                   const struct gw_h2tun_ops *ops, size_t up_max, size_t down_max) {
  ht->list = list;
  ht->ops = ops;
  ht->h2 = h2;
  ht->id = id;
  wr_buf_init(&ht->up, up_max);
  wr_buf_init(&ht->down, down_max);
  ht->prev = NULL;
  ht->next = *list;
  if (*list != NULL)
    (*list)->prev = ht;
  *list = ht;
  nghttp2_session_set_stream_user_data(gw_h2tun_session(ht), id, ht);
}

void gw_h2tun_abort(struct gw_h2tun *ht) {
  if (ht->t != NULL) {
    gw_tunnel_abort(ht->t);
    ht->t = NULL;
  }
}

void gw_h2tun_free(struct gw_h2tun *ht, int session_alive) {
  gw_h2tun_abort(ht);
  /* Give back the connection window held by bytes that will never be delivered. */
  if (session_alive && wr_buf_len(&ht->up) > 0)
    (void)nghttp2_session_consume_connection(gw_h2tun_session(ht), wr_buf_len(&ht->up));
  if (ht->prev != NULL)
    ht->prev->next = ht->next;
  else
    *ht->list = ht->next;
  if (ht->next != NULL)
    ht->next->prev = ht->prev;
  wr_buf_free(&ht->up);
  wr_buf_free(&ht->down);
}

void gw_h2tun_del_all(struct gw_h2tun **list) {
  while (*list != NULL)
    (*list)->ops->del(*list, 0);
}

/* Client -> tunnel. */

int gw_h2tun_up_write(struct gw_h2tun *ht, size_t max) {
  size_t want = wr_buf_len(&ht->up);
  int n;

  if (want > max)
    want = max;
  n = gw_tunnel_write(ht->t, wr_buf_data(&ht->up), want, 0);
  if (n <= 0)
    return n;
  wr_buf_consume(&ht->up, (size_t)n);
  (void)nghttp2_session_consume(gw_h2tun_session(ht), ht->id, (size_t)n);
  gw_h2s_flush(ht->h2);
  return n;
}

int gw_h2tun_up_fin(struct gw_h2tun *ht) {
  int rv = gw_tunnel_write(ht->t, NULL, 0, 1);

  if (rv < 0)
    return rv;
  ht->fin_sent = 1;
  return 0;
}

void gw_h2tun_drop_up(struct gw_h2tun *ht) {
  ht->up_dead = 1;
  if (wr_buf_len(&ht->up) > 0)
    (void)nghttp2_session_consume(gw_h2tun_session(ht), ht->id, wr_buf_len(&ht->up));
  wr_buf_reset(&ht->up);
  gw_h2s_flush(ht->h2);
}

/* Tunnel -> client. */

static ssize_t h2tun_read_data(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                               size_t length, uint32_t *flags, nghttp2_data_source *source,
                               void *ud) {
  struct gw_h2tun *ht = source->ptr;
  size_t n = wr_buf_len(&ht->down);

  (void)session;
  (void)stream_id;
  (void)ud;
  if (n == 0 && ht->cut)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM(INTERNAL_ERROR) */
  if (n > length)
    n = length;
  if (n > 0) {
    memcpy(buf, wr_buf_data(&ht->down), n);
    wr_buf_consume(&ht->down, n);
    if (ht->from_tunnel && ht->t != NULL)
      gw_tunnel_consume(ht->t, n);
  }
  if (wr_buf_len(&ht->down) == 0) {
    if (ht->eof)
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    else if (n == 0)
      return NGHTTP2_ERR_DEFERRED;
  }
  return (ssize_t)n;
}

int gw_h2tun_respond(struct gw_h2tun *ht, const nghttp2_nv *nva, size_t nnv, int body) {
  nghttp2_data_provider prd;
  int rv;

  prd.source.ptr = ht;
  prd.read_callback = h2tun_read_data;
  rv = nghttp2_submit_response(gw_h2tun_session(ht), ht->id, nva, nnv, body ? &prd : NULL);
  if (rv != 0) {
    log_warnx("%s: stream %d: submit response: %s", ht->ops->name, ht->id, nghttp2_strerror(rv));
    return WR_ERR_PROTO;
  }
  ht->resp_sent = 1;
  gw_h2s_flush(ht->h2);
  return 0;
}

void gw_h2tun_reason(char *out, size_t outlen, const char *in) {
  size_t i;

  if (in == NULL || *in == '\0')
    in = "refused";
  for (i = 0; in[i] != '\0' && i + 1 < outlen; i++)
    out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : ' ';
  out[i] = '\0';
}

int gw_h2tun_refuse(struct gw_h2tun *ht, int status, const char *why) {
  char st[8], len[24];
  nghttp2_nv nva[4];
  size_t nnv = 0;

  gw_h2tun_drop_up(ht);
  ht->from_tunnel = 0;
  ht->eof = 1;
  wr_buf_reset(&ht->down);
  if (wr_buf_append(&ht->down, why, strlen(why)) < 0 || wr_buf_append(&ht->down, "\n", 1) < 0)
    wr_buf_reset(&ht->down);
  snprintf(st, sizeof(st), "%d", status);
  snprintf(len, sizeof(len), "%zu", wr_buf_len(&ht->down));
  H2TUN_NV(nva, nnv, ":status", st);
  H2TUN_NV(nva, nnv, "content-type", "text/plain; charset=utf-8");
  H2TUN_NV(nva, nnv, "content-length", len);
  H2TUN_NV(nva, nnv, "x-warren-error", why);
  return gw_h2tun_respond(ht, nva, nnv, 1);
}

void gw_h2tun_resume(struct gw_h2tun *ht) {
  if (!ht->h2_closed && ht->resp_sent)
    (void)nghttp2_session_resume_data(gw_h2tun_session(ht), ht->id);
  gw_h2s_flush(ht->h2);
}

void gw_h2tun_rst(struct gw_h2tun *ht, uint32_t code) {
  if (!ht->h2_closed)
    (void)nghttp2_submit_rst_stream(gw_h2tun_session(ht), NGHTTP2_FLAG_NONE, ht->id, code);
  gw_h2s_flush(ht->h2);
}

/* Tunnel callbacks. They only change state and schedule output; nghttp2
 * runs from the loop (gw_h2s_flush), never inside them. */

static void h2tun_on_open(gw_tunnel *t, int status, const char *reason, void *ud) {
  struct gw_h2tun *ht = ud;

  (void)t;
  if (ht->h2_closed) {
    gw_h2tun_abort(ht);
    ht->ops->del(ht, 1);
    return;
  }
  ht->ops->on_open(ht, status, reason);
}

static void h2tun_on_data(gw_tunnel *t, const uint8_t *data, size_t len, void *ud) {
  (void)t;
  ((struct gw_h2tun *)ud)->ops->on_data(ud, data, len);
}

static void h2tun_on_eof(gw_tunnel *t, void *ud) {
  (void)t;
  ((struct gw_h2tun *)ud)->ops->on_eof(ud);
}

static void h2tun_on_writable(gw_tunnel *t, void *ud) {
  (void)t;
  ((struct gw_h2tun *)ud)->ops->up_flush(ud);
}

static void h2tun_on_close(gw_tunnel *t, int err, void *ud) {
  struct gw_h2tun *ht = ud;

  (void)t;
  ht->t = NULL;
  log_trace(ht->ops->trace, "%s: stream %d: tunnel closed (%s)", ht->ops->name, ht->id,
            err != 0 ? wr_strerror(err) : "ok");
  if (ht->h2_closed) {
    ht->ops->del(ht, 1);
    return;
  }
  ht->ops->on_close(ht, err);
}

static const struct gw_tunnel_cbs h2tun_tunnel_cbs = {
    .on_open = h2tun_on_open,
    .on_data = h2tun_on_data,
    .on_eof = h2tun_on_eof,
    .on_writable = h2tun_on_writable,
    .on_close = h2tun_on_close,
};

int gw_h2tun_open(struct gw_h2tun *ht, struct gw_pool *pool, const struct gw_tunnel_req *req) {
  int rv = gw_tunnel_open(pool, req, &h2tun_tunnel_cbs, ht, &ht->t);

  if (rv < 0)
    ht->t = NULL;
  return rv;
}

/* nghttp2 callbacks; the front end's connection is user_data, the
 * gw_h2tun the stream's user data. */

static int h2tun_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  struct gw_h2tun *ht;

  (void)ud;
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
    return 0;
  ht = gw_h2tun_get(session, frame->hd.stream_id);
  if (ht == NULL)
    return 0;
  if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
    ht->client_fin = 1;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
      !ht->started) {
    ht->started = 1;
    ht->ops->start(ht);
  } else if (ht->client_fin) {
    ht->ops->up_flush(ht);
  }
  return 0;
}

static int h2tun_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                               const uint8_t *data, size_t len, void *ud) {
  struct gw_h2tun *ht;
  int n = 0;

  (void)flags;
  (void)ud;
  ht = gw_h2tun_get(session, stream_id);
  if (ht == NULL || ht->up_dead) {
    (void)nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  /* Raw DATA goes to the tunnel at once when nothing is queued before it. */
  if (ht->raw_up && ht->t != NULL && wr_buf_len(&ht->up) == 0) {
    n = gw_tunnel_write(ht->t, data, len, 0);
    if (n < 0) {
      (void)nghttp2_session_consume(session, stream_id, len);
      ht->ops->reset(ht, NGHTTP2_CONNECT_ERROR);
      return 0;
    }
    if (n > 0)
      (void)nghttp2_session_consume(session, stream_id, (size_t)n);
  }
  if ((size_t)n == len)
    return 0;
  if (wr_buf_append(&ht->up, data + n, len - (size_t)n) < 0) {
    /* Cannot happen while the client respects our window. */
    (void)nghttp2_session_consume(session, stream_id, len - (size_t)n);
    gw_h2tun_abort(ht);
    ht->ops->reset(ht, NGHTTP2_FLOW_CONTROL_ERROR);
    return 0;
  }
  ht->ops->up_flush(ht);
  return 0;
}

static int h2tun_on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  struct gw_h2tun *ht;

  (void)ud;
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  ht = gw_h2tun_get(session, frame->hd.stream_id);
  /* Our response is complete: where the front end wants it, ask the client
   * to stop sending the rest of its request (RFC 9113 §8.1). */
  if (ht != NULL && ht->rst_after_end &&
      !nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id))
    (void)nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                    NGHTTP2_NO_ERROR);
  return 0;
}

static int h2tun_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                                 void *ud) {
  struct gw_h2tun *ht;

  (void)ud;
  ht = gw_h2tun_get(session, stream_id);
  if (ht == NULL)
    return 0;
  log_trace(ht->ops->trace, "%s: stream %d: closed (%s)", ht->ops->name, stream_id,
            nghttp2_http2_strerror(error_code));
  ht->h2_closed = 1;
  /* A clean close may leave the tunnel to deliver its FIN and report
   * on_close; anything else (a client's RST_STREAM) aborts it. */
  if (ht->t != NULL && (error_code != NGHTTP2_NO_ERROR || !ht->ops->may_linger(ht)))
    gw_h2tun_abort(ht);
  if (ht->t == NULL)
    ht->ops->del(ht, 1);
  return 0;
}

static int h2tun_on_invalid_frame(nghttp2_session *session, const nghttp2_frame *frame,
                                  int lib_error_code, void *ud) {
  (void)session;
  (void)ud;
  log_trace(WR_TRACE_H2, "h2: stream %d: invalid frame: %s", frame->hd.stream_id,
            nghttp2_strerror(lib_error_code));
  return 0;
}

static int h2tun_on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                          void *ud) {
  (void)session;
  (void)lib_error_code;
  (void)ud;
  log_trace(WR_TRACE_H2, "h2: %.*s", (int)len, msg);
  return 0;
}

int gw_h2tun_callbacks_new(nghttp2_session_callbacks **out,
                           nghttp2_on_begin_headers_callback begin_headers,
                           nghttp2_on_header_callback on_header) {
  nghttp2_session_callbacks *cbs;

  if (nghttp2_session_callbacks_new(&cbs) != 0)
    return WR_ERR_NOMEM;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2tun_on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2tun_on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, h2tun_on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2tun_on_stream_close);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, h2tun_on_invalid_frame);
  nghttp2_session_callbacks_set_error_callback2(cbs, h2tun_on_error);
  *out = cbs;
  return 0;
}
