/*
 * test_quic.c - two QUIC endpoints on loopback in one loop: pinned keys both
 * ways, a bulk echo with backpressure, many concurrent streams, rejection of
 * an untrusted client and of an unexpected server key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warren/buf.h"
#include "warren/err.h"
#include "warren/identity.h"
#include "warren/log.h"
#include "warren/quic.h"

#define BULK (8u << 20)
#define NSTREAMS 1000

struct echo {
  wr_qstream *s;
  wr_buf pend; /* bytes not yet accepted by the send buffer */
  int fin;
};

struct fixture {
  uv_loop_t loop;
  wr_identity sid, cid, other;
  wr_quic *server, *client;
  wr_qconn *conn;
  int client_closed_err;
  int client_closed;
  int ready;
  /* bulk client state */
  size_t sent, recvd;
  int mismatch;
  int done;
  int streams_done;
  uv_timer_t guard;
};

static uint8_t pattern(size_t i) {
  return (uint8_t)((i * 2654435761u) >> 13);
}

/* --- server: echo every stream --------------------------------------- */

static void echo_flush(struct echo *e) {
  while (wr_buf_len(&e->pend) > 0) {
    int n = wr_qstream_write(e->s, wr_buf_data(&e->pend), wr_buf_len(&e->pend), 0);

    if (n <= 0)
      return;
    wr_buf_consume(&e->pend, (size_t)n);
    wr_qstream_consume(e->s, (size_t)n);
  }
  if (e->fin) {
    (void)wr_qstream_write(e->s, NULL, 0, 1);
    e->fin = 0;
  }
}

static void echo_recv(wr_qstream *s, const uint8_t *data, size_t len, int fin, void *ud) {
  struct echo *e = ud;

  (void)s;
  assert_int_equal(wr_buf_append(&e->pend, data, len), 0);
  if (fin)
    e->fin = 1;
  echo_flush(e);
}

static void echo_writable(wr_qstream *s, void *ud) {
  (void)s;
  echo_flush(ud);
}

static void echo_close(wr_qstream *s, uint64_t err, void *ud) {
  struct echo *e = ud;

  (void)s;
  (void)err;
  wr_buf_free(&e->pend);
  free(e);
}

static const struct wr_qstream_cbs echo_cbs = {echo_recv, echo_writable, echo_close};

static void srv_stream(wr_qconn *c, wr_qstream *s, void *ud) {
  struct echo *e = calloc(1, sizeof(*e));

  (void)c;
  (void)ud;
  e->s = s;
  wr_buf_init(&e->pend, 4u << 20); /* > stream window: never refuses */
  wr_qstream_set_cbs(s, &echo_cbs, e);
}

static const struct wr_quic_cbs srv_cbs = {NULL, srv_stream, NULL, NULL};

/* --- client ----------------------------------------------------------- */

static void cli_closed(wr_qconn *c, int err, void *ud) {
  struct fixture *f = ud;

  (void)c;
  f->client_closed = 1;
  f->client_closed_err = err;
  f->conn = NULL;
  uv_stop(&f->loop);
}

static void bulk_pump(wr_qstream *s, struct fixture *f) {
  uint8_t chunk[16384];

  while (f->sent < BULK) {
    size_t n = BULK - f->sent < sizeof(chunk) ? BULK - f->sent : sizeof(chunk), i;
    int w;

    for (i = 0; i < n; i++)
      chunk[i] = pattern(f->sent + i);
    w = wr_qstream_write(s, chunk, n, f->sent + n == BULK);
    assert_true(w >= 0);
    f->sent += (size_t)w;
    if ((size_t)w < n)
      return;
  }
}

static void bulk_recv(wr_qstream *s, const uint8_t *data, size_t len, int fin, void *ud) {
  struct fixture *f = ud;
  size_t i;

  for (i = 0; i < len; i++)
    if (data[i] != pattern(f->recvd + i))
      f->mismatch = 1;
  f->recvd += len;
  wr_qstream_consume(s, len);
  if (fin) {
    f->done = 1;
    uv_stop(&f->loop);
  }
}

static void bulk_writable(wr_qstream *s, void *ud) {
  bulk_pump(s, ud);
}

static void bulk_close(wr_qstream *s, uint64_t err, void *ud) {
  (void)s;
  (void)err;
  (void)ud;
}

static const struct wr_qstream_cbs bulk_cbs = {bulk_recv, bulk_writable, bulk_close};

static void cli_ready_bulk(wr_qconn *c, void *ud) {
  struct fixture *f = ud;
  wr_qstream *s;

  f->ready = 1;
  assert_int_equal(wr_qconn_open_stream(c, &s), 0);
  wr_qstream_set_cbs(s, &bulk_cbs, f);
  bulk_pump(s, f);
}

/* many small streams: each sends its index and expects it back */
struct small {
  struct fixture *f;
  uint32_t idx;
  uint8_t got[4];
  size_t n;
};

