/* test_conf.c - the YAML access layer: navigation, checked getters, positioned errors, limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "warren/conf.h"
#include "warren/err.h"

#define MAXBYTES (1u << 20)

static wr_conf *load(const char *yaml) {
  char err[WR_CONF_ERR_MAX];
  wr_conf *c = NULL;
  int rv = wr_conf_load_mem(&c, "t.yaml", yaml, strlen(yaml), MAXBYTES, err, sizeof(err));

  if (rv != 0)
    fail_msg("load failed (%d): %s", rv, err);
  return c;
}

/* load_err expects loading to fail with |want_rv| and the message |want|. */
static void load_err(const char *yaml, int want_rv, const char *want) {
  char err[WR_CONF_ERR_MAX] = "";
  wr_conf *c = (wr_conf *)&err; /* must stay untouched */

  assert_int_equal(wr_conf_load_mem(&c, "t.yaml", yaml, strlen(yaml), MAXBYTES, err, sizeof(err)),
                   want_rv);
  assert_ptr_equal(c, (wr_conf *)&err);
  assert_string_equal(err, want);
}

static const char doc[] = "name: demo\n"          /* 1 */
                          "port: 4433\n"          /* 2 */
                          "debug: true\n"         /* 3 */
                          "quoted: \"443\"\n"     /* 4 */
                          "empty: \"\"\n"         /* 5 */
                          "nothing: ~\n"          /* 6 */
                          "list:\n"               /* 7 */
                          "- a\n"                 /* 8 */
                          "- {x: 1, y: [p, q]}\n" /* 9 */
                          "nested:\n"             /* 10 */
                          "  inner:\n"            /* 11 */
                          "    deep: -12\n"       /* 12 */
                          "---\n"                 /* 13 */
                          "- second document\n";  /* 14 */

static void test_navigate(void **state) {
  wr_conf *c = load(doc);
  wr_conf_node root, list, item, y, deep;
  char path[128];

  (void)state;
  assert_string_equal(wr_conf_name(c), "t.yaml");
  assert_int_equal(wr_conf_ndocs(c), 2);
  root = wr_conf_root(c, 0);
  assert_int_equal(wr_conf_kind(root), WR_CONF_MAP);
  assert_int_equal(wr_conf_kind(wr_conf_root(c, 1)), WR_CONF_SEQ);
  assert_int_equal(wr_conf_kind(wr_conf_root(c, 2)), WR_CONF_NONE);
  assert_int_equal(wr_conf_map_len(root), 8);
  assert_string_equal(wr_conf_scalar(wr_conf_map_key(root, 1)), "port");
  assert_string_equal(wr_conf_scalar(wr_conf_map_value(root, 1)), "4433");
  assert_int_equal(wr_conf_kind(wr_conf_map_value(root, 8)), WR_CONF_NONE);
  assert_int_equal(wr_conf_kind(wr_conf_map_get(root, "nothing")), WR_CONF_NULL);
  assert_int_equal(wr_conf_kind(wr_conf_map_get(root, "empty")), WR_CONF_SCALAR);
  assert_int_equal(wr_conf_kind(wr_conf_map_get(root, "missing")), WR_CONF_NONE);

  list = wr_conf_map_get(root, "list");
  assert_int_equal(wr_conf_seq_len(list), 2);
  assert_int_equal(wr_conf_map_len(list), 0);
  assert_string_equal(wr_conf_scalar(wr_conf_seq_at(list, 0)), "a");
  assert_int_equal(wr_conf_kind(wr_conf_seq_at(list, 2)), WR_CONF_NONE);
  item = wr_conf_seq_at(list, 1);
  y = wr_conf_map_get(item, "y");
  assert_int_equal(wr_conf_line(y), 9);
  wr_conf_path(wr_conf_seq_at(y, 1), path, sizeof(path));
  assert_string_equal(path, "list[1].y[1]");
  deep = wr_conf_map_get(wr_conf_map_get(wr_conf_map_get(root, "nested"), "inner"), "deep");
  assert_int_equal(wr_conf_line(deep), 12);
  wr_conf_path(deep, path, sizeof(path));
  assert_string_equal(path, "nested.inner.deep");
  wr_conf_path(root, path, sizeof(path));
  assert_string_equal(path, "");
  wr_conf_path(deep, path, 8);
  assert_string_equal(path, "nest...");

  /* Accessors accept the none node and the wrong kinds. */
  assert_int_equal(wr_conf_seq_len(wr_conf_map_get(list, "x")), 0);
  assert_null(wr_conf_scalar(list));
  assert_int_equal(wr_conf_line(wr_conf_map_get(root, "missing")), 0);
  wr_conf_del(c);
  wr_conf_del(NULL);
}

