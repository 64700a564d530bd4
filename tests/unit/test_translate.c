/* test_translate - HTTPProxy -> HTTPRoute + EnvoyPatchPolicy: every verdict
 * of operator/translate.c and the shape of what it builds. The patches are
 * applied to Envoy Gateway's real xDS in tests/kube/test_operator_golden.py;
 * here each check and each branch of the builders is driven directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate.h"

#define ID "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
#define T_CLUSTER "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define T_ROUTES "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
#define DOMAINS "/virtual_hosts/0/domains/-"
#define ROUTES0 "/virtual_hosts/0/routes/0"
/* a valid connector backend, in the quote-free notation of jq() */
#define BACKEND "{'connector':{'name':'laptop'},'endpoint':'http://127.0.0.1:3000'}"
#define HOSTS "'hostnames':['app.example.com']"
/* a rule through the tunnel */
#define BRULE "{'backends':[" BACKEND "]}"

/* ---- fixtures ---- */

struct env {
  int lookups;
  char last_ns[64], last_name[300];
  bool deny;  /* claim answers false */
  int claims; /* claim calls */
  char claimed[32][320];
};

static struct env E;

/* Connector state from the name: "missing*" does not exist, "offline*" is
 * not Ready, anything else is Ready with endpoint ID. */
static void lookup(void *ud, const char *ns, const char *name, struct op_conn_info *out) {
  struct env *e = ud;

  e->lookups++;
  snprintf(e->last_ns, sizeof(e->last_ns), "%s", ns);
  snprintf(e->last_name, sizeof(e->last_name), "%s", name);
  memset(out, 0, sizeof(*out));
  if (strncmp(name, "missing", 7) == 0) {
    out->state = OP_CONN_MISSING;
  } else if (strncmp(name, "offline", 7) == 0) {
    out->state = OP_CONN_NOT_READY;
  } else {
    out->state = OP_CONN_READY;
    snprintf(out->endpoint_id, sizeof(out->endpoint_id), "%s", ID);
  }
}

static bool claim(void *ud, const char *listener, const char *domain) {
  struct env *e = ud;

  if (e->claims < 32)
    snprintf(e->claimed[e->claims], sizeof(e->claimed[0]), "%s|%s", listener, domain);
  e->claims++;
  return !e->deny;
}

static struct op_gateway gateway(const char *ns) {
  struct op_gateway gw = {
      .namespace = ns,
      .name = "gateway-2",
      .listeners = {"https"},
      .nlisteners = 1,
      .internal_listener = "connector-tunnel",
      .offline_listener = "connector-offline",
      .backend_group = "",
      .backend_kind = "Service",
      .backend_name = "warren-tunnel",
      .backend_port = 80,
      .connect_timeout = "10s",
  };
  return gw;
}

static int setup(void **state) {
  (void)state;
  memset(&E, 0, sizeof(E));
  return 0;
}

/* jq parses |s| with ' standing for " (no value below needs a quote). */
static json_t *jq(const char *s) {
  char *c = strdup(s), *p;
  json_error_t err;
  json_t *v;

  assert_non_null(c);
  for (p = c; *p; p++) {
    if (*p == '\'')
      *p = '"';
  }
  v = json_loads(c, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
  if (v == NULL)
    fail_msg("bad test JSON (%s): %s", err.text, c);
  free(c);
  return v;
}

/* proxy_obj: an HTTPProxy |ns|/|name| (uid "u-1") with |spec| (stolen). */
static json_t *proxy_obj(const char *ns, const char *name, json_t *spec) {
  json_t *p =
      json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:o}", "apiVersion", OP_PROXY_API, "kind",
                "HTTPProxy", "metadata", "name", name, "namespace", ns, "uid", "u-1", "spec", spec);
  assert_non_null(p);
  return p;
}

/* run translates |proxy| (consumed) through |gw| with the fixtures. */
static void run(json_t *proxy, const struct op_gateway *gw, struct op_translation *t) {
  assert_int_equal(op_translate(proxy, gw, lookup, claim, &E, t), 0);
  json_decref(proxy);
}

static void run_spec(const char *spec, struct op_translation *t) {
  struct op_gateway gw = gateway(NULL);

  run(proxy_obj("default", "web", jq(spec)), &gw, t);
  if (t->verdict != OP_OK)
    fail_msg("unexpected %s: %s", t->reason, t->message);
}

static void expect_invalid_t(struct op_translation *t, const char *reason, const char *message,
                             const char *what, int line) {
  if (t->verdict != OP_INVALID || strcmp(t->reason, reason) != 0 ||
      strcmp(t->message, message) != 0)
    fail_msg("line %d (%s): got %s %s \"%s\", want %s \"%s\"", line, what,
             t->verdict == OP_OK ? "OK" : "INVALID", t->reason, t->message, reason, message);
  /* nothing is built for an invalid proxy */
  assert_null(t->route);
  assert_null(t->policy);
  assert_int_equal(json_array_size(t->hostnames), 0);
  assert_int_equal(t->connector_rules, 0);
  op_translation_free(t);
}

/* expect_invalid: |proxy| (consumed) is refused with |reason| and |message|. */
static void expect_invalid_obj_(json_t *proxy, const struct op_gateway *gw, const char *reason,
                                const char *message, int line) {
  struct op_translation t;
  char *what = json_dumps(proxy, JSON_COMPACT);

  run(proxy, gw, &t);
  expect_invalid_t(&t, reason, message, what, line);
  free(what);
}

static void expect_invalid_spec_(json_t *spec, const char *reason, const char *message, int line) {
  struct op_gateway gw = gateway(NULL);

  expect_invalid_obj_(proxy_obj("default", "web", spec), &gw, reason, message, line);
}

#define expect_invalid_obj(p, gw, r, m) expect_invalid_obj_(p, gw, r, m, __LINE__)
#define expect_invalid_spec(s, r, m) expect_invalid_spec_(s, r, m, __LINE__)
#define expect_invalid(s, r, m) expect_invalid_spec_(jq(s), r, m, __LINE__)
/* a spec with one rule |rule| */
#define RULE(rule) "{" HOSTS ", 'rules':[" rule "]}"

static json_t *patches(const struct op_translation *t) {
  return json_object_get(json_object_get(t->policy, "spec"), "jsonPatches");
}

/* count_patches counts the patches of |type| on |name| with |path| (any when NULL). */
static size_t count_patches(const struct op_translation *t, const char *type, const char *name,
                            const char *path) {
  json_t *p;
  size_t i, n = 0;

  json_array_foreach(patches(t), i, p) {
    json_t *op = json_object_get(p, "operation");
    if (strcmp(json_string_value(json_object_get(p, "type")), type) != 0)
      continue;
    if (name != NULL && strcmp(json_string_value(json_object_get(p, "name")), name) != 0)
      continue;
    if (path != NULL && strcmp(json_string_value(json_object_get(op, "path")), path) != 0)
      continue;
    n++;
  }
  return n;
}

/* patch_value: the value of the |nth| patch of |type| with |path|. */
static json_t *patch_value(const struct op_translation *t, const char *type, const char *path,
                           size_t nth) {
  json_t *p;
  size_t i;

  json_array_foreach(patches(t), i, p) {
    json_t *op = json_object_get(p, "operation");
    if (strcmp(json_string_value(json_object_get(p, "type")), type) == 0 &&
        strcmp(json_string_value(json_object_get(op, "path")), path) == 0 && nth-- == 0)
      return json_object_get(op, "value");
  }
  fail_msg("no patch %zu of %s at %s", nth, type, path);
  return NULL;
}

static const char *sget(const json_t *v, const char *path) {
  char buf[256], *k, *save = NULL;

  snprintf(buf, sizeof(buf), "%s", path);
  for (k = strtok_r(buf, ".", &save); k != NULL && v != NULL; k = strtok_r(NULL, ".", &save)) {
    if (k[0] >= '0' && k[0] <= '9')
      v = json_array_get(v, (size_t)atoi(k));
    else
      v = json_object_get(v, k);
  }
  return json_string_value(v);
}

