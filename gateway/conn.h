/*
 * conn.h - an accepted client connection: a uv stream, in clear or under
 * GnuTLS server TLS, with a capped output queue.
 *
 * Every front end of the gateway (the CONNECT listener, the edge's HTTP/1.1
 * and HTTP/2 handlers) talks to its client through a gw_conn, so that TLS is
 * one layer they do not see. GnuTLS runs over the stream with custom
 * push/pull functions: ciphertext read from the socket is queued for pull,
 * and push appends records to the output queue.
 *
 * Reads are delivered as plaintext through on_read; the owner stops them
 * with gw_conn_read_stop() while its destination is full. Writes are copied
 * into the output queue (capped at GW_CONN_OUT_MAX plaintext bytes) and
 * on_written reports, in order, how many plaintext bytes reached the socket.
 *
 * Lifetime: gw_conn_close() closes at once, gw_conn_end() after the queue has
 * drained (with a TLS close_notify and a lingering read, so that a response
 * is not lost to a reset). on_close fires exactly once, from the loop, and
 * the handle is freed when it returns; no other callback follows it.
 */
#ifndef WARREN_GW_CONN_H
#define WARREN_GW_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define GW_CONN_OUT_MAX (16u << 20) /* plaintext bytes queued towards one client */
#define GW_CONN_PEER_MAX 64         /* "[v6]:port" */

struct gw_tls_ctx;
struct gw_conn;

/* gw_tls_ctx_new loads a PEM certificate chain and key for a TLS server that
 * offers ALPN "h2" then "http/1.1". Returns 0, WR_ERR_TLS (details logged) or
 * WR_ERR_NOMEM. */
int gw_tls_ctx_new(struct gw_tls_ctx **out, const char *cert_file, const char *key_file);
void gw_tls_ctx_del(struct gw_tls_ctx *ctx);

struct gw_conn_cbs {
  /* TLS handshake finished (TLS connections only); gw_conn_alpn() is set. */
  void (*on_ready)(struct gw_conn *c, void *ud);
  void (*on_read)(struct gw_conn *c, const uint8_t *data, size_t len, void *ud);
  /* The client closed its sending side. */
  void (*on_eof)(struct gw_conn *c, void *ud);
  void (*on_written)(struct gw_conn *c, size_t n, void *ud);
  void (*on_close)(struct gw_conn *c, void *ud);
};

/* A list of connections, so that a listener can close all of them. */
struct gw_conn_list {
  struct gw_conn *head;
};

/* gw_conn_accept accepts a pending connection on |server| and starts
 * reading, under TLS when |tls| is set. The connection joins |list|.
 * Returns 0, WR_ERR_NOMEM, WR_ERR_TLS or -errno. */
int gw_conn_accept(struct gw_conn **out, uv_stream_t *server, struct gw_tls_ctx *tls,
                   struct gw_conn_list *list, const struct gw_conn_cbs *cbs, void *ud);
/* gw_conn_set_cbs hands the connection to another owner. */
void gw_conn_set_cbs(struct gw_conn *c, const struct gw_conn_cbs *cbs, void *ud);
/* gw_conn_write queues |len| bytes. Returns 0, WR_ERR_TOOBIG (queue full),
 * WR_ERR_CLOSED or WR_ERR_TLS. */
int gw_conn_write(struct gw_conn *c, const void *data, size_t len);
/* gw_conn_queued tells how many plaintext bytes are not yet on the socket. */
size_t gw_conn_queued(const struct gw_conn *c);
void gw_conn_read_start(struct gw_conn *c);
void gw_conn_read_stop(struct gw_conn *c);
/* gw_conn_set_timeout closes the connection after |ms| milliseconds unless
 * called again; 0 cancels. */
void gw_conn_set_timeout(struct gw_conn *c, uint64_t ms);
/* gw_conn_end closes once the output queue has drained; no more reads are delivered. */
void gw_conn_end(struct gw_conn *c);
/* gw_conn_close closes now, dropping queued output. */
void gw_conn_close(struct gw_conn *c);
/* gw_conn_peer is the client's "ip:port", or "" for a Unix socket. */
const char *gw_conn_peer(const struct gw_conn *c);
/* gw_conn_alpn is the negotiated ALPN protocol, or NULL. */
const char *gw_conn_alpn(const struct gw_conn *c);
int gw_conn_is_tls(const struct gw_conn *c);

/* gw_conn_list_close_all calls every connection's on_close now, then closes them. */
void gw_conn_list_close_all(struct gw_conn_list *list);

/* gw_conn_loop is the loop the connection runs on. */
uv_loop_t *gw_conn_loop(const struct gw_conn *c);

/* gw_listen_tcp binds the initialised |h| to "ip:port" or "[v6]:port" and
 * listens. Returns 0, WR_ERR_INVAL or -errno (logged). */
int gw_listen_tcp(uv_tcp_t *h, const char *addr, uv_connection_cb cb);
/* gw_listen_unix binds the initialised |h| to |path| (replacing a stale
 * socket), makes it mode 0660 and listens. Returns 0 or -errno (logged). */
int gw_listen_unix(uv_pipe_t *h, const char *path, uv_connection_cb cb);

#endif
