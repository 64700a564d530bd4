/*
 * quic.c - warren's QUIC endpoint on ngtcp2 0.12 + GnuTLS (see quic.h).
 *
 * Structure, after ngtcp2's examples: the endpoint owns one path and a list
 * of connections. A received datagram is matched to a connection by its
 * destination connection ID (a server creates a connection for a valid
 * Initial), fed to ngtcp2_conn_read_pkt, and the connection is marked dirty.
 * Dirty connections are written once per loop iteration, from a uv_check
 * callback (right after the I/O that dirtied them) or a uv_idle callback
 * (when the writes came from a timer, before the poll), whichever runs first
 * iteration, in GSO batches. Each connection has one timer armed at
 * ngtcp2_conn_get_expiry.
 *
 * Connections and streams are never freed inside ngtcp2 callbacks: a
 * connection that fails is closed from the top level (read, timer, flush),
 * and its memory is released in its timer's close callback.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <sodium.h>

#include "tls.h"
#include "warren/addr.h"
#include "warren/bufq.h"
#include "warren/err.h"
#include "warren/log.h"
#include "warren/loop.h"
#include "warren/path.h"
#include "warren/quic.h"

#define SCID_LEN 18
#define MAX_SCIDS 8
#define SEND_CHUNK 16384
#define MAX_VEC 16
#define STATIC_SECRET_LEN 32
/* Consecutive probe timeouts after which the peer is declared dead. PTOs
 * back off exponentially from about one RTT, so this adapts to the path:
 * ~1.5 s on loopback, well under the idle timeout on most paths. */
#define MAX_PTO 6

struct wr_qstream {
  wr_qconn *conn;
  int64_t id;
  struct wr_qstream_cbs cbs;
  void *ud;
  wr_bufq sendq;
  uint64_t unconsumed; /* delivered to the app, not yet credited back */
  unsigned fin_pending : 1;
  unsigned fin_sent : 1;
  unsigned blocked : 1;
  unsigned want_writable : 1;
  unsigned in_pending : 1;
  struct wr_qstream *next; /* connection's list of streams */
  struct wr_qstream *prev;
  struct wr_qstream *pnext;  /* connection's queue of streams with data to send */
  struct wr_qstream **pprev; /* the link pointing at this stream in that queue */
  struct wr_qstream *wnext;  /* connection's list of streams to tell "writable" */
  unsigned in_wlist : 1;
};

struct wr_qconn {
  wr_quic *q;
  ngtcp2_conn *conn;
  gnutls_session_t tls;
  struct wr_tls_conn tc;
  uv_timer_t timer;
  struct sockaddr_storage remote;
  socklen_t remotelen;
  wr_pubkey peer;
  int server;
  int ready;
  int dead;
  int close_err;     /* set inside callbacks; acted on at top level */
  int peer_rejected; /* our verify callback refused the peer */
  ngtcp2_cid scids[MAX_SCIDS];
  size_t nscids;
  struct wr_qstream *streams;
  size_t nstreams;
  struct wr_qstream *phead, *ptail; /* pending-write queue */
  struct wr_qstream *whead;         /* streams whose send buffer drained */
  int dirty;
  wr_qconn *dnext; /* endpoint's dirty list */
  wr_qconn *next, *prev;
  void *data;
};

struct wr_quic {
  uv_loop_t *loop;
  const wr_identity *id;
  struct wr_quic_cbs cbs;
  void *ud;
  int server;
  const wr_pubkey *trusted;
  size_t ntrusted;
  uint64_t idle_timeout_ms, keepalive_ms, handshake_timeout_ms;
  uint64_t stream_window, conn_window, max_streams;
  size_t stream_sndbuf;
  wr_path *path;
  wr_tls_ctx *tls;
  struct sockaddr_storage local;
  socklen_t locallen;
  wr_qconn *conns;
  wr_qconn *dirty;
  uv_idle_t flush;       /* runs before the poll and keeps it from blocking */
  uv_check_t flush_late; /* runs right after the poll's I/O callbacks */
  int flush_active;
  int nclosed; /* handles closed at teardown (free at 2) */
  int blocked; /* the path is full: wait for on_writable */
  uint8_t static_secret[STATIC_SECRET_LEN];
  uint8_t txbuf[WR_PATH_MAX_BATCH + WR_PATH_MAX_DGRAM];
};

static void conn_close_now(wr_qconn *c, int err);
static int conn_write(wr_qconn *c);

/* --- small helpers ---------------------------------------------------- */

static void peer_hex8(const wr_qconn *c, char out[9]) {
  char hex[WR_ID_HEX_LEN + 1];

  wr_id_to_hex(c->peer, hex);
  memcpy(out, hex, 8);
  out[8] = '\0';
}

const char *wr_qconn_describe(const wr_qconn *c, char *buf, size_t len) {
  char id8[9], addr[WR_ADDRSTRLEN];

  peer_hex8(c, id8);
  snprintf(buf, len, "peer=%s addr=%s", id8,
           wr_addr_format((const struct sockaddr *)&c->remote, addr, sizeof(addr)));
  return buf;
}

static void schedule_flush(wr_quic *q);

static void mark_dirty(wr_qconn *c) {
  if (c->dirty || c->dead)
    return;
  c->dirty = 1;
  c->dnext = c->q->dirty;
  c->q->dirty = c;
  schedule_flush(c->q);
}

/* The pending-write queue is doubly linked through |pnext| and |pprev| (the
 * address of the link that points at the stream), so any stream leaves it
 * in O(1) when it is reset or freed. */
static void pending_push(wr_qstream *s) {
  wr_qconn *c = s->conn;

  if (s->in_pending || s->blocked)
    return;
  s->in_pending = 1;
  s->pnext = NULL;
  s->pprev = c->ptail != NULL ? &c->ptail->pnext : &c->phead;
  *s->pprev = s;
  c->ptail = s;
}

