/*
 * translate.c - HTTPProxy -> HTTPRoute + EnvoyPatchPolicy (translate.h).
 *
 * Checks come first and copy nothing: a failed check leaves the verdict
 * OP_INVALID with the field named, and no object is built. Building then
 * cannot fail except for memory.
 *
 * Limits are the CRD's (16 hostnames, 16 rules, 64 matches per rule and 128
 * in all, 16 filters, one backend per rule), checked again here because the
 * test API server does not evaluate CEL rules and render mode reads files
 * no API server has seen.
 */
#include "translate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warren/err.h"
#include "warren/routes.h"

#define HOSTNAMES_MAX 16
#define RULES_MAX 16
#define MATCHES_MAX 64
#define MATCHES_TOTAL_MAX 128
#define FILTERS_MAX 16
#define HEADERS_MAX 16
#define NAME_MAX_LEN 253
#define PATH_VALUE_MAX 1024
#define TARGET_MAX 300 /* "host:port", host <= 253 or "[v6]" */

#define TYPE_CLUSTER "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define TYPE_ROUTECONF "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"

/* fail records why |proxy| cannot be translated; returns -1 so checks can
 * `return fail(...)`. */
static int fail(struct op_translation *t, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct op_translation *t, const char *reason, const char *fmt, ...) {
  va_list ap;
  char *p;

  t->verdict = OP_INVALID;
  snprintf(t->reason, sizeof(t->reason), "%s", reason);
  va_start(ap, fmt);
  vsnprintf(t->message, sizeof(t->message), fmt, ap);
  va_end(ap);
  for (p = t->message; *p; p++) { /* messages quote input */
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = '?';
  }
  return -1;
}

