/*
 * edge.h - the standalone gateway's public listener (no Envoy in front).
 *
 * A plain address serves HTTP/1.1 and h2c with prior knowledge (the first
 * bytes of a connection tell the two apart); an optional TLS address serves
 * both, with a certificate and key from PEM files, by ALPN ("h2", then
 * "http/1.1"). Requests are routed by Host or :authority with
 * wr_routes_match(); an unknown host gets 404, a refused tunnel the tunnel's
 * status, each with a text/plain reason (http1.h, http2.h).
 * docs/internals/edge.md has the details.
 */
#ifndef WARREN_GW_EDGE_H
#define WARREN_GW_EDGE_H

#include <uv.h>

struct gw_pool;
struct gw_edge;
struct wr_routes;

struct gw_edge_config {
  const char *addr;     /* "ip:port" in clear (HTTP/1.1 and h2c), or NULL */
  const char *tls_addr; /* "ip:port" for HTTPS, or NULL */
  const char *tls_cert; /* PEM certificate chain file, required with tls_addr */
  const char *tls_key;  /* PEM private key file, required with tls_addr */
};

/* gw_edge_new starts listening. |routes| is borrowed until replaced with
 * gw_edge_set_routes() or gw_edge_del(). Returns 0, WR_ERR_INVAL (no
 * address, or TLS without cert/key), WR_ERR_TLS, WR_ERR_NOMEM or -errno
 * (all logged). */
int gw_edge_new(struct gw_edge **out, uv_loop_t *loop, struct gw_pool *pool,
                const struct wr_routes *routes, const struct gw_edge_config *cfg);
/* gw_edge_set_routes switches to a new table for requests routed from now
 * on; open tunnels stay. The old table may be freed when this returns. */
void gw_edge_set_routes(struct gw_edge *e, const struct wr_routes *routes);
/* gw_edge_del stops listening and closes every connection; their tunnels
 * are aborted before it returns. Handles finish closing on the loop. */
void gw_edge_del(struct gw_edge *e);

#endif