static void test_getters(void **state) {
  wr_conf *c = load(doc);
  wr_conf_node root = wr_conf_root(c, 0), n = {0};
  const char *s = "default";
  long long v = 7;
  bool b = false;

  (void)state;
  assert_int_equal(wr_conf_get_str(root, "name", WR_CONF_REQUIRED, &s), 0);
  assert_string_equal(s, "demo");
  assert_int_equal(wr_conf_get_str(root, "empty", WR_CONF_REQUIRED, &s), 0);
  assert_string_equal(s, "");
  assert_int_equal(wr_conf_get_int(root, "port", WR_CONF_REQUIRED, 1, 65535, &v), 0);
  assert_int_equal(v, 4433);
  assert_int_equal(wr_conf_get_bool(root, "debug", WR_CONF_REQUIRED, &b), 0);
  assert_true(b);
  assert_int_equal(wr_conf_get_seq(root, "list", WR_CONF_REQUIRED, 1, 2, &n), 0);
  assert_int_equal(wr_conf_seq_len(n), 2);
  assert_int_equal(wr_conf_get_map(root, "nested", WR_CONF_REQUIRED, &n), 0);
  assert_int_equal(wr_conf_line(n), 11);

  /* Optional and missing or null: 0, and the default stays. */
  s = "default";
  v = 7;
  assert_int_equal(wr_conf_get_str(root, "missing", WR_CONF_OPTIONAL, &s), 0);
  assert_string_equal(s, "default");
  assert_int_equal(wr_conf_get_str(root, "nothing", WR_CONF_OPTIONAL, &s), 0);
  assert_string_equal(s, "default");
  assert_int_equal(wr_conf_get_int(root, "missing", WR_CONF_OPTIONAL, 0, 10, &v), 0);
  assert_int_equal(v, 7);
  assert_string_equal(wr_conf_errmsg(c), "");
  wr_conf_del(c);
}

/* expect runs |rv| (a failed check) and compares the recorded message. */
static void expect(wr_conf *c, int rv, const char *want) {
  assert_int_equal(rv, WR_ERR_CONFIG);
  assert_string_equal(wr_conf_errmsg(c), want);
}

static void test_getter_errors(void **state) {
  wr_conf *c = load(doc);
  wr_conf_node root = wr_conf_root(c, 0), n;
  wr_conf_node inner = wr_conf_map_get(wr_conf_map_get(root, "nested"), "inner");
  const char *s;
  long long v;
  bool b;

  (void)state;
  expect(c, wr_conf_get_str(root, "missing", WR_CONF_REQUIRED, &s),
         "t.yaml:1: missing: required key is missing");
  expect(c, wr_conf_get_str(root, "nothing", WR_CONF_REQUIRED, &s),
         "t.yaml:1: nothing: required key is missing");
  expect(c, wr_conf_get_str(inner, "gone", WR_CONF_REQUIRED, &s),
         "t.yaml:12: nested.inner.gone: required key is missing");
  expect(c, wr_conf_get_str(root, "list", WR_CONF_REQUIRED, &s),
         "t.yaml:8: list: expected a string, found a sequence");
  expect(c, wr_conf_get_int(root, "port", WR_CONF_REQUIRED, 1, 1024, &v),
         "t.yaml:2: port: expected an integer from 1 to 1024, found \"4433\"");
  expect(c, wr_conf_get_int(root, "quoted", WR_CONF_REQUIRED, 1, 1024, &v),
         "t.yaml:4: quoted: expected an integer, found the quoted string \"443\"");
  expect(c, wr_conf_get_int(root, "name", WR_CONF_REQUIRED, 1, 1024, &v),
         "t.yaml:1: name: expected an integer, found \"demo\"");
  expect(c, wr_conf_get_int(inner, "deep", WR_CONF_REQUIRED, 0, 10, &v),
         "t.yaml:12: nested.inner.deep: expected an integer from 0 to 10, found \"-12\"");
  expect(c, wr_conf_get_bool(root, "name", WR_CONF_REQUIRED, &b),
         "t.yaml:1: name: expected true or false, found \"demo\"");
  expect(c, wr_conf_get_map(root, "list", WR_CONF_REQUIRED, &n),
         "t.yaml:8: list: expected a mapping, found a sequence");
  expect(c, wr_conf_get_seq(root, "list", WR_CONF_REQUIRED, 3, 16, &n),
         "t.yaml:8: list: expected 3 to 16 items, found 2");
  expect(c, wr_conf_get_seq(root, "nested", WR_CONF_REQUIRED, 0, 16, &n),
         "t.yaml:11: nested: expected a sequence, found a mapping");
  expect(c, wr_conf_get_str(wr_conf_map_get(root, "list"), "x", WR_CONF_REQUIRED, &s),
         "t.yaml:8: list: expected a mapping, found a sequence");
  expect(c, wr_conf_errorf(wr_conf_map_get(root, "port"), "port %d is taken", 4433),
         "t.yaml:2: port: port 4433 is taken");
  expect(c, wr_conf_errorf_key(inner, "extra", "not allowed"),
         "t.yaml:12: nested.inner.extra: not allowed");
  expect(c, wr_conf_errorf(root, "bad file"), "t.yaml:1: bad file");
  wr_conf_del(c);
}

