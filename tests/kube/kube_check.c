/*
 * kube_check - scenarios that drive lib/kclient against a real kube-apiserver.
 * tests/kube/test_kclient.py starts the control plane and runs them; each
 * scenario prints what it checked and exits 0, or names the first failure
 * and exits 1.
 *
 * Usage: kube_check SCENARIO [ARG]
 *   crd        install the test CRD widgets.test.warren.dev and wait until Established
 *   crud       create/get/update/conflict/merge/json/apply/status/delete on one widget
 *   paging     create N (ARG, default 1200) widgets, list them in pages of 500, delete them
 *   rbac       the "nobody" token is refused with 403 Forbidden
 *   retry      a 429 with Retry-After is retried (ARG: a path on KUBE_SERVER, a local server
 *              that answers 429 twice, then 200)
 *   informer   run an informer on widgets in KUBE_NS until SIGTERM, printing one line per
 *              event ("ADD|UPDATE|DELETE key rv size [unknown]"), "SYNCED n" once, and at
 *              exit "FINAL key rv" for every cached object and a "STATS" line
 *   populate   create ARG widgets (page-00000 ...)
 *   sync       list+watch the widgets of KUBE_NS once: time to synced, RSS (ARG: page size)
 *   leader     campaign for the Lease "kube-check" in KUBE_NS as ARG until SIGTERM (then
 *              release it), printing "LEADING", "STOPPED", "LEADER identity", "RELEASED"
 * Environment: KUBE_SERVER, KUBE_CA (file), KUBE_ADMIN_TOKEN, KUBE_NOBODY_TOKEN, KUBE_NS;
 * rbac connects through the kubeconfig KUBE_KUBECONFIG_NOBODY instead (lib/kconfig) when set.
 */
#include <signal.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "warren/err.h"
#include "warren/informer.h"
#include "warren/kclient.h"
#include "warren/kconfig.h"
#include "warren/leader.h"
#include "warren/log.h"

static const struct wr_kres widgets = {"test.warren.dev", "v1", "widgets"};
static const struct wr_kres crds = {"apiextensions.k8s.io", "v1", "customresourcedefinitions"};

struct env {
  uv_loop_t loop;
  struct wr_kconfig cfg; /* when connected through a kubeconfig */
  uv_signal_t sig;       /* SIGTERM, for the long-running scenarios */
  wr_kclient *kc;
  const char *ns;
};

struct result {
  int done, rv;
  json_t *obj;
  struct wr_kstatus st;
};

static int failures;

static void fail(const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  fprintf(stdout, "FAIL: ");
  vfprintf(stdout, fmt, ap);
  fprintf(stdout, "\n");
  va_end(ap);
  failures++;
}

static void ok(const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  fprintf(stdout, "ok: ");
  vfprintf(stdout, fmt, ap);
  fprintf(stdout, "\n");
  va_end(ap);
}

static void on_result(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  struct result *r = ud;

  r->done = 1;
  r->rv = rv;
  r->obj = json_incref(obj);
  r->st = *st;
}

/* wait runs the loop until |r| is done; |rv| is what starting the call
 * returned (a call that could not start has no callback). */
static void wait(struct env *e, struct result *r, int rv) {
  if (rv < 0) {
    r->done = 1;
    r->rv = rv;
    r->st.code = 0;
    return;
  }
  while (!r->done)
    uv_run(&e->loop, UV_RUN_ONCE);
}

static void result_clear(struct result *r) {
  json_decref(r->obj);
  memset(r, 0, sizeof(*r));
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;

  if (f == NULL)
    return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)n + 1);
  if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf != NULL) {
    buf[n] = '\0';
    *len = (size_t)n;
  }
  return buf;
}

static int token_cb(void *ud, const char **token) {
  *token = ud;
  return 0;
}