static void pending_remove(wr_qstream *s) {
  wr_qconn *c = s->conn;

  if (!s->in_pending)
    return;
  *s->pprev = s->pnext;
  if (s->pnext != NULL)
    s->pnext->pprev = s->pprev;
  else if (s->pprev == &c->phead)
    c->ptail = NULL;
  else
    c->ptail = (wr_qstream *)(void *)((char *)s->pprev - offsetof(wr_qstream, pnext));
  s->in_pending = 0;
  s->pnext = NULL;
  s->pprev = NULL;
}

static wr_qstream *pending_pop(wr_qconn *c) {
  wr_qstream *s = c->phead;

  if (s != NULL)
    pending_remove(s);
  return s;
}

static int stream_has_output(const wr_qstream *s) {
  return s->sendq.unsent > 0 || (s->fin_pending && !s->fin_sent);
}

/* --- streams ---------------------------------------------------------- */

static wr_qstream *stream_new(wr_qconn *c, int64_t id) {
  wr_qstream *s = calloc(1, sizeof(*s));

  if (s == NULL)
    return NULL;
  s->conn = c;
  s->id = id;
  wr_bufq_init(&s->sendq, SEND_CHUNK, c->q->stream_sndbuf);
  s->next = c->streams;
  if (c->streams != NULL)
    c->streams->prev = s;
  c->streams = s;
  c->nstreams++;
  ngtcp2_conn_set_stream_user_data(c->conn, id, s);
  return s;
}

/* stream_free unlinks and frees |s|, crediting back what the app still held. */
static void stream_free(wr_qstream *s) {
  wr_qconn *c = s->conn;

  pending_remove(s);
  if (s->in_wlist) {
    wr_qstream **pp;

    for (pp = &c->whead; *pp != NULL; pp = &(*pp)->wnext) {
      if (*pp == s) {
        *pp = s->wnext;
        break;
      }
    }
  }
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    c->streams = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  c->nstreams--;
  if (s->unconsumed > 0 && !c->dead)
    ngtcp2_conn_extend_max_offset(c->conn, s->unconsumed);
  wr_bufq_free(&s->sendq);
  free(s);
}

void wr_qstream_set_cbs(wr_qstream *s, const struct wr_qstream_cbs *cbs, void *ud) {
  s->cbs = *cbs;
  s->ud = ud;
}

int wr_qstream_write(wr_qstream *s, const uint8_t *data, size_t len, int fin) {
  int n;

  if (s->conn->dead || s->fin_pending)
    return WR_ERR_CLOSED;
  n = len > 0 ? wr_bufq_append(&s->sendq, data, len) : 0;
  if (n < 0)
    return n;
  if ((size_t)n < len)
    s->want_writable = 1;
  else if (fin)
    s->fin_pending = 1;
  if (stream_has_output(s)) {
    pending_push(s);
    mark_dirty(s->conn);
  }
  return n;
}

size_t wr_qstream_write_space(const wr_qstream *s) {
  return wr_bufq_space(&s->sendq);
}

void wr_qstream_want_writable(wr_qstream *s) {
  s->want_writable = 1;
}

void wr_qstream_consume(wr_qstream *s, size_t n) {
  wr_qconn *c = s->conn;

  if (c->dead)
    return;
  if (n > s->unconsumed)
    n = (size_t)s->unconsumed;
  s->unconsumed -= n;
  ngtcp2_conn_extend_max_stream_offset(c->conn, s->id, n);
  ngtcp2_conn_extend_max_offset(c->conn, n);
  mark_dirty(c);
}

void wr_qstream_reset(wr_qstream *s, uint64_t app_err) {
  wr_qconn *c = s->conn;

  if (c->dead)
    return;
  pending_remove(s);
  ngtcp2_conn_shutdown_stream(c->conn, s->id, app_err);
  mark_dirty(c);
}

int64_t wr_qstream_id(const wr_qstream *s) {
  return s->id;
}

wr_qconn *wr_qstream_conn(const wr_qstream *s) {
  return s->conn;
}

/* --- ngtcp2 callbacks ------------------------------------------------- */

static void rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *ctx) {
  (void)ctx;
  (void)gnutls_rnd(GNUTLS_RND_RANDOM, dest, destlen);
}

static int scid_add(wr_qconn *c, const ngtcp2_cid *cid) {
  if (c->nscids == MAX_SCIDS)
    return -1;
  c->scids[c->nscids++] = *cid;
  return 0;
}