static void test_int_bool(void **state) {
  wr_conf *c = load("a: 9223372036854775807\n"
                    "b: -9223372036854775808\n"
                    "c: 9223372036854775808\n"
                    "d: +5\n"
                    "e: 1.5\n"
                    "f: 0x10\n"
                    "g: FALSE\n"
                    "h: \"true\"\n"
                    "i: yes\n");
  wr_conf_node root = wr_conf_root(c, 0);
  long long v;
  bool b = true;

  (void)state;
  assert_int_equal(wr_conf_get_int(root, "a", 0, LLONG_MIN, LLONG_MAX, &v), 0);
  assert_true(v == LLONG_MAX);
  assert_int_equal(wr_conf_get_int(root, "b", 0, LLONG_MIN, LLONG_MAX, &v), 0);
  assert_true(v == LLONG_MIN);
  assert_int_equal(wr_conf_get_int(root, "c", 0, LLONG_MIN, LLONG_MAX, &v), WR_ERR_CONFIG);
  assert_int_equal(wr_conf_get_int(root, "d", 0, 0, 10, &v), 0);
  assert_int_equal(v, 5);
  assert_int_equal(wr_conf_get_int(root, "e", 0, 0, 10, &v), WR_ERR_CONFIG);
  assert_int_equal(wr_conf_get_int(root, "f", 0, 0, 10, &v), WR_ERR_CONFIG);
  assert_int_equal(wr_conf_get_bool(root, "g", 0, &b), 0);
  assert_false(b);
  expect(c, wr_conf_get_bool(root, "h", 0, &b),
         "t.yaml:8: h: expected true or false, found \"true\"");
  expect(c, wr_conf_get_bool(root, "i", 0, &b),
         "t.yaml:9: i: expected true or false, found \"yes\"");
  wr_conf_del(c);
}

static void test_plain(void **state) {
  wr_conf *c = load("a: x\n"
                    "b: \"x\"\n"
                    "c: 'x'\n"
                    "d: |\n"
                    "  x\n"
                    "e: >\n"
                    "  x\n"
                    "f:\n"
                    "g: [1]\n"
                    "? multi\n"
                    "  line\n"
                    ": 1\n");
  wr_conf_node root = wr_conf_root(c, 0);

  (void)state;
  assert_true(wr_conf_plain(wr_conf_map_get(root, "a")));
  assert_false(wr_conf_plain(wr_conf_map_get(root, "b")));
  assert_false(wr_conf_plain(wr_conf_map_get(root, "c")));
  assert_false(wr_conf_plain(wr_conf_map_get(root, "d")));
  assert_false(wr_conf_plain(wr_conf_map_get(root, "e")));
  /* A null is a plain scalar too; collections and none are not scalars. */
  assert_int_equal(wr_conf_kind(wr_conf_map_get(root, "f")), WR_CONF_NULL);
  assert_true(wr_conf_plain(wr_conf_map_get(root, "f")));
  assert_false(wr_conf_plain(wr_conf_map_get(root, "g")));
  assert_true(wr_conf_plain(wr_conf_seq_at(wr_conf_map_get(root, "g"), 0)));
  assert_false(wr_conf_plain(wr_conf_map_get(root, "missing")));
  assert_false(wr_conf_plain(root));
  /* Keys are nodes too: a folded multi-line plain key. */
  assert_true(wr_conf_plain(wr_conf_map_key(root, 7)));
  assert_string_equal(wr_conf_scalar(wr_conf_map_key(root, 7)), "multi line");
  wr_conf_del(c);
}

