/*
 * quic.h - warren's QUIC endpoint: ngtcp2 0.12 + GnuTLS on the libuv loop.
 *
 * One wr_quic owns one path (UDP socket today; relay later, see path.h) and
 * any number of connections in both roles. Both ends present a self-signed
 * Ed25519 certificate made from their identity, and each pins the peer's
 * public key: a client dials a known endpoint ID, a server accepts only the
 * endpoint IDs it was configured to trust. ALPN is "warren-tunnel/1".
 *
 * Ownership: connections and streams belong to the endpoint. A connection
 * handle is valid until its on_conn_closed callback returns; a stream handle
 * until its on_close callback returns. Closing the endpoint closes all.
 *
 * Backpressure: received stream data is handed to on_recv, which must take
 * it (copy or queue); flow-control credit is returned to the peer only when
 * the application calls wr_qstream_consume() for those bytes, so what an
 * application holds per stream is bounded by the stream window and a slow
 * consumer stops the sender.
 * Writes copy into a per-stream send buffer capped at stream_sndbuf bytes;
 * when full, wr_qstream_write() accepts less and on_writable fires later.
 */
#ifndef WARREN_QUIC_H
#define WARREN_QUIC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "warren/identity.h"

#define WR_QUIC_ALPN "warren-tunnel/1"

typedef struct wr_quic wr_quic;
typedef struct wr_qconn wr_qconn;
typedef struct wr_qstream wr_qstream;

/* Application error codes carried in CONNECTION_CLOSE / RESET_STREAM. */
enum wr_quic_app_err {
  WR_QERR_NONE = 0,
  WR_QERR_INTERNAL = 1,
  WR_QERR_SHUTDOWN = 2,    /* endpoint going away */
  WR_QERR_IDLE = 3,        /* pool dropped an idle connection */
  WR_QERR_STREAM_ABORT = 4 /* the other side of the proxied connection failed */
};

struct wr_quic_cbs {
  /* A connection finished its handshake (both roles). */
  void (*on_conn_ready)(wr_qconn *c, void *ud);
  /* The peer opened a stream. Set its callbacks with wr_qstream_set_cbs. */
  void (*on_stream)(wr_qconn *c, wr_qstream *s, void *ud);
  /* The connection is gone (|err| is 0 for a clean close, else WR_ERR_*);
   * every stream of it got on_close first. The handle dies after return. */
  void (*on_conn_closed)(wr_qconn *c, int err, void *ud);
  /* More streams can be opened on |c| after wr_qconn_open_stream said AGAIN. */
  void (*on_streams_available)(wr_qconn *c, void *ud);
};

struct wr_quic_config {
  uv_loop_t *loop;
  const wr_identity *id;    /* borrowed; must outlive the endpoint */
  const char *bind;         /* "ip:port", e.g. "127.0.0.1:0" */
  int server;               /* accept incoming connections */
  const wr_pubkey *trusted; /* server: peer keys accepted (borrowed) */
  size_t ntrusted;
  uint64_t idle_timeout_ms;      /* 0: 30000 */
  uint64_t keepalive_ms;         /* 0: 10000; PING while idle to keep NAT state */
  uint64_t handshake_timeout_ms; /* 0: 5000 */
  uint64_t stream_window;        /* 0: 1 MiB; per-stream receive window */
  uint64_t conn_window;          /* 0: 32 MiB; per-connection receive window */
  uint64_t max_streams;          /* 0: 4096; concurrent bidi streams the peer may open */
  size_t stream_sndbuf;          /* 0: 256 KiB; per-stream send buffer cap */
  const struct wr_quic_cbs *cbs;
  void *ud;
};

struct wr_qstream_cbs {
  /* Bytes arrived; |fin| marks the end of the peer's data. Call
   * wr_qstream_consume() once they have been passed on. */
  void (*on_recv)(wr_qstream *s, const uint8_t *data, size_t len, int fin, void *ud);
  /* Send buffer space became available after a short write. */
  void (*on_writable)(wr_qstream *s, void *ud);
  /* Stream fully closed or reset (|app_err| nonzero for a reset or connection
   * loss). The handle dies after return. */
  void (*on_close)(wr_qstream *s, uint64_t app_err, void *ud);
};

/* wr_quic_new creates an endpoint bound to cfg->bind. Returns 0, -errno,
 * WR_ERR_INVAL, WR_ERR_TLS or WR_ERR_NOMEM. */
int wr_quic_new(wr_quic **out, const struct wr_quic_config *cfg);
/* wr_quic_del closes all connections immediately and frees the endpoint.
 * Its libuv handles finish closing on the next loop iteration. */
void wr_quic_del(wr_quic *q);
/* wr_quic_shutdown closes all connections gracefully (CONNECTION_CLOSE). */
void wr_quic_shutdown(wr_quic *q);
/* wr_quic_local_addr copies the bound address. Returns 0 or -errno. */
int wr_quic_local_addr(wr_quic *q, struct sockaddr_storage *ss);
/* wr_quic_set_trusted replaces the server's trusted key list (borrowed). */
void wr_quic_set_trusted(wr_quic *q, const wr_pubkey *trusted, size_t n);

/* wr_quic_connect starts a handshake to |addr|, expecting the peer to hold
 * |peer|. on_conn_ready or on_conn_closed follows. Returns 0, WR_ERR_*. */
int wr_quic_connect(wr_quic *q, const struct sockaddr *addr, const wr_pubkey peer, wr_qconn **out);

/* wr_qconn_open_stream opens a bidirectional stream. Returns 0, WR_ERR_AGAIN
 * (stream limit or handshake not done; on_streams_available / on_conn_ready
 * follows), WR_ERR_CLOSED or WR_ERR_NOMEM. */
int wr_qconn_open_stream(wr_qconn *c, wr_qstream **out);
/* wr_qconn_close sends CONNECTION_CLOSE with |app_err|; on_conn_closed follows. */
void wr_qconn_close(wr_qconn *c, uint64_t app_err);
const uint8_t *wr_qconn_peer_key(const wr_qconn *c);
int wr_qconn_is_ready(const wr_qconn *c);
size_t wr_qconn_nstreams(const wr_qconn *c);
void wr_qconn_set_data(wr_qconn *c, void *data);
void *wr_qconn_get_data(const wr_qconn *c);
/* wr_qconn_describe writes "peer=<hex8> addr=ip:port" for logs. */
const char *wr_qconn_describe(const wr_qconn *c, char *buf, size_t len);

void wr_qstream_set_cbs(wr_qstream *s, const struct wr_qstream_cbs *cbs, void *ud);
/* wr_qstream_write copies up to |len| bytes (all of them, or as many as fit
 * the send buffer) and returns how many (>= 0), or WR_ERR_CLOSED. |fin| takes
 * effect only when every byte was accepted. */
int wr_qstream_write(wr_qstream *s, const uint8_t *data, size_t len, int fin);
/* wr_qstream_write_space tells how many bytes a write would accept now. */
size_t wr_qstream_write_space(const wr_qstream *s);
/* wr_qstream_want_writable asks for one on_writable call once the send
 * buffer is at most half full (for callers that size reads by write_space). */
void wr_qstream_want_writable(wr_qstream *s);
/* wr_qstream_consume returns |n| received bytes of credit to the peer. */
void wr_qstream_consume(wr_qstream *s, size_t n);
/* wr_qstream_reset aborts both directions with |app_err|; on_close follows. */
void wr_qstream_reset(wr_qstream *s, uint64_t app_err);
int64_t wr_qstream_id(const wr_qstream *s);
wr_qconn *wr_qstream_conn(const wr_qstream *s);

#endif