static int get_new_connection_id_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token,
                                    size_t cidlen, void *user_data) {
  wr_qconn *c = user_data;

  (void)conn;
  if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  cid->datalen = cidlen;
  if (ngtcp2_crypto_generate_stateless_reset_token(token, c->q->static_secret,
                                                   sizeof(c->q->static_secret), cid) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (scid_add(c, cid) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int remove_connection_id_cb(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *user_data) {
  wr_qconn *c = user_data;
  size_t i;

  (void)conn;
  for (i = 0; i < c->nscids; i++) {
    if (ngtcp2_cid_eq(&c->scids[i], cid)) {
      c->scids[i] = c->scids[--c->nscids];
      break;
    }
  }
  return 0;
}

/* A server is ready when its handshake completes. A client waits for
 * confirmation (HANDSHAKE_DONE), which the server sends only after it has
 * checked the client's certificate: a client whose key is not trusted thus
 * never reports ready and never opens streams. */
static int handshake_completed_cb(ngtcp2_conn *conn, void *user_data) {
  wr_qconn *c = user_data;

  (void)conn;
  if (c->server)
    c->ready = 1;
  return 0;
}

static int recv_stateless_reset_cb(ngtcp2_conn *conn, const ngtcp2_pkt_stateless_reset *sr,
                                   void *user_data) {
  wr_qconn *c = user_data;

  (void)conn;
  (void)sr;
  c->close_err = WR_ERR_CLOSED; /* the peer lost our connection: it restarted */
  return 0;
}

static int handshake_confirmed_cb(ngtcp2_conn *conn, void *user_data) {
  wr_qconn *c = user_data;

  (void)conn;
  c->ready = 1;
  return 0;
}

static int recv_stream_data_cb(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id,
                               uint64_t offset, const uint8_t *data, size_t datalen,
                               void *user_data, void *stream_user_data) {
  wr_qconn *c = user_data;
  wr_qstream *s = stream_user_data;

  (void)offset;
  if (s == NULL || s->cbs.on_recv == NULL) {
    /* No owner (yet): refuse the stream rather than buffer for nobody. */
    ngtcp2_conn_shutdown_stream(conn, stream_id, WR_QERR_INTERNAL);
    ngtcp2_conn_extend_max_offset(conn, datalen);
    return 0;
  }
  s->unconsumed += datalen;
  s->cbs.on_recv(s, data, datalen, (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0, s->ud);
  (void)c;
  return 0;
}

static int acked_stream_data_offset_cb(ngtcp2_conn *conn, int64_t stream_id, uint64_t offset,
                                       uint64_t datalen, void *user_data, void *stream_user_data) {
  wr_qstream *s = stream_user_data;

  (void)conn;
  (void)stream_id;
  (void)offset;
  (void)user_data;
  if (s == NULL)
    return 0;
  wr_bufq_ack(&s->sendq, (size_t)datalen);
  return 0;
}

static int stream_open_cb(ngtcp2_conn *conn, int64_t stream_id, void *user_data) {
  wr_qconn *c = user_data;
  wr_qstream *s;

  if (!ngtcp2_is_bidi_stream(stream_id) || ngtcp2_conn_is_local_stream(conn, stream_id))
    return 0;
  s = stream_new(c, stream_id);
  if (s == NULL)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (c->q->cbs.on_stream != NULL)
    c->q->cbs.on_stream(c, s, c->q->ud);
  return 0;
}

static int stream_close_cb(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id,
                           uint64_t app_error_code, void *user_data, void *stream_user_data) {
  wr_qstream *s = stream_user_data;

  (void)user_data;
  if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET))
    app_error_code = 0;
  if (!ngtcp2_conn_is_local_stream(conn, stream_id) && ngtcp2_is_bidi_stream(stream_id))
    ngtcp2_conn_extend_max_streams_bidi(conn, 1);
  if (s == NULL)
    return 0;
  if (s->cbs.on_close != NULL)
    s->cbs.on_close(s, app_error_code, s->ud);
  stream_free(s);
  return 0;
}

/* A reset or STOP_SENDING from the peer aborts the proxied connection as a
 * whole: shut both directions so that the stream closes promptly. */
static int stream_reset_cb(ngtcp2_conn *conn, int64_t stream_id, uint64_t final_size,
                           uint64_t app_error_code, void *user_data, void *stream_user_data) {
  (void)final_size;
  (void)user_data;
  (void)stream_user_data;
  ngtcp2_conn_shutdown_stream(conn, stream_id, app_error_code);
  return 0;
}

static int stream_stop_sending_cb(ngtcp2_conn *conn, int64_t stream_id, uint64_t app_error_code,
                                  void *user_data, void *stream_user_data) {
  (void)user_data;
  (void)stream_user_data;
  ngtcp2_conn_shutdown_stream(conn, stream_id, app_error_code);
  return 0;
}

static int extend_max_local_streams_bidi_cb(ngtcp2_conn *conn, uint64_t max_streams,
                                            void *user_data) {
  wr_qconn *c = user_data;

  (void)conn;
  (void)max_streams;
  if (c->ready && c->q->cbs.on_streams_available != NULL)
    c->q->cbs.on_streams_available(c, c->q->ud);
  return 0;
}

static int extend_max_stream_data_cb(ngtcp2_conn *conn, int64_t stream_id, uint64_t max_data,
                                     void *user_data, void *stream_user_data) {
  wr_qstream *s = stream_user_data;

  (void)conn;
  (void)stream_id;
  (void)max_data;
  (void)user_data;
  if (s != NULL && s->blocked) {
    s->blocked = 0;
    if (stream_has_output(s))
      pending_push(s);
  }
  return 0;
}

static void ngtcp2_log(void *user_data, const char *fmt, ...) WR_PRINTF(2, 3);
static void ngtcp2_log(void *user_data, const char *fmt, ...) {
  char msg[512];
  va_list ap;

  (void)user_data;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  log_trace(WR_TRACE_QUIC, "ngtcp2: %s", msg);
}

static ngtcp2_conn *get_conn_cb(ngtcp2_crypto_conn_ref *ref) {
  wr_qconn *c = ref->user_data;

  return c->conn;
}

/* verify_cb is called by tls.c with the peer's Ed25519 key. */
static int verify_cb(void *arg, const uint8_t pk[WR_PUBKEY_LEN]) {
  wr_qconn *c = arg;
  wr_quic *q = c->q;
  char hex[WR_ID_HEX_LEN + 1];
  size_t i;

  if (!c->server) {
    if (sodium_memcmp(c->peer, pk, WR_PUBKEY_LEN) == 0)
      return 0;
    wr_id_to_hex(pk, hex);
    log_warnx("quic: server presented key %.16s..., expected another: handshake aborted", hex);
    c->peer_rejected = 1;
    return -1;
  }
  for (i = 0; i < q->ntrusted; i++) {
    if (sodium_memcmp(q->trusted[i], pk, WR_PUBKEY_LEN) == 0) {
      memcpy(c->peer, pk, WR_PUBKEY_LEN);
      return 0;
    }
  }
  wr_id_to_hex(pk, hex);
  log_warnx("quic: rejected untrusted peer %s", hex);
  c->peer_rejected = 1;
  return -1;
}

/* --- connections ------------------------------------------------------ */

static void on_timer(uv_timer_t *t);

static void fill_callbacks(ngtcp2_callbacks *cb, int server) {
  memset(cb, 0, sizeof(*cb));
  if (server)
    cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  else
    cb->client_initial = ngtcp2_crypto_client_initial_cb;
  cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb->encrypt = ngtcp2_crypto_encrypt_cb;
  cb->decrypt = ngtcp2_crypto_decrypt_cb;
  cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
  cb->update_key = ngtcp2_crypto_update_key_cb;
  cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb->handshake_completed = handshake_completed_cb;
  cb->handshake_confirmed = handshake_confirmed_cb;
  cb->recv_stateless_reset = recv_stateless_reset_cb;
  cb->recv_stream_data = recv_stream_data_cb;
  cb->acked_stream_data_offset = acked_stream_data_offset_cb;
  cb->stream_open = stream_open_cb;
  cb->stream_close = stream_close_cb;
  cb->stream_reset = stream_reset_cb;
  cb->stream_stop_sending = stream_stop_sending_cb;
  cb->extend_max_local_streams_bidi = extend_max_local_streams_bidi_cb;
  cb->extend_max_stream_data = extend_max_stream_data_cb;
  cb->rand = rand_cb;
  cb->get_new_connection_id = get_new_connection_id_cb;
  cb->remove_connection_id = remove_connection_id_cb;
}

static void fill_settings(wr_quic *q, ngtcp2_settings *st, ngtcp2_transport_params *tp) {
  ngtcp2_settings_default(st);
  st->initial_ts = wr_now();
  st->handshake_timeout = q->handshake_timeout_ms * NGTCP2_MILLISECONDS;
  /* Windows start at the configured size and auto-tune up to 16x, so a
   * fast consumer is not capped by the initial window. */
  st->max_stream_window = q->stream_window * 16;
  st->max_window = q->conn_window * 4;
  /* BBRv2, not Cubic: ngtcp2 0.12's Cubic (and Reno) stop growing the
   * window at 2.89 x max delivery rate x all-time min RTT. When RTT is
   * mostly scheduling delay (a busy host, a loaded laptop) the min RTT is a
   * lucky 50 us sample and the window stays near 80 KB while the real RTT
   * is 0.3-1.3 ms: bulk transfers collapse to a third. BBRv2 models the
   * path instead (docs/architecture.md section 7). */
  st->cc_algo = NGTCP2_CC_ALGO_BBR2;
  if (log_trace_enabled(WR_TRACE_QUIC))
    st->log_printf = ngtcp2_log;
  ngtcp2_transport_params_default(tp);
  tp->initial_max_stream_data_bidi_local = q->stream_window;
  tp->initial_max_stream_data_bidi_remote = q->stream_window;
  tp->initial_max_stream_data_uni = 0;
  tp->initial_max_data = q->conn_window;
  tp->initial_max_streams_bidi = q->max_streams;
  tp->initial_max_streams_uni = 0;
  tp->max_idle_timeout = q->idle_timeout_ms * NGTCP2_MILLISECONDS;
  tp->active_connection_id_limit = 7;
}

static wr_qconn *conn_alloc(wr_quic *q, const struct sockaddr *remote, socklen_t remotelen,
                            int server) {
  wr_qconn *c = calloc(1, sizeof(*c));

  if (c == NULL)
    return NULL;
  c->q = q;
  c->server = server;
  memcpy(&c->remote, remote, remotelen);
  c->remotelen = remotelen;
  c->tc.ref.get_conn = get_conn_cb;
  c->tc.ref.user_data = c;
  c->tc.verify = verify_cb;
  c->tc.verify_arg = c;
  uv_timer_init(q->loop, &c->timer);
  c->timer.data = c;
  return c;
}

static void conn_link(wr_qconn *c) {
  wr_quic *q = c->q;

  c->next = q->conns;
  if (q->conns != NULL)
    q->conns->prev = c;
  q->conns = c;
}

static void on_conn_freed(uv_handle_t *h) {
  wr_qconn *c = h->data;

  if (c->conn != NULL)
    ngtcp2_conn_del(c->conn);
  if (c->tls != NULL)
    gnutls_deinit(c->tls);
  free(c);
}

/* conn_discard releases a connection that was never linked or announced. */
static void conn_discard(wr_qconn *c) {
  uv_close((uv_handle_t *)&c->timer, on_conn_freed);
}

static ngtcp2_path make_path(wr_qconn *c) {
  ngtcp2_path p;

  memset(&p, 0, sizeof(p));
  p.local.addr = (struct sockaddr *)&c->q->local;
  p.local.addrlen = c->q->locallen;
  p.remote.addr = (struct sockaddr *)&c->remote;
  p.remote.addrlen = c->remotelen;
  return p;
}

int wr_quic_connect(wr_quic *q, const struct sockaddr *addr, const wr_pubkey peer, wr_qconn **out) {
  ngtcp2_callbacks cb;
  ngtcp2_settings st;
  ngtcp2_transport_params tp;
  ngtcp2_cid dcid, scid;
  ngtcp2_path path;
  socklen_t alen = wr_addr_len(addr);
  wr_qconn *c;
  int rv;

  if (alen == 0 || addr->sa_family != q->local.ss_family)
    return WR_ERR_INVAL;
  c = conn_alloc(q, addr, alen, 0);
  if (c == NULL)
    return WR_ERR_NOMEM;
  memcpy(c->peer, peer, WR_PUBKEY_LEN);
  dcid.datalen = SCID_LEN;
  scid.datalen = SCID_LEN;
  (void)gnutls_rnd(GNUTLS_RND_RANDOM, dcid.data, dcid.datalen);
  (void)gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen);
  fill_callbacks(&cb, 0);
  fill_settings(q, &st, &tp);
  path = make_path(c);
  rv = ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &st, &tp,
                              NULL, c);
  if (rv != 0) {
    log_warnx("quic: ngtcp2_conn_client_new: %s", ngtcp2_strerror(rv));
    c->conn = NULL;
    conn_discard(c);
    return WR_ERR_QUIC;
  }
  rv = wr_tls_session_new(&c->tls, q->tls, 0, &c->tc);
  if (rv != 0) {
    conn_discard(c);
    return rv;
  }
  ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);
  ngtcp2_conn_set_keep_alive_timeout(c->conn, q->keepalive_ms * NGTCP2_MILLISECONDS);
  scid_add(c, &scid);
  conn_link(c);
  mark_dirty(c);
  *out = c;
  return 0;
}

