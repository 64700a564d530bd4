/*
 * tls.h (private to lib/) - GnuTLS configuration for warren's QUIC: a
 * self-signed Ed25519 certificate made from the node identity, TLS 1.3 only
 * with AES-GCM first, and a certificate check that pins the peer's Ed25519
 * key instead of trusting a CA. Whether a key is acceptable is decided by
 * the connection's |verify| callback (quic.c).
 */
#ifndef WARREN_TLS_H
#define WARREN_TLS_H

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "warren/identity.h"

typedef struct wr_tls_ctx wr_tls_ctx;

/* Returns 0 to accept the peer key |pk|, nonzero to abort the handshake. */
typedef int (*wr_tls_verify_cb)(void *arg, const uint8_t pk[WR_PUBKEY_LEN]);

/* Per-connection TLS glue, embedded in the connection. gnutls's session
 * pointer refers to it; |ref| comes first because ngtcp2_crypto_gnutls reads
 * the session pointer as an ngtcp2_crypto_conn_ref. */
struct wr_tls_conn {
  ngtcp2_crypto_conn_ref ref;
  wr_tls_verify_cb verify;
  void *verify_arg;
};

/* wr_tls_ctx_new builds credentials for |id|. Returns 0, WR_ERR_TLS or WR_ERR_NOMEM. */
int wr_tls_ctx_new(wr_tls_ctx **out, const wr_identity *id);
void wr_tls_ctx_del(wr_tls_ctx *ctx);
/* wr_tls_session_new creates a QUIC TLS session in the given role; |tc|
 * must outlive it. Returns 0 or WR_ERR_TLS. */
int wr_tls_session_new(gnutls_session_t *out, wr_tls_ctx *ctx, int server, struct wr_tls_conn *tc);

#endif
