/* test_httpd.c - the probe/metrics HTTP server: a real server on 127.0.0.1:0 in a libuv loop,
 * driven by plain client sockets from the same thread (the loop is pumped while waiting), and
 * the pure request-head parser. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "warren/err.h"
#include "warren/httpd.h"

#define TIMEOUT_MS 5000

struct fx {
  uv_loop_t loop;
  wr_httpd *s;
  int port;
  int calls;
  char method[16];
  char path[256];
};

static void handler(void *ud, const char *method, const char *path, struct wr_httpd_resp *r,
                    struct wr_buf *body) {
  struct fx *f = ud;

  f->calls++;
  snprintf(f->method, sizeof(f->method), "%s", method);
  snprintf(f->path, sizeof(f->path), "%s", path);
  if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
    assert_int_equal(wr_buf_append(body, "ok", 2), 0);
  } else if (strcmp(path, "/metrics") == 0) {
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    assert_int_equal(wr_buf_append(body, "up 1\n", 5), 0);
  } else if (strcmp(path, "/empty") == 0) {
    r->status = 204;
  } else if (strcmp(path, "/broken") == 0) {
    r->status = 99;
  } else if (strcmp(path, "/inject") == 0) {
    r->content_type = "text/plain\r\nX-Evil: 1";
  } else if (strcmp(path, "/big") == 0) {
    static char chunk[4096];

    memset(chunk, 'b', sizeof(chunk));
    for (int i = 0; i < 256; i++) /* 1 MiB */
      assert_int_equal(wr_buf_append(body, chunk, sizeof(chunk)), 0);
  } else if (strcmp(path, "/del") == 0) {
    wr_httpd_del(f->s);
    f->s = NULL;
  } else {
    r->status = 404;
    assert_int_equal(wr_buf_append(body, "404 page not found\n", 19), 0);
  }
}

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));

  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(wr_httpd_new(&f->s, &f->loop, "127.0.0.1:0", handler, f), 0);
  f->port = wr_httpd_port(f->s);
  assert_true(f->port > 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;

  wr_httpd_del(f->s);
  while (uv_run(&f->loop, UV_RUN_DEFAULT) != 0)
    ;
  /* Every handle the server opened is closed and freed (ASan checks the memory). */
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static void pump(struct fx *f) {
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

static int cli_connect(struct fx *f) {
  struct sockaddr_in sin;
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  assert_true(fd >= 0);
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)f->port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* The kernel completes the handshake from the listen backlog: a blocking connect is fine. */
  assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
  return fd;
}

static void cli_send(struct fx *f, int fd, const char *data, size_t n) {
  uint64_t deadline = uv_hrtime() + (uint64_t)TIMEOUT_MS * 1000000;

  while (n > 0) {
    ssize_t w = send(fd, data, n, MSG_NOSIGNAL);

    if (w > 0) {
      data += w;
      n -= (size_t)w;
      continue;
    }
    assert_true(w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    assert_true(uv_hrtime() < deadline);
    pump(f);
    poll(NULL, 0, 1);
  }
}

static void cli_sends(struct fx *f, int fd, const char *s) {
  cli_send(f, fd, s, strlen(s));
}

/* strip_dates removes each "Date: ..." line after checking its IMF-fixdate shape. */
static size_t strip_dates(const char *in, size_t n, char *out) {
  size_t i = 0, k = 0;

  while (i < n) {
    if (n - i >= 8 && memcmp(in + i, "\r\nDate: ", 8) == 0) {
      const char *eol = memmem(in + i + 2, n - i - 2, "\r\n", 2);

      if (eol == NULL)
        break; /* incomplete: wait for more */
      assert_int_equal(eol - (in + i + 8), 29);
      assert_memory_equal(eol - 4, " GMT", 4);
      i = (size_t)(eol - in);
      continue;
    }
    out[k++] = in[i++];
  }
  out[k] = '\0';
  return k;
}

/* cli_expect reads until the responses (Date lines removed) are |want|, then, when |eof|, until
 * the server closes. The loop is pumped meanwhile. */
static void cli_expect(struct fx *f, int fd, const char *want, int eof) {
  static char raw[1 << 21], got[1 << 21];
  size_t n = 0, want_len = strlen(want);
  uint64_t deadline = uv_hrtime() + (uint64_t)TIMEOUT_MS * 1000000;
  int closed = 0;

  for (;;) {
    ssize_t r;

    pump(f);
    r = recv(fd, raw + n, sizeof(raw) - 1 - n, 0);
    if (r > 0) {
      n += (size_t)r;
    } else if (r == 0) {
      closed = 1;
    } else {
      assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
      assert_true(uv_hrtime() < deadline);
      poll(NULL, 0, 1);
    }
    if (closed || (!eof && strip_dates(raw, n, got) >= want_len))
      break;
  }
  strip_dates(raw, n, got);
  assert_string_equal(got, want);
  assert_int_equal(closed, eof);
}

/* cli_expect_eof asserts that the server closes without sending anything. */
static void cli_expect_eof(struct fx *f, int fd) {
  cli_expect(f, fd, "", 1);
}

/* settle pumps the loop for |ms| (connections accepted, timers run). */
static void settle(struct fx *f, int ms) {
  uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000;

  while (uv_hrtime() < end) {
    pump(f);
    poll(NULL, 0, 1);
  }
}

#define OK_HEALTHZ                                                                                 \
  "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nok"
#define HEAD_HEALTHZ                                                                               \
  "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\n"
#define NOT_FOUND                                                                                  \
  "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "          \
  "19\r\n\r\n404 page not found\n"

static void test_get(void **state) {
  struct fx *f = *state;
  int fd = cli_connect(f);

  cli_sends(f, fd, "GET /healthz?verbose=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n");
  cli_expect(f, fd, OK_HEALTHZ, 0);
  assert_string_equal(f->method, "GET");
  assert_string_equal(f->path, "/healthz");
  cli_sends(f, fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  cli_expect(f, fd,
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
             "Content-Length: 5\r\n\r\nup 1\n",
             0);
  /* absolute-form targets are accepted; the path is not decoded */
  cli_sends(f, fd, "GET http://localhost:8081/a%2Fb?x HTTP/1.1\r\nHost: localhost:8081\r\n\r\n");
  cli_expect(f, fd, NOT_FOUND, 0);
  assert_string_equal(f->path, "/a%2Fb");
  assert_int_equal(f->calls, 3);
  close(fd);
}

static void test_head(void **state) {
  struct fx *f = *state;
  int fd = cli_connect(f);

  /* Headers only, with the length a GET would have; the next response follows directly. */
  cli_sends(f, fd, "HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fd, HEAD_HEALTHZ, 0);
  assert_string_equal(f->method, "HEAD");
  cli_sends(f, fd, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fd, OK_HEALTHZ, 0);
  close(fd);
}

static void test_handler_statuses(void **state) {
  struct fx *f = *state;
  int fd = cli_connect(f);

  cli_sends(f, fd, "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fd, NOT_FOUND, 0);
  /* 204: neither a length nor a type */
  cli_sends(f, fd, "GET /empty HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fd, "HTTP/1.1 204 No Content\r\n\r\n", 0);
  /* invalid status or content type from the handler: 500 */
  cli_sends(f, fd, "GET /broken HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fd,
             "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Length: 15\r\n\r\ninternal error\n",
             0);
  cli_sends(f, fd, "GET /inject HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fd,
             "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Length: 15\r\n\r\ninternal error\n",
             0);
  close(fd);
}

#define NOT_ALLOWED                                                                                \
  "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n"                 \
  "Content-Length: 19\r\nAllow: GET, HEAD\r\n"

static void test_405(void **state) {
  struct fx *f = *state;
  int fd = cli_connect(f);

  /* Without a body the connection stays usable. */
  cli_sends(f, fd, "DELETE /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fd, NOT_ALLOWED "\r\nmethod not allowed\n", 0);
  cli_sends(f, fd, "get /healthz HTTP/1.1\r\nHost: a\r\n\r\n"); /* methods are case-sensitive */
  cli_expect(f, fd, NOT_ALLOWED "\r\nmethod not allowed\n", 0);
  cli_sends(f, fd, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fd, NOT_ALLOWED "\r\nmethod not allowed\n", 0);
  cli_sends(f, fd, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  cli_expect(f, fd, NOT_ALLOWED "\r\nmethod not allowed\n", 0);
  assert_int_equal(f->calls, 0);
  /* A body is never read: answer, then close. */
  cli_sends(f, fd, "POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
  cli_expect(f, fd, NOT_ALLOWED "Connection: close\r\n\r\nmethod not allowed\n", 1);
  close(fd);
}

#define BAD_REQUEST                                                                                \
  "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "        \
  "12\r\nConnection: close\r\n\r\nbad request\n"

static void test_400(void **state) {
  static const char *const bad[] = {
      "hello\r\n\r\n",
      "GET /healthz HTTP/1.1\r\n\r\n",                       /* no Host */
      "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", /* two */
      "GET /healthz HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost : a\r\n\r\n",           /* space before colon */
      "GET /healthz HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", /* obs-fold */
      "GET  /healthz HTTP/1.1\r\nHost: a\r\n\r\n",           /* double space */
      "GET healthz HTTP/1.1\r\nHost: a\r\n\r\n",             /* not origin-form */
      "GET /healthz HTTP/1.1\rHost: a\r\n\r\n",              /* bare CR */
      "GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET /healthz http/1.1\r\nHost: a\r\n\r\n",
  };
  struct fx *f = *state;

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int fd = cli_connect(f);

    cli_sends(f, fd, bad[i]);
    cli_expect(f, fd, BAD_REQUEST, 1);
    close(fd);
  }
  assert_int_equal(f->calls, 0);
}

static void test_505(void **state) {
  struct fx *f = *state;
  int fd = cli_connect(f);

  cli_sends(f, fd, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  cli_expect(f, fd,
             "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain; "
             "charset=utf-8\r\nContent-Length: 27\r\nConnection: close\r\n\r\nhttp version not "
             "supported\n",
             1);
  close(fd);
}

#define TOO_LARGE                                                                                  \
  "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; "                     \
  "charset=utf-8\r\nContent-Length: 32\r\nConnection: close\r\n\r\nrequest header fields too "     \
  "large\n"

static void test_431(void **state) {
  struct fx *f = *state;
  char *req = malloc(WR_HTTPD_HEAD_MAX + 100);
  int fd, n;

  assert_non_null(req);
  /* A head of exactly the cap is fine... */
  n = snprintf(req, WR_HTTPD_HEAD_MAX + 100, "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Pad: ");
  memset(req + n, 'p', (size_t)(WR_HTTPD_HEAD_MAX - n - 4));
  memcpy(req + WR_HTTPD_HEAD_MAX - 4, "\r\n\r\n", 4);
  fd = cli_connect(f);
  cli_send(f, fd, req, WR_HTTPD_HEAD_MAX);
  cli_expect(f, fd, OK_HEALTHZ, 0);
  close(fd);
  /* ...one byte more is not. */
  memset(req + n, 'p', (size_t)(WR_HTTPD_HEAD_MAX - n - 3));
  memcpy(req + WR_HTTPD_HEAD_MAX - 3, "\r\n\r\n", 4);
  fd = cli_connect(f);
  cli_send(f, fd, req, WR_HTTPD_HEAD_MAX + 1);
  cli_expect(f, fd, TOO_LARGE, 1);
  close(fd);
  /* A head that never ends: answered once 8 KiB arrived, the rest is discarded. */
  memset(req, 'a', WR_HTTPD_HEAD_MAX + 100);
  memcpy(req, "GET /", 5);
  fd = cli_connect(f);
  cli_send(f, fd, req, WR_HTTPD_HEAD_MAX + 100);
  cli_expect(f, fd, TOO_LARGE, 1);
  close(fd);
  free(req);
  assert_int_equal(f->calls, 1);
}

static void test_keepalive(void **state) {
  struct fx *f = *state;
  int fd = cli_connect(f);

  cli_sends(f, fd, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fd, OK_HEALTHZ, 0);
  cli_sends(f, fd, "GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n");
  cli_expect(f, fd, OK_HEALTHZ, 0);
  /* a request split over several writes */
  cli_sends(f, fd, "GET /hea");
  settle(f, 20);
  cli_sends(f, fd, "lthz HTTP/1.1\r\nHo");
  settle(f, 20);
  cli_sends(f, fd, "st: a\r\n\r\n");
  cli_expect(f, fd, OK_HEALTHZ, 0);
  assert_int_equal(f->calls, 3);
  close(fd);
}

static void test_pipelined(void **state) {
  struct fx *f = *state;
  int fd = cli_connect(f);

  cli_sends(f, fd,
            "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
            "HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
            "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n"
            "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            "GET /never HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fd,
             OK_HEALTHZ HEAD_HEALTHZ NOT_FOUND
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
             "2\r\nConnection: close\r\n\r\nok",
             1);
  assert_int_equal(f->calls, 4);
  close(fd);
}

static void test_pipelined_backpressure(void **state) {
  struct fx *f = *state;
  int fd = cli_connect(f);
  static char buf[1 << 16];
  size_t total = 0, want;
  uint64_t deadline = uv_hrtime() + (uint64_t)TIMEOUT_MS * 1000000;
  int i;

  /* Eight 1 MiB responses asked at once: the server holds back while the client does not read,
   * then answers all of them once it does. */
  for (i = 0; i < 8; i++)
    cli_sends(f, fd, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
  settle(f, 100);
  assert_true(f->calls < 8);
  want = 8 * (sizeof("HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Type: "
                     "text/plain; charset=utf-8\r\nContent-Length: 1048576\r\n\r\n") -
              1 + (1u << 20));
  while (total < want) {
    ssize_t r = recv(fd, buf, sizeof(buf), 0);

    if (r > 0)
      total += (size_t)r;
    else {
      assert_true(r < 0 && errno == EAGAIN);
      assert_true(uv_hrtime() < deadline);
      pump(f);
    }
  }
  assert_int_equal(total, want);
  assert_int_equal(f->calls, 8);
  close(fd);
}

static void test_connection_close(void **state) {
  struct fx *f = *state;
  int fd = cli_connect(f);

  cli_sends(f, fd, "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, Close\r\n\r\n");
  cli_expect(f, fd,
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
             "2\r\nConnection: close\r\n\r\nok",
             1);
  close(fd);
  /* HTTP/1.0 closes unless asked to keep alive */
  fd = cli_connect(f);
  cli_sends(f, fd, "GET /healthz HTTP/1.0\r\n\r\n");
  cli_expect(f, fd,
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
             "2\r\nConnection: close\r\n\r\nok",
             1);
  close(fd);
  fd = cli_connect(f);
  cli_sends(f, fd, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  cli_expect(f, fd,
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
             "2\r\nConnection: keep-alive\r\n\r\nok",
             0);
  cli_sends(f, fd, "GET /healthz HTTP/1.0\r\n\r\n");
  cli_expect(f, fd,
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
             "2\r\nConnection: close\r\n\r\nok",
             1);
  close(fd);
  /* the client half-closes after its request: the answer still arrives */
  fd = cli_connect(f);
  cli_sends(f, fd, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  shutdown(fd, SHUT_WR);
  cli_expect(f, fd, OK_HEALTHZ, 1);
  close(fd);
}

static void test_idle_timeout(void **state) {
  struct fx *f = *state;
  uint64_t t0;
  int fd1, fd2, fd3;

  wr_httpd_set_idle_timeout(f->s, 200);
  t0 = uv_hrtime();
  fd1 = cli_connect(f); /* sends nothing */
  fd2 = cli_connect(f); /* sends half a request */
  cli_sends(f, fd2, "GET /healthz HT");
  fd3 = cli_connect(f); /* a full request, then silence */
  cli_sends(f, fd3, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fd3, OK_HEALTHZ, 0);
  cli_expect_eof(f, fd1);
  cli_expect_eof(f, fd2);
  cli_expect_eof(f, fd3);
  assert_true(uv_hrtime() - t0 >= 190 * 1000000ull);
  assert_true(uv_hrtime() - t0 < 3000 * 1000000ull);
  close(fd1);
  close(fd2);
  close(fd3);
}

static void test_max_conns(void **state) {
  struct fx *f = *state;
  int fds[WR_HTTPD_MAX_CONNS], extra, again;

  for (int i = 0; i < WR_HTTPD_MAX_CONNS; i++)
    fds[i] = cli_connect(f);
  settle(f, 100);
  /* one too many: accepted and closed at once */
  extra = cli_connect(f);
  cli_expect_eof(f, extra);
  close(extra);
  /* the others still work */
  cli_sends(f, fds[0], "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fds[0], OK_HEALTHZ, 0);
  cli_sends(f, fds[WR_HTTPD_MAX_CONNS - 1], "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fds[WR_HTTPD_MAX_CONNS - 1], OK_HEALTHZ, 0);
  /* a slot freed by a client leaving is available again */
  close(fds[1]);
  settle(f, 100);
  again = cli_connect(f);
  cli_sends(f, again, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, again, OK_HEALTHZ, 0);
  close(again);
  for (int i = 0; i < WR_HTTPD_MAX_CONNS; i++)
    if (i != 1)
      close(fds[i]);
}

static void test_del_with_open_connections(void **state) {
  struct fx *f = *state;
  int fd1 = cli_connect(f), fd2 = cli_connect(f);

  cli_sends(f, fd1, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect(f, fd1, OK_HEALTHZ, 0);
  cli_sends(f, fd2, "GET /heal");
  settle(f, 20);
  wr_httpd_del(f->s);
  f->s = NULL;
  cli_expect_eof(f, fd1);
  cli_expect_eof(f, fd2);
  close(fd1);
  close(fd2);
}

static void test_del_from_handler(void **state) {
  struct fx *f = *state;
  int fd1 = cli_connect(f), fd2 = cli_connect(f);

  settle(f, 20);
  cli_sends(f, fd1, "GET /del HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  cli_expect_eof(f, fd1);
  cli_expect_eof(f, fd2);
  assert_null(f->s);
  assert_int_equal(f->calls, 1);
  close(fd1);
  close(fd2);
}

static void test_new_errors(void **state) {
  struct fx *f = *state;
  char addr[32];
  wr_httpd *s = (wr_httpd *)f; /* must be cleared */

  assert_int_equal(wr_httpd_new(&s, &f->loop, "127.0.0.1", handler, f), WR_ERR_INVAL);
  assert_null(s);
  assert_int_equal(wr_httpd_new(&s, &f->loop, "localhost:80", handler, f), WR_ERR_INVAL);
  assert_int_equal(wr_httpd_new(&s, &f->loop, "127.0.0.1:0", NULL, f), WR_ERR_INVAL);
  assert_int_equal(wr_httpd_new(&s, NULL, "127.0.0.1:0", handler, f), WR_ERR_INVAL);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
  assert_int_equal(wr_httpd_new(&s, &f->loop, addr, handler, f), -EADDRINUSE);
  assert_null(s);
  /* IPv6 loopback, when the host has it */
  if (wr_httpd_new(&s, &f->loop, "[::1]:0", handler, f) == 0) {
    assert_true(wr_httpd_port(s) > 0);
    wr_httpd_del(s);
  }
  wr_httpd_del(NULL);
}

/* ---- the parser alone ---- */

static int parse(const char *s, struct wr_httpd_req *r) {
  return wr_httpd_parse_head(s, strlen(s), r);
}

static void expect_req(const char *s, const char *method, const char *path, int minor, int ka,
                       int body) {
  struct wr_httpd_req r;
  size_t n = strlen(s);

  assert_int_equal(wr_httpd_parse_head(s, n, &r), (int)n);
  assert_int_equal(r.method_len, strlen(method));
  assert_memory_equal(r.method, method, r.method_len);
  assert_int_equal(r.path_len, strlen(path));
  assert_memory_equal(r.path, path, r.path_len);
  assert_int_equal(r.minor, minor);
  assert_int_equal(r.keep_alive, ka);
  assert_int_equal(r.has_body, body);
  /* every proper prefix is merely incomplete */
  for (size_t i = 0; i < n; i++)
    assert_int_equal(wr_httpd_parse_head(s, i, &r), WR_ERR_TRUNCATED);
}

static void test_parse_head(void **state) {
  struct wr_httpd_req r;
  char *big;

  (void)state;
  expect_req("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/healthz", 1, 1, 0);
  expect_req("HEAD /a?b=c HTTP/1.1\nHost: a\n\n", "HEAD", "/a", 1, 1, 0);
  expect_req("\r\n\r\nGET / HTTP/1.0\r\n\r\n", "GET", "/", 0, 0, 0);
  expect_req("GET / HTTP/1.0\r\nconnection: KEEP-ALIVE\r\n\r\n", "GET", "/", 0, 1, 0);
  expect_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: te, close\r\n\r\n", "GET", "/", 1, 0, 0);
  expect_req("GET HTTP://h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n", "GET", "/", 1, 1, 0);
  expect_req("GET https://h/x/y?q HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "/x/y", 1, 1, 0);
  expect_req("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "/", 1, 1, 0);
  expect_req("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", "PUT",
             "/x", 1, 1, 0);
  expect_req("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n", "POST", "/x", 1, 0, 1);
  expect_req("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "POST", "/x", 1,
             0, 1);
  expect_req("GET / HTTP/1.9\r\nHost: a\r\nX-Empty:\r\nX-Utf8: \xc3\xa9\t \r\n\r\n", "GET", "/", 9,
             1, 0);
  assert_int_equal(parse("", &r), WR_ERR_TRUNCATED);
  assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next", &r),
                   (int)strlen("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  assert_int_equal(parse("GET / HTTP/2.0\r\n", &r), WR_ERR_VERSION);
  assert_int_equal(parse("GET / HTTP/0.9\r\n", &r), WR_ERR_VERSION);
  assert_int_equal(parse("GET /\r\n", &r), WR_ERR_PROTO);
  assert_int_equal(parse("GET / HTTP/1.10\r\n", &r), WR_ERR_PROTO);
  assert_int_equal(parse(" GET / HTTP/1.1\r\n", &r), WR_ERR_PROTO);
  assert_int_equal(parse("GET / HTTP/1.1 \r\n", &r), WR_ERR_PROTO);
  assert_int_equal(parse("G(T / HTTP/1.1\r\n", &r), WR_ERR_PROTO);
  assert_int_equal(parse("GET /\x7f HTTP/1.1\r\n", &r), WR_ERR_PROTO);
  assert_int_equal(parse("GET http:// HTTP/1.1\r\n", &r), WR_ERR_PROTO);
  assert_int_equal(parse("GET http:///x HTTP/1.1\r\n", &r), WR_ERR_PROTO);
  assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", &r), WR_ERR_PROTO);
  assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n", &r), WR_ERR_PROTO);
  assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n", &r), WR_ERR_PROTO);
  assert_int_equal(
      parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &r),
      WR_ERR_PROTO);
  assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", &r),
                   WR_ERR_PROTO);
  assert_int_equal(
      parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", &r),
      WR_ERR_PROTO);
  assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", &r), WR_ERR_PROTO);
  /* an error is reported as soon as the bad line is complete */
  assert_int_equal(parse("GET / HTTP/1.1\r\nBad Name: x\r\n", &r), WR_ERR_PROTO);
  /* a NUL byte is data, not an end */
  assert_int_equal(wr_httpd_parse_head("GET /\0 HTTP/1.1\r\n\r\n", 20, &r), WR_ERR_PROTO);
  /* the cap: no end within WR_HTTPD_HEAD_MAX bytes */
  big = malloc(WR_HTTPD_HEAD_MAX + 10);
  assert_non_null(big);
  memset(big, 'a', WR_HTTPD_HEAD_MAX + 10);
  memcpy(big, "GET /", 5);
  assert_int_equal(wr_httpd_parse_head(big, WR_HTTPD_HEAD_MAX - 1, &r), WR_ERR_TRUNCATED);
  assert_int_equal(wr_httpd_parse_head(big, WR_HTTPD_HEAD_MAX, &r), WR_ERR_TOOBIG);
  assert_int_equal(wr_httpd_parse_head(big, WR_HTTPD_HEAD_MAX + 10, &r), WR_ERR_TOOBIG);
  free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_head),
      cmocka_unit_test_setup_teardown(test_get, setup, teardown),
      cmocka_unit_test_setup_teardown(test_head, setup, teardown),
      cmocka_unit_test_setup_teardown(test_handler_statuses, setup, teardown),
      cmocka_unit_test_setup_teardown(test_405, setup, teardown),
      cmocka_unit_test_setup_teardown(test_400, setup, teardown),
      cmocka_unit_test_setup_teardown(test_505, setup, teardown),
      cmocka_unit_test_setup_teardown(test_431, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipelined_backpressure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_close, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_conns, setup, teardown),
      cmocka_unit_test_setup_teardown(test_del_with_open_connections, setup, teardown),
      cmocka_unit_test_setup_teardown(test_del_from_handler, setup, teardown),
      cmocka_unit_test_setup_teardown(test_new_errors, setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