static wr_qconn *conn_accept(wr_quic *q, const struct sockaddr *from, socklen_t fromlen,
                             const uint8_t *data, size_t len) {
  ngtcp2_pkt_hd hd;
  ngtcp2_callbacks cb;
  ngtcp2_settings st;
  ngtcp2_transport_params tp;
  ngtcp2_cid scid;
  ngtcp2_path path;
  wr_qconn *c;
  int rv;

  if (ngtcp2_accept(&hd, data, len) != 0)
    return NULL;
  c = conn_alloc(q, from, fromlen, 1);
  if (c == NULL)
    return NULL;
  scid.datalen = SCID_LEN;
  (void)gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen);
  fill_callbacks(&cb, 1);
  fill_settings(q, &st, &tp);
  tp.original_dcid = hd.dcid;
  tp.stateless_reset_token_present = 1;
  if (ngtcp2_crypto_generate_stateless_reset_token(tp.stateless_reset_token, q->static_secret,
                                                   sizeof(q->static_secret), &scid) != 0)
    goto fail;
  path = make_path(c);
  rv = ngtcp2_conn_server_new(&c->conn, &hd.scid, &scid, &path, hd.version, &cb, &st, &tp, NULL, c);
  if (rv != 0) {
    log_warnx("quic: ngtcp2_conn_server_new: %s", ngtcp2_strerror(rv));
    c->conn = NULL;
    goto fail;
  }
  if (wr_tls_session_new(&c->tls, q->tls, 1, &c->tc) != 0)
    goto fail;
  ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);
  ngtcp2_conn_set_keep_alive_timeout(c->conn, q->keepalive_ms * NGTCP2_MILLISECONDS);
  scid_add(c, &scid);
  /* Packets the client still addresses to its chosen DCID must find us. */
  scid_add(c, &hd.dcid);
  conn_link(c);
  return c;
