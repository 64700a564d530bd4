/* test_expose.c - the pure parts of heartbeat/expose.c: names, the HTTPProxy,
 * and reading the operator's verdict from its conditions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "expose.h"

static void test_hostname_ok(void **state) {
  (void)state;
  assert_true(hb_expose_hostname_ok("app.example.com"));
  assert_true(hb_expose_hostname_ok("laptop-3000.localhost"));
  assert_true(hb_expose_hostname_ok("a"));
  assert_true(hb_expose_hostname_ok("0-a.b9"));
  assert_false(hb_expose_hostname_ok(""));
  assert_false(hb_expose_hostname_ok("App.example.com"));
  assert_false(hb_expose_hostname_ok("*.example.com"));
  assert_false(hb_expose_hostname_ok("-a.example.com"));
  assert_false(hb_expose_hostname_ok("a-.example.com"));
  assert_false(hb_expose_hostname_ok("a..b"));
  assert_false(hb_expose_hostname_ok(".a"));
  assert_false(hb_expose_hostname_ok("a."));
  assert_false(hb_expose_hostname_ok("a_b.c"));
  assert_false(hb_expose_hostname_ok("a.b:80"));
  assert_true(hb_expose_hostname_ok(
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b")); /* 63 */
  assert_false(hb_expose_hostname_ok(
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b")); /* 64 */
}

static void test_names(void **state) {
  char name[HB_EXPOSE_NAME_MAX + 1], host[HB_EXPOSE_NAME_MAX + 1], err[256], conn[300];

  (void)state;
  assert_int_equal(hb_expose_names("laptop", 3000, "App.Example.com", NULL, name, sizeof(name),
                                   host, sizeof(host), err, sizeof(err)),
                   0);
  assert_string_equal(name, "laptop-3000");
  assert_string_equal(host, "app.example.com");
  assert_int_equal(hb_expose_names("laptop", 8080, NULL, NULL, name, sizeof(name), host,
                                   sizeof(host), err, sizeof(err)),
                   0);
  assert_string_equal(host, "laptop-8080.localhost");
  assert_int_equal(hb_expose_names("laptop", 8080, "", "dev.example.net", name, sizeof(name), host,
                                   sizeof(host), err, sizeof(err)),
                   0);
  assert_string_equal(host, "laptop-8080.dev.example.net");
  /* refused: wildcard, bad derived name, no connector, too long */
  assert_int_equal(hb_expose_names("laptop", 1, "*.example.com", NULL, name, sizeof(name), host,
                                   sizeof(host), err, sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "not a valid hostname"));
  assert_int_equal(hb_expose_names("laptop", 1, NULL, "bad_domain", name, sizeof(name), host,
                                   sizeof(host), err, sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "give --hostname"));
  assert_int_equal(hb_expose_names(NULL, 1, NULL, NULL, name, sizeof(name), host, sizeof(host), err,
                                   sizeof(err)),
                   -1);
  memset(conn, 'c', 250);
  conn[250] = '\0';
  assert_int_equal(hb_expose_names(conn, 65535, "a.b", NULL, name, sizeof(name), host, sizeof(host),
                                   err, sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "longer than 253"));
}

static void test_proxy(void **state) {
  json_t *p = hb_expose_proxy("team-a", "laptop-3000", "app.example.com", "laptop", 3000);
  json_t *want;
  json_error_t e;

  (void)state;
  want =
      json_loads("{\"apiVersion\": \"networking.datumapis.com/v1alpha\", \"kind\": \"HTTPProxy\","
                 " \"metadata\": {\"name\": \"laptop-3000\", \"namespace\": \"team-a\","
                 "  \"labels\": {\"app.kubernetes.io/managed-by\": \"warren-heartbeat\"}},"
                 " \"spec\": {\"hostnames\": [\"app.example.com\"], \"rules\": [{\"backends\":"
                 "  [{\"endpoint\": \"http://127.0.0.1:3000\", \"connector\": {\"name\": "
                 "\"laptop\"}}]}]}}",
                 0, &e);
  assert_non_null(want);
  assert_true(json_equal(p, want));
  json_decref(p);
  json_decref(want);
}

/* proxy builds an HTTPProxy at |gen| with conditions "Type=Status/Reason@gen;..." */
static json_t *proxy(long long gen, const char *spec) {
  json_t *conds = json_array();
  char buf[512], *save = NULL, *tok;

  snprintf(buf, sizeof(buf), "%s", spec);
  for (tok = strtok_r(buf, ";", &save); tok != NULL; tok = strtok_r(NULL, ";", &save)) {
    char type[64], status[16], reason[64], message[96];
    long long g;

    assert_int_equal(sscanf(tok, "%63[^=]=%15[^/]/%63[^@]@%lld", type, status, reason, &g), 4);
    snprintf(message, sizeof(message), "msg of %s", type);
    json_array_append_new(conds, json_pack("{s:s, s:s, s:s, s:s, s:I}", "type", type, "status",
                                           status, "reason", reason, "message", message,
                                           "observedGeneration", (json_int_t)g));
  }
  return json_pack("{s:{s:s, s:I}, s:{s:o}}", "metadata", "name", "x", "generation",
                   (json_int_t)gen, "status", "conditions", conds);
}

static enum hb_expose_state check(long long gen, long long min_gen, const char *conds, char *msg,
                                  size_t len) {
  json_t *p = proxy(gen, conds);
  enum hb_expose_state st = hb_expose_check(p, min_gen, msg, len);

  json_decref(p);
  return st;
}

static void test_check(void **state) {
  char msg[512];

  (void)state;
  /* no status yet */
  assert_int_equal(check(1, 1, "", msg, sizeof(msg)), HB_EXPOSE_PENDING);
  assert_non_null(strstr(msg, "operator"));
  /* all three True for this generation: ready */
  assert_int_equal(check(2, 2,
                         "Accepted=True/Accepted@2;Programmed=True/Programmed@2;"
                         "ConnectorMetadataProgrammed=True/ConnectorMetadataApplied@2",
                         msg, sizeof(msg)),
                   HB_EXPOSE_READY);
  /* ... but for the previous generation: pending */
  assert_int_equal(check(2, 2,
                         "Accepted=True/Accepted@1;Programmed=True/Programmed@1;"
                         "ConnectorMetadataProgrammed=True/ConnectorMetadataApplied@1",
                         msg, sizeof(msg)),
                   HB_EXPOSE_PENDING);
  /* an object older than what we wrote */
  assert_int_equal(check(1, 2,
                         "Accepted=True/Accepted@1;Programmed=True/Programmed@1;"
                         "ConnectorMetadataProgrammed=True/ConnectorMetadataApplied@1",
                         msg, sizeof(msg)),
                   HB_EXPOSE_PENDING);
  /* tunnel offline: pending, says the Connector */
  assert_int_equal(check(1, 1,
                         "Accepted=True/Accepted@1;Programmed=True/Programmed@1;"
                         "ConnectorMetadataProgrammed=False/ConnectorNotReady@1",
                         msg, sizeof(msg)),
                   HB_EXPOSE_PENDING);
  assert_non_null(strstr(msg, "Connector to be Ready"));
  /* Envoy Gateway's verdict not yet good */
  assert_int_equal(
      check(1, 1, "Accepted=True/Accepted@1;Programmed=False/Invalid@1", msg, sizeof(msg)),
      HB_EXPOSE_PENDING);
  assert_non_null(strstr(msg, "Invalid: msg of Programmed"));
  /* refused, with the operator's reason and message */
  assert_int_equal(
      check(1, 1, "Accepted=False/Conflict@1;Programmed=False/Invalid@1", msg, sizeof(msg)),
      HB_EXPOSE_REFUSED);
  assert_string_equal(msg, "Conflict: msg of Accepted");
  /* ConnectorNotFound: the operator's cache is behind the agent's registration */
  assert_int_equal(check(1, 1, "Accepted=False/ConnectorNotFound@1", msg, sizeof(msg)),
                   HB_EXPOSE_PENDING);
  /* refused for an older generation only: pending */
  assert_int_equal(check(3, 3, "Accepted=False/Invalid@2", msg, sizeof(msg)), HB_EXPOSE_PENDING);
  /* no generation at all */
  assert_int_equal(check(0, 0, "", msg, sizeof(msg)), HB_EXPOSE_PENDING);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hostname_ok),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_proxy),
      cmocka_unit_test(test_check),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
