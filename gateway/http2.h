/*
 * http2.h - the edge's HTTP/2 handler: one client connection, one tunnel per
 * request stream.
 *
 * It serves h2c with prior knowledge on the clear port and h2 negotiated by
 * ALPN on the TLS port, over the shared nghttp2 glue (h2server.h). Each
 * request stream is routed by :authority (wr_routes_match) and opens its own
 * tunnel; the request goes to the service as HTTP/1.1 (request line, Host,
 * the client's headers minus hop-by-hop ones, X-Forwarded-For/-Proto/-Host,
 * "Transfer-Encoding: chunked" when a body has no length, and
 * "Connection: close"), and the service's HTTP/1.1 response is parsed by
 * http-parser into HEADERS and DATA: hop-by-hop headers are dropped, chunked
 * bodies are de-chunked, and every piece of body is framed as soon as it
 * arrives, so Server-Sent Events stream. Interim (1xx) responses are passed
 * on as non-final HEADERS.
 *
 * Flow control is end to end both ways: the client's DATA is acknowledged
 * (WINDOW_UPDATE) only for what the tunnel took, and the tunnel's bytes are
 * acknowledged (gw_tunnel_consume) once framed. Neither body is ever held
 * whole.
 *
 * Errors: an unknown host gets 404, a refused tunnel its status, a response
 * head over GW_HTTP2_HEAD_MAX or one http-parser rejects 502, each with a
 * text/plain reason and an x-warren-error header. A tunnel that fails after
 * the response headers were sent resets the stream (INTERNAL_ERROR); a
 * client's RST_STREAM aborts the stream's tunnel. docs/internals/edge.md has
 * the details.
 */
#ifndef WARREN_GW_HTTP2_H
#define WARREN_GW_HTTP2_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "http1.h"

#define GW_HTTP2_HEAD_MAX (64u << 10)         /* a request or response head, in bytes */
#define GW_HTTP2_IDLE_TIMEOUT_MS (120 * 1000) /* a connection without streams */

/* gw_http2_new takes over |c| and starts a server session on it; |pre|
 * holds bytes already read from it (the client's preface, in clear). Returns
 * 0, WR_ERR_NOMEM or WR_ERR_PROTO; on failure |c| is closed. */
int gw_http2_new(struct gw_conn *c, const struct gw_edge_env *env, const uint8_t *pre,
                 size_t prelen);

#endif
