/*
 * connect.h - the CONNECT listener Envoy's tcp_proxy tunnels into.
 *
 * HTTP/2 in clear with prior knowledge, on a Unix socket (the Envoy sidecar
 * case) and/or a TCP address. Each request stream is one tunnel:
 *
 *   :method CONNECT, :authority <target host:port>
 *   x-warren-endpoint-id: <64 hex or 52 z-base-32>   (required)
 *   x-warren-node-addr: <ip:port>                    (optional hint)
 *   x-forwarded-for: <client>                        (optional, logged by the agent)
 *
 * The answer is the tunnel's status (200, or 400/403/405/502/503/504 with a
 * text/plain reason and an x-warren-error header), then DATA both ways with
 * end-to-end flow control. docs/internals/connect-listener.md has the details.
 */
#ifndef WARREN_GW_CONNECT_H
#define WARREN_GW_CONNECT_H

#include <uv.h>

struct gw_pool;
struct gw_connect;

/* gw_connect_new listens on |unix_path| and/or |tcp_addr| ("ip:port"); at
 * least one must be set. Returns 0, WR_ERR_INVAL, WR_ERR_NOMEM or -errno
 * (logged). */
int gw_connect_new(struct gw_connect **out, uv_loop_t *loop, struct gw_pool *pool,
                   const char *unix_path, const char *tcp_addr);
/* gw_connect_del stops listening and closes every connection; their tunnels
 * are aborted before it returns. Handles finish closing on the loop. */
void gw_connect_del(struct gw_connect *c);

#endif
