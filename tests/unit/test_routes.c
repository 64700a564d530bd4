/* test_routes.c - the standalone routes file: a valid file, Host matching, and one test per
 * class of error, each checking the file name, line and key path of the message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "warren/err.h"
#include "warren/identity.h"
#include "warren/routes.h"

#ifndef WARREN_FIXTURES
#define WARREN_FIXTURES "tests/fixtures"
#endif

/* Two endpoint IDs: the keys of the seeds 0x01.. and 0x02.., in hex and in z-base-32. */
#define HEX1 "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
#define HEX2 "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
#define Z32_2 "orhzqdiexwmi6iidktucgud63ufa5nwtsuzdxe176a8izd6jsqky"

static const char valid[] =
    "# Proxies first: documents may come in any order.\n"  /* 1 */
    "apiVersion: networking.datumapis.com/v1alpha\n"       /* 2 */
    "kind: HTTPProxy\n"                                    /* 3 */
    "metadata:\n"                                          /* 4 */
    "  name: web\n"                                        /* 5 */
    "  labels: {app: web}\n"                               /* 6 */
    "spec:\n"                                              /* 7 */
    "  hostnames:\n"                                       /* 8 */
    "  - App.Example.COM\n"                                /* 9 */
    "  - \"*.example.com\"\n"                              /* 10 */
    "  rules:\n"                                           /* 11 */
    "  - name: main\n"                                     /* 12 */
    "    matches:\n"                                       /* 13 */
    "    - path: {type: PathPrefix, value: /}\n"           /* 14 */
    "    backends:\n"                                      /* 15 */
    "    - endpoint: http://127.0.0.1:3000/ignored/path\n" /* 16 */
    "      connector: {name: laptop}\n"                    /* 17 */
    "  - backends:\n"                                      /* 18 */
    "    - endpoint: https://public.example.net\n"         /* 19: no connector, skipped */
    "---\n"                                                /* 20 */
    "apiVersion: networking.datumapis.com/v1alpha\n"       /* 21 */
    "kind: HTTPProxy\n"                                    /* 22 */
    "metadata: {name: api}\n"                              /* 23 */
    "spec:\n"                                              /* 24 */
    "  hostnames: [\"*.api.example.com\", api.example.com]\n"
    "  rules:\n"
    "  - backends:\n"
    "    - endpoint: \"[::1]:8443\"\n"
    "      connector: {name: server}\n"
    "---\n"
    "---\n" /* an empty document is skipped */
    "apiVersion: networking.datumapis.com/v1alpha1\n"
    "kind: Connector\n"
    "metadata: {name: laptop}\n"
    "spec: {connectorClassName: standalone}\n"
    "status:\n"
    "  connectionDetails:\n"
    "    type: PublicKey\n"
    "    publicKey:\n"
    "      id: " HEX1 "\n"
    "      addresses:\n"
    "      - {address: 192.0.2.10, port: 4433}\n"
    "      - {address: \"2001:db8::1\", port: 4433}\n"
    "      homeRelay: \"\"\n"
    "---\n"
    "apiVersion: networking.datumapis.com/v1alpha1\n"
    "kind: Connector\n"
    "metadata: {name: server}\n"
    "status:\n"
    "  connectionDetails:\n"
    "    type: PublicKey\n"
    "    publicKey:\n"
    "      id: " Z32_2 "\n"
    "      addresses:\n"
    "      - {address: \"2001:DB8:0:0::2\", port: 7000}\n";

static void assert_route(const struct wr_route *r, const char *hostname, const char *proxy,
                         const char *connector, const char *hex, const char *node_addr,
                         const char *target) {
  wr_pubkey pk;

  assert_non_null(r);
  assert_string_equal(r->hostname, hostname);
  assert_string_equal(r->proxy, proxy);
  assert_string_equal(r->connector, connector);
  assert_int_equal(wr_id_from_hex(pk, hex), 0);
  assert_memory_equal(r->endpoint_id, pk, sizeof(pk));
  assert_string_equal(r->node_addr, node_addr);
  assert_string_equal(r->target, target);
}