static const char *jstr(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

/* A DNS subdomain (object names, hostnames): the CRD pattern, <= 253. */
static bool dns_name(const char *s) {
  return s != NULL && strlen(s) <= NAME_MAX_LEN && wr_routes_dns_name(s, strlen(s));
}

/* A DNS label (namespaces): <= 63, no dots. */
static bool dns_label(const char *s) {
  return dns_name(s) && strlen(s) <= 63 && strchr(s, '.') == NULL;
}

/* spec.hostnames[]: "(\*\.)?<dns name>" */
static bool hostname(const char *s) {
  if (s == NULL || strlen(s) > NAME_MAX_LEN)
    return false;
  if (strncmp(s, "*.", 2) == 0)
    s += 2;
  return wr_routes_dns_name(s, strlen(s));
}

/* array_opt returns the array at |key| (or NULL when absent), failing on a
 * non-array or more than |max| items. */
static int array_opt(struct op_translation *t, const json_t *o, const char *key, size_t max,
                     const char *where, json_t **out) {
  json_t *a = json_object_get(o, key);

  *out = NULL;
  if (a == NULL || json_is_null(a))
    return 0;
  if (!json_is_array(a))
    return fail(t, "Invalid", "%s.%s: expected a list", where, key);
  if (json_array_size(a) > max)
    return fail(t, "Invalid", "%s.%s: at most %zu items", where, key, max);
  *out = a;
  return 0;
}

static bool one_of(const char *s, const char *const *set) {
  for (; s != NULL && *set != NULL; set++) {
    if (strcmp(s, *set) == 0)
      return true;
  }
  return false;
}

/* check_name_values checks headers[] / queryParams[] of a match. */
static int check_name_values(struct op_translation *t, const json_t *m, const char *key,
                             const char *where) {
  static const char *const types[] = {"Exact", "RegularExpression", NULL};
  json_t *a, *it;
  size_t i;

  if (array_opt(t, m, key, HEADERS_MAX, where, &a) != 0)
    return -1;
  json_array_foreach(a, i, it) {
    const char *type = jstr(it, "type");
    if (!json_is_object(it) || jstr(it, "name") == NULL || jstr(it, "value") == NULL ||
        jstr(it, "name")[0] == '\0')
      return fail(t, "Invalid", "%s.%s[%zu]: expected {name, value}", where, key, i);
    if (json_object_get(it, "type") != NULL && !one_of(type, types))
      return fail(t, "Invalid", "%s.%s[%zu].type: expected Exact or RegularExpression", where, key,
                  i);
  }
  return 0;
}

static int check_match(struct op_translation *t, const json_t *m, const char *where) {
  static const char *const keys[] = {"path", "headers", "queryParams", "method", NULL};
  static const char *const ptypes[] = {"Exact", "PathPrefix", "RegularExpression", NULL};
  static const char *const methods[] = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                        "CONNECT", "OPTIONS", "TRACE", "PATCH", NULL};
  const char *key, *type, *value;
  json_t *v, *path;

  if (!json_is_object(m))
    return fail(t, "Invalid", "%s: expected an object", where);
  json_object_foreach((json_t *)m, key, v) {
    if (!one_of(key, keys))
      return fail(t, "UnsupportedValue", "%s.%.64s: unsupported field", where, key);
  }
  path = json_object_get(m, "path");
  if (path != NULL) {
    type = jstr(path, "type");
    value = jstr(path, "value");
    if (!json_is_object(path))
      return fail(t, "Invalid", "%s.path: expected an object", where);
    if (json_object_get(path, "type") != NULL && !one_of(type, ptypes))
      return fail(t, "Invalid", "%s.path.type: expected Exact, PathPrefix or RegularExpression",
                  where);
    if (json_object_get(path, "value") != NULL && (value == NULL || strlen(value) > PATH_VALUE_MAX))
      return fail(t, "Invalid", "%s.path.value: expected a string of at most 1024 bytes", where);
    if (value != NULL && (type == NULL || strcmp(type, "RegularExpression") != 0) &&
        value[0] != '/')
      return fail(t, "Invalid", "%s.path.value: must be an absolute path", where);
  }
  if (json_object_get(m, "method") != NULL && !one_of(jstr(m, "method"), methods))
    return fail(t, "Invalid", "%s.method: unsupported method", where);
  if (check_name_values(t, m, "headers", where) != 0 ||
      check_name_values(t, m, "queryParams", where) != 0)
    return -1;
  return 0;
}

/* check_filters checks a filters[] list. Filters are copied into the
 * HTTPRoute as they are (the upstream schema validates their contents);
 * types Envoy Gateway cannot express through a tunnel are refused. */
static int check_filters(struct op_translation *t, const json_t *a, const char *where,
                         bool *redirect) {
  static const char *const supported[] = {"RequestHeaderModifier", "ResponseHeaderModifier",
                                          "RequestRedirect", "URLRewrite", NULL};
  static const char *const fields[] = {"requestHeaderModifier", "responseHeaderModifier",
                                       "requestRedirect", "urlRewrite", NULL};
  json_t *f;
  size_t i, k;

  json_array_foreach(a, i, f) {
    const char *type = jstr(f, "type");
    if (!json_is_object(f) || type == NULL)
      return fail(t, "Invalid", "%s[%zu].type: required", where, i);
    for (k = 0; supported[k] != NULL && strcmp(type, supported[k]) != 0; k++)
      ;
    if (supported[k] == NULL)
      return fail(t, "UnsupportedValue", "%s[%zu].type: filter %.64s is not supported", where, i,
                  type);
    if (!json_is_object(json_object_get(f, fields[k])))
      return fail(t, "Invalid", "%s[%zu].%s: required for type %s", where, i, fields[k], type);
    if (k == 2)
      *redirect = true;
  }
  return 0;
}

/* A connector rule, once checked. */
struct crule {
  size_t index; /* in spec.rules */
  const char *connector;
  char target[TARGET_MAX]; /* host:port */
  char host[TARGET_MAX];   /* host part ("[v6]" kept bracketed) */
  bool tls;                /* https endpoint: TLS inside the tunnel */
  const char *sni;
  struct op_conn_info info;
};