/* env_open_kubeconfig connects with the kubeconfig |path| (lib/kconfig). */
static int env_open_kubeconfig(struct env *e, const char *path) {
  char err[512];
  int rv;

  e->ns = getenv("KUBE_NS") != NULL ? getenv("KUBE_NS") : "default";
  rv = wr_kconfig_load_kubeconfig(&e->cfg, path, NULL, err, sizeof(err));
  if (rv < 0) {
    fprintf(stderr, "kube_check: %s\n", err);
    return -1;
  }
  ok("kubeconfig %s: %s", path, e->cfg.source);
  uv_loop_init(&e->loop);
  rv = wr_kclient_new_kconfig(&e->kc, &e->loop, &e->cfg);
  if (rv < 0) {
    fprintf(stderr, "kube_check: client: %s\n", wr_strerror(rv));
    return -1;
  }
  return 0;
}

static int env_open(struct env *e, const char *token_var) {
  struct wr_kclient_opts o;
  const char *ca = getenv("KUBE_CA");
  char *pem = NULL;
  size_t len = 0;
  int rv;

  memset(&o, 0, sizeof(o));
  o.server = getenv("KUBE_SERVER");
  o.token = token_cb;
  o.token_ud = getenv(token_var);
  e->ns = getenv("KUBE_NS") != NULL ? getenv("KUBE_NS") : "default";
  if (o.server == NULL || ca == NULL || o.token_ud == NULL) {
    fprintf(stderr, "kube_check: KUBE_SERVER, KUBE_CA and %s must be set\n", token_var);
    return -1;
  }
  pem = read_file(ca, &len);
  if (pem == NULL) {
    fprintf(stderr, "kube_check: cannot read %s\n", ca);
    return -1;
  }
  o.ca_pem = (const uint8_t *)pem;
  o.ca_len = len;
  o.user_agent = "warren-kube-check";
  uv_loop_init(&e->loop);
  rv = wr_kclient_new(&e->kc, &e->loop, &o);
  free(pem);
  if (rv < 0) {
    fprintf(stderr, "kube_check: client: %s\n", wr_strerror(rv));
    return -1;
  }
  return 0;
}

static void env_close(struct env *e) {
  wr_kclient_del(e->kc);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  uv_loop_close(&e->loop);
  wr_kconfig_free(&e->cfg);
}

static const char *str_at(json_t *obj, const char *a, const char *b) {
  json_t *v = json_object_get(json_object_get(obj, a), b);

  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* expect_refused checks that |r| is an API refusal with |code| and |reason|. */
static void expect_refused(struct result *r, int code, const char *reason, const char *what) {
  if (r->rv != WR_ERR_REFUSED)
    fail("%s: expected %d %s, got rv %d (%s)", what, code, reason, r->rv, wr_strerror(r->rv));
  else if (r->st.code != code || strcmp(r->st.reason, reason) != 0)
    fail("%s: expected %d %s, got %d %s: %s", what, code, reason, r->st.code, r->st.reason,
         r->st.message);
  else
    ok("%s: %d %s (%s)", what, r->st.code, r->st.reason, r->st.message);
}

static void expect_ok(struct result *r, const char *what) {
  if (r->rv != 0)
    fail("%s: rv %d (%s) %d %s: %s", what, r->rv, wr_strerror(r->rv), r->st.code, r->st.reason,
         r->st.message);
  else
    ok("%s", what);
}

/* --- crd ------------------------------------------------------------------------------ */

static const char crd_json[] =
    "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
    "\"metadata\":{\"name\":\"widgets.test.warren.dev\"},"
    "\"spec\":{\"group\":\"test.warren.dev\",\"scope\":\"Namespaced\","
    "\"names\":{\"plural\":\"widgets\",\"singular\":\"widget\",\"kind\":\"Widget\","
    "\"listKind\":\"WidgetList\"},"
    "\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
    "\"subresources\":{\"status\":{}},"
    "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{"
    "\"spec\":{\"type\":\"object\",\"properties\":{"
    "\"size\":{\"type\":\"integer\",\"minimum\":0},"
    "\"color\":{\"type\":\"string\",\"enum\":[\"red\",\"green\",\"blue\"]},"
    "\"owner\":{\"type\":\"string\"}}},"
    "\"status\":{\"type\":\"object\",\"properties\":{"
    "\"phase\":{\"type\":\"string\"},\"observedGeneration\":{\"type\":\"integer\"}}}}}}}]}}";

static int crd_established(json_t *crd) {
  json_t *conds = json_object_get(json_object_get(crd, "status"), "conditions"), *c;
  size_t i;

  json_array_foreach(conds, i, c) {
    const char *t = json_string_value(json_object_get(c, "type"));
    const char *s = json_string_value(json_object_get(c, "status"));

    if (t != NULL && s != NULL && strcmp(t, "Established") == 0 && strcmp(s, "True") == 0)
      return 1;
  }
  return 0;
}

static void scenario_crd(struct env *e) {
  char path[WR_KCLIENT_PATH_MAX];
  struct result r = {0};
  json_t *crd = json_loads(crd_json, 0, NULL);
  int i;

  wr_kpath(path, sizeof(path), &crds, NULL, NULL, NULL);
  wait(e, &r, wr_kclient_create(e->kc, path, crd, on_result, &r, NULL));
  if (r.rv == WR_ERR_REFUSED && r.st.code == 409)
    ok("crd exists already");
  else
    expect_ok(&r, "create CRD");
  result_clear(&r);
  json_decref(crd);
  wr_kpath(path, sizeof(path), &crds, NULL, "widgets.test.warren.dev", NULL);
  for (i = 0; i < 100; i++) {
    wait(e, &r, wr_kclient_get(e->kc, path, on_result, &r, NULL));
    if (r.rv == 0 && crd_established(r.obj)) {
      ok("CRD established after %d polls", i + 1);
      result_clear(&r);
      return;
    }
    result_clear(&r);
    uv_sleep(100);
  }
  fail("CRD not established after 10 s");
}

/* --- crud ------------------------------------------------------------------------------ */

static json_t *widget(const char *ns, const char *name, int size, const char *color) {
  return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:i, s:s}}", "apiVersion", "test.warren.dev/v1",
                   "kind", "Widget", "metadata", "name", name, "namespace", ns, "spec", "size",
                   size, "color", color);
}

