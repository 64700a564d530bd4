/*
 * tunnel.h - one proxied byte stream from the gateway to a target on a node.
 *
 * A front end (the CONNECT listener, the edge listener) opens a tunnel with
 * the node's endpoint ID and the target "host:port". The tunnel obtains a
 * QUIC connection from the pool (shared by all tunnels to that node), opens
 * one stream, sends the request header and waits for the agent's answer,
 * reported through on_open as an HTTP status: 200 when accepted, else the
 * status matching the refusal or failure (403 not exposed, 502 unreachable
 * node or target, 503 overloaded, 504 timeout) with a reason.
 *
 * After a 200, bytes flow both ways. Flow control is end to end: on_data
 * hands out bytes the front end must pass on and then acknowledge with
 * gw_tunnel_consume(); gw_tunnel_write() accepts only what fits and
 * on_writable says when to resume.
 *
 * Lifetime: the handle is valid until on_close returns, or until the front
 * end calls gw_tunnel_abort() (after which no callback fires).
 */
#ifndef WARREN_GW_TUNNEL_H
#define WARREN_GW_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

#include "warren/identity.h"

struct gw_pool;
typedef struct gw_tunnel gw_tunnel;

struct gw_tunnel_cbs {
  void (*on_open)(gw_tunnel *t, int http_status, const char *reason, void *ud);
  void (*on_data)(gw_tunnel *t, const uint8_t *data, size_t len, void *ud);
  void (*on_eof)(gw_tunnel *t, void *ud);
  void (*on_writable)(gw_tunnel *t, void *ud);
  /* |err| is 0 when both directions finished cleanly, else WR_ERR_*. */
  void (*on_close)(gw_tunnel *t, int err, void *ud);
};

struct gw_tunnel_req {
  const uint8_t *endpoint_id; /* WR_PUBKEY_LEN bytes */
  const char *node_addr;      /* "ip:port" hint, or NULL to use the pool's directory */
  const char *target;         /* "host:port" on the node's side */
  const char *peer;           /* client address for the agent's log, or NULL */
};

/* gw_tunnel_open starts opening a tunnel; on_open follows from the loop,
 * never from inside this call. Returns 0, WR_ERR_INVAL or WR_ERR_NOMEM. */
int gw_tunnel_open(struct gw_pool *pool, const struct gw_tunnel_req *req,
                   const struct gw_tunnel_cbs *cbs, void *ud, gw_tunnel **out);
/* gw_tunnel_write queues up to |len| bytes towards the target and returns how
 * many it took (>= 0) or WR_ERR_CLOSED. |fin| applies once all were taken. */
int gw_tunnel_write(gw_tunnel *t, const uint8_t *data, size_t len, int fin);
/* gw_tunnel_consume acknowledges |n| bytes delivered by on_data. */
void gw_tunnel_consume(gw_tunnel *t, size_t n);
/* gw_tunnel_abort resets the stream and frees the tunnel; no callbacks follow. */
void gw_tunnel_abort(gw_tunnel *t);

#endif
