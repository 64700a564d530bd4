/*
 * routes.h - the standalone gateway's routing table, read from a YAML file
 * written in the shape of the HTTPProxy and Connector custom resources
 * (DESIGN.md §5, shared/reference/nso-api.md). A file holds several YAML
 * documents:
 *
 *   apiVersion: networking.datumapis.com/v1alpha1
 *   kind: Connector
 *   metadata: {name: laptop}
 *   spec: {connectorClassName: standalone}
 *   status:
 *     connectionDetails:
 *       type: PublicKey
 *       publicKey:
 *         id: <64 hex>
 *         addresses: [{address: 127.0.0.1, port: 4433}]
 *         homeRelay: ""            # optional in standalone mode
 *   ---
 *   apiVersion: networking.datumapis.com/v1alpha
 *   kind: HTTPProxy
 *   metadata: {name: myapp}
 *   spec:
 *     hostnames: [myapp.localhost]
 *     rules:
 *     - backends:
 *       - endpoint: http://127.0.0.1:3000
 *         connector: {name: laptop}
 *
 * Each (hostname, rule with a connector backend) becomes one route. Errors
 * name the file, line and key. Parsing is validated as a whole before the
 * caller swaps the table in.
 */
#ifndef WARREN_ROUTES_H
#define WARREN_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "warren/identity.h"

#define WR_ROUTES_MAX 4096            /* routes per file */
#define WR_ROUTES_FILE_MAX (4u << 20) /* bytes per file */

struct wr_route {
  char *hostname;  /* lowercase; exact, or "*.example.com" wildcard */
  char *proxy;     /* HTTPProxy metadata.name */
  char *connector; /* Connector metadata.name */
  wr_pubkey endpoint_id;
  char *node_addr; /* "ip:port" (v6 as "[ip]:port") of the node's first address */
  char *target;    /* "host:port" on the node's side, from the backend endpoint URL */
};

struct wr_routes {
  struct wr_route *v;
  size_t n;
};

/* wr_routes_load_file parses |path| into |out| (caller-owned, zeroed or
 * freed). On failure |out| is untouched and |err| holds "file:line: key: why".
 * Returns 0, WR_ERR_CONFIG, WR_ERR_TOOBIG, WR_ERR_NOMEM or -errno. */
int wr_routes_load_file(struct wr_routes *out, const char *path, char *err, size_t errlen);
/* wr_routes_load_mem is the same for a buffer; |name| is used in messages. */
int wr_routes_load_mem(struct wr_routes *out, const char *name, const char *data, size_t len,
                       char *err, size_t errlen);
/* wr_routes_free releases the routes in |r| (not |r| itself). */
void wr_routes_free(struct wr_routes *r);
/* wr_routes_match finds the route for a Host header value (port ignored,
 * case-insensitive; exact names win over wildcards). NULL when none. */
const struct wr_route *wr_routes_match(const struct wr_routes *r, const char *host);

/* wr_routes_endpoint turns a backend endpoint URL ("http://host:port/path",
 * "https://[v6]", "host:port") into |target| ("host:port", "[v6]:port";
 * the host lowercased, the scheme's port when none is given). Returns NULL,
 * or why the URL is refused. */
const char *wr_routes_endpoint(const char *url, char *target, size_t len);
/* wr_routes_dns_name tells whether s[0..n) matches
 * [a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*, the pattern of
 * the CRDs' hostnames and of Kubernetes object names (length not checked). */
bool wr_routes_dns_name(const char *s, size_t n);

#endif