static void scenario_crud(struct env *e) {
  char coll[WR_KCLIENT_PATH_MAX], one[WR_KCLIENT_PATH_MAX], status[WR_KCLIENT_PATH_MAX];
  struct result r = {0};
  json_t *w, *stale, *patch;
  char rv1[64], uid[64];

  wr_kpath(coll, sizeof(coll), &widgets, e->ns, NULL, NULL);
  wr_kpath(one, sizeof(one), &widgets, e->ns, "w1", NULL);
  wr_kpath(status, sizeof(status), &widgets, e->ns, "w1", "status");

  /* create, and create again */
  w = widget(e->ns, "w1", 1, "red");
  wait(e, &r, wr_kclient_create(e->kc, coll, w, on_result, &r, NULL));
  expect_ok(&r, "create w1");
  snprintf(rv1, sizeof(rv1), "%s", str_at(r.obj, "metadata", "resourceVersion"));
  snprintf(uid, sizeof(uid), "%s", str_at(r.obj, "metadata", "uid"));
  result_clear(&r);
  wait(e, &r, wr_kclient_create(e->kc, coll, w, on_result, &r, NULL));
  expect_refused(&r, 409, "AlreadyExists", "create w1 again");
  result_clear(&r);
  json_decref(w);

  /* invalid: an enum value the schema refuses */
  w = widget(e->ns, "bad", 1, "purple");
  wait(e, &r, wr_kclient_create(e->kc, coll, w, on_result, &r, NULL));
  expect_refused(&r, 422, "Invalid", "create with color purple");
  result_clear(&r);
  json_decref(w);

  /* get */
  wait(e, &r, wr_kclient_get(e->kc, one, on_result, &r, NULL));
  expect_ok(&r, "get w1");
  if (r.rv == 0 && json_integer_value(json_object_get(json_object_get(r.obj, "spec"), "size")) != 1)
    fail("get w1: spec.size is not 1");
  stale = json_deep_copy(r.obj);
  result_clear(&r);

  /* update with the current resourceVersion, then with the stale one */
  w = json_deep_copy(stale);
  json_object_set_new(json_object_get(w, "spec"), "size", json_integer(2));
  wait(e, &r, wr_kclient_update(e->kc, one, w, on_result, &r, NULL));
  expect_ok(&r, "update w1 (size 2)");
  if (r.rv == 0 && strcmp(str_at(r.obj, "metadata", "resourceVersion"), rv1) == 0)
    fail("update w1: resourceVersion did not change");
  result_clear(&r);
  json_decref(w);
  json_object_set_new(json_object_get(stale, "spec"), "size", json_integer(3));
  wait(e, &r, wr_kclient_update(e->kc, one, stale, on_result, &r, NULL));
  expect_refused(&r, 409, "Conflict", "update w1 with a stale resourceVersion");
  result_clear(&r);
  json_decref(stale);

  /* merge patch */
  patch = json_pack("{s:{s:s}}", "spec", "color", "green");
  wait(e, &r, wr_kclient_patch(e->kc, one, WR_KPATCH_MERGE, patch, NULL, 0, on_result, &r, NULL));
  expect_ok(&r, "merge-patch color green");
  if (r.rv == 0 && strcmp(str_at(r.obj, "spec", "color"), "green") != 0)
    fail("merge patch: color is %s", str_at(r.obj, "spec", "color"));
  result_clear(&r);
  json_decref(patch);

  /* JSON patch with a failing test, then a passing one */
  patch = json_pack("[{s:s, s:s, s:i}, {s:s, s:s, s:i}]", "op", "test", "path", "/spec/size",
                    "value", 99, "op", "replace", "path", "/spec/size", "value", 5);
  wait(e, &r, wr_kclient_patch(e->kc, one, WR_KPATCH_JSON, patch, NULL, 0, on_result, &r, NULL));
  if (r.rv == WR_ERR_REFUSED && (r.st.code == 422 || r.st.code == 409 || r.st.code == 500))
    ok("json-patch with a failing test refused: %d %s", r.st.code, r.st.reason);
  else
    fail("json-patch with a failing test: rv %d code %d", r.rv, r.st.code);
  result_clear(&r);
  json_decref(patch);
  patch = json_pack("[{s:s, s:s, s:i}, {s:s, s:s, s:i}]", "op", "test", "path", "/spec/size",
                    "value", 2, "op", "replace", "path", "/spec/size", "value", 5);
  wait(e, &r, wr_kclient_patch(e->kc, one, WR_KPATCH_JSON, patch, NULL, 0, on_result, &r, NULL));
  expect_ok(&r, "json-patch test size 2, replace with 5");
  result_clear(&r);
  json_decref(patch);

  /* server-side apply: two managers, a conflict, then force */
  patch =
      json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion", "test.warren.dev/v1", "kind",
                "Widget", "metadata", "name", "w1", "namespace", e->ns, "spec", "owner", "alice");
  wait(e, &r,
       wr_kclient_patch(e->kc, one, WR_KPATCH_APPLY, patch, "alice", 0, on_result, &r, NULL));
  expect_ok(&r, "apply owner=alice as alice");
  result_clear(&r);
  json_decref(patch);
  patch = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion", "test.warren.dev/v1", "kind",
                    "Widget", "metadata", "name", "w1", "namespace", e->ns, "spec", "owner", "bob");
  wait(e, &r, wr_kclient_patch(e->kc, one, WR_KPATCH_APPLY, patch, "bob", 0, on_result, &r, NULL));
  expect_refused(&r, 409, "Conflict", "apply owner=bob as bob without force");
  result_clear(&r);
  wait(e, &r, wr_kclient_patch(e->kc, one, WR_KPATCH_APPLY, patch, "bob", 1, on_result, &r, NULL));
  expect_ok(&r, "apply owner=bob as bob with force");
  if (r.rv == 0 && strcmp(str_at(r.obj, "spec", "owner"), "bob") != 0)
    fail("forced apply: owner is %s", str_at(r.obj, "spec", "owner"));
  result_clear(&r);
  json_decref(patch);

  /* status subresource: the main resource ignores status, /status sets it */
  patch = json_pack("{s:{s:s}}", "status", "phase", "Main");
  wait(e, &r, wr_kclient_patch(e->kc, one, WR_KPATCH_MERGE, patch, NULL, 0, on_result, &r, NULL));
  expect_ok(&r, "merge-patch status on the main resource");
  if (r.rv == 0 && str_at(r.obj, "status", "phase") != NULL)
    fail("status written through the main resource");
  result_clear(&r);
  json_decref(patch);
  patch = json_pack("{s:{s:s, s:i}}", "status", "phase", "Ready", "observedGeneration", 1);
  wait(e, &r,
       wr_kclient_patch(e->kc, status, WR_KPATCH_MERGE, patch, NULL, 0, on_result, &r, NULL));
  expect_ok(&r, "merge-patch /status phase Ready");
  if (r.rv == 0 && (str_at(r.obj, "status", "phase") == NULL ||
                    strcmp(str_at(r.obj, "status", "phase"), "Ready") != 0))
    fail("/status: phase not Ready");
  result_clear(&r);
  json_decref(patch);

  /* delete: a wrong uid precondition, then for real, then 404 */
  wait(e, &r,
       wr_kclient_delete(e->kc, one, "00000000-0000-0000-0000-000000000000", NULL, NULL, on_result,
                         &r, NULL));
  expect_refused(&r, 409, "Conflict", "delete with a wrong uid precondition");
  result_clear(&r);
  wait(e, &r, wr_kclient_delete(e->kc, one, uid, NULL, "Background", on_result, &r, NULL));
  expect_ok(&r, "delete w1 with its uid as precondition");
  result_clear(&r);
  wait(e, &r, wr_kclient_get(e->kc, one, on_result, &r, NULL));
  expect_refused(&r, 404, "NotFound", "get w1 after delete");
  result_clear(&r);
}