fail:
  conn_discard(c);
  return NULL;
}

static int close_err_from_ngtcp2(wr_qconn *c, int liberr) {
  ngtcp2_connection_close_error ce;

  if (c->peer_rejected)
    return WR_ERR_PEER;
  if (c->close_err != 0)
    return c->close_err;
  switch (liberr) {
  case NGTCP2_ERR_IDLE_CLOSE:
  case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
    return WR_ERR_TIMEOUT;
  case NGTCP2_ERR_CRYPTO:
    return WR_ERR_TLS;
  case NGTCP2_ERR_DRAINING:
    ngtcp2_conn_get_connection_close_error(c->conn, &ce);
    if (ce.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT &&
        (ce.error_code & ~0xffu) == NGTCP2_CRYPTO_ERROR)
      return WR_ERR_PEER; /* the peer's TLS refused us: our key is not trusted */
    if (ce.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION ||
        ce.error_code == NGTCP2_NO_ERROR)
      return 0;
    return WR_ERR_QUIC;
  default:
    return WR_ERR_QUIC;
  }
}

/* conn_send_close writes a CONNECTION_CLOSE carrying |ce| (best effort). */
static void conn_send_close(wr_qconn *c, const ngtcp2_connection_close_error *ce) {
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  ngtcp2_ssize n;

  if (ngtcp2_conn_is_in_closing_period(c->conn) || ngtcp2_conn_is_in_draining_period(c->conn))
    return;
  ngtcp2_path_storage_zero(&ps);
  n = ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, c->q->txbuf, WR_PATH_MAX_DGRAM, ce,
                                         wr_now());
  if (n > 0)
    (void)wr_path_send(c->q->path, (struct sockaddr *)&c->remote, c->remotelen, c->q->txbuf,
                       (size_t)n, (size_t)n);
}

/* conn_fail handles a fatal ngtcp2 error |liberr| at top level. */
static void conn_fail(wr_qconn *c, int liberr) {
  ngtcp2_connection_close_error ce;
  int err = close_err_from_ngtcp2(c, liberr);

  if (liberr != NGTCP2_ERR_DRAINING && liberr != NGTCP2_ERR_IDLE_CLOSE &&
      liberr != NGTCP2_ERR_DROP_CONN && liberr != NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
    ngtcp2_connection_close_error_default(&ce);
    if (liberr == NGTCP2_ERR_CRYPTO)
      ngtcp2_connection_close_error_set_transport_error_tls_alert(
          &ce, ngtcp2_conn_get_tls_alert(c->conn), NULL, 0);
    else
      ngtcp2_connection_close_error_set_transport_error_liberr(&ce, liberr, NULL, 0);
    conn_send_close(c, &ce);
  }
  conn_close_now(c, err);
}

/* conn_close_now tells every stream and the owner that |c| is gone, unlinks
 * it and frees it once its timer handle has closed. */
static void conn_close_now(wr_qconn *c, int err) {
  wr_quic *q = c->q;
  wr_qconn **pp;
  char desc[96];

  if (c->dead)
    return;
  c->dead = 1;
  while (c->streams != NULL) {
    wr_qstream *s = c->streams;

    if (s->cbs.on_close != NULL)
      s->cbs.on_close(s, WR_QERR_STREAM_ABORT, s->ud);
    stream_free(s);
  }
  if (err != 0)
    log_info("quic: connection %s closed: %s", wr_qconn_describe(c, desc, sizeof(desc)),
             wr_strerror(err));
  else
    log_debug("quic: connection %s closed", wr_qconn_describe(c, desc, sizeof(desc)));
  if (q->cbs.on_conn_closed != NULL && (c->ready || !c->server))
    q->cbs.on_conn_closed(c, err, q->ud);
  for (pp = &q->dirty; *pp != NULL; pp = &(*pp)->dnext) {
    if (*pp == c) {
      *pp = c->dnext;
      break;
    }
  }
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    q->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_conn_freed);
}

