/*
 * kclient.h - the Kubernetes REST client: libcurl's multi-socket interface
 * driven by the libuv loop, so that every request is asynchronous.
 *
 * Objects are jansson values and resources are addressed by group, version
 * and resource (a dynamic client: no generated types). A call ends with
 * exactly one callback unless it is cancelled first; the call handle is
 * invalid once its callback has run.
 *
 * Errors: answers outside 2xx are decoded from the Kubernetes Status object
 * (any other body is tolerated: the reason then follows the HTTP code) into
 * struct wr_kstatus, and the callback gets WR_ERR_REFUSED. 429 and 5xx
 * answers carrying Retry-After are retried after that delay, up to
 * WR_KCLIENT_MAX_RETRIES times, as client-go does. Transport failures give
 * -ECONNREFUSED, WR_ERR_TLS, WR_ERR_TIMEOUT or WR_ERR_PROTO.
 */
#ifndef WARREN_KCLIENT_H
#define WARREN_KCLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define WR_KCLIENT_MAX_RETRIES 10
#define WR_KCLIENT_PATH_MAX 2048

typedef struct wr_kclient wr_kclient;
typedef struct wr_kcall wr_kcall;

struct wr_kclient_opts {
  const char *server; /* https://host:port */
  const uint8_t *ca_pem;
  size_t ca_len;               /* NULL/0: the system's CA store */
  int insecure;                /* skip server certificate verification */
  const char *tls_server_name; /* NULL: the host of |server| */
  const uint8_t *cert_pem;     /* client certificate (PEM) or NULL */
  size_t cert_len;
  const uint8_t *key_pem; /* its key (PEM) */
  size_t key_len;
  /* token returns the bearer token to send (it may re-read a file), or
   * sets *token to NULL for none. token_invalid is told after a 401 so that
   * the next call re-reads it. Both may be NULL. */
  int (*token)(void *ud, const char **token);
  void (*token_invalid)(void *ud);
  void *token_ud;
  const char *user_agent; /* NULL: "warren" */
  size_t max_body;        /* cap on a buffered response body; 0: 64 MiB */
  unsigned timeout_ms;    /* whole request (not streams); 0: 60 s */
};

/* What the API server said when it refused a request. */
struct wr_kstatus {
  int code;          /* HTTP status */
  char reason[48];   /* NotFound, Conflict, Forbidden, ... */
  char message[512]; /* human-readable, truncated */
  int retry_after;   /* seconds (header or details.retryAfterSeconds), -1: none */
};

/* wr_kcall_cb ends a call. rv 0: 2xx and |obj| is the decoded body (NULL if
 * empty); rv WR_ERR_REFUSED: |st| says why; other rv: transport failure.
 * |obj| is borrowed: json_incref() to keep it. */
typedef void (*wr_kcall_cb)(void *ud, int rv, json_t *obj, const struct wr_kstatus *st);

/* A resource: group "" is the core API (/api/v1). */
struct wr_kres {
  const char *group;
  const char *version;
  const char *resource; /* plural */
};

enum wr_kpatch {
  WR_KPATCH_MERGE, /* application/merge-patch+json (RFC 7386) */
  WR_KPATCH_JSON,  /* application/json-patch+json (RFC 6902) */
  WR_KPATCH_APPLY  /* server-side apply; needs a field manager */
};

/* Streams (watches) deliver the body as it arrives. on_data returns
 * non-zero to stop the stream (on_end then runs with that value). on_end
 * runs once: rv 0 when the server ended the stream, WR_ERR_REFUSED with
 * |st| for an error answer, other negative codes for transport failures. */
struct wr_kstream_cbs {
  int (*on_data)(void *ud, const uint8_t *data, size_t len);
  void (*on_end)(void *ud, int rv, const struct wr_kstatus *st);
};

int wr_kclient_new(wr_kclient **out, uv_loop_t *loop, const struct wr_kclient_opts *o);
/* wr_kclient_new_kconfig builds a client from a loaded configuration
 * (kconfig.h): its server, TLS material and token, the token re-read as
 * the configuration says (a file every minute and after a 401). |cfg| must
 * outlive the client. */