static json_t *jget(const json_t *v, const char *path) {
  char buf[256], *k, *save = NULL;

  snprintf(buf, sizeof(buf), "%s", path);
  for (k = strtok_r(buf, ".", &save); k != NULL && v != NULL; k = strtok_r(NULL, ".", &save)) {
    if (k[0] >= '0' && k[0] <= '9')
      v = json_array_get(v, (size_t)atoi(k));
    else
      v = json_object_get(v, k);
  }
  return (json_t *)v;
}

static void assert_json(const json_t *got, const char *want) {
  json_t *w = jq(want);

  if (!json_equal(got, w)) {
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
    char *x = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS);
    fail_msg("got %s\nwant %s", g, x);
  }
  json_decref(w);
}

/* ---- verdicts: metadata, spec, hostnames ---- */

static void test_metadata(void **state) {
  struct op_gateway gw = gateway(NULL);
  const char *msg = "metadata: expected a name and a namespace";
  char longns[80];

  (void)state;
  expect_invalid_obj(jq("{'spec':{" HOSTS ", 'rules':[{}]}}"), &gw, "Invalid", msg);
  expect_invalid_obj(jq("{'metadata':{'name':'web'}, 'spec':{}}"), &gw, "Invalid", msg);
  expect_invalid_obj(jq("{'metadata':{'namespace':'default'}, 'spec':{}}"), &gw, "Invalid", msg);
  expect_invalid_obj(proxy_obj("default", "Web", jq("{}")), &gw, "Invalid", msg);
  expect_invalid_obj(proxy_obj("default", "", jq("{}")), &gw, "Invalid", msg);
  expect_invalid_obj(proxy_obj("a.b", "web", jq("{}")), &gw, "Invalid", msg); /* a label */
  expect_invalid_obj(proxy_obj("Default", "web", jq("{}")), &gw, "Invalid", msg);
  memset(longns, 'a', 64);
  longns[64] = '\0';
  expect_invalid_obj(proxy_obj(longns, "web", jq("{}")), &gw, "Invalid", msg);
  expect_invalid_obj(jq("{'metadata':{'name':5, 'namespace':'default'}, 'spec':{}}"), &gw,
                     "Invalid", msg);
  expect_invalid_obj(jq("[{'metadata':{'name':'web', 'namespace':'default'}}]"), &gw, "Invalid",
                     msg);
  expect_invalid_obj(jq("'web'"), &gw, "Invalid", msg);
  /* a 63-character namespace is fine */
  longns[63] = '\0';
  expect_invalid_obj(proxy_obj(longns, "web", jq("{}")), &gw, "Invalid",
                     "spec.hostnames: at least one hostname is required");
  assert_int_equal(E.lookups, 0);
}

static void test_spec_and_hostnames(void **state) {
  const char *none = "spec.hostnames: at least one hostname is required";
  const char *bad = "spec.hostnames[1]: expected a lowercase DNS name, optionally *.-prefixed";
  json_t *spec, *h;
  struct op_translation t;
  char name[32];
  int i;

  (void)state;
  expect_invalid_spec(json_null(), "Invalid", "spec: required");
  expect_invalid_spec(json_array(), "Invalid", "spec: required");
  expect_invalid("{'rules':[" BACKEND "]}", "Invalid", none);
  expect_invalid("{'hostnames':[], 'rules':[]}", "Invalid", none);
  expect_invalid("{'hostnames':'app.example.com', 'rules':[]}", "Invalid", none);
  expect_invalid("{'hostnames':['a.example.com', 'App.example.com'], 'rules':[]}", "Invalid", bad);
  expect_invalid("{'hostnames':['a.example.com', 5], 'rules':[]}", "Invalid", bad);
  expect_invalid("{'hostnames':['a.example.com', '*'], 'rules':[]}", "Invalid", bad);
  expect_invalid("{'hostnames':['a.example.com', '*.'], 'rules':[]}", "Invalid", bad);
  expect_invalid("{'hostnames':['a.example.com', '*.*.example.com'], 'rules':[]}", "Invalid", bad);
  expect_invalid("{'hostnames':['a.example.com', 'a..example.com'], 'rules':[]}", "Invalid", bad);
  expect_invalid("{'hostnames':['a.example.com', 'a_b.example.com'], 'rules':[]}", "Invalid", bad);
  expect_invalid("{'hostnames':['a.example.com', '-a.example.com'], 'rules':[]}", "Invalid", bad);
  expect_invalid("{'hostnames':['a.example.com', 'b.example.com', 'a.example.com'], 'rules':[]}",
                 "Invalid", "spec.hostnames[2]: duplicate of hostnames[0]");

  /* 16 hostnames are fine, 17 are not */
  spec = jq("{'hostnames':[], 'rules':[{}]}");
  h = json_object_get(spec, "hostnames");
  for (i = 0; i < 16; i++) {
    snprintf(name, sizeof(name), "h%d.example.com", i);
    json_array_append_new(h, json_string(name));
  }
  {
    struct op_gateway gw = gateway(NULL);
    json_incref(spec);
    run(proxy_obj("default", "web", spec), &gw, &t);
    assert_int_equal(t.verdict, OP_OK);
    assert_int_equal(json_array_size(t.hostnames), 16);
    op_translation_free(&t);
  }
  json_array_append_new(h, json_string("h16.example.com"));
  expect_invalid_spec(spec, "Invalid", "spec.hostnames: at most 16 hostnames");
}

static void test_wildcard_hostname(void **state) {
  struct op_translation t;

  (void)state;
  run_spec("{'hostnames':['*.example.com', 'example.com'], 'rules':[" BRULE "]}", &t);
  assert_json(t.hostnames, "['*.example.com', 'example.com']");
  assert_json(json_object_get(json_object_get(t.route, "spec"), "hostnames"),
              "['*.example.com', 'example.com']");
  op_translation_free(&t);
}

/* ---- verdicts: rules ---- */

static void test_rules(void **state) {
  const char *none = "spec.rules: at least one rule is required";
  json_t *spec, *rules;
  int i;

  (void)state;
  expect_invalid("{" HOSTS "}", "Invalid", none);
  expect_invalid("{" HOSTS ", 'rules':[]}", "Invalid", none);
  expect_invalid("{" HOSTS ", 'rules':{}}", "Invalid", none);
  expect_invalid(RULE("[]"), "Invalid", "spec.rules[0]: expected an object");
  expect_invalid("{" HOSTS ", 'rules':[{}, 'x']}", "Invalid", "spec.rules[1]: expected an object");
  expect_invalid(RULE("{'timeouts':{}}"), "UnsupportedValue",
                 "spec.rules[0].timeouts: unsupported field");
  expect_invalid(RULE("{'_warren':{}}"), "UnsupportedValue",
                 "spec.rules[0]._warren: unsupported field");
  /* quoted input never puts a control character in a message */
  expect_invalid(RULE("{'a\\nb\\u007f':1}"), "UnsupportedValue",
                 "spec.rules[0].a?b?: unsupported field");
  expect_invalid(RULE("{'name':'Bad_Name'}"), "Invalid",
                 "spec.rules[0].name: expected a lowercase DNS name");
  expect_invalid(RULE("{'name':''}"), "Invalid",
                 "spec.rules[0].name: expected a lowercase DNS name");
  expect_invalid(RULE("{'name':null}"), "Invalid",
                 "spec.rules[0].name: expected a lowercase DNS name");
  expect_invalid(RULE("{'name':7}"), "Invalid",
                 "spec.rules[0].name: expected a lowercase DNS name");
  expect_invalid("{" HOSTS ", 'rules':[{'name':'a'}, {}, {'name':'b'}, {'name':'a'}]}", "Invalid",
                 "spec.rules[3].name: \"a\" is used by rule 0");

  /* 16 rules are fine (all through the tunnel), 17 are not */
  spec = jq("{" HOSTS ", 'rules':[]}");
  rules = json_object_get(spec, "rules");
  for (i = 0; i < 16; i++)
    json_array_append_new(rules, jq("{'backends':[" BACKEND "]}"));
  {
    struct op_gateway gw = gateway(NULL);
    struct op_translation t;
    json_incref(spec);
    run(proxy_obj("default", "web", spec), &gw, &t);
    assert_int_equal(t.verdict, OP_OK);
    assert_int_equal(t.connector_rules, 16);
    assert_int_equal(E.lookups, 16);
    assert_json(t.connectors, "['laptop']");
    assert_json(t.domains, "['127.0.0.1']");
    assert_int_equal(count_patches(&t, T_CLUSTER, NULL, ""), 16);
    /* one target: one domain, one CONNECT route */
    assert_int_equal(count_patches(&t, T_ROUTES, NULL, DOMAINS), 1);
    assert_int_equal(count_patches(&t, T_ROUTES, NULL, ROUTES0), 1);
    op_translation_free(&t);
  }
  json_array_append_new(rules, jq("{}"));
  expect_invalid_spec(spec, "Invalid", "spec.rules: at most 16 rules");
}