/* --- paging ------------------------------------------------------------------------------ */

struct batch {
  int pending, failed;
};

static void on_batch(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  struct batch *b = ud;

  (void)obj;
  b->pending--;
  if (rv != 0) {
    b->failed++;
    if (b->failed < 5)
      fprintf(stdout, "  create failed: %s %d %s\n", wr_strerror(rv), st->code, st->message);
  }
}

/* populate creates widgets page-00000 .. page-N-1 (32 requests in flight). */
static void populate(struct env *e, int n) {
  char coll[WR_KCLIENT_PATH_MAX], name[64];
  struct batch b = {0, 0};
  uint64_t t0 = uv_hrtime();
  int i;

  wr_kpath(coll, sizeof(coll), &widgets, e->ns, NULL, NULL);
  for (i = 0; i < n; i++) {
    json_t *w;

    snprintf(name, sizeof(name), "page-%05d", i);
    w = widget(e->ns, name, i, "blue");
    b.pending++;
    if (wr_kclient_create(e->kc, coll, w, on_batch, &b, NULL) < 0) {
      b.pending--;
      b.failed++;
    }
    json_decref(w);
    while (b.pending >= 32)
      uv_run(&e->loop, UV_RUN_ONCE);
  }
  while (b.pending > 0)
    uv_run(&e->loop, UV_RUN_ONCE);
  if (b.failed > 0)
    fail("%d of %d creates failed", b.failed, n);
  else
    ok("created %d widgets in %.1f s", n, (double)(uv_hrtime() - t0) / 1e9);
}