static void test_valid(void **state) {
  struct wr_routes r = {NULL, 0};
  char err[512] = "";

  (void)state;
  assert_int_equal(wr_routes_load_mem(&r, "routes.yaml", valid, strlen(valid), err, sizeof(err)),
                   0);
  assert_string_equal(err, "");
  assert_int_equal(r.n, 4);
  /* Sorted by hostname. */
  assert_route(&r.v[0], "*.api.example.com", "api", "server", HEX2, "[2001:db8::2]:7000",
               "[::1]:8443");
  assert_route(&r.v[1], "*.example.com", "web", "laptop", HEX1, "192.0.2.10:4433",
               "127.0.0.1:3000");
  assert_route(&r.v[2], "api.example.com", "api", "server", HEX2, "[2001:db8::2]:7000",
               "[::1]:8443");
  assert_route(&r.v[3], "app.example.com", "web", "laptop", HEX1, "192.0.2.10:4433",
               "127.0.0.1:3000");
  wr_routes_free(&r);
  assert_null(r.v);
  assert_int_equal(r.n, 0);
  wr_routes_free(&r);
}

/* match returns the hostname of the route for |host|, or "-". */
static const char *match(const struct wr_routes *r, const char *host) {
  const struct wr_route *route = wr_routes_match(r, host);

  return route ? route->hostname : "-";
}

static void test_match(void **state) {
  struct wr_routes r = {NULL, 0};
  char err[512];

  (void)state;
  assert_int_equal(wr_routes_load_mem(&r, "routes.yaml", valid, strlen(valid), err, sizeof(err)),
                   0);
  assert_string_equal(match(&r, "app.example.com"), "app.example.com");
  assert_string_equal(match(&r, "APP.Example.com"), "app.example.com");
  assert_string_equal(match(&r, "app.example.com:8080"), "app.example.com");
  assert_string_equal(match(&r, "app.example.com."), "app.example.com");
  assert_string_equal(match(&r, "app.example.com.:443"), "app.example.com");
  /* Exact names win over wildcards; a wildcard covers one or more labels. */
  assert_string_equal(match(&r, "api.example.com"), "api.example.com");
  assert_string_equal(match(&r, "foo.example.com"), "*.example.com");
  assert_string_equal(match(&r, "a.b.c.example.com:80"), "*.example.com");
  assert_string_equal(match(&r, "x.API.example.com"), "*.api.example.com");
  assert_string_equal(match(&r, "y.x.api.example.com"), "*.api.example.com");
  /* The apex is not covered by its wildcard. */
  assert_string_equal(match(&r, "example.com"), "-");
  assert_string_equal(match(&r, "other.org"), "-");
  assert_string_equal(match(&r, "[::1]:443"), "-");
  assert_string_equal(match(&r, "[::1]"), "-");
  assert_string_equal(match(&r, "::1"), "-");
  assert_string_equal(match(&r, ""), "-");
  assert_string_equal(match(&r, ":80"), "-");
  assert_string_equal(match(&r, "app.example.com:http"), "-");
  assert_string_equal(match(&r, "*.example.com"), "-");
  assert_string_equal(match(&r, ".example.com"), "-");
  assert_string_equal(match(&r, "a..example.com"), "-");
  assert_null(wr_routes_match(&r, NULL));
  assert_null(wr_routes_match(NULL, "app.example.com"));
  wr_routes_free(&r);
}

static void test_example_file(void **state) {
  struct wr_routes r = {NULL, 0};
  char err[512];
  int rv;

  (void)state;
  rv = wr_routes_load_file(&r, WARREN_FIXTURES "/routes/example.yaml", err, sizeof(err));
  if (rv != 0)
    fail_msg("%s", err);
  assert_int_equal(r.n, 1);
  assert_route(&r.v[0], "myapp.localhost", "myapp", "laptop", HEX1, "127.0.0.1:4433",
               "127.0.0.1:3000");
  assert_ptr_equal(wr_routes_match(&r, "myapp.localhost:8080"), &r.v[0]);
  wr_routes_free(&r);
}