void wr_qconn_close(wr_qconn *c, uint64_t app_err) {
  ngtcp2_connection_close_error ce;

  if (c->dead)
    return;
  ngtcp2_connection_close_error_default(&ce);
  ngtcp2_connection_close_error_set_application_error(&ce, app_err, NULL, 0);
  conn_send_close(c, &ce);
  conn_close_now(c, 0);
}

int wr_qconn_open_stream(wr_qconn *c, wr_qstream **out) {
  int64_t id;
  wr_qstream *s;
  int rv;

  if (c->dead)
    return WR_ERR_CLOSED;
  if (!c->ready)
    return WR_ERR_AGAIN;
  rv = ngtcp2_conn_open_bidi_stream(c->conn, &id, NULL);
  if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
    return WR_ERR_AGAIN;
  if (rv != 0)
    return WR_ERR_QUIC;
  s = stream_new(c, id);
  if (s == NULL) {
    ngtcp2_conn_shutdown_stream(c->conn, id, WR_QERR_INTERNAL);
    return WR_ERR_NOMEM;
  }
  *out = s;
  return 0;
}

const uint8_t *wr_qconn_peer_key(const wr_qconn *c) {
  return c->peer;
}

int wr_qconn_is_ready(const wr_qconn *c) {
  return c->ready && !c->dead;
}

size_t wr_qconn_nstreams(const wr_qconn *c) {
  return c->nstreams;
}

void wr_qconn_set_data(wr_qconn *c, void *data) {
  c->data = data;
}

void *wr_qconn_get_data(const wr_qconn *c) {
  return c->data;
}

/* --- I/O -------------------------------------------------------------- */

static void arm_timer(wr_qconn *c) {
  ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(c->conn), now = wr_now();
  uint64_t ms;

  if (expiry == UINT64_MAX) {
    uv_timer_stop(&c->timer);
    return;
  }
  ms = expiry <= now ? 0 : (expiry - now + NGTCP2_MILLISECONDS - 1) / NGTCP2_MILLISECONDS;
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

static int send_batch(wr_qconn *c, size_t len, size_t seg) {
  int rv =
      wr_path_send(c->q->path, (struct sockaddr *)&c->remote, c->remotelen, c->q->txbuf, len, seg);

  if (rv == WR_ERR_AGAIN) {
    c->q->blocked = 1;
    return rv;
  }
  return 0; /* Other errors: the datagrams are lost; QUIC recovers. */
}

/* notify_writable tells the owners of streams whose send buffer drained
 * below half. A callback may write, reset or even close the connection. */
static void notify_writable(wr_qconn *c) {
  while (c->whead != NULL && !c->dead) {
    wr_qstream *s = c->whead;

    c->whead = s->wnext;
    s->in_wlist = 0;
    s->want_writable = 0;
    if (s->cbs.on_writable != NULL)
      s->cbs.on_writable(s, s->ud);
  }
}

/* conn_write writes as many packets as congestion control and pacing allow,
 * in GSO batches of equal-sized datagrams. */
static int conn_write(wr_qconn *c) {
  wr_quic *q = c->q;
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  ngtcp2_tstamp ts = wr_now();
  size_t maxpkt = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->conn);
  size_t quantum = ngtcp2_conn_get_send_quantum(c->conn);
  size_t maxpkts, npkts = 0, off = 0, seg = 0;
  wr_qstream *s = NULL;

  if (maxpkt > WR_PATH_MAX_DGRAM)
    maxpkt = WR_PATH_MAX_DGRAM;
  maxpkts = quantum / maxpkt;
  if (maxpkts > WR_PATH_MAX_BATCH / maxpkt)
    maxpkts = WR_PATH_MAX_BATCH / maxpkt;
  if (maxpkts == 0)
    maxpkts = 1;
  ngtcp2_path_storage_zero(&ps);
  while (npkts < maxpkts && !q->blocked) {
    struct iovec iov[MAX_VEC];
    ngtcp2_vec vec[MAX_VEC];
    size_t nvec = 0, total = 0, i;
    uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
    ngtcp2_ssize ndatalen = -1, nwrite;
    int64_t sid = -1;

    if (s == NULL)
      s = pending_pop(c);
    if (s != NULL) {
      nvec = wr_bufq_peek(&s->sendq, iov, MAX_VEC);
      for (i = 0; i < nvec; i++) {
        vec[i].base = iov[i].iov_base;
        vec[i].len = iov[i].iov_len;
        total += iov[i].iov_len;
      }
      if (s->fin_pending && !s->fin_sent && total == s->sendq.unsent)
        flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
      sid = s->id;
    }
    /* The buffer offered is the largest datagram, not the current path
     * size: PMTUD probes are bigger than the path size they test. */
    nwrite = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, q->txbuf + off, WR_PATH_MAX_DGRAM,
                                       &ndatalen, flags, sid, nvec ? vec : NULL, nvec, ts);
    if (s != NULL && ndatalen >= 0) {
      wr_bufq_sent(&s->sendq, (size_t)ndatalen);
      if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && (size_t)ndatalen == total)
        s->fin_sent = 1;
      if (s->want_writable && !s->in_wlist && wr_bufq_space(&s->sendq) >= s->sendq.cap / 2) {
        /* Told after the write loop, not from inside it. */
        s->in_wlist = 1;
        s->wnext = c->whead;
        c->whead = s;
      }
    }
    if (nwrite < 0) {
      switch (nwrite) {
      case NGTCP2_ERR_STREAM_DATA_BLOCKED:
        s->blocked = 1;
        s = NULL;
        continue;
      case NGTCP2_ERR_STREAM_SHUT_WR:
      case NGTCP2_ERR_STREAM_NOT_FOUND:
        s = NULL;
        continue;
      case NGTCP2_ERR_WRITE_MORE:
        /* The packet has room: add the next stream's data to it. */
        if (stream_has_output(s))
          pending_push(s);
        s = NULL;
        continue;
      default:
        log_debug("quic: writev_stream: %s", ngtcp2_strerror((int)nwrite));
        conn_fail(c, (int)nwrite);
        return -1;
      }
    }
    if (s != NULL) {
      if (stream_has_output(s))
        pending_push(s); /* round robin */
      s = NULL;
    }
    if (nwrite == 0)
      break;
    npkts++;
    if (off > 0 && (size_t)nwrite > seg) {
      /* A bigger packet cannot join a GSO batch of smaller ones. */
      if (send_batch(c, off, seg) != 0) {
        off = 0;
        break;
      }
      memmove(q->txbuf, q->txbuf + off, (size_t)nwrite);
      off = 0;
    }
    if (off == 0)
      seg = (size_t)nwrite;
    off += (size_t)nwrite;
    if ((size_t)nwrite < seg || off + WR_PATH_MAX_DGRAM > WR_PATH_MAX_BATCH) {
      if (send_batch(c, off, seg) != 0) {
        off = 0;
        break;
      }
      off = 0;
    }
  }
  if (off > 0)
    (void)send_batch(c, off, seg);
  if (s != NULL && stream_has_output(s))
    pending_push(s);
  ngtcp2_conn_update_pkt_tx_time(c->conn, ts);
  arm_timer(c);
  /* Not done (quantum used up with data left): come back next iteration. */
  if (npkts == maxpkts && (c->phead != NULL))
    mark_dirty(c);
  notify_writable(c);
  return 0;
}

