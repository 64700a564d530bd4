/* tls.c - self-signed Ed25519 certificates and key pinning for QUIC (see tls.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "tls.h"
#include "warren/err.h"
#include "warren/log.h"
#include "warren/quic.h"

/* TLS 1.3 only; AES-128-GCM first (GnuTLS's ChaCha20 is 14x slower here, see
 * reference/quic-performance.md); no middlebox compatibility mode in QUIC. */
static const char tls_priority[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
    "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:-SIGN-ALL:+SIGN-EDDSA-ED25519:"
    "%DISABLE_TLS13_COMPAT_MODE";

struct wr_tls_ctx {
  gnutls_certificate_credentials_t cred;
  wr_tls_verify_cb verify;
};

static int make_cert(gnutls_x509_crt_t *crtp, gnutls_x509_privkey_t *keyp, const wr_identity *id) {
  gnutls_x509_crt_t crt = NULL;
  gnutls_x509_privkey_t key = NULL;
  gnutls_datum_t x = {(unsigned char *)id->pk, WR_PUBKEY_LEN};
  gnutls_datum_t k = {(unsigned char *)id->seed, WR_SEED_LEN};
  char cn[WR_ID_HEX_LEN + 1];
  uint8_t serial[16];
  time_t now = time(NULL);
  int rv = WR_ERR_TLS;

  if (gnutls_x509_privkey_init(&key) < 0 || gnutls_x509_crt_init(&crt) < 0)
    goto out;
  if (gnutls_x509_privkey_import_ecc_raw(key, GNUTLS_ECC_CURVE_ED25519, &x, NULL, &k) < 0)
    goto out;
  wr_id_to_hex(id->pk, cn);
  gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
  serial[0] &= 0x7f;
  if (gnutls_x509_crt_set_version(crt, 3) < 0 || gnutls_x509_crt_set_key(crt, key) < 0 ||
      gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
      gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
      gnutls_x509_crt_set_expiration_time(crt, now + 20 * 365 * 86400L) < 0 ||
      gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, WR_ID_HEX_LEN) < 0)
    goto out;
  if (gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA512, 0) < 0)
    goto out;
  *crtp = crt;
  *keyp = key;
  crt = NULL;
  key = NULL;
  rv = 0;
out:
  if (crt != NULL)
    gnutls_x509_crt_deinit(crt);
  if (key != NULL)
    gnutls_x509_privkey_deinit(key);
  return rv;
}

/* verify_peer runs when the peer's Certificate message arrives. TLS 1.3's
 * CertificateVerify (checked by GnuTLS) then proves the peer holds the key,
 * so pinning the key alone authenticates the peer. */
static int verify_peer(gnutls_session_t session) {
  struct wr_tls_conn *tc = gnutls_session_get_ptr(session);
  const gnutls_datum_t *certs;
  unsigned int ncerts = 0;
  gnutls_x509_crt_t crt = NULL;
  gnutls_ecc_curve_t curve;
  gnutls_datum_t x = {NULL, 0};
  int rv = -1;

  certs = gnutls_certificate_get_peers(session, &ncerts);
  if (certs == NULL || ncerts == 0) {
    log_warnx("tls: peer sent no certificate");
    return -1;
  }
  if (gnutls_x509_crt_init(&crt) < 0)
    return -1;
  if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) < 0 ||
      gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, NULL) < 0) {
    log_warnx("tls: cannot read the peer certificate's key");
    goto out;
  }
  if (curve != GNUTLS_ECC_CURVE_ED25519 || x.size != WR_PUBKEY_LEN) {
    log_warnx("tls: peer key is not Ed25519");
    goto out;
  }
  rv = tc->verify(tc->verify_arg, x.data) == 0 ? 0 : -1;
out:
  gnutls_free(x.data);
  gnutls_x509_crt_deinit(crt);
  return rv;
}

int wr_tls_ctx_new(wr_tls_ctx **out, const wr_identity *id) {
  wr_tls_ctx *ctx;
  gnutls_x509_crt_t crt = NULL;
  gnutls_x509_privkey_t key = NULL;
  int rv = WR_ERR_TLS;

  ctx = calloc(1, sizeof(*ctx));
  if (ctx == NULL)
    return WR_ERR_NOMEM;
  if (gnutls_certificate_allocate_credentials(&ctx->cred) < 0) {
    ctx->cred = NULL;
    goto out;
  }
  if (make_cert(&crt, &key, id) != 0) {
    log_warnx("tls: cannot create the Ed25519 certificate");
    goto out;
  }
  if (gnutls_certificate_set_x509_key(ctx->cred, &crt, 1, key) < 0)
    goto out;
  gnutls_certificate_set_verify_function(ctx->cred, verify_peer);
  *out = ctx;
  ctx = NULL;
  rv = 0;
out:
  if (crt != NULL)
    gnutls_x509_crt_deinit(crt);
  if (key != NULL)
    gnutls_x509_privkey_deinit(key);
  if (ctx != NULL)
    wr_tls_ctx_del(ctx);
  return rv;
}

void wr_tls_ctx_del(wr_tls_ctx *ctx) {
  if (ctx == NULL)
    return;
  if (ctx->cred != NULL)
    gnutls_certificate_free_credentials(ctx->cred);
  free(ctx);
}

int wr_tls_session_new(gnutls_session_t *out, wr_tls_ctx *ctx, int server, struct wr_tls_conn *tc) {
  static const gnutls_datum_t alpn = {(unsigned char *)WR_QUIC_ALPN, sizeof(WR_QUIC_ALPN) - 1};
  gnutls_session_t s = NULL;
  int rv;

  rv = gnutls_init(&s, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_END_OF_EARLY_DATA);
  if (rv < 0)
    return WR_ERR_TLS;
  if ((server ? ngtcp2_crypto_gnutls_configure_server_session(s)
              : ngtcp2_crypto_gnutls_configure_client_session(s)) != 0)
    goto fail;
  if ((rv = gnutls_priority_set_direct(s, tls_priority, NULL)) < 0) {
    log_warnx("tls: priority: %s", gnutls_strerror(rv));
    goto fail;
  }
  if (gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, ctx->cred) < 0)
    goto fail;
  if (gnutls_alpn_set_protocols(s, &alpn, 1, GNUTLS_ALPN_MANDATORY) < 0)
    goto fail;
  if (server)
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
  gnutls_session_set_ptr(s, tc);
  *out = s;
  return 0;
fail:
  gnutls_deinit(s);
  return WR_ERR_TLS;
}
