/*
 * h2tunnel.h - one HTTP/2 server stream bridged to one tunnel.
 *
 * The CONNECT listener (connect.c) and the edge's HTTP/2 handler (http2.c)
 * both turn each request stream of an nghttp2 server session (h2server.h)
 * into a gw_tunnel (tunnel.h). This module is what they share:
 *
 * - the nghttp2 callbacks after the request headers: END_STREAM marks the
 *   client's end (client_fin), the complete request HEADERS start the
 *   stream once, DATA is taken in, a stream close aborts the tunnel unless
 *   the exchange ended cleanly and the front end lets the tunnel finish;
 * - client -> tunnel flow control: the session runs with
 *   NGHTTP2_OPT_NO_AUTO_WINDOW_UPDATE, DATA waits in |up| (capped) and the
 *   client's window is opened (nghttp2_session_consume) only by what the
 *   tunnel took (gw_h2tun_up_write); on_writable retries;
 * - tunnel -> client: a data provider that frames |down|, defers while it is
 *   empty and acknowledges to the tunnel (gw_tunnel_consume) exactly the
 *   tunnel's bytes it framed; gw_h2tun_resume() wakes it;
 * - the text/plain error response both front ends send;
 * - the stream list of a connection, and the stream's teardown.
 *
 * What differs is in the front end's gw_h2tun_ops: how a request is checked
 * and its tunnel opened, how queued client bytes become the tunnel's input
 * (raw for CONNECT, HTTP/1.1 for the edge), and what the tunnel's bytes
 * become (raw DATA for CONNECT, a parsed HTTP/1.1 response for the edge).
 *
 * Ownership: the front end allocates its stream, embeds a struct gw_h2tun in
 * it and calls gw_h2tun_init(); the ops' del callback frees the stream and
 * must call gw_h2tun_free() on the embedded part. The stream is the
 * nghttp2 stream's user data and the tunnel's user data. Callbacks never
 * call into nghttp2's send or receive: output is scheduled (gw_h2s_flush).
 */
#ifndef WARREN_GW_H2TUNNEL_H
#define WARREN_GW_H2TUNNEL_H

#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "warren/buf.h"

#include "h2server.h"
#include "tunnel.h"

struct gw_h2tun;

struct gw_h2tun_ops {
  const char *name; /* log prefix: "connect", "http2" */
  unsigned trace;   /* log_trace category */
  /* start checks the complete request head and opens the tunnel
   * (gw_h2tun_open) or refuses the stream (gw_h2tun_refuse). */
  void (*start)(struct gw_h2tun *ht);
  /* up_flush moves queued client bytes to the tunnel (gw_h2tun_up_write),
   * then its FIN (gw_h2tun_up_fin). */
  void (*up_flush)(struct gw_h2tun *ht);
  /* reset ends the stream with RST_STREAM |code| (gw_h2tun_rst). */
  void (*reset)(struct gw_h2tun *ht, uint32_t code);
  /* may_linger tells whether a stream nghttp2 closed without error leaves
   * its tunnel to finish by itself (deliver its FIN, report on_close). */
  int (*may_linger)(struct gw_h2tun *ht);
  /* The tunnel's events (tunnel.h). on_close comes after ht->t was cleared
   * and only while the h2 stream is open; otherwise the stream is freed. */
  void (*on_open)(struct gw_h2tun *ht, int http_status, const char *reason);
  void (*on_data)(struct gw_h2tun *ht, const uint8_t *data, size_t len);
  void (*on_eof)(struct gw_h2tun *ht);
  void (*on_close)(struct gw_h2tun *ht, int err);
  /* del frees the front end's stream; it must call gw_h2tun_free(). */
  void (*del)(struct gw_h2tun *ht, int session_alive);
};

/* The front end reads these and sets the flags it owns (marked). */
struct gw_h2tun {
  struct gw_h2tun *prev, *next; /* the connection's streams */
  struct gw_h2tun **list;
  const struct gw_h2tun_ops *ops;
  struct gw_h2s *h2;
  int32_t id;
  gw_tunnel *t;          /* NULL before gw_h2tun_open and once the tunnel is gone */
  wr_buf up;             /* client DATA the tunnel has not taken; not yet acknowledged */
  wr_buf down;           /* tunnel bytes (or our error text) not yet framed */
  unsigned started : 1,  /* start ran */
      client_fin : 1,    /* the client's END_STREAM arrived */
      fin_sent : 1,      /* the tunnel got its FIN */
      up_dead : 1,       /* client DATA is dropped (acknowledged on arrival) */
      raw_up : 1,        /* front end: DATA may go to the tunnel as is */
      eof : 1,           /* front end: |down| ends the response body */
      cut : 1,           /* front end: once |down| drains, RST_STREAM(INTERNAL_ERROR) */
      from_tunnel : 1,   /* |down| holds the tunnel's bytes (acknowledged when framed) */
      resp_sent : 1,     /* a final response was submitted */
      rst_after_end : 1, /* front end: after our END_STREAM, stop the client's side */
      h2_closed : 1;     /* nghttp2 closed the stream */
};