struct check {
  const char *ns, *name, *uid;
  json_t *hostnames, *rules;
  struct crule crules[RULES_MAX];
  size_t ncrules;
};

static void split_host(struct crule *c) {
  char *colon;

  memcpy(c->host, c->target, sizeof(c->host)); /* same size, NUL-terminated */
  colon = strrchr(c->host, ':');               /* wr_routes_endpoint always writes ":port" */
  if (colon != NULL)
    *colon = '\0';
}

static int check_backend(struct op_translation *t, struct check *ck, const json_t *b, size_t ri,
                         bool redirect) {
  static const char *const keys[] = {"connector", "endpoint", "filters", "tls", "instance", NULL};
  char where[128];
  const char *key, *endpoint, *why;
  struct crule *c = &ck->crules[ck->ncrules];
  json_t *v, *filters, *tls;
  bool unused = false;

  snprintf(where, sizeof(where), "spec.rules[%zu].backends[0]", ri);
  if (!json_is_object(b))
    return fail(t, "Invalid", "%s: expected an object", where);
  json_object_foreach((json_t *)b, key, v) {
    if (!one_of(key, keys))
      return fail(t, "UnsupportedValue", "%s.%.64s: unsupported field", where, key);
  }
  if (redirect)
    return fail(t, "Invalid", "spec.rules[%zu]: a RequestRedirect filter cannot have backends", ri);
  if (json_object_get(b, "instance") != NULL)
    return fail(t, "UnsupportedValue", "%s.instance: instance backends are not supported", where);
  if (json_object_get(b, "connector") == NULL)
    return fail(t, "UnsupportedValue",
                "%s: only connector backends are supported (set connector.name)", where);
  c->connector = jstr(json_object_get(b, "connector"), "name");
  if (!dns_name(c->connector))
    return fail(t, "Invalid", "%s.connector.name: expected a Connector name", where);
  endpoint = jstr(b, "endpoint");
  if (endpoint == NULL)
    return fail(t, "Invalid", "%s.endpoint: required (the target on the connector's side)", where);
  why = wr_routes_endpoint(endpoint, c->target, sizeof(c->target));
  if (why != NULL)
    return fail(t, "Invalid", "%s.endpoint: %s", where, why);
  split_host(c);
  c->tls = strncasecmp(endpoint, "https://", 8) == 0;
  c->sni = NULL;
  tls = json_object_get(b, "tls");
  if (tls != NULL) {
    c->sni = jstr(tls, "hostname");
    if (!json_is_object(tls) || (json_object_get(tls, "hostname") != NULL && !dns_name(c->sni)))
      return fail(t, "Invalid", "%s.tls.hostname: expected a DNS name", where);
  }
  if (array_opt(t, b, "filters", FILTERS_MAX, where, &filters) != 0)
    return -1;
  snprintf(where, sizeof(where), "spec.rules[%zu].backends[0].filters", ri);
  if (filters != NULL && check_filters(t, filters, where, &unused) != 0)
    return -1;
  if (unused)
    return fail(t, "Invalid", "%s: RequestRedirect is not allowed on a backend", where);
  c->index = ri;
  ck->ncrules++;
  return 0;
}