static void test_check_keys(void **state) {
  static const char *const known[] = {"name", "port", NULL};
  wr_conf *c = load("server:\n"
                    "  name: a\n"
                    "  prot: 80\n");
  wr_conf_node server = wr_conf_map_get(wr_conf_root(c, 0), "server");

  (void)state;
  expect(c, wr_conf_check_keys(server, known), "t.yaml:3: server.prot: unknown key");
  expect(c, wr_conf_check_keys(wr_conf_map_get(server, "name"), known),
         "t.yaml:2: server.name: expected a mapping, found a scalar");
  wr_conf_del(c);
  c = load("{name: a, port: 1}");
  assert_int_equal(wr_conf_check_keys(wr_conf_root(c, 0), known), 0);
  wr_conf_del(c);
}

static void test_empty_documents(void **state) {
  wr_conf *c;

  (void)state;
  c = load("");
  assert_int_equal(wr_conf_ndocs(c), 0);
  assert_int_equal(wr_conf_kind(wr_conf_root(c, 0)), WR_CONF_NONE);
  wr_conf_del(c);
  c = load("# only a comment\n");
  assert_int_equal(wr_conf_ndocs(c), 0);
  wr_conf_del(c);
  c = load("---\n---\na: 1\n---\n# nothing\n");
  assert_int_equal(wr_conf_ndocs(c), 3);
  assert_int_equal(wr_conf_kind(wr_conf_root(c, 0)), WR_CONF_NULL);
  assert_int_equal(wr_conf_kind(wr_conf_root(c, 1)), WR_CONF_MAP);
  assert_int_equal(wr_conf_kind(wr_conf_root(c, 2)), WR_CONF_NULL);
  wr_conf_del(c);
}

static void test_yaml_errors(void **state) {
  (void)state;
  load_err("a: 1\nb: [1, 2\nc: 3\n", WR_ERR_CONFIG,
           "t.yaml:3: did not find expected ',' or ']' (while parsing a flow sequence at line 2)");
  load_err("a: 1\n  b: 2\n", WR_ERR_CONFIG,
           "t.yaml:2: mapping values are not allowed in this context");
  load_err("a:\n\tb: 1\n", WR_ERR_CONFIG,
           "t.yaml:2: found character that cannot start any token (while scanning for the next "
           "token at line 2)");
  load_err("a: \"\xff\"\n", WR_ERR_CONFIG, "t.yaml: byte 4: invalid leading UTF-8 octet");
  load_err("a: 1\nb:\n  x: 1\n  x: 2\n", WR_ERR_CONFIG,
           "t.yaml:4: b.x: duplicate key (first at line 3)");
  load_err("a: 1\n? [k]\n: v\n", WR_ERR_CONFIG,
           "t.yaml:1: mapping keys must be scalars, found a sequence at line 2");
}

static void test_aliases_refused(void **state) {
  (void)state;
  load_err("base: &b {x: 1}\nother: *b\n", WR_ERR_CONFIG,
           "t.yaml:1: YAML anchors are not supported");
  load_err("a: [1]\nb: *nowhere\n", WR_ERR_CONFIG, "t.yaml:2: YAML aliases are not supported");
  load_err("a: 1\nb: !!str 2\n", WR_ERR_CONFIG, "t.yaml:2: YAML tags are not supported");
  load_err("a: !custom {x: 1}\n", WR_ERR_CONFIG, "t.yaml:1: YAML tags are not supported");
  /* The classic billion laughs never gets past the first anchor. */
  load_err("a: &a [\"lol\",\"lol\"]\nb: &b [*a,*a,*a]\nc: &c [*b,*b,*b]\n", WR_ERR_CONFIG,
           "t.yaml:1: YAML anchors are not supported");
}

