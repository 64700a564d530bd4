/*
 * httpd.h - a minimal HTTP/1.1 server on the libuv loop for health probes and
 * metrics (controller-runtime's :8081 /healthz /readyz and :8080 /metrics).
 *
 * GET and HEAD only; every response is generated synchronously by one handler
 * and carries Content-Length. It is not a general web server:
 * - request heads are capped at WR_HTTPD_HEAD_MAX (431 beyond);
 * - other methods get 405, malformed requests 400, HTTP/x.y with x != 1 505;
 * - HTTP/1.1 connections persist unless "Connection: close" (HTTP/1.0 only
 *   with "Connection: keep-alive"); pipelined requests are answered in order;
 * - a request that carries a body (Content-Length > 0, Transfer-Encoding) is
 *   answered, then the connection is closed: bodies are never read;
 * - a connection that delivers no complete request head within the idle
 *   timeout (10 s) of its accept or previous request is dropped;
 * - at most WR_HTTPD_MAX_CONNS connections at once; further ones are closed
 *   as soon as they are accepted.
 * No threads: everything runs on the loop given to wr_httpd_new.
 */
#ifndef WARREN_HTTPD_H
#define WARREN_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "warren/buf.h"

#define WR_HTTPD_HEAD_MAX 8192        /* bytes of one request head, final CRLF included */
#define WR_HTTPD_MAX_CONNS 64         /* concurrent connections */
#define WR_HTTPD_IDLE_MS 10000        /* default idle timeout */
#define WR_HTTPD_BODY_MAX (16u << 20) /* cap of the body buffer given to the handler */
#define WR_HTTPD_CONTENT_TYPE_DEFAULT "text/plain; charset=utf-8"

/* What wr_httpd_parse_head found in a complete request head. The pointers
 * point into the parsed data (path may instead point to a static "/" for an
 * absolute-form target without a path) and are not NUL-terminated. */
struct wr_httpd_req {
  const char *method; /* a token, case-sensitive */
  size_t method_len;
  const char *path; /* the target's path: query stripped, not decoded */
  size_t path_len;
  int minor;      /* HTTP/1.<minor> */
  int keep_alive; /* the connection may carry another request after this one */
  int has_body;   /* Content-Length > 0 or Transfer-Encoding: the body is not read */
};

/* wr_httpd_parse_head parses the request head at the start of |data| (|len|
 * bytes; it need not be NUL-terminated). It is a pure function, exposed to be
 * fuzzed. Returns:
 *   > 0               complete: the head's length (request line, fields, the empty line);
 *                     *|req| is filled in;
 *   WR_ERR_TRUNCATED  need more data (everything so far is valid);
 *   WR_ERR_PROTO      malformed (answer 400);
 *   WR_ERR_TOOBIG     the head does not end within WR_HTTPD_HEAD_MAX bytes (431);
 *   WR_ERR_VERSION    a well-formed request line with an HTTP major version other than 1 (505).
 * Empty lines before the request line are skipped (RFC 9112 §2.2); a bare LF
 * ends a line like CRLF; obs-fold, whitespace before a field's colon, control
 * characters, an HTTP/1.1 request without exactly one Host, an invalid or
 * conflicting Content-Length and Content-Length together with
 * Transfer-Encoding are malformed. */
int wr_httpd_parse_head(const char *data, size_t len, struct wr_httpd_req *req);

typedef struct wr_httpd wr_httpd;

struct wr_httpd_resp {
  int status;               /* 200 unless the handler sets it; 100..199 become 500 */
  const char *content_type; /* NULL: WR_HTTPD_CONTENT_TYPE_DEFAULT; must outlive the call */
};

/* The handler answers one request: |method| is "GET" or "HEAD", |path| is the
 * request target's path (query stripped, not decoded), both NUL-terminated. It
 * sets r->status (and content_type) and appends the body to |body| (empty,
 * capped at WR_HTTPD_BODY_MAX: an append that fails should become a 500). For
 * HEAD the body is measured for Content-Length and not sent; 204 and 304 never
 * carry one. It runs synchronously on the loop and may call wr_httpd_del. */
typedef void (*wr_httpd_handler)(void *ud, const char *method, const char *path,
                                 struct wr_httpd_resp *r, struct wr_buf *body);

/* wr_httpd_new listens on |addr| ("ip:port", "[v6]:port", port 0 = ephemeral)
 * and answers with |h|. Returns 0, -errno (bind, listen) or WR_ERR_INVAL (bad
 * address) / WR_ERR_NOMEM. On failure after the socket was created its handle
 * is closed and freed the next time the loop runs. */
int wr_httpd_new(wr_httpd **out, uv_loop_t *loop, const char *addr, wr_httpd_handler h, void *ud);
/* wr_httpd_port returns the bound port (useful with port 0). */
int wr_httpd_port(const wr_httpd *s);
/* wr_httpd_set_idle_timeout changes the idle timeout (default WR_HTTPD_IDLE_MS,
 * 0 disables it) for timers armed from now on (tests use a short one). */
void wr_httpd_set_idle_timeout(wr_httpd *s, uint64_t ms);
/* wr_httpd_del closes the listener and every connection (responses not yet
 * written are dropped); safe with connections open. Memory is released by the
 * close callbacks, so the loop must run afterwards (wr_loop_close_all or
 * uv_run). NULL is ignored. */
void wr_httpd_del(wr_httpd *s);

#endif