/* The standard connector, lines 1-10, for the error cases. */
#define CONNECTOR                                                                                  \
  "apiVersion: networking.datumapis.com/v1alpha1\n"       /* 1 */                                  \
  "kind: Connector\n"                                     /* 2 */                                  \
  "metadata: {name: laptop}\n"                            /* 3 */                                  \
  "status:\n"                                             /* 4 */                                  \
  "  connectionDetails:\n"                                /* 5 */                                  \
  "    type: PublicKey\n"                                 /* 6 */                                  \
  "    publicKey:\n"                                      /* 7 */                                  \
  "      id: " HEX1 "\n"                                  /* 8 */                                  \
  "      addresses: [{address: 127.0.0.1, port: 4433}]\n" /* 9 */                                  \
  "---\n"                                                 /* 10 */

/* The head of an HTTPProxy, lines 11-14 after CONNECTOR. */
#define PROXY_HEAD                                                                                 \
  "apiVersion: networking.datumapis.com/v1alpha\n" /* 11 */                                        \
  "kind: HTTPProxy\n"                              /* 12 */                                        \
  "metadata: {name: myapp}\n"                      /* 13 */                                        \
  "spec:\n"                                        /* 14 */

/* A complete HTTPProxy body, lines 15-19. */
#define PROXY_BODY                                                                                 \
  "  hostnames: [myapp.localhost]\n"        /* 15 */                                               \
  "  rules:\n"                              /* 16 */                                               \
  "  - backends:\n"                         /* 17 */                                               \
  "    - endpoint: http://127.0.0.1:3000\n" /* 18 */                                               \
  "      connector: {name: laptop}\n"       /* 19 */

/* load_err expects |yaml| to fail with |want_rv| and message |want|, leaving the output alone. */
static void load_err(const char *yaml, int want_rv, const char *want) {
  struct wr_routes r = {(struct wr_route *)&r, 12345};
  char err[512] = "";

  assert_int_equal(wr_routes_load_mem(&r, "routes.yaml", yaml, strlen(yaml), err, sizeof(err)),
                   want_rv);
  assert_string_equal(err, want);
  assert_ptr_equal(r.v, (struct wr_route *)&r);
  assert_int_equal(r.n, 12345);
}

static void test_sanity_of_templates(void **state) {
  struct wr_routes r = {NULL, 0};
  const char yaml[] = CONNECTOR PROXY_HEAD PROXY_BODY;
  char err[512];

  (void)state;
  assert_int_equal(wr_routes_load_mem(&r, "routes.yaml", yaml, strlen(yaml), err, sizeof(err)), 0);
  assert_int_equal(r.n, 1);
  wr_routes_free(&r);
}

static void test_missing_connector(void **state) {
  (void)state;
  load_err(CONNECTOR PROXY_HEAD "  hostnames: [myapp.localhost]\n"
                                "  rules:\n"
                                "  - backends:\n"
                                "    - endpoint: http://127.0.0.1:3000\n"
                                "      connector: {name: desktop}\n",
           WR_ERR_CONFIG,
           "routes.yaml:19: spec.rules[0].backends[0].connector.name: no Connector named "
           "\"desktop\" in this file");
  load_err(CONNECTOR PROXY_HEAD "  hostnames: [myapp.localhost]\n"
                                "  rules:\n"
                                "  - backends:\n"
                                "    - endpoint: http://127.0.0.1:3000\n"
                                "      connector: {}\n",
           WR_ERR_CONFIG,
           "routes.yaml:19: spec.rules[0].backends[0].connector.name: required key is missing");
  /* A backend names a Connector of its own namespace. */
  load_err(CONNECTOR "apiVersion: networking.datumapis.com/v1alpha\n"
                     "kind: HTTPProxy\n"
                     "metadata: {name: myapp, namespace: dev}\n"
                     "spec:\n" PROXY_BODY,
           WR_ERR_CONFIG,
           "routes.yaml:19: spec.rules[0].backends[0].connector.name: no Connector named "
           "\"laptop\" in this file and namespace dev");
}