static void scenario_paging(struct env *e, int n) {
  char coll[WR_KCLIENT_PATH_MAX], path[WR_KCLIENT_PATH_MAX];
  struct result r = {0};
  char *seen;
  int i, pages = 0, total = 0, dup = 0;

  wr_kpath(coll, sizeof(coll), &widgets, e->ns, NULL, NULL);
  seen = calloc((size_t)n, 1);
  populate(e, n);

  /* list with limit=500 until continue is empty */
  path[0] = '\0';
  for (;;) {
    json_t *items, *it, *cont;
    size_t k;

    if (pages == 0) {
      snprintf(path, sizeof(path), "%s", coll);
      wr_kquery(path, sizeof(path), "limit", "500");
    }
    wait(e, &r, wr_kclient_get(e->kc, path, on_result, &r, NULL));
    if (r.rv != 0) {
      fail("list page %d: %d %s", pages + 1, r.st.code, r.st.message);
      break;
    }
    pages++;
    items = json_object_get(r.obj, "items");
    json_array_foreach(items, k, it) {
      const char *nm = str_at(it, "metadata", "name");

      if (nm != NULL && strncmp(nm, "page-", 5) == 0) {
        int idx = atoi(nm + 5);

        if (idx >= 0 && idx < n) {
          dup += seen[idx];
          seen[idx] = 1;
        }
        total++;
      }
    }
    if (json_array_size(items) > 500)
      fail("page %d holds %zu items (limit 500)", pages, json_array_size(items));
    cont = json_object_get(json_object_get(r.obj, "metadata"), "continue");
    if (!json_is_string(cont) || json_string_length(cont) == 0) {
      result_clear(&r);
      break;
    }
    snprintf(path, sizeof(path), "%s", coll);
    wr_kquery(path, sizeof(path), "limit", "500");
    wr_kquery(path, sizeof(path), "continue", json_string_value(cont));
    result_clear(&r);
  }
  for (i = 0; i < n && seen[i]; i++)
    ;
  if (total != n || dup != 0 || i != n)
    fail("paged list: %d objects in %d pages, %d duplicates, first missing %d", total, pages, dup,
         i);
  else
    ok("paged list: %d objects in %d pages of at most 500, none missing or repeated", total, pages);
  free(seen);

  /* delete the collection */
  wait(e, &r, wr_kclient_call(e->kc, "DELETE", coll, NULL, NULL, 0, on_result, &r, NULL));
  expect_ok(&r, "delete the collection");
  result_clear(&r);
}