static int check_rules(struct op_translation *t, struct check *ck, const json_t *spec) {
  json_t *rule, *a, *b, *m;
  const char *key, *name;
  char where[128];
  size_t i, j, k, total = 0;
  bool redirect;
  json_t *v;

  ck->rules = json_object_get(spec, "rules");
  if (!json_is_array(ck->rules) || json_array_size(ck->rules) == 0)
    return fail(t, "Invalid", "spec.rules: at least one rule is required");
  if (json_array_size(ck->rules) > RULES_MAX)
    return fail(t, "Invalid", "spec.rules: at most %d rules", RULES_MAX);
  json_array_foreach(ck->rules, i, rule) {
    static const char *const keys[] = {"name", "matches", "filters", "backends", NULL};
    snprintf(where, sizeof(where), "spec.rules[%zu]", i);
    if (!json_is_object(rule))
      return fail(t, "Invalid", "%s: expected an object", where);
    json_object_foreach(rule, key, v) {
      if (!one_of(key, keys))
        return fail(t, "UnsupportedValue", "%s.%.64s: unsupported field", where, key);
    }
    if (json_object_get(rule, "name") != NULL) {
      name = jstr(rule, "name");
      if (!dns_name(name))
        return fail(t, "Invalid", "%s.name: expected a lowercase DNS name", where);
      for (k = 0; k < i; k++) {
        const char *other = jstr(json_array_get(ck->rules, k), "name");
        if (other != NULL && strcmp(other, name) == 0)
          return fail(t, "Invalid", "%s.name: \"%.64s\" is used by rule %zu", where, name, k);
      }
    }
    if (array_opt(t, rule, "matches", MATCHES_MAX, where, &a) != 0)
      return -1;
    json_array_foreach(a, j, m) {
      char mw[160];
      snprintf(mw, sizeof(mw), "%s.matches[%zu]", where, j);
      if (check_match(t, m, mw) != 0)
        return -1;
    }
    total += a ? json_array_size(a) : 1;
    if (total >= MATCHES_TOTAL_MAX)
      return fail(t, "Invalid", "spec.rules: fewer than %d matches in all rules are allowed",
                  MATCHES_TOTAL_MAX);
    redirect = false;
    if (array_opt(t, rule, "filters", FILTERS_MAX, where, &a) != 0)
      return -1;
    snprintf(where, sizeof(where), "spec.rules[%zu].filters", i);
    if (a != NULL && check_filters(t, a, where, &redirect) != 0)
      return -1;
    snprintf(where, sizeof(where), "spec.rules[%zu]", i);
    if (array_opt(t, rule, "backends", 1, where, &a) != 0)
      return -1;
    b = json_array_get(a, 0);
    if (b != NULL && check_backend(t, ck, b, i, redirect) != 0)
      return -1;
  }
  return 0;
}

static int check_proxy(struct op_translation *t, struct check *ck, const json_t *proxy) {
  json_t *meta = json_object_get(proxy, "metadata"), *spec = json_object_get(proxy, "spec");
  json_t *h;
  size_t i, k;

  ck->ns = jstr(meta, "namespace");
  ck->name = jstr(meta, "name");
  ck->uid = jstr(meta, "uid");
  if (!json_is_object(proxy) || !dns_name(ck->name) || !dns_label(ck->ns))
    return fail(t, "Invalid", "metadata: expected a name and a namespace");
  if (!json_is_object(spec))
    return fail(t, "Invalid", "spec: required");
  ck->hostnames = json_object_get(spec, "hostnames");
  if (!json_is_array(ck->hostnames) || json_array_size(ck->hostnames) == 0)
    return fail(t, "Invalid", "spec.hostnames: at least one hostname is required");
  if (json_array_size(ck->hostnames) > HOSTNAMES_MAX)
    return fail(t, "Invalid", "spec.hostnames: at most %d hostnames", HOSTNAMES_MAX);
  json_array_foreach(ck->hostnames, i, h) {
    if (!hostname(json_string_value(h)))
      return fail(t, "Invalid",
                  "spec.hostnames[%zu]: expected a lowercase DNS name, optionally *.-prefixed", i);
    for (k = 0; k < i; k++) {
      if (json_equal(h, json_array_get(ck->hostnames, k)))
        return fail(t, "Invalid", "spec.hostnames[%zu]: duplicate of hostnames[%zu]", i, k);
    }
  }
  return check_rules(t, ck, spec);
}

/* ---- building ---- */