static void test_bad_endpoint(void **state) {
  static const struct {
    const char *url, *why;
  } bad[] = {
      {"ftp://127.0.0.1:21", "the scheme must be http or https"},
      {"http://user:pw@127.0.0.1:3000", "user information (user@host) is not allowed"},
      {"127.0.0.1", "expected http://host:port, https://host:port or host:port"},
      {"http://127.0.0.1:0", "the port must be a number from 1 to 65535"},
      {"http://127.0.0.1:65536", "the port must be a number from 1 to 65535"},
      {"http://127.0.0.1:", "the port must be a number from 1 to 65535"},
      {"http://127.0.0.1:80a", "the port must be a number from 1 to 65535"},
      {"http://127.0.0.1:000080", "the port must be a number from 1 to 65535"},
      {"http://:80", "missing host"},
      {"http://", "missing host"},
      {"http://[::1", "unterminated [IPv6 address]"},
      {"http://[::g]:80", "invalid IPv6 address"},
      {"http://[fe80::1%25eth0]:80", "invalid IPv6 address"},
      {"http://[::1]x", "unexpected characters after ]"},
      {"http://::1:80", "an IPv6 address must be in brackets"},
      {"http://300.1.1.1:80", "invalid IPv4 address"},
      {"http://my_host:80", "invalid host name"},
      {"http://-host:80", "invalid host name"},
      {"http://host..local:80", "invalid host name"},
      {"http://exa mple:80", "contains a space, a control or a non-ASCII character"},
  };
  char yaml[1024], want[512];
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    snprintf(yaml, sizeof(yaml),
             CONNECTOR PROXY_HEAD "  hostnames: [myapp.localhost]\n"
                                  "  rules:\n"
                                  "  - backends:\n"
                                  "    - endpoint: \"%s\"\n"
                                  "      connector: {name: laptop}\n",
             bad[i].url);
    snprintf(want, sizeof(want),
             "routes.yaml:18: spec.rules[0].backends[0].endpoint: invalid endpoint URL: %s",
             bad[i].why);
    load_err(yaml, WR_ERR_CONFIG, want);
  }
  load_err(CONNECTOR PROXY_HEAD "  hostnames: [myapp.localhost]\n"
                                "  rules:\n"
                                "  - backends:\n"
                                "    - connector: {name: laptop}\n",
           WR_ERR_CONFIG,
           "routes.yaml:18: spec.rules[0].backends[0].endpoint: required key is missing");
  /* The proxy first, its connector after it. */
  load_err("apiVersion: networking.datumapis.com/v1alpha\n"
           "kind: HTTPProxy\n"
           "metadata: {name: myapp}\n"
           "spec:\n"
           "  hostnames: [myapp.localhost]\n"
           "  rules:\n"
           "  - backends: [{connector: {name: laptop}, endpoint: \"http://127.0.0.1:99999\"}]\n"
           "---\n" CONNECTOR,
           WR_ERR_CONFIG,
           "routes.yaml:7: spec.rules[0].backends[0].endpoint: invalid endpoint URL: the port must "
           "be a number from 1 to 65535");
}

static void test_endpoint_forms(void **state) {
  static const struct {
    const char *url, *target;
  } good[] = {
      {"http://127.0.0.1:3000", "127.0.0.1:3000"},
      {"http://localhost", "localhost:80"},
      {"HTTPS://LocalHost/", "localhost:443"},
      {"https://app.internal:8443/x?y#z", "app.internal:8443"},
      {"localhost:5173", "localhost:5173"},
      {"127.0.0.1:8080/path", "127.0.0.1:8080"},
      {"http://[::1]", "[::1]:80"},
      {"https://[2001:DB8:0::1]:9000", "[2001:db8::1]:9000"},
      {"[::ffff:127.0.0.1]:81", "[::ffff:127.0.0.1]:81"},
      {"http://1.2.3.4.example:80", "1.2.3.4.example:80"},
      {"http://h:65535", "h:65535"},
  };
  struct wr_routes r = {NULL, 0};
  char yaml[1024], err[512];
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    snprintf(yaml, sizeof(yaml),
             CONNECTOR PROXY_HEAD "  hostnames: [myapp.localhost]\n"
                                  "  rules:\n"
                                  "  - backends:\n"
                                  "    - endpoint: \"%s\"\n"
                                  "      connector: {name: laptop}\n",
             good[i].url);
    if (wr_routes_load_mem(&r, "routes.yaml", yaml, strlen(yaml), err, sizeof(err)) != 0)
      fail_msg("%s: %s", good[i].url, err);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.v[0].target, good[i].target);
    wr_routes_free(&r);
  }
}