/* --- rbac ---------------------------------------------------------------------------------- */

static void scenario_rbac(struct env *e) {
  char coll[WR_KCLIENT_PATH_MAX];
  struct result r = {0};

  wr_kpath(coll, sizeof(coll), &widgets, e->ns, NULL, NULL);
  wait(e, &r, wr_kclient_get(e->kc, coll, on_result, &r, NULL));
  expect_refused(&r, 403, "Forbidden", "list widgets as nobody");
  if (r.rv == WR_ERR_REFUSED && strstr(r.st.message, "cannot list") == NULL)
    fail("403 message does not say what was refused: %s", r.st.message);
  result_clear(&r);
}

/* --- retry ----------------------------------------------------------------------------------- */

static void scenario_retry(struct env *e, const char *path) {
  struct result r = {0};
  uint64_t t0 = uv_hrtime();

  wait(e, &r, wr_kclient_get(e->kc, path, on_result, &r, NULL));
  expect_ok(&r, "GET answered 429 + Retry-After: 1 twice, then 200");
  if (r.rv == 0 && uv_hrtime() - t0 < 1900000000ull)
    fail("retried too early: %.2f s", (double)(uv_hrtime() - t0) / 1e9);
  else if (r.rv == 0)
    ok("waited %.2f s for two Retry-After: 1", (double)(uv_hrtime() - t0) / 1e9);
  result_clear(&r);
}

/* --- informer ------------------------------------------------------------------------------ */