static void announce_ready(wr_qconn *c, int was_ready) {
  char desc[96];

  if (was_ready || !c->ready || c->dead)
    return;
  log_info("quic connection established %s", wr_qconn_describe(c, desc, sizeof(desc)));
  if (c->q->cbs.on_conn_ready != NULL)
    c->q->cbs.on_conn_ready(c, c->q->ud);
}

static wr_qconn *find_conn(wr_quic *q, const uint8_t *dcid, size_t dcidlen) {
  wr_qconn *c;
  size_t i;

  for (c = q->conns; c != NULL; c = c->next) {
    for (i = 0; i < c->nscids; i++) {
      if (c->scids[i].datalen == dcidlen && memcmp(c->scids[i].data, dcid, dcidlen) == 0)
        return c;
    }
  }
  return NULL;
}

/* send_stateless_reset answers a short-header packet for an unknown
 * connection (RFC 9000 §10.3), smaller than what it answers to avoid loops. */
static void send_stateless_reset(wr_quic *q, const struct sockaddr *to, socklen_t tolen,
                                 const uint8_t *dcid, size_t dcidlen, size_t pktlen) {
  uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[64], out[128];
  ngtcp2_cid cid;
  size_t randlen;
  ngtcp2_ssize n;

  if (dcidlen != SCID_LEN || pktlen < 43)
    return;
  randlen = pktlen - 1 - NGTCP2_STATELESS_RESET_TOKENLEN - 1;
  if (randlen > sizeof(rnd))
    randlen = sizeof(rnd);
  ngtcp2_cid_init(&cid, dcid, dcidlen);
  if (ngtcp2_crypto_generate_stateless_reset_token(token, q->static_secret,
                                                   sizeof(q->static_secret), &cid) != 0)
    return;
  (void)gnutls_rnd(GNUTLS_RND_NONCE, rnd, randlen);
  n = ngtcp2_pkt_write_stateless_reset(out, sizeof(out), token, rnd, randlen);
  if (n > 0)
    (void)wr_path_send(q->path, to, tolen, out, (size_t)n, (size_t)n);
}

static void on_path_recv(void *ud, const struct sockaddr *from, socklen_t fromlen,
                         const uint8_t *data, size_t len) {
  wr_quic *q = ud;
  ngtcp2_version_cid vc;
  ngtcp2_path path;
  ngtcp2_pkt_info pi = {0};
  wr_qconn *c;
  int rv, was_ready;

  rv = ngtcp2_pkt_decode_version_cid(&vc, data, len, SCID_LEN);
  if (rv != 0)
    return; /* Version negotiation is not offered: only QUIC v1 is spoken. */
  c = find_conn(q, vc.dcid, vc.dcidlen);
  if (c == NULL) {
    if (!(data[0] & 0x80)) {
      send_stateless_reset(q, from, fromlen, vc.dcid, vc.dcidlen, len);
      return;
    }
    if (!q->server)
      return;
    c = conn_accept(q, from, fromlen, data, len);
    if (c == NULL)
      return;
  }
  if (c->dead)
    return;
  path = make_path(c);
  path.remote.addr = (struct sockaddr *)from;
  path.remote.addrlen = fromlen;
  was_ready = c->ready;
  rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, data, len, wr_now());
  if (rv != 0) {
    log_debug("quic: read_pkt: %s", ngtcp2_strerror(rv));
    conn_fail(c, rv);
    return;
  }
  if (memcmp(&c->remote, from, fromlen) != 0) {
    /* The peer moved (NAT rebinding): ngtcp2 validated the new path. */
    memcpy(&c->remote, from, fromlen);
    c->remotelen = fromlen;
  }
  announce_ready(c, was_ready);
  mark_dirty(c);
}