static void test_bad_hostname(void **state) {
  (void)state;
  load_err(CONNECTOR PROXY_HEAD
           "  hostnames:\n"
           "  - myapp.localhost\n"
           "  - my_app.localhost\n"
           "  rules: [{backends: [{endpoint: \"h:1\", connector: {name: laptop}}]}]\n",
           WR_ERR_CONFIG,
           "routes.yaml:17: spec.hostnames[1]: expected a hostname (labels of a-z, 0-9 and '-', "
           "optionally after \"*.\"), found \"my_app.localhost\"");
  load_err(CONNECTOR PROXY_HEAD
           "  hostnames: [\"*.*.example.com\"]\n"
           "  rules: [{backends: [{endpoint: \"h:1\", connector: {name: laptop}}]}]\n",
           WR_ERR_CONFIG,
           "routes.yaml:15: spec.hostnames[0]: expected a hostname (labels of a-z, 0-9 and '-', "
           "optionally after \"*.\"), found \"*.*.example.com\"");
  load_err(CONNECTOR PROXY_HEAD
           "  hostnames: [\"\"]\n"
           "  rules: [{backends: [{endpoint: \"h:1\", connector: {name: laptop}}]}]\n",
           WR_ERR_CONFIG,
           "routes.yaml:15: spec.hostnames[0]: expected a hostname of 1 to 253 characters");
  load_err(CONNECTOR PROXY_HEAD
           "  hostnames: []\n"
           "  rules: [{backends: [{endpoint: \"h:1\", connector: {name: laptop}}]}]\n",
           WR_ERR_CONFIG, "routes.yaml:15: spec.hostnames: expected 1 to 16 items, found 0");
  load_err(CONNECTOR PROXY_HEAD
           "  hostnames: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q]\n"
           "  rules: [{backends: [{endpoint: \"h:1\", connector: {name: laptop}}]}]\n",
           WR_ERR_CONFIG, "routes.yaml:15: spec.hostnames: expected 1 to 16 items, found 17");
}

/* connector_err replaces line 8 or 9 of CONNECTOR and expects |want|. */
static void connector_err(const char *id_line, const char *addr_line, const char *want) {
  char yaml[2048];

  snprintf(yaml, sizeof(yaml),
           "apiVersion: networking.datumapis.com/v1alpha1\n"
           "kind: Connector\n"
           "metadata: {name: laptop}\n"
           "status:\n"
           "  connectionDetails:\n"
           "    type: PublicKey\n"
           "    publicKey:\n"
           "%s\n"
           "%s\n"
           "---\n" PROXY_HEAD PROXY_BODY,
           id_line, addr_line);
  load_err(yaml, WR_ERR_CONFIG, want);
}

static void test_bad_public_key(void **state) {
  const char *addr = "      addresses: [{address: 127.0.0.1, port: 4433}]";
  const char *why = "expected an endpoint ID (64 hex or 52 z-base-32 characters)";
  char want[512];

  (void)state;
  snprintf(want, sizeof(want), "routes.yaml:8: status.connectionDetails.publicKey.id: %s", why);
  connector_err("      id: abc", addr, want);
  connector_err("      id: " HEX1 "0", addr, want);
  connector_err("      id: ga88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c", addr,
                want);
  /* 'l' is not in the z-base-32 alphabet. */
  connector_err("      id: lrhzqdiexwmi6iidktucgud63ufa5nwtsuzdxe176a8izd6jsqky", addr, want);
  connector_err("      id: 1234", addr,
                "routes.yaml:8: status.connectionDetails.publicKey.id: expected an endpoint ID (64 "
                "hex or 52 z-base-32 characters)");
  connector_err("      idd: " HEX1, addr,
                "routes.yaml:8: status.connectionDetails.publicKey.idd: unknown key");
}

static void test_bad_address(void **state) {
  const char *id = "      id: " HEX1;

  (void)state;
  connector_err(id, "      addresses: [{address: localhost, port: 4433}]",
                "routes.yaml:9: status.connectionDetails.publicKey.addresses[0].address: expected "
                "an IPv4 or IPv6 address, found \"localhost\"");
  connector_err(id, "      addresses: [{address: 127.0.0.1, port: 1}, {address: 1.2.3, port: 2}]",
                "routes.yaml:9: status.connectionDetails.publicKey.addresses[1].address: expected "
                "an IPv4 or IPv6 address, found \"1.2.3\"");
  connector_err(id, "      addresses: []",
                "routes.yaml:9: status.connectionDetails.publicKey.addresses: expected 1 to 16 "
                "items, found 0");
  connector_err(id, "      addresses: [{port: 4433}]",
                "routes.yaml:9: status.connectionDetails.publicKey.addresses[0].address: required "
                "key is missing");
}