static json_t *metadata(const struct check *ck, const char *ns, const char *name) {
  json_t *m = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "name", name, "namespace", ns, "labels",
                        OP_LABEL_MANAGED_BY, OP_MANAGER, OP_LABEL_PROXY, ck->name,
                        OP_LABEL_PROXY_NS, ck->ns);

  /* an owner must be in the same namespace, or the garbage collector
   * deletes the dependent at once */
  if (m != NULL && ck->uid != NULL && strcmp(ns, ck->ns) == 0 &&
      json_object_set_new(m, "ownerReferences",
                          json_pack("[{s:s, s:s, s:s, s:s, s:b, s:b}]", "apiVersion", OP_PROXY_API,
                                    "kind", "HTTPProxy", "name", ck->name, "uid", ck->uid,
                                    "controller", 1, "blockOwnerDeletion", 1)) != 0) {
    json_decref(m);
    return NULL;
  }
  return m;
}

/* copy_opt copies |key| of |from| into |to| when present. */
static int copy_opt(json_t *to, const json_t *from, const char *key) {
  json_t *v = json_object_get(from, key);

  return v == NULL || json_is_null(v) ? 0 : json_object_set_new(to, key, json_deep_copy(v));
}

static json_t *build_route(const struct check *ck, const struct op_gateway *gw) {
  json_t *route, *parents, *rules, *rule, *r, *b, *ref;
  size_t i, l;

  parents = json_array();
  for (l = 0; parents != NULL && l < gw->nlisteners; l++) {
    if (json_array_append_new(parents, json_pack("{s:s, s:s, s:s*, s:s, s:s}", "group",
                                                 "gateway.networking.k8s.io", "kind", "Gateway",
                                                 "namespace", gw->namespace, "name", gw->name,
                                                 "sectionName", gw->listeners[l])) != 0) {
      json_decref(parents);
      return NULL;
    }
  }
  rules = json_array();
  json_array_foreach(ck->rules, i, rule) {
    r = json_object();
    if (r == NULL || copy_opt(r, rule, "name") != 0 || copy_opt(r, rule, "matches") != 0 ||
        copy_opt(r, rule, "filters") != 0 || json_array_append_new(rules, r) != 0)
      goto fail;
    b = json_array_get(json_object_get(rule, "backends"), 0);
    if (b == NULL)
      continue;
    ref = json_pack("{s:s, s:s, s:s, s:i}", "group", gw->backend_group, "kind", gw->backend_kind,
                    "name", gw->backend_name, "port", gw->backend_port);
    if (ref == NULL || copy_opt(ref, b, "filters") != 0 ||
        json_object_set_new(r, "backendRefs", json_pack("[o]", ref)) != 0)
      goto fail;
  }
  route =
      json_pack("{s:s, s:s, s:o, s:{s:o, s:O, s:o}}", "apiVersion", "gateway.networking.k8s.io/v1",
                "kind", "HTTPRoute", "metadata", metadata(ck, ck->ns, ck->name), "spec",
                "parentRefs", parents, "hostnames", ck->hostnames, "rules", rules);
  return route;
fail:
  json_decref(parents);
  json_decref(rules);
  return NULL;
}

static void cluster_name(char *buf, size_t len, const struct check *ck, size_t rule) {
  /* Envoy Gateway's name for the cluster of an HTTPRoute rule, the same
   * under both of its xDS naming schemes (reference/envoy.md §2). */
  snprintf(buf, len, "httproute/%s/%s/rule/%zu", ck->ns, ck->name, rule);
}

/* inner_socket is what runs inside the internal connection: bytes as they
 * are, or TLS to an https endpoint on the node's side. */