static long spec_size(json_t *obj) {
  json_t *v = json_object_get(json_object_get(obj, "spec"), "size");

  return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static void print_event(const char *what, json_t *obj, int unknown) {
  printf("%s %s/%s %s %ld%s\n", what, str_at(obj, "metadata", "namespace"),
         str_at(obj, "metadata", "name"), str_at(obj, "metadata", "resourceVersion"),
         spec_size(obj), unknown ? " unknown" : "");
  fflush(stdout);
}

static void inf_add(void *ud, json_t *obj, int initial) {
  (void)ud;
  print_event(initial ? "ADD-INITIAL" : "ADD", obj, 0);
}

static void inf_update(void *ud, json_t *old, json_t *obj) {
  (void)ud;
  (void)old;
  print_event("UPDATE", obj, 0);
}

static void inf_delete(void *ud, json_t *obj, int unknown) {
  (void)ud;
  print_event("DELETE", obj, unknown);
}

static void inf_synced(void *ud) {
  wr_informer *inf = *(wr_informer **)ud;

  printf("SYNCED %zu\n", json_object_size(wr_informer_objects(inf)));
  fflush(stdout);
}

static size_t index_color(void *ud, json_t *obj, const char **vals, size_t max) {
  json_t *v = json_object_get(json_object_get(obj, "spec"), "color");

  (void)ud;
  if (max == 0 || !json_is_string(v))
    return 0;
  vals[0] = json_string_value(v);
  return 1;
}

static void on_term(uv_signal_t *h, int sig) {
  (void)sig;
  uv_stop(h->loop);
}

static void scenario_informer(struct env *e) {
  char coll[WR_KCLIENT_PATH_MAX];
  struct wr_informer_opts o;
  struct wr_informer_cbs cbs = {inf_add, inf_update, inf_delete, inf_synced};
  struct wr_informer_stats st;
  wr_informer *inf = NULL;
  uv_signal_t *sig = &e->sig;
  const char *key;
  json_t *obj, *blue;
  int rv;

  wr_kpath(coll, sizeof(coll), &widgets, e->ns, NULL, NULL);
  memset(&o, 0, sizeof(o));
  o.path = coll;
  o.page_size = 100;
  o.compact = getenv("KUBE_CHECK_COMPACT") != NULL;
  rv = wr_informer_new(&inf, &e->loop, e->kc, &o, &cbs, &inf);
  if (rv == 0)
    rv = wr_informer_add_index(inf, "color", index_color, NULL);
  if (rv == 0)
    rv = wr_informer_start(inf);
  if (rv < 0) {
    fail("informer: %s", wr_strerror(rv));
    return;
  }
  uv_signal_init(&e->loop, sig);
  uv_signal_start(sig, on_term, SIGTERM);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)sig, NULL);
  json_object_foreach(wr_informer_objects(inf), key, obj) {
    obj = wr_informer_get_key(inf, key); /* compact caches hold text */
    printf("FINAL %s %s %ld\n", key, str_at(obj, "metadata", "resourceVersion"), spec_size(obj));
  }
  blue = wr_informer_index(inf, "color", "blue");
  printf("INDEX color=blue %zu namespace=%s %zu\n", json_object_size(blue), e->ns,
         json_object_size(wr_informer_index(inf, "namespace", e->ns)));
  wr_informer_stats(inf, &st);
  printf("STATS lists=%llu watches=%llu events=%llu expired=%llu failures=%llu objects=%zu "
         "rv=%s\n",
         (unsigned long long)st.lists, (unsigned long long)st.watches,
         (unsigned long long)st.events, (unsigned long long)st.expired,
         (unsigned long long)st.failures, st.objects, st.resource_version);
  wr_informer_del(inf);
}

/* --- sync: time and memory of list+watch ---------------------------------------------------- */

static long status_kb(const char *field) {
  char line[256];
  long v = -1;
  FILE *f = fopen("/proc/self/status", "r");

  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, field, strlen(field)) == 0) {
      v = atol(line + strlen(field) + 1);
      break;
    }
  }
  fclose(f);
  return v;
}

struct sync_state {
  wr_informer *inf;
  uint64_t t0;
  int synced;
};

static void sync_synced(void *ud) {
  struct sync_state *s = ud;

  long rss = status_kb("VmRSS:"), peak = status_kb("VmHWM:");

  s->synced = 1;
  malloc_trim(0); /* what stays is the cache, not the freed list pages */
  printf("SYNCED %zu objects in %.0f ms; RSS %ld KiB, peak %ld KiB, after malloc_trim %ld KiB\n",
         json_object_size(wr_informer_objects(s->inf)), (double)(uv_hrtime() - s->t0) / 1e6, rss,
         peak, status_kb("VmRSS:"));
  fflush(stdout);
}

static void scenario_sync(struct env *e, unsigned page) {
  char coll[WR_KCLIENT_PATH_MAX];
  struct wr_informer_opts o;
  struct wr_informer_cbs cbs = {NULL, NULL, NULL, sync_synced};
  struct sync_state s = {NULL, 0, 0};
  long rss0 = status_kb("VmRSS:");

  wr_kpath(coll, sizeof(coll), &widgets, e->ns, NULL, NULL);
  memset(&o, 0, sizeof(o));
  o.path = coll;
  o.page_size = page;
  printf("before: RSS %ld KiB (page size %u)\n", rss0, page);
  s.t0 = uv_hrtime();
  if (wr_informer_new(&s.inf, &e->loop, e->kc, &o, &cbs, &s) < 0 || wr_informer_start(s.inf) < 0) {
    fail("informer");
    return;
  }
  while (!s.synced)
    uv_run(&e->loop, UV_RUN_ONCE);
  wr_informer_del(s.inf);
}