static void small_recv(wr_qstream *s, const uint8_t *data, size_t len, int fin, void *ud) {
  struct small *m = ud;

  if (m->n + len <= sizeof(m->got))
    memcpy(m->got + m->n, data, len);
  m->n += len;
  wr_qstream_consume(s, len);
  if (fin) {
    uint32_t v;

    memcpy(&v, m->got, 4);
    if (m->n == 4 && v == m->idx)
      m->f->streams_done++;
    if (m->f->streams_done == NSTREAMS)
      uv_stop(&m->f->loop);
  }
}

static void small_close(wr_qstream *s, uint64_t err, void *ud) {
  (void)s;
  (void)err;
  free(ud);
}

static const struct wr_qstream_cbs small_cbs = {small_recv, NULL, small_close};

static void cli_ready_many(wr_qconn *c, void *ud) {
  struct fixture *f = ud;
  uint32_t i;

  for (i = 0; i < NSTREAMS; i++) {
    struct small *m = calloc(1, sizeof(*m));
    wr_qstream *s;

    m->f = f;
    m->idx = i;
    assert_int_equal(wr_qconn_open_stream(c, &s), 0);
    wr_qstream_set_cbs(s, &small_cbs, m);
    assert_int_equal(wr_qstream_write(s, (uint8_t *)&m->idx, 4, 1), 4);
  }
}

static void on_guard(uv_timer_t *t) {
  struct fixture *f = t->data;

  uv_stop(&f->loop);
}

static void setup_pair(struct fixture *f, const struct wr_quic_cbs *ccbs, const wr_pubkey trust,
                       const wr_pubkey expect) {
  struct wr_quic_config sc, cc;
  struct sockaddr_storage ss;

  memset(f, 0, sizeof(*f));
  uv_loop_init(&f->loop);
  wr_identity_generate(&f->sid);
  wr_identity_generate(&f->cid);
  wr_identity_generate(&f->other);
  memset(&sc, 0, sizeof(sc));
  sc.loop = &f->loop;
  sc.id = &f->sid;
  sc.bind = "127.0.0.1:0";
  sc.server = 1;
  sc.trusted = trust ? (const wr_pubkey *)trust : (const wr_pubkey *)&f->cid.pk;
  sc.ntrusted = 1;
  sc.cbs = &srv_cbs;
  sc.ud = f;
  assert_int_equal(wr_quic_new(&f->server, &sc), 0);
  cc = sc;
  cc.id = &f->cid;
  cc.server = 0;
  cc.trusted = NULL;
  cc.ntrusted = 0;
  cc.cbs = ccbs;
  assert_int_equal(wr_quic_new(&f->client, &cc), 0);
  wr_quic_local_addr(f->server, &ss);
  assert_int_equal(
      wr_quic_connect(f->client, (struct sockaddr *)&ss, expect ? expect : f->sid.pk, &f->conn), 0);
  uv_timer_init(&f->loop, &f->guard);
  f->guard.data = f;
  uv_timer_start(&f->guard, on_guard, 20000, 0);
}

static void teardown_pair(struct fixture *f) {
  uv_timer_stop(&f->guard);
  uv_close((uv_handle_t *)&f->guard, NULL);
  wr_quic_del(f->client);
  wr_quic_del(f->server);
  while (uv_run(&f->loop, UV_RUN_DEFAULT) != 0)
    ;
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void test_bulk_echo(void **state) {
  static const struct wr_quic_cbs ccbs = {cli_ready_bulk, NULL, cli_closed, NULL};
  struct fixture f;

  (void)state;
  setup_pair(&f, &ccbs, NULL, NULL);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_true(f.done);
  assert_int_equal(f.recvd, BULK);
  assert_false(f.mismatch);
  teardown_pair(&f);
}

static void test_many_streams(void **state) {
  static const struct wr_quic_cbs ccbs = {cli_ready_many, NULL, cli_closed, NULL};
  struct fixture f;

  (void)state;
  setup_pair(&f, &ccbs, NULL, NULL);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_int_equal(f.streams_done, NSTREAMS);
  teardown_pair(&f);
}

static void test_untrusted_client(void **state) {
  static const struct wr_quic_cbs ccbs = {cli_ready_bulk, NULL, cli_closed, NULL};
  struct fixture f;
  wr_identity stranger;

  (void)state;
  wr_identity_generate(&stranger);
  setup_pair(&f, &ccbs, stranger.pk, NULL);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_false(f.ready);
  assert_true(f.client_closed);
  assert_int_equal(f.client_closed_err, WR_ERR_PEER);
  teardown_pair(&f);
}

static void test_wrong_server_key(void **state) {
  static const struct wr_quic_cbs ccbs = {cli_ready_bulk, NULL, cli_closed, NULL};
  struct fixture f;
  wr_identity stranger;

  (void)state;
  wr_identity_generate(&stranger);
  setup_pair(&f, &ccbs, NULL, stranger.pk);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_false(f.ready);
  assert_true(f.client_closed);
  assert_int_equal(f.client_closed_err, WR_ERR_PEER);
  teardown_pair(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bulk_echo),
      cmocka_unit_test(test_many_streams),
      cmocka_unit_test(test_untrusted_client),
      cmocka_unit_test(test_wrong_server_key),
  };

  log_init("test_quic", WR_LOG_INFO);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