static void test_rule_lists(void **state) {
  (void)state;
  expect_invalid(RULE("{'matches':{}}"), "Invalid", "spec.rules[0].matches: expected a list");
  expect_invalid(RULE("{'filters':'x'}"), "Invalid", "spec.rules[0].filters: expected a list");
  expect_invalid(RULE("{'backends':{}}"), "Invalid", "spec.rules[0].backends: expected a list");
  expect_invalid(RULE("{'backends':[" BACKEND ", " BACKEND "]}"), "Invalid",
                 "spec.rules[0].backends: at most 1 items");
}

/* ---- verdicts: matches ---- */

static void test_match_fields(void **state) {
  char where[] = "spec.rules[0].matches[1]";
  char buf[256];
  (void)state;

#define M(m) RULE("{'matches':[{}, " m "]}")
#define W(s) (snprintf(buf, sizeof(buf), "%s%s", where, s), buf)
  expect_invalid(M("[]"), "Invalid", W(": expected an object"));
  expect_invalid(M("{'port':80}"), "UnsupportedValue", W(".port: unsupported field"));
  expect_invalid(M("{'path':'/'}"), "Invalid", W(".path: expected an object"));
  expect_invalid(M("{'path':{'type':'Prefix', 'value':'/'}}"), "Invalid",
                 W(".path.type: expected Exact, PathPrefix or RegularExpression"));
  expect_invalid(M("{'path':{'type':null, 'value':'/'}}"), "Invalid",
                 W(".path.type: expected Exact, PathPrefix or RegularExpression"));
  expect_invalid(M("{'path':{'value':5}}"), "Invalid",
                 W(".path.value: expected a string of at most 1024 bytes"));
  expect_invalid(M("{'path':{'value':'api'}}"), "Invalid",
                 W(".path.value: must be an absolute path"));
  expect_invalid(M("{'path':{'type':'Exact', 'value':''}}"), "Invalid",
                 W(".path.value: must be an absolute path"));
  expect_invalid(M("{'path':{'type':'PathPrefix', 'value':'api/'}}"), "Invalid",
                 W(".path.value: must be an absolute path"));
  expect_invalid(M("{'method':'FETCH'}"), "Invalid", W(".method: unsupported method"));
  expect_invalid(M("{'method':'get'}"), "Invalid", W(".method: unsupported method"));
  expect_invalid(M("{'method':null}"), "Invalid", W(".method: unsupported method"));
  expect_invalid(M("{'headers':{}}"), "Invalid", W(".headers: expected a list"));
  expect_invalid(M("{'headers':['x']}"), "Invalid", W(".headers[0]: expected {name, value}"));
  expect_invalid(M("{'headers':[{'name':'x'}]}"), "Invalid",
                 W(".headers[0]: expected {name, value}"));
  expect_invalid(M("{'headers':[{'value':'x'}]}"), "Invalid",
                 W(".headers[0]: expected {name, value}"));
  expect_invalid(M("{'headers':[{'name':'a', 'value':'b'}, {'name':'', 'value':'x'}]}"), "Invalid",
                 W(".headers[1]: expected {name, value}"));
  expect_invalid(M("{'headers':[{'name':'x', 'value':1}]}"), "Invalid",
                 W(".headers[0]: expected {name, value}"));
  expect_invalid(M("{'headers':[{'name':'x', 'value':'y', 'type':'Prefix'}]}"), "Invalid",
                 W(".headers[0].type: expected Exact or RegularExpression"));
  expect_invalid(M("{'queryParams':[{'name':'x', 'value':'y', 'type':'Prefix'}]}"), "Invalid",
                 W(".queryParams[0].type: expected Exact or RegularExpression"));
  expect_invalid(M("{'queryParams':[{'name':'x'}]}"), "Invalid",
                 W(".queryParams[0]: expected {name, value}"));
  expect_invalid(M("{'queryParams':7}"), "Invalid", W(".queryParams: expected a list"));
  expect_invalid(M("{'headers':[{'n':1}], 'path':{'value':'x'}}"), "Invalid",
                 W(".path.value: must be an absolute path")); /* path is checked first */
#undef M
#undef W
}

static void test_match_limits(void **state) {
  json_t *spec, *m, *r0, *r1;
  char *value;
  int i;

  (void)state;
  /* path values: 1024 bytes are fine, 1025 are not */
  value = malloc(1026);
  assert_non_null(value);
  memset(value, 'a', 1025);
  value[0] = '/';
  value[1024] = '\0';
  spec = jq(RULE("{'matches':[{'path':{'type':'Exact', 'value':''}}]}"));
  m = json_object_get(jget(spec, "rules.0.matches.0"), "path");
  json_object_set_new(m, "value", json_string(value));
  json_object_set_new(jget(spec, "rules.0"), "backends", jq("[" BACKEND "]"));
  {
    struct op_gateway gw = gateway(NULL);
    struct op_translation t;
    json_incref(spec);
    run(proxy_obj("default", "web", spec), &gw, &t);
    assert_int_equal(t.verdict, OP_OK);
    assert_string_equal(sget(t.route, "spec.rules.0.matches.0.path.value"), value);
    op_translation_free(&t);
  }
  value[1024] = 'a';
  value[1025] = '\0';
  json_object_set_new(m, "value", json_string(value));
  expect_invalid_spec(spec, "Invalid",
                      "spec.rules[0].matches[0].path.value: expected a string of at most 1024 "
                      "bytes");
  free(value);

  /* 16 headers per match, 64 matches per rule */
  spec = jq(RULE("{'matches':[{'headers':[]}]}"));
  m = jget(spec, "rules.0.matches.0.headers");
  for (i = 0; i < 17; i++)
    json_array_append_new(m, jq("{'name':'x-a', 'value':'1'}"));
  expect_invalid_spec(spec, "Invalid", "spec.rules[0].matches[0].headers: at most 16 items");
  spec = jq(RULE("{'matches':[]}"));
  m = jget(spec, "rules.0.matches");
  for (i = 0; i < 65; i++)
    json_array_append_new(m, jq("{'method':'GET'}"));
  expect_invalid_spec(spec, "Invalid", "spec.rules[0].matches: at most 64 items");

  /* fewer than 128 matches in all: 64 + 63 is fine */
  spec = jq("{" HOSTS ", 'rules':[{'matches':[]}, {'matches':[]}]}");
  r0 = jget(spec, "rules.0.matches");
  r1 = jget(spec, "rules.1.matches");
  for (i = 0; i < 64; i++)
    json_array_append_new(r0, jq("{'path':{'value':'/a'}}"));
  for (i = 0; i < 63; i++)
    json_array_append_new(r1, jq("{'path':{'value':'/b'}}"));
  {
    struct op_gateway gw = gateway(NULL);
    struct op_translation t;
    json_incref(spec);
    run(proxy_obj("default", "web", spec), &gw, &t);
    assert_int_equal(t.verdict, OP_OK);
    assert_int_equal(json_array_size(jget(t.route, "spec.rules.1.matches")), 63);
    op_translation_free(&t);
  }
  /* a rule without matches counts as one */
  json_incref(spec);
  json_array_append_new(json_object_get(spec, "rules"), jq("{}"));
  expect_invalid_spec(spec, "Invalid",
                      "spec.rules: fewer than 128 matches in all rules are allowed");
  json_array_remove(json_object_get(spec, "rules"), 2);
  json_array_append_new(r1, jq("{'path':{'value':'/c'}}"));
  expect_invalid_spec(spec, "Invalid",
                      "spec.rules: fewer than 128 matches in all rules are allowed");
}