struct wr_kconfig;
int wr_kclient_new_kconfig(wr_kclient **out, uv_loop_t *loop, struct wr_kconfig *cfg);
/* wr_kclient_del cancels every call (no callbacks) and frees the client once
 * its handles are closed. Allowed from inside a callback. */
void wr_kclient_del(wr_kclient *c);

/* wr_kpath writes /api/v1/... or /apis/G/V/[namespaces/NS/]RESOURCE[/NAME[/SUB]]
 * into |buf|. |ns| NULL: cluster-scoped or all namespaces. Returns the
 * length, WR_ERR_TOOBIG, or WR_ERR_INVAL for a segment that is empty or
 * holds '/', '?', '%' or '#'. */
int wr_kpath(char *buf, size_t len, const struct wr_kres *r, const char *ns, const char *name,
             const char *sub);

/* wr_kquery appends "?key=value" or "&key=value" (value percent-encoded) to
 * the path in |buf|. Returns the new length or WR_ERR_TOOBIG. */
int wr_kquery(char *buf, size_t len, const char *key, const char *value);

/* wr_kclient_call is the generic request: |path| includes the query;
 * |body| (may be NULL) is sent with |content_type|. */
int wr_kclient_call(wr_kclient *c, const char *method, const char *path, const char *content_type,
                    const char *body, size_t body_len, wr_kcall_cb cb, void *ud, wr_kcall **out);
/* wr_kclient_stream opens a streaming GET (a watch). |idle_s| > 0 ends the
 * stream with WR_ERR_TIMEOUT after that many seconds without a byte. */
int wr_kclient_stream(wr_kclient *c, const char *path, unsigned idle_s,
                      const struct wr_kstream_cbs *cbs, void *ud, wr_kcall **out);
/* wr_kcall_cancel drops a call without running its callback. */
void wr_kcall_cancel(wr_kcall *k);

/* Verbs on a path built with wr_kpath (and wr_kquery). |out| may be NULL. */
int wr_kclient_get(wr_kclient *c, const char *path, wr_kcall_cb cb, void *ud, wr_kcall **out);
int wr_kclient_create(wr_kclient *c, const char *path, json_t *obj, wr_kcall_cb cb, void *ud,
                      wr_kcall **out);
/* PUT: |obj| carries metadata.resourceVersion (409 Conflict when stale). */
int wr_kclient_update(wr_kclient *c, const char *path, json_t *obj, wr_kcall_cb cb, void *ud,
                      wr_kcall **out);
/* PATCH: |field_manager| is required for WR_KPATCH_APPLY (force: take over
 * conflicting fields), optional otherwise. */
int wr_kclient_patch(wr_kclient *c, const char *path, enum wr_kpatch type, json_t *patch,
                     const char *field_manager, int force, wr_kcall_cb cb, void *ud,
                     wr_kcall **out);
/* DELETE with optional preconditions (409 on mismatch) and propagation
 * policy ("Background", "Foreground", "Orphan"; NULL: the server's default). */
int wr_kclient_delete(wr_kclient *c, const char *path, const char *uid, const char *rv,
                      const char *propagation, wr_kcall_cb cb, void *ud, wr_kcall **out);

/* Requests sent (every attempt, retries included), by method (GET, POST,
 * PUT, PATCH, DELETE; streams are GETs) and by class of answer: [0] no
 * answer (transport failure), [1] 2xx, [2] 3xx, [3] 4xx, [4] 5xx. */
#define WR_KMETHODS 5
struct wr_kclient_stats {
  uint64_t requests[WR_KMETHODS][5];
  uint64_t total;
};
void wr_kclient_stats(const wr_kclient *c, struct wr_kclient_stats *st);
/* wr_kclient_inflight counts the calls (not streams) still waiting for an
 * answer: a program that stops lets them finish before deleting the client,
 * so that their callbacks free what they own. */
size_t wr_kclient_inflight(const wr_kclient *c);

/* wr_kstatus_decode fills |st| from an HTTP code and a body (a Status
 * object or anything else). */
void wr_kstatus_decode(struct wr_kstatus *st, int http_code, const char *body, size_t len);

#endif
