/*
 * http1.h - the edge's HTTP/1.1 handler: one client connection, one tunnel.
 *
 * The first request's Host picks the route (wr_routes_match) and opens the
 * tunnel; the client's bytes then pass through as they are, except that
 * every request head gets X-Forwarded-For, -Proto and -Host (replacing any
 * the client sent). Responses are not parsed: the node's bytes go to the
 * client as they arrive, so Server-Sent Events and long bodies stream, and
 * after an Upgrade request the connection is a raw byte pipe (WebSocket).
 * A later request for a host that routes elsewhere gets 421 Misdirected
 * Request once the responses before it are delivered, then the connection
 * closes. Heads are capped at GW_HTTP1_HEAD_MAX (431), and a client that
 * does not complete its first head within GW_HTTP1_HEAD_TIMEOUT_MS is
 * dropped. http-parser finds the head boundaries; nothing is hand-parsed.
 */
#ifndef WARREN_GW_HTTP1_H
#define WARREN_GW_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"

#define GW_HTTP1_HEAD_MAX (32u << 10)
#define GW_HTTP1_HEAD_TIMEOUT_MS 30000

struct gw_pool;
struct wr_routes;

/* What a handler needs from its edge; the edge owns it and outlives its connections. */
struct gw_edge_env {
  struct gw_pool *pool;
  const struct wr_routes *routes; /* current table, swapped on reload */
};

/* gw_http1_new takes over |c|; |pre| holds bytes already read from it.
 * Returns 0 or WR_ERR_NOMEM (then |c| is closed). */
int gw_http1_new(struct gw_conn *c, const struct gw_edge_env *env, const uint8_t *pre,
                 size_t prelen);

/* gw_http1_reply writes a complete text/plain error response with an
 * X-Warren-Error header and ends the connection. */
void gw_http1_reply(struct gw_conn *c, int status, const char *reason);
/* gw_http_status_text names a status ("Bad Gateway"). */
const char *gw_http_status_text(int status);

#endif
