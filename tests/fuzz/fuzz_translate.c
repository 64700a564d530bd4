/*
 * fuzz_translate.c - libFuzzer target for op_translate (operator/translate.c),
 * which turns an HTTPProxy from the API (or a file, in render mode) into an
 * HTTPRoute and an EnvoyPatchPolicy. The input is JSON (at most 64 KiB);
 * an object is translated with Connectors whose state follows their name
 * ('a...': missing, 'b...': not Ready, others Ready) and a claim that says
 * yes every other time. The input size picks the Gateway's namespace (the
 * proxy's, "default", elsewhere) and one or two listeners.
 *
 * A translation must be all or nothing: OK with a route (and a policy iff
 * there are connector rules, both serialisable), or INVALID with a clean
 * reason and message and nothing built. When OK, the index scans
 * (op_proxy_connectors, op_proxy_domains) must find exactly the
 * connectors and domains the translation reports. Any difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "translate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (64 * 1024)
#define ID "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"

static void lookup(void *ud, const char *ns, const char *name, struct op_conn_info *out) {
  (void)ud;
  (void)ns;
  memset(out, 0, sizeof(*out));
  if (name[0] == 'a') {
    out->state = OP_CONN_MISSING;
  } else if (name[0] == 'b') {
    out->state = OP_CONN_NOT_READY;
  } else {
    out->state = OP_CONN_READY;
    memcpy(out->endpoint_id, ID, sizeof(ID));
  }
}

static bool claim(void *ud, const char *listener, const char *domain) {
  unsigned *calls = ud;

  if (listener == NULL || domain == NULL || domain[0] == '\0')
    abort();
  return (*calls)++ % 2 == 0;
}

static bool clean(const char *s, size_t len) {
  const char *end = memchr(s, '\0', len);

  if (end == NULL)
    return false;
  for (; s < end; s++) {
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return false;
  }
  return true;
}

static void dump(const json_t *v) {
  char *s = json_dumps(v, JSON_COMPACT);

  if (s == NULL)
    abort();
  free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const namespaces[] = {NULL, "default", "envoy-gateway"};
  struct op_gateway gw = {
      .namespace = namespaces[size % 3],
      .name = "gateway-2",
      .listeners = {"https", "https-2"},
      .nlisteners = 1 + (size / 3) % 2,
      .internal_listener = "connector-tunnel",
      .offline_listener = "connector-offline",
      .backend_group = "",
      .backend_kind = "Service",
      .backend_name = "warren-tunnel",
      .backend_port = 80,
      .connect_timeout = "10s",
  };
  struct op_translation t;
  json_t *proxy, *conns, *domains;
  unsigned calls = 0;

  if (size > INPUT_MAX)
    return 0;
  proxy = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
  if (!json_is_object(proxy)) {
    json_decref(proxy);
    return 0;
  }
  if (op_translate(proxy, &gw, lookup, claim, &calls, &t) != 0)
    abort();
  if (!clean(t.reason, sizeof(t.reason)) || !clean(t.message, sizeof(t.message)) ||
      !clean(t.offline, sizeof(t.offline)))
    abort();
  conns = json_array();
  domains = json_array();
  if (conns == NULL || domains == NULL || op_proxy_connectors(proxy, conns) != 0 ||
      op_proxy_domains(proxy, domains) != 0)
    abort();
  if (t.verdict == OP_OK) {
    if (t.route == NULL || (t.policy != NULL) != (t.connector_rules > 0))
      abort();
    if (t.reason[0] != '\0' || t.message[0] != '\0' || t.offline_rules > t.connector_rules ||
        (t.offline_rules > 0) != (t.offline[0] != '\0'))
      abort();
    if (json_array_size(t.hostnames) == 0 || json_array_size(t.hostnames) > 16)
      abort();
    dump(t.route);
    if (t.policy != NULL)
      dump(t.policy);
    if (!json_equal(conns, t.connectors) || !json_equal(domains, t.domains))
      abort();
  } else {
    if (t.verdict != OP_INVALID || t.route != NULL || t.policy != NULL || t.reason[0] == '\0' ||
        t.message[0] == '\0' || calls != 0)
      abort();
  }
  json_decref(conns);
  json_decref(domains);
  op_translation_free(&t);
  json_decref(proxy);
  return 0;
}