static json_t *inner_socket(const struct crule *c) {
  const char *sni = c->sni;

  if (!c->tls)
    return json_pack(
        "{s:s, s:{s:s}}", "name", "envoy.transport_sockets.raw_buffer", "typed_config", "@type",
        "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer");
  if (sni == NULL && c->host[0] != '[' && strspn(c->host, "0123456789.") != strlen(c->host))
    sni = c->host;
  if (sni == NULL)
    return json_pack(
        "{s:s, s:{s:s}}", "name", "envoy.transport_sockets.tls", "typed_config", "@type",
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
  return json_pack(
      "{s:s, s:{s:s, s:s}}", "name", "envoy.transport_sockets.tls", "typed_config", "@type",
      "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", "sni",
      sni);
}

/* build_cluster: the rule's cluster, one endpoint on the internal listener
 * (the tunnel, or the offline answerer) with the tunnel metadata that
 * internal_upstream hands to that listener's tcp_proxy. */
static json_t *build_cluster(const struct check *ck, const struct op_gateway *gw,
                             const struct crule *c) {
  char name[NAME_MAX_LEN * 2 + 64], conn[NAME_MAX_LEN + 70];
  bool online = c->info.state == OP_CONN_READY;
  json_t *meta;

  cluster_name(name, sizeof(name), ck, c->index);
  snprintf(conn, sizeof(conn), "%s/%s", ck->ns, c->connector);
  meta = online ? json_pack("{s:s, s:s, s:s}", "address", c->target, "endpoint_id",
                            c->info.endpoint_id, "connector", conn)
                : json_pack("{s:s, s:s}", "address", c->target, "connector", conn);
  return json_pack(
      "{s:s, s:s, s:s, s:{s:s, s:[{s:[{s:{s:{s:{s:s}}}, s:{s:{s:o}}}]}]}, s:{s:s, s:{s:s, "
      "s:[{s:{s:{}}, s:s}], s:o}}}",
      "name", name, "type", "STATIC", "connect_timeout", gw->connect_timeout, "load_assignment",
      "cluster_name", name, "endpoints", "lb_endpoints", "endpoint", "address",
      "envoy_internal_address", "server_listener_name",
      online ? gw->internal_listener : gw->offline_listener, "metadata", "filter_metadata",
      "tunnel", meta, "transport_socket", "name", "envoy.transport_sockets.internal_upstream",
      "typed_config", "@type",
      "type.googleapis.com/envoy.extensions.transport_sockets.internal_upstream.v3."
      "InternalUpstreamTransport",
      "passthrough_metadata", "kind", "host", "name", "tunnel", "transport_socket",
      inner_socket(c));
}

static int add_patch(json_t *patches, const char *type, const char *name, const char *op,
                     const char *path, json_t *value) {
  if (value == NULL)
    return WR_ERR_NOMEM;
  return json_array_append_new(patches, json_pack("{s:s, s:s, s:{s:s, s:s, s:o}}", "type", type,
                                                  "name", name, "operation", "op", op, "path", path,
                                                  "value", value)) == 0
             ? 0
             : WR_ERR_NOMEM;
}

static json_t *connect_route(const struct check *ck, const struct crule *c, size_t k) {
  char name[NAME_MAX_LEN * 2 + 64], cluster[NAME_MAX_LEN * 2 + 64];
  json_t *match;

  snprintf(name, sizeof(name), "warren-connect/%s/%s/%zu", ck->ns, ck->name, k);
  cluster_name(cluster, sizeof(cluster), ck, c->index);
  /* connect_matcher matches every CONNECT; the :authority header narrows it
   * to this proxy's target, so that the CONNECT routes of several proxies
   * on one route configuration do not shadow each other. */
  match = json_pack("{s:{}, s:[{s:s, s:{s:s}}]}", "connect_matcher", "headers", "name",
                    ":authority", "string_match", "exact", c->target);
  if (c->info.state != OP_CONN_READY)
    return json_pack("{s:s, s:o, s:{s:i, s:{s:s}}}", "name", name, "match", match,
                     "direct_response", "status", 503, "body", "inline_string", "tunnel offline\n");
  return json_pack("{s:s, s:o, s:{s:s, s:[{s:s, s:{}}]}}", "name", name, "match", match, "route",
                   "cluster", cluster, "upgrade_configs", "upgrade_type", "CONNECT",
                   "connect_config");
}

/* policy_name: the EnvoyPatchPolicy's name in the Gateway's namespace
 * (namespaces have no '.', so "<ns>.<name>" is unambiguous). */
const char *op_policy_name(const struct op_gateway *gw, const char *ns, const char *name, char *buf,
                           size_t len) {
  if (gw->namespace == NULL || strcmp(gw->namespace, ns) == 0) {
    snprintf(buf, len, "%s", name);
    return ns;
  }
  snprintf(buf, len, "%s.%s", ns, name);
  return gw->namespace;
}

static json_t *build_policy(const struct check *ck, const struct op_gateway *gw, op_claim_fn claim,
                            void *ud) {
  char name[NAME_MAX_LEN * 2 + 64], rc[NAME_MAX_LEN * 3], pname[NAME_MAX_LEN * 2];
  const char *gwns = gw->namespace ? gw->namespace : ck->ns;
  json_t *patches = json_array(), *policy;
  size_t i, j, l;
  bool dup;
  int rv = patches ? 0 : WR_ERR_NOMEM;

  for (i = 0; rv == 0 && i < ck->ncrules; i++) {
    cluster_name(name, sizeof(name), ck, ck->crules[i].index);
    rv = add_patch(patches, TYPE_CLUSTER, name, "replace", "",
                   build_cluster(ck, gw, &ck->crules[i]));
  }
  for (l = 0; rv == 0 && l < gw->nlisteners; l++) {
    snprintf(rc, sizeof(rc), "%s/%s/%s", gwns, gw->name, gw->listeners[l]);
    /* the target hosts, each once per route configuration */
    for (i = 0; rv == 0 && i < ck->ncrules; i++) {
      for (j = 0, dup = false; j < i && !dup; j++)
        dup = strcmp(ck->crules[j].host, ck->crules[i].host) == 0;
      if (dup || (claim != NULL && !claim(ud, gw->listeners[l], ck->crules[i].host)))
        continue;
      rv = add_patch(patches, TYPE_ROUTECONF, rc, "add", "/virtual_hosts/0/domains/-",
                     json_string(ck->crules[i].host));
    }
    /* a CONNECT route per distinct target, ahead of the prefix routes */
    for (i = 0; rv == 0 && i < ck->ncrules; i++) {
      for (j = 0, dup = false; j < i && !dup; j++)
        dup = strcmp(ck->crules[j].target, ck->crules[i].target) == 0;
      if (!dup)
        rv = add_patch(patches, TYPE_ROUTECONF, rc, "add", "/virtual_hosts/0/routes/0",
                       connect_route(ck, &ck->crules[i], i));
    }
  }
  if (rv != 0) {
    json_decref(patches);
    return NULL;
  }
  policy =
      json_pack("{s:s, s:s, s:o, s:{s:{s:s, s:s, s:s}, s:s, s:o}}", "apiVersion",
                "gateway.envoyproxy.io/v1alpha1", "kind", "EnvoyPatchPolicy", "metadata",
                metadata(ck, op_policy_name(gw, ck->ns, ck->name, pname, sizeof(pname)), pname),
                "spec", "targetRef", "group", "gateway.networking.k8s.io", "kind", "Gateway",
                "name", gw->name, "type", "JSONPatch", "jsonPatches", patches);
  return policy;
}

static int append_unique(json_t *a, const char *s) {
  json_t *v;
  size_t i;

  json_array_foreach(a, i, v) {
    if (strcmp(json_string_value(v), s) == 0)
      return 0;
  }
  return json_array_append_new(a, json_string(s)) == 0 ? 0 : WR_ERR_NOMEM;
}

int op_translate(const json_t *proxy, const struct op_gateway *gw, op_conn_lookup_fn lookup,
                 op_claim_fn claim, void *ud, struct op_translation *out) {
  struct check *ck;
  struct crule *c;
  size_t i;
  int rv = 0;

  memset(out, 0, sizeof(*out));
  out->hostnames = json_array();
  out->connectors = json_array();
  out->domains = json_array();
  ck = calloc(1, sizeof(*ck));
  if (ck == NULL || out->hostnames == NULL || out->connectors == NULL || out->domains == NULL) {
    free(ck);
    return WR_ERR_NOMEM;
  }
  if (gw->nlisteners == 0 || gw->nlisteners > OP_LISTENERS_MAX) {
    fail(out, "Invalid", "the operator has no Gateway listener configured");
    goto done;
  }
  if (check_proxy(out, ck, proxy) != 0)
    goto done;
  if (gw->namespace != NULL && strcmp(gw->namespace, ck->ns) != 0 &&
      strlen(ck->ns) + 1 + strlen(ck->name) > NAME_MAX_LEN) {
    fail(out, "Invalid", "metadata.name: too long to name its EnvoyPatchPolicy %s.%s", ck->ns,
         ck->name);
    goto done;
  }
  for (i = 0; i < ck->ncrules; i++) {
    c = &ck->crules[i];
    lookup(ud, ck->ns, c->connector, &c->info);
    if (c->info.state == OP_CONN_MISSING) {
      fail(out, "ConnectorNotFound",
           "spec.rules[%zu].backends[0].connector: Connector %s/%s not found", c->index, ck->ns,
           c->connector);
      goto done;
    }
    if (c->info.state != OP_CONN_READY && out->offline_rules++ == 0)
      snprintf(out->offline, sizeof(out->offline), "Connector %s/%s is not Ready", ck->ns,
               c->connector);
    if (append_unique(out->connectors, c->connector) != 0 ||
        append_unique(out->domains, c->host) != 0) {
      rv = WR_ERR_NOMEM;
      goto done;
    }
  }
  out->connector_rules = ck->ncrules;
  out->route = build_route(ck, gw);
  if (ck->ncrules > 0)
    out->policy = build_policy(ck, gw, claim, ud);
  if (out->route == NULL || (ck->ncrules > 0 && out->policy == NULL) ||
      json_array_extend(out->hostnames, ck->hostnames) != 0)
    rv = WR_ERR_NOMEM;
done:
  free(ck);
  return rv;
}

void op_translation_free(struct op_translation *t) {
  json_decref(t->route);
  json_decref(t->policy);
  json_decref(t->hostnames);
  json_decref(t->connectors);
  json_decref(t->domains);
  memset(t, 0, sizeof(*t));
}

/* The two scans below read only what an index needs and never fail on
 * an odd object: it is simply not indexed. */
int op_proxy_connectors(const json_t *proxy, json_t *names) {
  json_t *rules = json_object_get(json_object_get(proxy, "spec"), "rules"), *rule;
  const char *name;
  size_t i;

  json_array_foreach(rules, i, rule) {
    if (i >= RULES_MAX)
      break;
    name = jstr(json_object_get(json_array_get(json_object_get(rule, "backends"), 0), "connector"),
                "name");
    if (dns_name(name) && append_unique(names, name) != 0)
      return WR_ERR_NOMEM;
  }
  return 0;
}

int op_proxy_domains(const json_t *proxy, json_t *domains) {
  json_t *rules = json_object_get(json_object_get(proxy, "spec"), "rules"), *rule, *b;
  struct crule c;
  const char *endpoint;
  size_t i;

  json_array_foreach(rules, i, rule) {
    if (i >= RULES_MAX)
      break;
    b = json_array_get(json_object_get(rule, "backends"), 0);
    endpoint = jstr(b, "endpoint");
    if (json_object_get(b, "connector") == NULL || endpoint == NULL ||
        wr_routes_endpoint(endpoint, c.target, sizeof(c.target)) != NULL)
      continue;
    split_host(&c);
    if (append_unique(domains, c.host) != 0)
      return WR_ERR_NOMEM;
  }
  return 0;
}