static void flush_all(wr_quic *q) {
  while (q->dirty != NULL && !q->blocked) {
    wr_qconn *c = q->dirty;

    q->dirty = c->dnext;
    c->dirty = 0;
    c->dnext = NULL;
    (void)conn_write(c);
  }
}

static void on_path_recv_done(void *ud) {
  flush_all(ud);
}

static void on_path_writable(void *ud) {
  wr_quic *q = ud;

  q->blocked = 0;
  flush_all(q);
}

static void flush_run(wr_quic *q) {
  flush_all(q);
  if (q->dirty == NULL || q->blocked) {
    uv_idle_stop(&q->flush);
    uv_check_stop(&q->flush_late);
    q->flush_active = 0;
  }
}

static void on_flush(uv_idle_t *h) {
  flush_run(h->data);
}

static void on_flush_late(uv_check_t *h) {
  flush_run(h->data);
}

/* schedule_flush arranges for dirty connections to be written in this loop
 * iteration: after the current I/O callbacks (check), or before the poll
 * when scheduled from a timer (idle, which also keeps the poll from
 * blocking). */
static void schedule_flush(wr_quic *q) {
  if (q->flush_active || q->blocked)
    return;
  q->flush_active = 1;
  uv_idle_start(&q->flush, on_flush);
  uv_check_start(&q->flush_late, on_flush_late);
}

static void on_timer(uv_timer_t *t) {
  wr_qconn *c = t->data;
  int rv;

  if (c->dead)
    return;
  rv = ngtcp2_conn_handle_expiry(c->conn, wr_now());
  if (rv != 0) {
    conn_fail(c, rv);
    return;
  }
  if (c->ready) {
    ngtcp2_conn_stat st;

    ngtcp2_conn_get_conn_stat(c->conn, &st);
    if (st.pto_count >= MAX_PTO) {
      char desc[96];

      log_info("quic: %s: no acknowledgment after %zu probes: peer gone",
               wr_qconn_describe(c, desc, sizeof(desc)), st.pto_count);
      conn_close_now(c, WR_ERR_TIMEOUT);
      return;
    }
  }
  (void)conn_write(c);
}

/* --- endpoint --------------------------------------------------------- */

int wr_quic_new(wr_quic **out, const struct wr_quic_config *cfg) {
  static const struct wr_path_cbs pcbs = {on_path_recv, on_path_recv_done, on_path_writable};
  struct sockaddr_storage ss;
  socklen_t sslen;
  wr_quic *q;
  int rv;

  if (cfg->loop == NULL || cfg->id == NULL || cfg->bind == NULL || cfg->cbs == NULL)
    return WR_ERR_INVAL;
  if (wr_addr_parse(cfg->bind, &ss, &sslen) != 0)
    return WR_ERR_INVAL;
  q = calloc(1, sizeof(*q));
  if (q == NULL)
    return WR_ERR_NOMEM;
  q->loop = cfg->loop;
  q->id = cfg->id;
  q->cbs = *cfg->cbs;
  q->ud = cfg->ud;
  q->server = cfg->server;
  q->trusted = cfg->trusted;
  q->ntrusted = cfg->ntrusted;
  q->idle_timeout_ms = cfg->idle_timeout_ms ? cfg->idle_timeout_ms : 30000;
  q->keepalive_ms = cfg->keepalive_ms ? cfg->keepalive_ms : 10000;
  q->handshake_timeout_ms = cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : 5000;
  q->stream_window = cfg->stream_window ? cfg->stream_window : 1u << 20;
  q->conn_window = cfg->conn_window ? cfg->conn_window : 32u << 20;
  q->max_streams = cfg->max_streams ? cfg->max_streams : 4096;
  q->stream_sndbuf = cfg->stream_sndbuf ? cfg->stream_sndbuf : 256u << 10;
  /* The stateless-reset secret is derived from the identity, so that a node
   * restarted on the same address can reset the connections its previous
   * run held: peers learn at once instead of waiting for the idle timeout. */
  crypto_generichash(q->static_secret, sizeof(q->static_secret),
                     (const uint8_t *)"warren stateless reset v1", 25, cfg->id->seed,
                     sizeof(cfg->id->seed));
  rv = wr_tls_ctx_new(&q->tls, cfg->id);
  if (rv != 0)
    goto fail;
  rv = wr_udp_path_new(&q->path, q->loop, (struct sockaddr *)&ss, &pcbs, q);
  if (rv != 0)
    goto fail;
  rv = wr_path_local_addr(q->path, &q->local, &q->locallen);
  if (rv != 0)
    goto fail;
  uv_idle_init(q->loop, &q->flush);
  uv_check_init(q->loop, &q->flush_late);
  q->flush.data = q;
  q->flush_late.data = q;
  *out = q;
  return 0;
fail:
  if (q->path != NULL)
    wr_path_del(q->path);
  wr_tls_ctx_del(q->tls);
  free(q);
  return rv;
}

void wr_quic_shutdown(wr_quic *q) {
  while (q->conns != NULL)
    wr_qconn_close(q->conns, WR_QERR_SHUTDOWN);
}

static void on_flush_closed(uv_handle_t *h) {
  wr_quic *q = h->data;

  if (++q->nclosed < 2)
    return;
  wr_tls_ctx_del(q->tls);
  free(q);
}

void wr_quic_del(wr_quic *q) {
  if (q == NULL)
    return;
  while (q->conns != NULL)
    conn_close_now(q->conns, WR_ERR_CLOSED);
  wr_path_del(q->path);
  uv_close((uv_handle_t *)&q->flush, on_flush_closed);
  uv_close((uv_handle_t *)&q->flush_late, on_flush_closed);
}

int wr_quic_local_addr(wr_quic *q, struct sockaddr_storage *ss) {
  memcpy(ss, &q->local, sizeof(*ss));
  return 0;
}

void wr_quic_set_trusted(wr_quic *q, const wr_pubkey *trusted, size_t n) {
  q->trusted = trusted;
  q->ntrusted = n;
}