static void test_bad_port(void **state) {
  const char *id = "      id: " HEX1;

  (void)state;
  connector_err(id, "      addresses: [{address: 127.0.0.1, port: 70000}]",
                "routes.yaml:9: status.connectionDetails.publicKey.addresses[0].port: expected an "
                "integer from 1 to 65535, found \"70000\"");
  connector_err(id, "      addresses: [{address: 127.0.0.1, port: 0}]",
                "routes.yaml:9: status.connectionDetails.publicKey.addresses[0].port: expected an "
                "integer from 1 to 65535, found \"0\"");
  connector_err(id, "      addresses: [{address: 127.0.0.1, port: \"4433\"}]",
                "routes.yaml:9: status.connectionDetails.publicKey.addresses[0].port: expected an "
                "integer, found the quoted string \"4433\"");
}

static void test_wrong_type(void **state) {
  (void)state;
  load_err(CONNECTOR PROXY_HEAD "  hostnames: [myapp.localhost]\n"
                                "  rules:\n"
                                "  - backends:\n"
                                "    - - endpoint: http://127.0.0.1:3000\n",
           WR_ERR_CONFIG,
           "routes.yaml:18: spec.rules[0].backends[0]: expected a mapping, found a sequence");
  load_err(CONNECTOR "apiVersion: networking.datumapis.com/v1alpha\n"
                     "kind: HTTPProxy\n"
                     "metadata:\n"
                     "- myapp\n",
           WR_ERR_CONFIG, "routes.yaml:14: metadata: expected a mapping, found a sequence");
  load_err(CONNECTOR PROXY_HEAD "  hostnames: myapp.localhost\n"
                                "  rules: []\n",
           WR_ERR_CONFIG, "routes.yaml:15: spec.hostnames: expected a sequence, found a scalar");
  load_err(CONNECTOR PROXY_HEAD "  hostnames: [myapp.localhost]\n"
                                "  rules: []\n",
           WR_ERR_CONFIG, "routes.yaml:16: spec.rules: expected 1 to 16 items, found 0");
  load_err(CONNECTOR PROXY_HEAD "  hostnames: [[myapp.localhost]]\n"
                                "  rules: []\n",
           WR_ERR_CONFIG, "routes.yaml:15: spec.hostnames[0]: expected a string, found a sequence");
  load_err(CONNECTOR "- just a list\n", WR_ERR_CONFIG,
           "routes.yaml:11: expected a Connector or HTTPProxy object, found a sequence");
  load_err(CONNECTOR PROXY_HEAD "  hostname: [myapp.localhost]\n", WR_ERR_CONFIG,
           "routes.yaml:15: spec.hostname: unknown key");
  load_err(CONNECTOR PROXY_HEAD PROXY_BODY "    extra: 1\n", WR_ERR_CONFIG,
           "routes.yaml:20: spec.rules[0].extra: unknown key");
  load_err(CONNECTOR PROXY_HEAD "  hostnames: [myapp.localhost]\n"
                                "  rules:\n"
                                "  - backends:\n"
                                "    - {endpoint: \"h:1\", connector: {name: laptop}}\n"
                                "    - {endpoint: \"h:2\", connector: {name: laptop}}\n",
           WR_ERR_CONFIG, "routes.yaml:18: spec.rules[0].backends: expected 0 to 1 items, found 2");
}