static void test_valid_matches(void **state) {
  struct op_translation t;

  (void)state;
  run_spec(RULE("{'name':'api', 'matches':["
                "{'path':{'type':'RegularExpression', 'value':'.*\\\\.php'}},"
                "{'path':{'type':'Exact'}},"
                "{'path':{'value':'/v1'}, 'method':'PATCH',"
                " 'headers':[{'name':'x-a', 'value':'1'}, {'name':'x-b', 'value':'^2',"
                "             'type':'RegularExpression'}],"
                " 'queryParams':[{'name':'q', 'value':'1', 'type':'Exact'}]}],"
                " 'backends':[" BACKEND "]}"),
           &t);
  assert_json(
      jget(t.route, "spec.rules.0"),
      "{'name':'api', 'matches':["
      "{'path':{'type':'RegularExpression', 'value':'.*\\\\.php'}},"
      "{'path':{'type':'Exact'}},"
      "{'path':{'value':'/v1'}, 'method':'PATCH',"
      " 'headers':[{'name':'x-a', 'value':'1'}, {'name':'x-b', 'value':'^2',"
      "             'type':'RegularExpression'}],"
      " 'queryParams':[{'name':'q', 'value':'1', 'type':'Exact'}]}],"
      " 'backendRefs':[{'group':'', 'kind':'Service', 'name':'warren-tunnel', 'port':80}]}");
  op_translation_free(&t);
}

/* ---- verdicts: filters and backends ---- */

static void test_filters(void **state) {
  struct op_translation t;

  (void)state;
  expect_invalid(RULE("{'filters':['x']}"), "Invalid", "spec.rules[0].filters[0].type: required");
  expect_invalid(RULE("{'filters':[{'type':5}]}"), "Invalid",
                 "spec.rules[0].filters[0].type: required");
  expect_invalid(RULE("{'filters':[{'requestHeaderModifier':{}}]}"), "Invalid",
                 "spec.rules[0].filters[0].type: required");
  expect_invalid(RULE("{'filters':[{'type':'URLRewrite', 'urlRewrite':{}},"
                      "{'type':'RequestMirror', 'requestMirror':{}}]}"),
                 "UnsupportedValue",
                 "spec.rules[0].filters[1].type: filter RequestMirror is not supported");
  expect_invalid(RULE("{'filters':[{'type':'ExtensionRef'}]}"), "UnsupportedValue",
                 "spec.rules[0].filters[0].type: filter ExtensionRef is not supported");
  expect_invalid(RULE("{'filters':[{'type':'RequestHeaderModifier'}]}"), "Invalid",
                 "spec.rules[0].filters[0].requestHeaderModifier: required for type "
                 "RequestHeaderModifier");
  expect_invalid(
      RULE("{'filters':[{'type':'ResponseHeaderModifier', 'responseHeaderModifier':[]}]}"),
      "Invalid",
      "spec.rules[0].filters[0].responseHeaderModifier: required for type "
      "ResponseHeaderModifier");
  expect_invalid(RULE("{'filters':[{'type':'URLRewrite', 'requestRedirect':{}}]}"), "Invalid",
                 "spec.rules[0].filters[0].urlRewrite: required for type URLRewrite");
  expect_invalid(RULE("{'filters':[{'type':'RequestRedirect', 'requestRedirect':{}}],"
                      " 'backends':[" BACKEND "]}"),
                 "Invalid", "spec.rules[0]: a RequestRedirect filter cannot have backends");

  /* a redirect alone is a rule without backends and without policy */
  run_spec(RULE("{'filters':[{'type':'RequestRedirect',"
                " 'requestRedirect':{'scheme':'https', 'statusCode':301}}]}"),
           &t);
  assert_null(t.policy);
  assert_int_equal(t.connector_rules, 0);
  assert_int_equal(E.lookups, 0);
  assert_json(jget(t.route, "spec.rules"),
              "[{'filters':[{'type':'RequestRedirect',"
              " 'requestRedirect':{'scheme':'https', 'statusCode':301}}]}]");
  assert_json(t.connectors, "[]");
  assert_json(t.domains, "[]");
  op_translation_free(&t);
}