/* gw_h2tun_callbacks_new makes the session callbacks of a front end: its
 * own |begin_headers| (which allocates the stream and calls
 * gw_h2tun_init) and |on_header|, and this module's for the rest. Returns
 * 0 or WR_ERR_NOMEM. */
int gw_h2tun_callbacks_new(nghttp2_session_callbacks **out,
                           nghttp2_on_begin_headers_callback begin_headers,
                           nghttp2_on_header_callback on_header);

/* gw_h2tun_init prepares |ht| for stream |id| of |h2|: buffers capped at
 * |up_max| and |down_max|, linked at the head of |*list|, and set as the
 * nghttp2 stream's user data. */
void gw_h2tun_init(struct gw_h2tun *ht, struct gw_h2tun **list, struct gw_h2s *h2, int32_t id,
                   const struct gw_h2tun_ops *ops, size_t up_max, size_t down_max);
/* gw_h2tun_free aborts the tunnel, gives back the connection window held by
 * client bytes never delivered (with |session_alive|), unlinks |ht| and
 * frees its buffers, not |ht| itself. */
void gw_h2tun_free(struct gw_h2tun *ht, int session_alive);
/* gw_h2tun_del_all frees every stream of |*list| through its del callback,
 * for a connection whose session is gone. */
void gw_h2tun_del_all(struct gw_h2tun **list);
/* gw_h2tun_get returns the stream |id|'s gw_h2tun, or NULL. */
struct gw_h2tun *gw_h2tun_get(nghttp2_session *session, int32_t id);
/* gw_h2tun_request returns the stream whose request head |frame| carries,
 * or NULL for any other frame (trailers included) or an unknown stream. */
struct gw_h2tun *gw_h2tun_request(nghttp2_session *session, const nghttp2_frame *frame);
nghttp2_session *gw_h2tun_session(struct gw_h2tun *ht);

/* gw_h2tun_open opens the stream's tunnel; its events go to the ops.
 * Returns 0, WR_ERR_INVAL or WR_ERR_NOMEM (ht->t stays NULL). */
int gw_h2tun_open(struct gw_h2tun *ht, struct gw_pool *pool, const struct gw_tunnel_req *req);
/* gw_h2tun_abort aborts the tunnel, if any; no tunnel callback follows. */
void gw_h2tun_abort(struct gw_h2tun *ht);

/* gw_h2tun_up_write passes up to |max| queued client bytes to the tunnel
 * and opens the client's window by what it took. Returns that (>= 0) or
 * WR_ERR_CLOSED. */
int gw_h2tun_up_write(struct gw_h2tun *ht, size_t max);
/* gw_h2tun_up_fin sends the tunnel its FIN. Returns 0 or WR_ERR_CLOSED. */
int gw_h2tun_up_fin(struct gw_h2tun *ht);
/* gw_h2tun_drop_up gives back the window held by queued client bytes that
 * will never reach the tunnel, and acknowledges later DATA on arrival. */
void gw_h2tun_drop_up(struct gw_h2tun *ht);

/* gw_h2tun_respond submits a final response; with |body| the data provider
 * frames |down|. Returns 0 or WR_ERR_PROTO. */
int gw_h2tun_respond(struct gw_h2tun *ht, const nghttp2_nv *nva, size_t nnv, int body);
/* gw_h2tun_reason copies |in| for a header value, control characters
 * replaced; "refused" when |in| is NULL or empty. */
void gw_h2tun_reason(char *out, size_t outlen, const char *in);
/* gw_h2tun_refuse drops the client's DATA and answers |status| with |why|
 * (from gw_h2tun_reason) as a text/plain body and x-warren-error. Returns
 * 0 or WR_ERR_PROTO. */
int gw_h2tun_refuse(struct gw_h2tun *ht, int status, const char *why);
/* gw_h2tun_resume wakes the data provider after |down| or |eof| changed. */
void gw_h2tun_resume(struct gw_h2tun *ht);
/* gw_h2tun_rst submits RST_STREAM |code| unless the stream is closed. */
void gw_h2tun_rst(struct gw_h2tun *ht, uint32_t code);

#endif
