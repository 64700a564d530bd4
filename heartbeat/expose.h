/*
 * expose.h - `warren-heartbeat expose PORT`: the HTTPProxy that gives a local
 * port its public hostname (docs/internals/heartbeat-expose.md).
 *
 * Once the agent's Connector is registered, the module creates the HTTPProxy
 * <connector>-<port> in the Connector's namespace (or updates the spec of one
 * that exists), with one hostname and one rule whose backend is
 * http://127.0.0.1:PORT through the Connector. It follows the object with an
 * informer (field selector on its name) until the operator says, for the
 * generation it wrote, Accepted, Programmed and ConnectorMetadataProgrammed
 * (the tunnel is routed): then the URL is ready. Accepted=False is final
 * (but ConnectorNotFound, which only says the operator's cache is behind).
 * Stopping deletes the HTTPProxy if, and only if, this module created it
 * (DELETE with its uid as precondition); one it only updated stays.
 * API failures are retried within a second, as control.c does.
 */
#ifndef WARREN_HB_EXPOSE_H
#define WARREN_HB_EXPOSE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HB_EXPOSE_MANAGED_BY "warren-heartbeat" /* app.kubernetes.io/managed-by */
#define HB_EXPOSE_NAME_MAX 253
#define HB_EXPOSE_DEFAULT_DOMAIN "localhost"
#define HB_EXPOSE_STOP_MS 5000 /* stop gives up on the API after this long */

typedef struct hb_expose hb_expose;

struct hb_expose_opts {
  const char *kubeconfig; /* NULL: $KUBECONFIG, in-cluster, ~/.kube/config */
  const char *name;       /* the HTTPProxy */
  const char *hostname;
  const char *connector;
  uint16_t port; /* exposed as http://127.0.0.1:PORT on the agent's side */
};

struct hb_expose_cbs {
  /* The route is programmed: |url| is "https://<hostname>/". Once. */
  void (*on_ready)(void *ud, const char *url);
  /* The HTTPProxy cannot work (not accepted, access denied): |why|. Never
   * called from inside another hb_expose call. */
  void (*on_fatal)(void *ud, const char *why);
};

/* hb_expose_new loads the API configuration (errors logged). */
int hb_expose_new(hb_expose **out, uv_loop_t *loop, const struct hb_expose_opts *o,
                  const struct hb_expose_cbs *cbs, void *ud);
/* hb_expose_start writes the HTTPProxy in namespace |ns| (the Connector's)
 * and follows it. */
int hb_expose_start(hb_expose *e, const char *ns);
/* hb_expose_stop deletes the HTTPProxy if this module created it, then runs
 * |done| (also on failure, and after HB_EXPOSE_STOP_MS at most). */
void hb_expose_stop(hb_expose *e, void (*done)(void *arg), void *arg);
void hb_expose_del(hb_expose *e);

/* ---- pure parts ---- */

/* hb_expose_hostname_ok tells whether |h| is a hostname a URL can carry:
 * lowercase RFC 1123 labels of 1-63 chars, 253 in all, no wildcard. */
int hb_expose_hostname_ok(const char *h);

/* hb_expose_names fills the HTTPProxy name (<connector>-<port>) and the
 * hostname: |hostname| lowercased when given, else <connector>-<port>.<domain>.
 * Returns 0, or -1 with the reason in |err|. */
int hb_expose_names(const char *connector, uint16_t port, const char *hostname, const char *domain,
                    char *name, size_t namelen, char *host, size_t hostlen, char *err,
                    size_t errlen);

/* hb_expose_proxy returns the HTTPProxy to create (new reference). */
json_t *hb_expose_proxy(const char *ns, const char *name, const char *hostname,
                        const char *connector, uint16_t port);

enum hb_expose_state {
  HB_EXPOSE_PENDING, /* not there yet: |msg| says what is awaited */
  HB_EXPOSE_READY,   /* accepted and programmed, tunnel routed */
  HB_EXPOSE_REFUSED  /* Accepted=False for this generation: |msg| is the operator's reason */
};

/* hb_expose_check reads an HTTPProxy's conditions for its generation, which
 * must be at least |min_gen| (the one this agent wrote; older ones are
 * PENDING). */
enum hb_expose_state hb_expose_check(const json_t *proxy, long long min_gen, char *msg, size_t len);

#endif