static void test_limits(void **state) {
  char err[WR_CONF_ERR_MAX];
  wr_conf *c = NULL;
  char *big;
  size_t i, n;

  (void)state;
  assert_int_equal(wr_conf_load_mem(&c, "t.yaml", "a: 1\n", 5, 4, err, sizeof(err)), WR_ERR_TOOBIG);
  assert_string_equal(err, "t.yaml: larger than 4 bytes");
  assert_null(c);

  /* Nesting. */
  big = malloc(4096);
  assert_non_null(big);
  for (n = 0; n < WR_CONF_DEPTH_MAX; n++)
    big[n] = '[';
  for (i = 0; i < WR_CONF_DEPTH_MAX; i++)
    big[n++] = ']';
  big[n] = '\0';
  c = load(big);
  wr_conf_del(c);
  memmove(big + 1, big, n + 1);
  big[0] = '[';
  strcat(big, "]");
  load_err(big, WR_ERR_CONFIG, "t.yaml:1: nesting deeper than 64 levels");
  free(big);

  /* Node count: a flat list one item too long. */
  n = 2 * (WR_CONF_NODES_MAX + 1);
  big = malloc(n + 1);
  assert_non_null(big);
  for (i = 0; i < n; i += 2)
    memcpy(big + i, "-\n", 2);
  big[n] = '\0';
  /* WR_CONF_NODES_MAX + 1 null items, plus the sequence itself. */
  assert_int_equal(wr_conf_load_mem(&c, "t.yaml", big, n, n, err, sizeof(err)), WR_ERR_CONFIG);
  assert_non_null(strstr(err, "more than 262144 YAML nodes"));
  free(big);
}

static void test_message_hygiene(void **state) {
  wr_conf *c =
      load("\"a\\tb\": \"x\\u0001y\"\n"
           "long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
           "nul: \"a\\0b\"\n");
  wr_conf_node root = wr_conf_root(c, 0);
  const char *s;
  long long v;

  (void)state;
  /* Control characters from the input never reach a message. */
  expect(c, wr_conf_get_int(root, "a\tb", 0, 0, 1, &v),
         "t.yaml:1: a?b: expected an integer, found the quoted string \"x?y\"");
  expect(c, wr_conf_get_int(root, "long", 0, 0, 1, &v),
         "t.yaml:2: long: expected an integer, found "
         "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"");
  expect(c, wr_conf_get_str(root, "nul", 0, &s),
         "t.yaml:3: nul: expected a string, found one with a NUL byte");
  wr_conf_del(c);
}

static void test_load_file(void **state) {
  char path[] = "/tmp/test_conf_XXXXXX", err[WR_CONF_ERR_MAX], want[WR_CONF_ERR_MAX];
  wr_conf *c = NULL;
  int fd;

  (void)state;
  fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "a: 1\nb: 2\n", 10), 10);
  close(fd);
  assert_int_equal(wr_conf_load_file(&c, path, 10, err, sizeof(err)), 0);
  assert_string_equal(wr_conf_name(c), path);
  assert_string_equal(wr_conf_scalar(wr_conf_map_get(wr_conf_root(c, 0), "b")), "2");
  wr_conf_del(c);
  c = NULL;
  assert_int_equal(wr_conf_load_file(&c, path, 9, err, sizeof(err)), WR_ERR_TOOBIG);
  snprintf(want, sizeof(want), "%s: larger than 9 bytes", path);
  assert_string_equal(err, want);
  assert_null(c);
  unlink(path);

  assert_int_equal(wr_conf_load_file(&c, path, 10, err, sizeof(err)), -ENOENT);
  snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
  assert_string_equal(err, want);
  assert_int_equal(wr_conf_load_file(&c, "/tmp", 10, err, sizeof(err)), -EISDIR);
  assert_null(c);
  /* A device without a size is still capped. */
  assert_int_equal(wr_conf_load_file(&c, "/dev/zero", 100000, err, sizeof(err)), WR_ERR_TOOBIG);
  assert_null(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_navigate),      cmocka_unit_test(test_getters),
      cmocka_unit_test(test_getter_errors), cmocka_unit_test(test_int_bool),
      cmocka_unit_test(test_check_keys),    cmocka_unit_test(test_empty_documents),
      cmocka_unit_test(test_yaml_errors),   cmocka_unit_test(test_aliases_refused),
      cmocka_unit_test(test_limits),        cmocka_unit_test(test_message_hygiene),
      cmocka_unit_test(test_load_file),     cmocka_unit_test(test_plain),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
