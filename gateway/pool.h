/*
 * pool.h - the gateway's QUIC connections, one per node endpoint ID.
 *
 * All tunnels to a node share one connection, each on its own stream, so
 * concurrent requests never wait on each other beyond QUIC's stream limit.
 * A connection is opened on first use, re-established on the next use after
 * it is lost, and closed after idle_ms without tunnels. Where a node is
 * reached comes from the pool's directory (routes file, --peer flags,
 * Connector discovery) or from a per-request address hint.
 */
#ifndef WARREN_GW_POOL_H
#define WARREN_GW_POOL_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "warren/identity.h"
#include "warren/quic.h"

struct gw_pool;
struct gw_node;
struct gw_tunnel;

struct gw_pool_config {
  uv_loop_t *loop;
  const wr_identity *id;         /* the gateway's identity (borrowed) */
  const char *bind;              /* UDP bind address; NULL: "0.0.0.0:0" */
  uint64_t idle_ms;              /* 0: 60000; close a connection without tunnels after this */
  uint64_t open_timeout_ms;      /* 0: 10000; handshake + agent answer */
  uint64_t quic_idle_timeout_ms; /* 0: 15000 */
  uint64_t keepalive_ms;         /* 0: 5000 */
};

struct gw_pool_stats {
  size_t nodes;
  size_t connections;      /* currently established */
  uint64_t handshakes;     /* connections ever started */
  uint64_t tunnels_opened; /* tunnels accepted by an agent */
  uint64_t tunnels_failed; /* tunnels that got a non-200 */
};

/* gw_pool_new creates the pool and its QUIC endpoint. Returns 0 or WR_ERR_*. */
int gw_pool_new(struct gw_pool **out, const struct gw_pool_config *cfg);
/* gw_pool_del closes every connection; tunnels get on_close first. */
void gw_pool_del(struct gw_pool *p);
/*
 * Where node |id| listens ("ip:port" or "[v6]:port", port 1-65535). Three
 * sources (docs/internals/gateway-discovery.md): the static directory
 * (--peer, --routes) is the fallback; discovery (Connector status), while it
 * publishes addresses for the node, overrides it; a request's hint
 * (x-warren-node-addr) applies as it comes. When the node's address changes,
 * the connection dialled to the old one is taken off the node: closed at once
 * if no tunnel holds a stream on it, else kept for those tunnels only and
 * closed after the last. Waiting tunnels and new ones dial the new address.
 */
/* gw_pool_set_addr: a request's hint. Returns 0, WR_ERR_INVAL or WR_ERR_NOMEM. */
int gw_pool_set_addr(struct gw_pool *p, const wr_pubkey id, const char *addr);
/* gw_pool_set_static_addr: --peer / --routes. Returns as gw_pool_set_addr. */
int gw_pool_set_static_addr(struct gw_pool *p, const wr_pubkey id, const char *addr);
/* gw_pool_set_published: the |n| addresses discovery found for the node, in
 * published order; n == 0: none any more. The node keeps its current address
 * when it is among them, else takes the first of the QUIC socket's family,
 * else the first. With none, an address that came from discovery falls back
 * to the static one, or to no address (an established connection is left to
 * finish); a hint or static address stays. Writes the node's address into
 * |cur| ("" when none). Returns 1 if the node's address changed, 0 if not,
 * WR_ERR_INVAL (an address that does not parse) or WR_ERR_NOMEM. */
int gw_pool_set_published(struct gw_pool *p, const wr_pubkey id, const char *const *addrs, size_t n,
                          char *cur, size_t curlen);
void gw_pool_stats(const struct gw_pool *p, struct gw_pool_stats *st);

/* For tunnel.c: */
struct gw_node *gw_pool_node(struct gw_pool *p, const wr_pubkey id, int create);
uv_loop_t *gw_pool_loop(const struct gw_pool *p);
uint64_t gw_pool_open_timeout(const struct gw_pool *p);
/* gw_node_acquire asks for a stream for |t|: tunnel.c's gw_tunnel_on_stream
 * or gw_tunnel_on_fail follows, from the loop. */
void gw_node_acquire(struct gw_node *n, struct gw_tunnel *t);
/* gw_node_cancel forgets a waiting tunnel. */
void gw_node_cancel(struct gw_node *n, struct gw_tunnel *t);
/* gw_node_release tells the node a tunnel that had a stream on |c| is gone. */
void gw_node_release(struct gw_node *n, wr_qconn *c);
void gw_node_count_result(struct gw_node *n, int ok);

#endif