/* --- leader ---------------------------------------------------------------------------------- */

static void say(const char *what, const char *arg) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  printf("%s%s%s t=%.3f\n", what, arg != NULL ? " " : "", arg != NULL ? arg : "",
         (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
  fflush(stdout);
}

static void le_started(void *ud) {
  (void)ud;
  say("LEADING", NULL);
}

static void le_stopped(void *ud) {
  (void)ud;
  say("STOPPED", NULL);
}

static void le_new(void *ud, const char *id) {
  (void)ud;
  say("LEADER", id[0] != '\0' ? id : "-");
}

static void le_released(void *ud) {
  uv_loop_t *loop = ud;

  say("RELEASED", NULL);
  uv_stop(loop);
}

static void on_term_release(uv_signal_t *h, int sig) {
  (void)sig;
  wr_leader_release(h->data);
}

static void scenario_leader(struct env *e, const char *identity) {
  struct wr_leader_opts o;
  struct wr_leader_cbs cbs = {le_started, le_stopped, le_new, le_released};
  wr_leader *l = NULL;
  uv_signal_t *sig = &e->sig;
  int rv;

  memset(&o, 0, sizeof(o));
  o.ns = e->ns;
  o.name = "kube-check";
  o.identity = identity;
  rv = wr_leader_new(&l, &e->loop, e->kc, &o, &cbs, &e->loop);
  if (rv == 0)
    rv = wr_leader_start(l);
  if (rv < 0) {
    fail("leader: %s", wr_strerror(rv));
    return;
  }
  uv_signal_init(&e->loop, sig);
  sig->data = l;
  uv_signal_start(sig, on_term_release, SIGTERM);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)sig, NULL);
  wr_leader_del(l);
}

int main(int argc, char **argv) {
  struct env e;
  const char *sc = argc > 1 ? argv[1] : "";
  int nobody = strcmp(sc, "rbac") == 0;

  log_init("kube_check", getenv("KUBE_CHECK_DEBUG") != NULL ? WR_LOG_DEBUG : WR_LOG_WARN);
  if (getenv("KUBE_CHECK_DEBUG") != NULL)
    log_set_trace("kube");
  memset(&e, 0, sizeof(e));
  if (nobody && getenv("KUBE_KUBECONFIG_NOBODY") != NULL) {
    if (env_open_kubeconfig(&e, getenv("KUBE_KUBECONFIG_NOBODY")) < 0)
      return 2;
  } else if (env_open(&e, nobody ? "KUBE_NOBODY_TOKEN" : "KUBE_ADMIN_TOKEN") < 0) {
    return 2;
  }
  if (strcmp(sc, "crd") == 0)
    scenario_crd(&e);
  else if (strcmp(sc, "crud") == 0)
    scenario_crud(&e);
  else if (strcmp(sc, "paging") == 0)
    scenario_paging(&e, argc > 2 ? atoi(argv[2]) : 1200);
  else if (strcmp(sc, "rbac") == 0)
    scenario_rbac(&e);
  else if (strcmp(sc, "retry") == 0 && argc > 2)
    scenario_retry(&e, argv[2]);
  else if (strcmp(sc, "informer") == 0)
    scenario_informer(&e);
  else if (strcmp(sc, "populate") == 0 && argc > 2)
    populate(&e, atoi(argv[2]));
  else if (strcmp(sc, "sync") == 0)
    scenario_sync(&e, argc > 2 ? (unsigned)atoi(argv[2]) : 500);
  else if (strcmp(sc, "leader") == 0 && argc > 2)
    scenario_leader(&e, argv[2]);
  else {
    fprintf(stderr, "usage: kube_check crd|crud|paging [N]|populate N|sync [PAGE]|rbac|retry PATH|"
                    "informer|leader ID\n");
    env_close(&e);
    return 2;
  }
  env_close(&e);
  printf("%s: %s\n", sc, failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}