static void test_kind_and_api(void **state) {
  (void)state;
  load_err(CONNECTOR "apiVersion: gateway.networking.k8s.io/v1\n"
                     "kind: HTTPRoute\n",
           WR_ERR_CONFIG,
           "routes.yaml:12: kind: unknown kind \"HTTPRoute\" (expected Connector or HTTPProxy)");
  load_err(CONNECTOR "apiVersion: v1\n", WR_ERR_CONFIG,
           "routes.yaml:11: kind: required key is missing");
  load_err(CONNECTOR "apiVersion: networking.datumapis.com/v1alpha1\n"
                     "kind: HTTPProxy\n"
                     "metadata: {name: myapp}\n"
                     "spec:\n" PROXY_BODY,
           WR_ERR_CONFIG,
           "routes.yaml:11: apiVersion: expected networking.datumapis.com/v1alpha for kind "
           "HTTPProxy, found \"networking.datumapis.com/v1alpha1\"");
  load_err("apiVersion: networking.datumapis.com/v1alpha\n"
           "kind: Connector\n",
           WR_ERR_CONFIG,
           "routes.yaml:1: apiVersion: expected networking.datumapis.com/v1alpha1 for kind "
           "Connector, found \"networking.datumapis.com/v1alpha\"");
  load_err("apiVersion: networking.datumapis.com/v1alpha1\n"
           "kind: Connector\n"
           "metadata: {name: laptop}\n"
           "status:\n"
           "  connectionDetails: {type: Token}\n",
           WR_ERR_CONFIG,
           "routes.yaml:5: status.connectionDetails.type: expected PublicKey, found \"Token\"");
  load_err(CONNECTOR "apiVersion: networking.datumapis.com/v1alpha\n"
                     "kind: HTTPProxy\n"
                     "metadata: {name: My_App}\n",
           WR_ERR_CONFIG,
           "routes.yaml:13: metadata.name: expected a lowercase DNS name (a-z, 0-9, '-', '.'), "
           "found \"My_App\"");
}

static void test_duplicates(void **state) {
  (void)state;
  load_err(CONNECTOR PROXY_HEAD PROXY_BODY "---\n" /* 20 */
                                           "apiVersion: networking.datumapis.com/v1alpha\n"
                                           "kind: HTTPProxy\n"
                                           "metadata: {name: other}\n"
                                           "spec:\n"
                                           "  hostnames:\n" /* 25 */
                                           "  - other.localhost\n"
                                           "  - MyApp.LocalHost\n" /* 27 */
                                           "  rules: [{backends: []}]\n",
           WR_ERR_CONFIG,
           "routes.yaml:27: spec.hostnames[1]: hostname \"myapp.localhost\" of HTTPProxy \"other\" "
           "is already used by HTTPProxy \"myapp\" at line 15");
  load_err(CONNECTOR PROXY_HEAD "  hostnames: [a.localhost, b.localhost, a.localhost]\n"
                                "  rules: [{backends: []}]\n",
           WR_ERR_CONFIG,
           "routes.yaml:15: spec.hostnames[2]: hostname \"a.localhost\" is listed twice (first at "
           "line 15)");
  load_err(CONNECTOR CONNECTOR PROXY_HEAD PROXY_BODY, WR_ERR_CONFIG,
           "routes.yaml:13: metadata.name: Connector \"laptop\" is already defined at line 3");
  load_err(CONNECTOR PROXY_HEAD PROXY_BODY "---\n" PROXY_HEAD "  hostnames: [x.localhost]\n"
                                           "  rules: [{}]\n",
           WR_ERR_CONFIG,
           "routes.yaml:23: metadata.name: HTTPProxy \"myapp\" is already defined at line 13");
}

static void test_yaml_syntax(void **state) {
  (void)state;
  load_err(CONNECTOR PROXY_HEAD "  hostnames: [myapp.localhost\n"
                                "  rules:\n",
           WR_ERR_CONFIG,
           "routes.yaml:16: did not find expected ',' or ']' (while parsing a flow sequence at "
           "line 15)");
  load_err(CONNECTOR PROXY_HEAD "  hostnames: [a]\n"
                                " rules: []\n",
           WR_ERR_CONFIG,
           "routes.yaml:16: did not find expected key (while parsing a block mapping at line 11)");
  load_err(CONNECTOR PROXY_HEAD PROXY_BODY "  hostnames: [again]\n", WR_ERR_CONFIG,
           "routes.yaml:20: spec.hostnames: duplicate key (first at line 15)");
}