static void test_backends(void **state) {
  const char *b = "spec.rules[0].backends[0]";
  char buf[256];

  (void)state;
#define B(x) RULE("{'backends':[" x "]}")
#define W(s) (snprintf(buf, sizeof(buf), "%s%s", b, s), buf)
  expect_invalid(B("'laptop'"), "Invalid", W(": expected an object"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':'http://a:1', 'weight':1}"),
                 "UnsupportedValue", W(".weight: unsupported field"));
  expect_invalid(B("{'instance':{'name':'vm'}, 'endpoint':'http://a:1'}"), "UnsupportedValue",
                 W(".instance: instance backends are not supported"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'instance':{}, 'endpoint':'http://a:1'}"),
                 "UnsupportedValue", W(".instance: instance backends are not supported"));
  expect_invalid(B("{'endpoint':'http://127.0.0.1:3000'}"), "UnsupportedValue",
                 W(": only connector backends are supported (set connector.name)"));
  expect_invalid(B("{'connector':{}, 'endpoint':'http://a:1'}"), "Invalid",
                 W(".connector.name: expected a Connector name"));
  expect_invalid(B("{'connector':'laptop', 'endpoint':'http://a:1'}"), "Invalid",
                 W(".connector.name: expected a Connector name"));
  expect_invalid(B("{'connector':{'name':'Laptop'}, 'endpoint':'http://a:1'}"), "Invalid",
                 W(".connector.name: expected a Connector name"));
  expect_invalid(B("{'connector':{'name':'laptop'}}"), "Invalid",
                 W(".endpoint: required (the target on the connector's side)"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':3000}"), "Invalid",
                 W(".endpoint: required (the target on the connector's side)"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':'ftp://a:21'}"), "Invalid",
                 W(".endpoint: the scheme must be http or https"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':'localhost'}"), "Invalid",
                 W(".endpoint: expected http://host:port, https://host:port or host:port"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':'http://a:0'}"), "Invalid",
                 W(".endpoint: the port must be a number from 1 to 65535"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':'http://u@a:1'}"), "Invalid",
                 W(".endpoint: user information (user@host) is not allowed"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':'http://[::1:80'}"), "Invalid",
                 W(".endpoint: unterminated [IPv6 address]"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':'https://a:1', "
                   "'tls':{'hostname':'Bad_Host'}}"),
                 "Invalid", W(".tls.hostname: expected a DNS name"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':'https://a:1', "
                   "'tls':{'hostname':null}}"),
                 "Invalid", W(".tls.hostname: expected a DNS name"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':'https://a:1', 'tls':true}"),
                 "Invalid", W(".tls.hostname: expected a DNS name"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':'http://a:1', 'filters':{}}"),
                 "Invalid", W(".filters: expected a list"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':'http://a:1', "
                   "'filters':[{'type':'RequestMirror'}]}"),
                 "UnsupportedValue", W(".filters[0].type: filter RequestMirror is not supported"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':'http://a:1', "
                   "'filters':[{'type':'URLRewrite'}]}"),
                 "Invalid", W(".filters[0].urlRewrite: required for type URLRewrite"));
  expect_invalid(B("{'connector':{'name':'laptop'}, 'endpoint':'http://a:1', "
                   "'filters':[{'type':'RequestRedirect', 'requestRedirect':{}}]}"),
                 "Invalid", W(".filters: RequestRedirect is not allowed on a backend"));
#undef B
#undef W
  assert_int_equal(E.lookups, 0); /* checks come before any lookup */
}

static void test_connector_missing(void **state) {
  struct op_translation t;
  struct op_gateway gw = gateway(NULL);

  (void)state;
  run(proxy_obj("team-a", "web",
                jq("{" HOSTS ", 'rules':[{'backends':[" BACKEND "]},"
                   "{'backends':[{'connector':{'name':'missing-one'}, 'endpoint':'a:1'}]}]}")),
      &gw, &t);
  assert_int_equal(E.lookups, 2);
  assert_string_equal(E.last_ns, "team-a");
  assert_string_equal(E.last_name, "missing-one");
  expect_invalid_t(&t, "ConnectorNotFound",
                   "spec.rules[1].backends[0].connector: Connector team-a/missing-one not found",
                   "missing", __LINE__);
}

/* ---- the Gateway ---- */

static void test_gateway_listeners(void **state) {
  struct op_gateway gw = gateway(NULL);
  const char *msg = "the operator has no Gateway listener configured";

  (void)state;
  gw.nlisteners = 0;
  expect_invalid_obj(proxy_obj("default", "web", jq(RULE(BACKEND))), &gw, "Invalid", msg);
  gw.nlisteners = OP_LISTENERS_MAX + 1;
  expect_invalid_obj(proxy_obj("default", "web", jq(RULE(BACKEND))), &gw, "Invalid", msg);
  assert_int_equal(E.lookups, 0);
}

static void test_route_and_policy_same_namespace(void **state) {
  struct op_gateway gw = gateway(NULL);
  struct op_translation t;
  const char *owner = "[{'apiVersion':'networking.datumapis.com/v1alpha', 'kind':'HTTPProxy',"
                      " 'name':'web', 'uid':'u-1', 'controller':true,"
                      " 'blockOwnerDeletion':true}]";
  const char *labels = "{'app.kubernetes.io/managed-by':'warren-operator',"
                       " 'networking.datumapis.com/httpproxy':'web',"
                       " 'networking.datumapis.com/httpproxy-namespace':'default'}";
  int pass;

  (void)state;
  /* the Gateway in each proxy's namespace (NULL), or named as the proxy's */
  for (pass = 0; pass < 2; pass++) {
    gw.namespace = pass == 0 ? NULL : "default";
    memset(&E, 0, sizeof(E));
    run(proxy_obj("default", "web",
                  jq("{'hostnames':['app.example.com'], 'rules':[{'name':'r0',"
                     " 'filters':[{'type':'RequestHeaderModifier',"
                     " 'requestHeaderModifier':{'set':[{'name':'x', 'value':'y'}]}}],"
                     " 'backends':[{'connector':{'name':'laptop'},"
                     " 'endpoint':'http://127.0.0.1:3000/ignored?q#f',"
                     " 'filters':[{'type':'URLRewrite', 'urlRewrite':{'hostname':'h'}}]}]}]}")),
        &gw, &t);
    assert_int_equal(t.verdict, OP_OK);
    assert_string_equal(t.reason, "");
    assert_string_equal(t.message, "");
    assert_int_equal(t.connector_rules, 1);
    assert_int_equal(t.offline_rules, 0);
    assert_string_equal(t.offline, "");
    assert_json(t.hostnames, "['app.example.com']");
    assert_json(t.connectors, "['laptop']");
    assert_json(t.domains, "['127.0.0.1']");

    assert_string_equal(sget(t.route, "apiVersion"), "gateway.networking.k8s.io/v1");
    assert_string_equal(sget(t.route, "kind"), "HTTPRoute");
    assert_string_equal(sget(t.route, "metadata.name"), "web");
    assert_string_equal(sget(t.route, "metadata.namespace"), "default");
    assert_json(jget(t.route, "metadata.labels"), labels);
    assert_json(jget(t.route, "metadata.ownerReferences"), owner);
    if (pass == 0)
      assert_json(jget(t.route, "spec.parentRefs"),
                  "[{'group':'gateway.networking.k8s.io', 'kind':'Gateway', 'name':'gateway-2',"
                  " 'sectionName':'https'}]");
    else
      assert_json(jget(t.route, "spec.parentRefs"),
                  "[{'group':'gateway.networking.k8s.io', 'kind':'Gateway', 'name':'gateway-2',"
                  " 'namespace':'default', 'sectionName':'https'}]");
    assert_json(jget(t.route, "spec.rules"),
                "[{'name':'r0', 'filters':[{'type':'RequestHeaderModifier',"
                " 'requestHeaderModifier':{'set':[{'name':'x', 'value':'y'}]}}],"
                " 'backendRefs':[{'group':'', 'kind':'Service', 'name':'warren-tunnel',"
                " 'port':80, 'filters':[{'type':'URLRewrite', 'urlRewrite':{'hostname':'h'}}]}]}]");

    assert_string_equal(sget(t.policy, "apiVersion"), "gateway.envoyproxy.io/v1alpha1");
    assert_string_equal(sget(t.policy, "kind"), "EnvoyPatchPolicy");
    assert_string_equal(sget(t.policy, "metadata.name"), "web");
    assert_string_equal(sget(t.policy, "metadata.namespace"), "default");
    assert_json(jget(t.policy, "metadata.labels"), labels);
    assert_json(jget(t.policy, "metadata.ownerReferences"), owner);
    assert_json(jget(t.policy, "spec.targetRef"),
                "{'group':'gateway.networking.k8s.io', 'kind':'Gateway', 'name':'gateway-2'}");
    assert_string_equal(sget(t.policy, "spec.type"), "JSONPatch");
    assert_int_equal(json_array_size(patches(&t)), 3);
    assert_json(jget(patches(&t), "0"),
                "{'type':'" T_CLUSTER "', 'name':'httproute/default/web/rule/0',"
                " 'operation':{'op':'replace', 'path':'', 'value':{"
                "  'name':'httproute/default/web/rule/0', 'type':'STATIC',"
                "  'connect_timeout':'10s', 'load_assignment':{"
                "   'cluster_name':'httproute/default/web/rule/0', 'endpoints':[{'lb_endpoints':[{"
                "    'endpoint':{'address':{'envoy_internal_address':{"
                "     'server_listener_name':'connector-tunnel'}}},"
                "    'metadata':{'filter_metadata':{'tunnel':{'address':'127.0.0.1:3000',"
                "     'endpoint_id':'" ID "', 'connector':'default/laptop'}}}}]}]},"
                "  'transport_socket':{'name':'envoy.transport_sockets.internal_upstream',"
                "   'typed_config':{'@type':'type.googleapis.com/envoy.extensions."
                "transport_sockets.internal_upstream.v3.InternalUpstreamTransport',"
                "    'passthrough_metadata':[{'kind':{'host':{}}, 'name':'tunnel'}],"
                "    'transport_socket':{'name':'envoy.transport_sockets.raw_buffer',"
                "     'typed_config':{'@type':'type.googleapis.com/envoy.extensions."
                "transport_sockets.raw_buffer.v3.RawBuffer'}}}}}}}");
    assert_json(jget(patches(&t), "1"),
                "{'type':'" T_ROUTES "', 'name':'default/gateway-2/https',"
                " 'operation':{'op':'add', 'path':'" DOMAINS "', 'value':'127.0.0.1'}}");
    assert_json(jget(patches(&t), "2"),
                "{'type':'" T_ROUTES "', 'name':'default/gateway-2/https',"
                " 'operation':{'op':'add', 'path':'" ROUTES0 "', 'value':{"
                "  'name':'warren-connect/default/web/0',"
                "  'match':{'connect_matcher':{}, 'headers':[{'name':':authority',"
                "   'string_match':{'exact':'127.0.0.1:3000'}}]},"
                "  'route':{'cluster':'httproute/default/web/rule/0',"
                "   'upgrade_configs':[{'upgrade_type':'CONNECT', 'connect_config':{}}]}}}}");
    assert_int_equal(E.claims, 1);
    assert_string_equal(E.claimed[0], "https|127.0.0.1");
    op_translation_free(&t);
  }
}

static void test_cross_namespace_gateway(void **state) {
  struct op_gateway gw = gateway("envoy-gateway");
  struct op_translation t;
  char name[300], want[400];

  (void)state;
  run(proxy_obj("default", "web", jq(RULE("{'backends':[" BACKEND "]}"))), &gw, &t);
  assert_int_equal(t.verdict, OP_OK);
  /* the route stays with its proxy, owned by it */
  assert_string_equal(sget(t.route, "metadata.namespace"), "default");
  assert_string_equal(sget(t.route, "metadata.ownerReferences.0.uid"), "u-1");
  assert_string_equal(sget(t.route, "spec.parentRefs.0.namespace"), "envoy-gateway");
  /* the policy goes to the Gateway, renamed, without owner */
  assert_string_equal(sget(t.policy, "metadata.name"), "default.web");
  assert_string_equal(sget(t.policy, "metadata.namespace"), "envoy-gateway");
  assert_null(jget(t.policy, "metadata.ownerReferences"));
  assert_string_equal(
      json_string_value(json_object_get(jget(t.policy, "metadata.labels"), OP_LABEL_PROXY)), "web");
  assert_string_equal(
      json_string_value(json_object_get(jget(t.policy, "metadata.labels"), OP_LABEL_PROXY_NS)),
      "default");
  assert_int_equal(count_patches(&t, T_ROUTES, "envoy-gateway/gateway-2/https", NULL), 2);
  assert_int_equal(count_patches(&t, T_CLUSTER, "httproute/default/web/rule/0", ""), 1);
  op_translation_free(&t);

  /* ns + "." + name must fit in 253 */
  memset(name, 'a', 253);
  name[253] = '\0';
  snprintf(want, sizeof(want), "metadata.name: too long to name its EnvoyPatchPolicy default.%s",
           name);
  expect_invalid_obj(proxy_obj("default", name, jq(RULE(BRULE))), &gw, "Invalid", want);
  name[253 - 8] = '\0'; /* "default." + 245 = 253 */
  run(proxy_obj("default", name, jq(RULE("{'backends':[" BACKEND "]}"))), &gw, &t);
  assert_int_equal(t.verdict, OP_OK);
  assert_int_equal(strlen(sget(t.policy, "metadata.name")), 253);
  op_translation_free(&t);
  name[245] = 'a'; /* 253: fine in the Gateway's own namespace */
  gw.namespace = "default";
  run(proxy_obj("default", name, jq(RULE("{'backends':[" BACKEND "]}"))), &gw, &t);
  assert_int_equal(t.verdict, OP_OK);
  assert_string_equal(sget(t.policy, "metadata.name"), name);
  op_translation_free(&t);
}

static void test_no_uid_no_owner(void **state) {
  struct op_gateway gw = gateway(NULL);
  struct op_translation t;

  (void)state;
  run(jq("{'metadata':{'name':'web', 'namespace':'default', 'uid':7},"
         " 'spec':" RULE("{'backends':[" BACKEND "]}") "}"),
      &gw, &t);
  assert_int_equal(t.verdict, OP_OK);
  assert_null(jget(t.route, "metadata.ownerReferences"));
  assert_null(jget(t.policy, "metadata.ownerReferences"));
  op_translation_free(&t);
  /* no uid at all */
  run(jq("{'metadata':{'name':'web', 'namespace':'default'}, 'spec':" RULE("{'backends':[" BACKEND
                                                                           "]}") "}"),
      &gw, &t);
  assert_null(jget(t.route, "metadata.ownerReferences"));
  op_translation_free(&t);
}

static void test_policy_name(void **state) {
  struct op_gateway gw = gateway(NULL);
  char buf[64];

  (void)state;
  assert_string_equal(op_policy_name(&gw, "team-a", "web", buf, sizeof(buf)), "team-a");
  assert_string_equal(buf, "web");
  gw.namespace = "team-a";
  assert_string_equal(op_policy_name(&gw, "team-a", "web", buf, sizeof(buf)), "team-a");
  assert_string_equal(buf, "web");
  gw.namespace = "envoy-gateway";
  assert_string_equal(op_policy_name(&gw, "team-a", "web", buf, sizeof(buf)), "envoy-gateway");
  assert_string_equal(buf, "team-a.web");
  assert_string_equal(op_policy_name(&gw, "team-a", "web", buf, 5), "envoy-gateway");
  assert_string_equal(buf, "team"); /* truncated, terminated */
}

/* ---- the patches ---- */

static void test_claim_refused(void **state) {
  struct op_translation t;

  (void)state;
  E.deny = true;
  run_spec(RULE("{'backends':[" BACKEND "]}"), &t);
  assert_int_equal(E.claims, 1);
  assert_int_equal(count_patches(&t, T_ROUTES, NULL, DOMAINS), 0);
  assert_int_equal(count_patches(&t, T_ROUTES, NULL, ROUTES0), 1); /* still routed */
  assert_int_equal(count_patches(&t, T_CLUSTER, NULL, ""), 1);
  assert_json(t.domains, "['127.0.0.1']"); /* still reported */
  op_translation_free(&t);

  /* no claim callback: always */
  {
    struct op_gateway gw = gateway(NULL);
    json_t *p = proxy_obj("default", "web", jq(RULE("{'backends':[" BACKEND "]}")));
    assert_int_equal(op_translate(p, &gw, lookup, NULL, &E, &t), 0);
    json_decref(p);
    assert_int_equal(count_patches(&t, T_ROUTES, NULL, DOMAINS), 1);
    op_translation_free(&t);
  }
}

static void test_shared_hosts(void **state) {
  struct op_translation t;
  struct op_gateway gw = gateway("edge");

  (void)state;
  gw.listeners[1] = "https-2";
  gw.nlisteners = 2;
  run(proxy_obj(
          "default", "web",
          jq("{" HOSTS ", 'rules':["
             "{'backends':[{'connector':{'name':'laptop'}, 'endpoint':'http://app.lan:3000'}]},"
             "{'backends':[{'connector':{'name':'laptop'}, 'endpoint':'http://APP.lan:4000'}]},"
             "{'backends':[{'connector':{'name':'laptop'}, 'endpoint':'app.lan:3000'}]},"
             "{'filters':[{'type':'RequestRedirect', 'requestRedirect':{}}]},"
             "{'backends':[{'connector':{'name':'pi'}, 'endpoint':'http://10.0.0.2'}]}]}")),
      &gw, &t);
  assert_int_equal(t.verdict, OP_OK);
  assert_int_equal(t.connector_rules, 4);
  assert_json(t.connectors, "['laptop', 'pi']");
  assert_json(t.domains, "['app.lan', '10.0.0.2']");
  /* a cluster per connector rule, by rule index */
  assert_int_equal(count_patches(&t, T_CLUSTER, NULL, ""), 4);
  assert_int_equal(count_patches(&t, T_CLUSTER, "httproute/default/web/rule/3", ""), 0);
  assert_int_equal(count_patches(&t, T_CLUSTER, "httproute/default/web/rule/4", ""), 1);
  /* per route configuration: each host once, each target once */
  assert_int_equal(count_patches(&t, T_ROUTES, "edge/gateway-2/https", DOMAINS), 2);
  assert_int_equal(count_patches(&t, T_ROUTES, "edge/gateway-2/https-2", DOMAINS), 2);
  assert_int_equal(count_patches(&t, T_ROUTES, "edge/gateway-2/https", ROUTES0), 3);
  assert_int_equal(count_patches(&t, T_ROUTES, "edge/gateway-2/https-2", ROUTES0), 3);
  assert_int_equal(json_array_size(patches(&t)), 4 + 2 * (2 + 3));
  assert_string_equal(json_string_value(patch_value(&t, T_ROUTES, DOMAINS, 0)), "app.lan");
  assert_string_equal(json_string_value(patch_value(&t, T_ROUTES, DOMAINS, 1)), "10.0.0.2");
  assert_string_equal(json_string_value(patch_value(&t, T_ROUTES, DOMAINS, 2)), "app.lan");
  assert_string_equal(
      sget(patch_value(&t, T_ROUTES, ROUTES0, 1), "match.headers.0.string_match.exact"),
      "app.lan:4000");
  assert_string_equal(sget(patch_value(&t, T_ROUTES, ROUTES0, 1), "route.cluster"),
                      "httproute/default/web/rule/1");
  assert_string_equal(
      sget(patch_value(&t, T_ROUTES, ROUTES0, 2), "match.headers.0.string_match.exact"),
      "10.0.0.2:80");
  assert_string_equal(sget(patch_value(&t, T_ROUTES, ROUTES0, 2), "route.cluster"),
                      "httproute/default/web/rule/4");
  assert_string_equal(sget(patch_value(&t, T_ROUTES, ROUTES0, 2), "name"),
                      "warren-connect/default/web/3");
  /* claim asked once per listener and host */
  assert_int_equal(E.claims, 4);
  assert_string_equal(E.claimed[0], "https|app.lan");
  assert_string_equal(E.claimed[1], "https|10.0.0.2");
  assert_string_equal(E.claimed[2], "https-2|app.lan");
  assert_string_equal(E.claimed[3], "https-2|10.0.0.2");
  /* the route is attached to both listeners */
  assert_int_equal(json_array_size(jget(t.route, "spec.parentRefs")), 2);
  assert_string_equal(sget(t.route, "spec.parentRefs.1.sectionName"), "https-2");
  assert_null(jget(t.route, "spec.rules.3.backendRefs"));
  op_translation_free(&t);
}

static void test_offline_connector(void **state) {
  struct op_translation t;
  json_t *cl, *rt;

  (void)state;
  run_spec("{" HOSTS ", 'rules':["
           "{'backends':[{'connector':{'name':'offline-a'}, 'endpoint':'http://a.lan:1'}]},"
           "{'backends':[" BACKEND "]},"
           "{'backends':[{'connector':{'name':'offline-b'}, 'endpoint':'http://b.lan:1'}]}]}",
           &t);
  assert_int_equal(t.verdict, OP_OK); /* offline is not invalid */
  assert_int_equal(t.connector_rules, 3);
  assert_int_equal(t.offline_rules, 2);
  assert_string_equal(t.offline, "Connector default/offline-a is not Ready");
  assert_json(t.connectors, "['offline-a', 'laptop', 'offline-b']");
  cl = patch_value(&t, T_CLUSTER, "", 0);
  assert_string_equal(sget(cl, "load_assignment.endpoints.0.lb_endpoints.0.endpoint.address."
                               "envoy_internal_address.server_listener_name"),
                      "connector-offline");
  assert_json(
      jget(cl, "load_assignment.endpoints.0.lb_endpoints.0.metadata.filter_metadata.tunnel"),
      "{'address':'a.lan:1', 'connector':'default/offline-a'}");
  cl = patch_value(&t, T_CLUSTER, "", 1);
  assert_string_equal(sget(cl, "load_assignment.endpoints.0.lb_endpoints.0.endpoint.address."
                               "envoy_internal_address.server_listener_name"),
                      "connector-tunnel");
  rt = patch_value(&t, T_ROUTES, ROUTES0, 0);
  assert_json(rt,
              "{'name':'warren-connect/default/web/0',"
              " 'match':{'connect_matcher':{}, 'headers':[{'name':':authority',"
              "  'string_match':{'exact':'a.lan:1'}}]},"
              " 'direct_response':{'status':503, 'body':{'inline_string':'tunnel offline\\n'}}}");
  assert_non_null(jget(patch_value(&t, T_ROUTES, ROUTES0, 1), "route"));
  assert_null(jget(patch_value(&t, T_ROUTES, ROUTES0, 1), "direct_response"));
  assert_non_null(jget(patch_value(&t, T_ROUTES, ROUTES0, 2), "direct_response"));
  op_translation_free(&t);
}

static const char *inner_sni(const struct op_translation *t, size_t nth, const char **name) {
  json_t *ts = jget(patch_value(t, T_CLUSTER, "", nth), "transport_socket.typed_config."
                                                        "transport_socket");
  *name = sget(ts, "name");
  return sget(ts, "typed_config.sni");
}

static void test_tls_endpoints(void **state) {
  struct op_translation t;
  const char *name;

  (void)state;
  run_spec("{" HOSTS ", 'rules':["
           "{'backends':[{'connector':{'name':'c'}, 'endpoint':'HTTPS://App.LAN'}]},"
           "{'backends':[{'connector':{'name':'c'}, 'endpoint':'https://10.0.0.1:8443'}]},"
           "{'backends':[{'connector':{'name':'c'}, 'endpoint':'https://10.0.0.1:8444',"
           "  'tls':{'hostname':'svc.internal'}}]},"
           "{'backends':[{'connector':{'name':'c'}, 'endpoint':'https://[::1]:8443'}]},"
           "{'backends':[{'connector':{'name':'c'}, 'endpoint':'https://app.lan:444',"
           "  'tls':{}}]},"
           "{'backends':[{'connector':{'name':'c'}, 'endpoint':'http://app.lan:80',"
           "  'tls':{'hostname':'svc.internal'}}]}]}",
           &t);
  assert_string_equal(inner_sni(&t, 0, &name), "app.lan");
  assert_string_equal(name, "envoy.transport_sockets.tls");
  assert_string_equal(sget(patch_value(&t, T_CLUSTER, "", 0),
                           "load_assignment.endpoints.0.lb_endpoints.0.metadata.filter_metadata."
                           "tunnel.address"),
                      "app.lan:443");
  assert_null(inner_sni(&t, 1, &name)); /* no SNI for an IP address */
  assert_string_equal(name, "envoy.transport_sockets.tls");
  assert_string_equal(inner_sni(&t, 2, &name), "svc.internal");
  assert_null(inner_sni(&t, 3, &name));
  assert_string_equal(name, "envoy.transport_sockets.tls");
  assert_string_equal(inner_sni(&t, 4, &name), "app.lan");
  /* TLS comes from the scheme only */
  assert_null(inner_sni(&t, 5, &name));
  assert_string_equal(name, "envoy.transport_sockets.raw_buffer");
  assert_json(t.domains, "['app.lan', '10.0.0.1', '[::1]']");
  op_translation_free(&t);
}

static void test_ipv6_endpoint(void **state) {
  struct op_translation t;

  (void)state;
  run_spec("{" HOSTS ", 'rules':["
           "{'backends':[{'connector':{'name':'c'}, 'endpoint':'[::1]:8080'}]},"
           "{'backends':[{'connector':{'name':'c'}, 'endpoint':'http://[0:0::1]:9090/x'}]},"
           "{'backends':[{'connector':{'name':'c'}, 'endpoint':'http://[FD00::A]'}]}]}",
           &t);
  assert_json(t.domains, "['[::1]', '[fd00::a]']");
  assert_int_equal(count_patches(&t, T_ROUTES, NULL, DOMAINS), 2);
  assert_string_equal(json_string_value(patch_value(&t, T_ROUTES, DOMAINS, 0)), "[::1]");
  assert_string_equal(json_string_value(patch_value(&t, T_ROUTES, DOMAINS, 1)), "[fd00::a]");
  assert_string_equal(sget(patch_value(&t, T_CLUSTER, "", 0),
                           "load_assignment.endpoints.0.lb_endpoints.0.metadata.filter_metadata."
                           "tunnel.address"),
                      "[::1]:8080");
  assert_string_equal(
      sget(patch_value(&t, T_ROUTES, ROUTES0, 1), "match.headers.0.string_match.exact"),
      "[::1]:9090");
  assert_string_equal(
      sget(patch_value(&t, T_ROUTES, ROUTES0, 2), "match.headers.0.string_match.exact"),
      "[fd00::a]:80");
  op_translation_free(&t);
}

static void test_no_private_fields(void **state) {
  struct op_gateway gw = gateway("edge");
  struct op_translation t;
  char *r, *p;

  (void)state;
  /* the cache's computed fields ride along in the object it hands over */
  run(jq("{'apiVersion':'networking.datumapis.com/v1alpha', 'kind':'HTTPProxy',"
         " '_warren':{'connectors':['laptop'], 'domains':['default/127.0.0.1']},"
         " 'metadata':{'name':'web', 'namespace':'default', 'uid':'u-1', '_warren':1,"
         "  'annotations':{'_warren':'x'}, 'labels':{'a':'b'}},"
         " 'status':{'_warren':1},"
         " 'spec':{'_warren':1, " HOSTS ", 'rules':[{'backends':[" BACKEND "]}]}}"),
      &gw, &t);
  assert_int_equal(t.verdict, OP_OK);
  r = json_dumps(t.route, JSON_COMPACT);
  p = json_dumps(t.policy, JSON_COMPACT);
  assert_non_null(r);
  assert_non_null(p);
  assert_null(strstr(r, "_warren"));
  assert_null(strstr(p, "_warren"));
  assert_null(jget(t.route, "metadata.annotations"));
  assert_null(json_object_get(jget(t.route, "metadata.labels"), "a"));
  assert_null(json_object_get(t.route, "status"));
  free(r);
  free(p);
  op_translation_free(&t);
}

static void test_rule_without_backend(void **state) {
  struct op_translation t;

  (void)state;
  run_spec("{" HOSTS ", 'rules':[{'backends':[]}, {'backends':null, 'matches':null,"
           " 'filters':null}, {}, {'name':'n'}]}",
           &t);
  assert_null(t.policy);
  assert_int_equal(t.connector_rules, 0);
  assert_json(jget(t.route, "spec.rules"), "[{}, {}, {}, {'name':'n'}]");
  op_translation_free(&t);
  op_translation_free(&t); /* twice is harmless */
}

/* ---- the index scans ---- */

static void test_proxy_connectors(void **state) {
  json_t *names = jq("['pi']"), *p;
  int i;

  (void)state;
  p = jq("{'spec':{'rules':["
         "{'backends':[{'connector':{'name':'laptop'}}]},"
         "{'backends':[{'connector':{'name':'pi'}, 'endpoint':'garbage'}]},"
         "{'backends':[{'connector':{'name':'laptop'}}]},"
         "{'backends':[{'connector':{'name':'Bad_Name'}}]},"
         "{'backends':[{'connector':{'name':5}}]},"
         "{'backends':[{'connector':'x'}]},"
         "{'backends':[{}, {'connector':{'name':'second'}}]},"
         "{'backends':{'connector':{'name':'obj'}}},"
         "'rule', 7, null, {},"
         "{'backends':[{'connector':{'name':'nas'}}]}]}}");
  assert_int_equal(op_proxy_connectors(p, names), 0);
  assert_json(names, "['pi', 'laptop', 'nas']");
  json_decref(p);
  /* only the first 16 rules count */
  p = jq("{'spec':{'rules':[]}}");
  for (i = 0; i < 17; i++)
    json_array_append_new(jget(p, "spec.rules"),
                          jq(i < 16 ? "{}" : "{'backends':[{'connector':{'name':'late'}}]}"));
  assert_int_equal(op_proxy_connectors(p, names), 0);
  assert_int_equal(json_array_size(names), 3);
  json_decref(p);
  /* garbage is simply not indexed */
  {
    const char *garbage[] = {"null",          "[]",
                             "'x'",           "{}",
                             "{'spec':1}",    "{'spec':{'rules':{}}}",
                             "{'spec':[{}]}", "{'spec':{'rules':'x'}}"};
    size_t k;
    for (k = 0; k < sizeof(garbage) / sizeof(garbage[0]); k++) {
      p = jq(garbage[k]);
      assert_int_equal(op_proxy_connectors(p, names), 0);
      assert_int_equal(op_proxy_domains(p, names), 0);
      json_decref(p);
    }
    assert_int_equal(op_proxy_connectors(NULL, names), 0);
    assert_int_equal(op_proxy_domains(NULL, names), 0);
  }
  assert_int_equal(json_array_size(names), 3);
  json_decref(names);
}

static void test_proxy_domains(void **state) {
  json_t *domains = json_array(), *p;
  int i;

  (void)state;
  p = jq("{'spec':{'rules':["
         "{'backends':[{'connector':{'name':'laptop'}, 'endpoint':'http://App.lan:3000'}]},"
         "{'backends':[{'connector':{'name':'laptop'}, 'endpoint':'https://app.lan'}]},"
         "{'backends':[{'connector':{'name':'laptop'}, 'endpoint':'[::1]:8080'}]},"
         "{'backends':[{'connector':{'name':'laptop'}, 'endpoint':'http://[::1]:9'}]},"
         "{'backends':[{'endpoint':'http://no-connector:1'}]},"
         "{'backends':[{'connector':{'name':'laptop'}, 'endpoint':'ftp://bad:1'}]},"
         "{'backends':[{'connector':{'name':'laptop'}, 'endpoint':5}]},"
         "{'backends':[{'connector':{'name':'laptop'}}]},"
         "{'backends':[{'connector':{}, 'endpoint':'10.0.0.1:80'}]},"
         "'x', {}]}}");
  assert_int_equal(op_proxy_domains(p, domains), 0);
  assert_json(domains, "['app.lan', '[::1]', '10.0.0.1']");
  assert_int_equal(op_proxy_domains(p, domains), 0); /* appending again adds nothing */
  assert_int_equal(json_array_size(domains), 3);
  json_decref(p);
  p = jq("{'spec':{'rules':[]}}");
  for (i = 0; i < 17; i++)
    json_array_append_new(
        jget(p, "spec.rules"),
        jq(i < 16 ? "{}" : "{'backends':[{'connector':{'name':'c'}, 'endpoint':'l:1'}]}"));
  assert_int_equal(op_proxy_domains(p, domains), 0);
  assert_int_equal(json_array_size(domains), 3);
  json_decref(p);
  json_decref(domains);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_metadata, setup),
      cmocka_unit_test_setup(test_spec_and_hostnames, setup),
      cmocka_unit_test_setup(test_wildcard_hostname, setup),
      cmocka_unit_test_setup(test_rules, setup),
      cmocka_unit_test_setup(test_rule_lists, setup),
      cmocka_unit_test_setup(test_match_fields, setup),
      cmocka_unit_test_setup(test_match_limits, setup),
      cmocka_unit_test_setup(test_valid_matches, setup),
      cmocka_unit_test_setup(test_filters, setup),
      cmocka_unit_test_setup(test_backends, setup),
      cmocka_unit_test_setup(test_connector_missing, setup),
      cmocka_unit_test_setup(test_gateway_listeners, setup),
      cmocka_unit_test_setup(test_route_and_policy_same_namespace, setup),
      cmocka_unit_test_setup(test_cross_namespace_gateway, setup),
      cmocka_unit_test_setup(test_no_uid_no_owner, setup),
      cmocka_unit_test_setup(test_policy_name, setup),
      cmocka_unit_test_setup(test_claim_refused, setup),
      cmocka_unit_test_setup(test_shared_hosts, setup),
      cmocka_unit_test_setup(test_offline_connector, setup),
      cmocka_unit_test_setup(test_tls_endpoints, setup),
      cmocka_unit_test_setup(test_ipv6_endpoint, setup),
      cmocka_unit_test_setup(test_no_private_fields, setup),
      cmocka_unit_test_setup(test_rule_without_backend, setup),
      cmocka_unit_test_setup(test_proxy_connectors, setup),
      cmocka_unit_test_setup(test_proxy_domains, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