static void test_alias_refused(void **state) {
  (void)state;
  load_err(CONNECTOR PROXY_HEAD "  hostnames: &h [myapp.localhost]\n"
                                "  rules: [{backends: []}]\n"
                                "  more: *h\n",
           WR_ERR_CONFIG, "routes.yaml:15: YAML anchors are not supported");
  load_err(CONNECTOR PROXY_HEAD "  hostnames: *h\n", WR_ERR_CONFIG,
           "routes.yaml:15: YAML aliases are not supported");
}

static void test_oversize(void **state) {
  char path[] = "/tmp/test_routes_XXXXXX", err[512], want[512];
  struct wr_routes r = {NULL, 0};
  size_t n = WR_ROUTES_FILE_MAX + 1;
  char *big = malloc(n);
  FILE *f;
  int fd;

  (void)state;
  assert_non_null(big);
  memset(big, '#', n);
  assert_int_equal(wr_routes_load_mem(&r, "routes.yaml", big, n, err, sizeof(err)), WR_ERR_TOOBIG);
  assert_string_equal(err, "routes.yaml: larger than 4194304 bytes");
  /* Exactly at the cap is fine: a comment. */
  assert_int_equal(wr_routes_load_mem(&r, "routes.yaml", big, n - 1, err, sizeof(err)), 0);
  assert_int_equal(r.n, 0);
  wr_routes_free(&r);

  fd = mkstemp(path);
  assert_true(fd >= 0);
  f = fdopen(fd, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(big, 1, n, f), n);
  fclose(f);
  assert_int_equal(wr_routes_load_file(&r, path, err, sizeof(err)), WR_ERR_TOOBIG);
  snprintf(want, sizeof(want), "%s: larger than 4194304 bytes", path);
  assert_string_equal(err, want);
  unlink(path);
  assert_int_equal(wr_routes_load_file(&r, path, err, sizeof(err)), -ENOENT);
  assert_null(r.v);
  free(big);
}

static void test_too_many_routes(void **state) {
  /* 17 proxies of 16 hostnames and 16 connector rules: 4352 routes. */
  size_t cap = 1u << 20, len, p, i;
  char *yaml = malloc(cap), err[512];
  struct wr_routes r = {NULL, 0};

  (void)state;
  assert_non_null(yaml);
  len = (size_t)snprintf(yaml, cap, "%s", CONNECTOR);
  for (p = 0; p < 17; p++) {
    len += (size_t)snprintf(yaml + len, cap - len,
                            "---\napiVersion: networking.datumapis.com/v1alpha\nkind: HTTPProxy\n"
                            "metadata: {name: p%zu}\nspec:\n  hostnames:\n",
                            p);
    for (i = 0; i < 16; i++)
      len += (size_t)snprintf(yaml + len, cap - len, "  - h%zu-%zu.localhost\n", p, i);
    len += (size_t)snprintf(yaml + len, cap - len, "  rules:\n");
    for (i = 0; i < 16; i++)
      len += (size_t)snprintf(yaml + len, cap - len,
                              "  - backends: [{endpoint: \"h:%zu\", connector: {name: laptop}}]\n",
                              i + 1);
  }
  assert_true(len < cap);
  assert_int_equal(wr_routes_load_mem(&r, "routes.yaml", yaml, len, err, sizeof(err)),
                   WR_ERR_CONFIG);
  assert_non_null(strstr(err, "spec.rules[0]: more than 4096 routes in one file"));
  assert_null(r.v);
  free(yaml);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_match),
      cmocka_unit_test(test_example_file),
      cmocka_unit_test(test_sanity_of_templates),
      cmocka_unit_test(test_missing_connector),
      cmocka_unit_test(test_bad_endpoint),
      cmocka_unit_test(test_endpoint_forms),
      cmocka_unit_test(test_bad_hostname),
      cmocka_unit_test(test_bad_public_key),
      cmocka_unit_test(test_bad_address),
      cmocka_unit_test(test_bad_port),
      cmocka_unit_test(test_wrong_type),
      cmocka_unit_test(test_kind_and_api),
      cmocka_unit_test(test_duplicates),
      cmocka_unit_test(test_yaml_syntax),
      cmocka_unit_test(test_alias_refused),
      cmocka_unit_test(test_oversize),
      cmocka_unit_test(test_too_many_routes),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
