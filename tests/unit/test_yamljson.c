/* test_yamljson.c - YAML to JSON (core schema, documents, errors) and back (quoting, round trips).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "warren/conf.h"
#include "warren/err.h"
#include "warren/yamljson.h"

#define MAXBYTES (1u << 20)

static json_t *load(const char *yaml) {
  char err[WR_CONF_ERR_MAX] = "";
  json_t *docs = NULL;
  int rv = wr_yaml_to_json("t.yaml", yaml, strlen(yaml), MAXBYTES, &docs, err, sizeof(err));

  if (rv != 0)
    fail_msg("load failed (%d): %s", rv, err);
  assert_true(json_is_array(docs));
  return docs;
}

/* load_one loads a stream of exactly one document and returns its value. */
static json_t *load_one(const char *yaml) {
  json_t *docs = load(yaml), *v;

  assert_int_equal(json_array_size(docs), 1);
  v = json_incref(json_array_get(docs, 0));
  json_decref(docs);
  return v;
}

/* load_err expects loading |len| bytes to fail with |want_rv| and the message |want|. */
static void load_err_n(const char *yaml, size_t len, int want_rv, const char *want) {
  char err[WR_CONF_ERR_MAX] = "";
  json_t *docs = (json_t *)&err; /* must stay untouched */

  assert_int_equal(wr_yaml_to_json("t.yaml", yaml, len, MAXBYTES, &docs, err, sizeof(err)),
                   want_rv);
  assert_ptr_equal(docs, (json_t *)&err);
  assert_string_equal(err, want);
}

static void load_err(const char *yaml, int want_rv, const char *want) {
  load_err_n(yaml, strlen(yaml), want_rv, want);
}

/* dump writes |v| as one document into a fresh NUL-terminated string. */
static char *dump(const json_t *v) {
  char *buf = NULL;
  size_t len = 0;

  assert_int_equal(wr_json_to_yaml(v, &buf, &len), 0);
  assert_non_null(buf);
  assert_int_equal(strlen(buf), len);
  assert_memory_equal(buf, "---\n", 4);
  return buf;
}

/* round_trip checks that |v| reads back equal from what wr_json_to_yaml writes. */
static void round_trip(const json_t *v) {
  char *yaml = dump(v);
  json_t *back = load_one(yaml);

  if (!json_equal(v, back)) {
    char *a = json_dumps(v, JSON_ENCODE_ANY), *b = json_dumps(back, JSON_ENCODE_ANY);

    fail_msg("round trip changed %s into %s via:\n%s", a, b, yaml);
  }
  json_decref(back);
  free(yaml);
}

/* expect_yaml checks the exact text written for |v| (a JSON text), and the round trip. */
static void expect_yaml(const char *json, const char *want) {
  json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  char *yaml;

  assert_non_null(v);
  yaml = dump(v);
  assert_string_equal(yaml, want);
  free(yaml);
  round_trip(v);
  json_decref(v);
}

/* expect_json checks that |yaml| loads to one document equal to |json|. */
static void expect_json(const char *yaml, const char *json) {
  json_t *want = json_loads(json, JSON_DECODE_ANY, NULL), *got = load_one(yaml);

  assert_non_null(want);
  if (!json_equal(want, got)) {
    char *g = json_dumps(got, JSON_ENCODE_ANY);

    fail_msg("%s: got %s, want %s", yaml, g, json);
  }
  json_decref(want);
  json_decref(got);
}

static void test_core_schema(void **state) {
  json_t *v;

  (void)state;
  expect_json("a:\nb: ~\nc: null\nd: Null\ne: NULL\nf: nULL\n",
              "{\"a\": null, \"b\": null, \"c\": null, \"d\": null, \"e\": null, \"f\": \"nULL\"}");
  expect_json("[true, True, TRUE, false, False, FALSE, tRUE, yes, no, on, off, y, n]",
              "[true, true, true, false, false, false, \"tRUE\", \"yes\", \"no\", \"on\", \"off\","
              " \"y\", \"n\"]");
  expect_json("[0, -0, +5, -12, 007, 0x1F, 0xff, 0o17, 0o8, 0X1F, 0b101, 1_000, 1:20, 0x, 0o]",
              "[0, 0, 5, -12, 7, 31, 255, 15, \"0o8\", \"0X1F\", \"0b101\", \"1_000\", \"1:20\","
              " \"0x\", \"0o\"]");
  expect_json("[9223372036854775807, -9223372036854775808, 9223372036854775808,"
              " -9223372036854775809, 0x7fffffffffffffff, 0x8000000000000000,"
              " 0o777777777777777777777, 0o1000000000000000000000]",
              "[9223372036854775807, -9223372036854775808, \"9223372036854775808\","
              " \"-9223372036854775809\", 9223372036854775807, \"0x8000000000000000\","
              " 9223372036854775807, \"0o1000000000000000000000\"]");
  expect_json("[1.5, -1.5, .5, +.5, 1., 1e3, 1E-3, -2.5e+2, 0.0, 1e400, 1.2.3, 1e, e3, ., +., -]",
              "[1.5, -1.5, 0.5, 0.5, 1.0, 1000.0, 0.001, -250.0, 0.0, \"1e400\", \"1.2.3\", \"1e\","
              " \"e3\", \".\", \"+.\", \"-\"]");
  /* JSON has no infinities or NaNs: the text is kept. */
  expect_json("[.inf, -.Inf, +.INF, .nan, .NaN, .NAN, .iNf]",
              "[\".inf\", \"-.Inf\", \"+.INF\", \".nan\", \".NaN\", \".NAN\", \".iNf\"]");
  v = load_one("[1e3, 1]");
  assert_true(json_is_real(json_array_get(v, 0)));
  assert_true(json_is_integer(json_array_get(v, 1)));
  json_decref(v);
  /* Plain multi-line scalars fold before they are typed. */
  expect_json("a: hello\n  world\nb: 1\n  2\n", "{\"a\": \"hello world\", \"b\": \"1 2\"}");
}

static void test_quoted_plain(void **state) {
  (void)state;
  expect_json("- \"true\"\n- 'null'\n- \"1\"\n- '1.5'\n- \"\"\n- ''\n- \"~\"\n- |\n  12\n- >-\n  "
              "false\n- \"0x1F\"\n",
              "[\"true\", \"null\", \"1\", \"1.5\", \"\", \"\", \"~\", \"12\\n\", \"false\","
              " \"0x1F\"]");
  /* Keys are strings whatever they look like; a quoted key equals its plain spelling. */
  expect_json("1: a\nnull: b\ntrue: c\n~: d\n1.5: e\n", "{\"1\": \"a\", \"null\": \"b\", \"true\": "
                                                        "\"c\", \"~\": \"d\", \"1.5\": \"e\"}");
  load_err("1: a\n\"1\": b\n", WR_ERR_CONFIG, "t.yaml:2: 1: duplicate key (first at line 1)");
  expect_json("\"esc\": \"a\\tb\\u00e9\\n\"\n", "{\"esc\": \"a\\tb\\u00e9\\n\"}");
}

static void test_nested(void **state) {
  (void)state;
  expect_json(
      "apiVersion: networking.datumapis.com/v1alpha\n"
      "kind: HTTPProxy\n"
      "metadata:\n"
      "  name: demo\n"
      "  labels: {app: demo, tier: \"1\"}\n"
      "spec:\n"
      "  hostnames: [demo.example.com]\n"
      "  rules:\n"
      "  - backends:\n"
      "    - endpoint: http://127.0.0.1:3000\n"
      "      weight: 10\n"
      "    matches:\n"
      "    - path: {type: PathPrefix, value: /}\n"
      "  - []\n"
      "  - {}\n"
      "  - [[1, [2, []]], {a: {b: {c: null}}}]\n",
      "{\"apiVersion\": \"networking.datumapis.com/v1alpha\", \"kind\": \"HTTPProxy\","
      " \"metadata\": {\"name\": \"demo\", \"labels\": {\"app\": \"demo\", \"tier\": \"1\"}},"
      " \"spec\": {\"hostnames\": [\"demo.example.com\"], \"rules\": ["
      "{\"backends\": [{\"endpoint\": \"http://127.0.0.1:3000\", \"weight\": 10}],"
      " \"matches\": [{\"path\": {\"type\": \"PathPrefix\", \"value\": \"/\"}}]},"
      " [], {}, [[1, [2, []]], {\"a\": {\"b\": {\"c\": null}}}]]}}");
}

static void test_documents(void **state) {
  json_t *docs;

  (void)state;
  docs = load("");
  assert_int_equal(json_array_size(docs), 0);
  json_decref(docs);
  docs = load("# only a comment\n");
  assert_int_equal(json_array_size(docs), 0);
  json_decref(docs);
  /* Empty documents are skipped; an explicit null is a value. */
  docs = load("---\n---\na: 1\n---\n# nothing\n...\n--- null\n--- ~\n--- \"\"\n---\n- x\n---\n");
  assert_int_equal(json_array_size(docs), 5);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(docs, 0), "a")), 1);
  assert_true(json_is_null(json_array_get(docs, 1)));
  assert_true(json_is_null(json_array_get(docs, 2)));
  assert_string_equal(json_string_value(json_array_get(docs, 3)), "");
  assert_string_equal(json_string_value(json_array_get(json_array_get(docs, 4), 0)), "x");
  json_decref(docs);
  docs = load("plain scalar document\n");
  assert_string_equal(json_string_value(json_array_get(docs, 0)), "plain scalar document");
  json_decref(docs);
}

static void test_errors(void **state) {
  char err[WR_CONF_ERR_MAX];
  json_t *docs = NULL;

  (void)state;
  load_err("a: 1\nb:\n  x: 1\n  x: 2\n", WR_ERR_CONFIG,
           "t.yaml:4: b.x: duplicate key (first at line 3)");
  load_err("base: &b {x: 1}\nother: *b\n", WR_ERR_CONFIG,
           "t.yaml:1: YAML anchors are not supported");
  load_err("a: [1]\nb: *nowhere\n", WR_ERR_CONFIG, "t.yaml:2: YAML aliases are not supported");
  load_err("a: !!str 1\n", WR_ERR_CONFIG, "t.yaml:1: YAML tags are not supported");
  load_err("a: 1\n? [k]\n: v\n", WR_ERR_CONFIG,
           "t.yaml:1: mapping keys must be scalars, found a sequence at line 2");
  load_err("a: 1\nb: [1, 2\nc: 3\n", WR_ERR_CONFIG,
           "t.yaml:3: did not find expected ',' or ']' (while parsing a flow sequence at line 2)");
  load_err("a:\n  b:\n  - \"x\\0y\"\n", WR_ERR_CONFIG, "t.yaml:3: a.b[0]: NUL byte in a string");
  load_err("a:\n  \"k\\0\": 1\n", WR_ERR_CONFIG, "t.yaml:2: a.k: NUL byte in a string");
  load_err_n("a: \0\n", 5, WR_ERR_CONFIG, "t.yaml: byte 3: control characters are not allowed");
  load_err("---\na: 1\n---\nb: 1\nb: 2\n", WR_ERR_CONFIG,
           "t.yaml:5: b: duplicate key (first at line 4)");
  assert_int_equal(wr_yaml_to_json("t.yaml", "a: 1\n", 5, 4, &docs, err, sizeof(err)),
                   WR_ERR_TOOBIG);
  assert_string_equal(err, "t.yaml: larger than 4 bytes");
  assert_null(docs);
}

static void test_file(void **state) {
  char path[] = "/tmp/test_yamljson_XXXXXX", err[WR_CONF_ERR_MAX], want[WR_CONF_ERR_MAX];
  json_t *docs = NULL;
  int fd;

  (void)state;
  fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "a: 1\nb: [x]\n", 12), 12);
  close(fd);
  assert_int_equal(wr_yaml_file_to_json(path, 12, &docs, err, sizeof(err)), 0);
  assert_int_equal(json_array_size(docs), 1);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(docs, 0), "a")), 1);
  json_decref(docs);
  docs = NULL;
  assert_int_equal(wr_yaml_file_to_json(path, 11, &docs, err, sizeof(err)), WR_ERR_TOOBIG);
  assert_null(docs);
  fd = open(path, O_WRONLY | O_TRUNC);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "a: 1\na: 2\n", 10), 10);
  close(fd);
  assert_int_equal(wr_yaml_file_to_json(path, 100, &docs, err, sizeof(err)), WR_ERR_CONFIG);
  snprintf(want, sizeof(want), "%s:2: a: duplicate key (first at line 1)", path);
  assert_string_equal(err, want);
  unlink(path);
  assert_int_equal(wr_yaml_file_to_json(path, 100, &docs, err, sizeof(err)), -ENOENT);
  assert_null(docs);
}

static void test_write_style(void **state) {
  (void)state;
  expect_yaml("{\"kind\": \"HTTPRoute\", \"spec\": {\"hostnames\": [\"a.example.com\"],"
              " \"rules\": [{\"weight\": 1, \"ok\": true, \"none\": null}], \"e\": {}, \"f\": []}}",
              "---\n"
              "kind: HTTPRoute\n"
              "spec:\n"
              "  hostnames:\n"
              "  - a.example.com\n"
              "  rules:\n"
              "  - weight: 1\n"
              "    ok: true\n"
              "    none: null\n"
              "  e: {}\n"
              "  f: []\n");
  /* Insertion order, not sorted. */
  expect_yaml("{\"z\": 1, \"a\": 2, \"m\": 3}", "---\nz: 1\na: 2\nm: 3\n");
  /* Scalar roots and empties. */
  expect_yaml("\"x\"", "---\nx\n");
  expect_yaml("null", "---\nnull\n");
  expect_yaml("{}", "---\n{}\n");
  expect_yaml("[]", "---\n[]\n");
  /* Quoting: other types, indicators, spaces, escapes. */
  expect_yaml(
      "[\"true\", \"1\", \"\", \"a: b\", \"a #b\", \"a#b\", \"-x\", \" x\", \"x \", \"a\\nb\","
      " \"tab\\there\", \"http://x:80/#f\", \"key:\", \"yes\", \"2024-01-01\"]",
      "---\n- \"true\"\n- \"1\"\n- \"\"\n- \"a: b\"\n- \"a #b\"\n- a#b\n- \"-x\"\n- \" x\"\n"
      "- \"x \"\n- \"a\\nb\"\n- \"tab\\there\"\n- http://x:80/#f\n- \"key:\"\n- \"yes\"\n"
      "- \"2024-01-01\"\n");
  expect_yaml("{\"true\": \"1\", \"a b\": \"c d\", \"\": \"empty key\"}",
              "---\n\"true\": \"1\"\na b: c d\n\"\": empty key\n");
  /* Reals read back as reals, in the fewest digits. */
  expect_yaml("[1.0, 0.1, -0.0, 1e20, 1.5e-7, 123456789.125, 2.2250738585072014e-308,"
              " 1.7976931348623157e308, 0.30000000000000004]",
              "---\n- 1.0\n- 0.1\n- -0.0\n- 1.0e+20\n- 1.5e-07\n- 123456789.125\n"
              "- 2.2250738585072014e-308\n- 1.7976931348623157e+308\n- 0.30000000000000004\n");
  /* Long strings are not folded. */
  {
    char long_json[2100], long_yaml[2100];
    int i;

    strcpy(long_json, "\"");
    strcpy(long_yaml, "---\n");
    for (i = 0; i < 200; i++) {
      strcat(long_json, "word word ");
      strcat(long_yaml, "word word ");
    }
    strcat(long_json, "end\"");
    strcat(long_yaml, "end\n");
    expect_yaml(long_json, long_yaml);
  }
}

static void test_round_trip(void **state) {
  static const char *const strings[] = {
      "true",
      "false",
      "True",
      "FALSE",
      "null",
      "Null",
      "NULL",
      "~",
      "",
      "1",
      "-1",
      "+1",
      "007",
      "1.5",
      "1e3",
      "1E3",
      ".5",
      "1.",
      "0x1F",
      "0o17",
      "0b101",
      "1_000",
      "1:20",
      ".inf",
      "-.inf",
      ".nan",
      "9223372036854775808",
      "1e400",
      "yes",
      "no",
      "on",
      "off",
      "y",
      "n",
      "<<",
      "=",
      " leading",
      "trailing ",
      " ",
      "a: b",
      "a:",
      ":a",
      "a:b",
      "# comment",
      "a # b",
      "a#b",
      "-",
      "- item",
      "-x",
      "--- doc",
      "...",
      "[a]",
      "{a: 1}",
      "]",
      "}",
      ",",
      "*alias",
      "&anchor",
      "!tag",
      "%YAML",
      "@at",
      "`tick",
      "|block",
      ">folded",
      "'single'",
      "\"double\"",
      "a'b",
      "a\"b",
      "?",
      "? key",
      "line\nbreak",
      "trailing\n",
      "\n",
      "cr\rx",
      "tab\tx",
      "\t",
      "bell\a",
      "del\x7f",
      "esc\x1b",
      "back\\slash",
      "nel\xc2\x85",
      "ls\xe2\x80\xa8",
      "ps\xe2\x80\xa9",
      "\xef\xbb\xbf"
      "bom",
      "nbsp\xc2\xa0",
      "\xc2\xa0",
      "caf\xc3\xa9",
      "\xe6\x97\xa5\xe6\x9c\xac",
      "emoji \xf0\x9f\x98\x80",
      "\xef\xbf\xbf",
      "2024-01-01",
      "12:30:00",
      "1.2.3",
      "v1.2",
      "http://example.com/a?b=c#d",
      "a  b",
      "a\tb",
      "a \\ b",
      "very long "
      "key with spaces",
      "\\",
      "'",
      "\"",
      "#",
      "&",
      "*",
      "!",
      "%",
      "@",
      "`",
      "|",
      ">",
      "[",
      "{",
      ":",
      ": ",
      "a,b",
      "ends with colon:",
      "null ",
      " null",
      "-1.5e+3",
      "+.5",
      "..x",
      ".x",
      "0",
      "00",
      "-0",
  };
  json_t *v, *arr = json_array(), *obj = json_object();
  char big[128];
  size_t i;

  (void)state;
  assert_non_null(arr);
  assert_non_null(obj);
  for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
    v = json_string(strings[i]);
    assert_non_null(v);
    round_trip(v);
    assert_int_equal(json_array_append(arr, v), 0);
    /* The same strings as keys. */
    assert_int_equal(json_object_set_new(obj, strings[i], v), 0);
  }
  round_trip(arr);
  round_trip(obj);
  json_decref(arr);
  json_decref(obj);

  /* Integers, reals, nulls, booleans. */
  v = json_pack("[I, I, I, I, f, f, f, f, f, f, n, b, b]", (json_int_t)0, (json_int_t)LLONG_MAX,
                (json_int_t)LLONG_MIN, (json_int_t)-42, 0.0, -0.0, 1.0, 3.14159, 1e-300, 6.02e23, 1,
                0);
  assert_non_null(v);
  round_trip(v);
  json_decref(v);
  v = json_pack("[n, b, b, f, f]", 1, 0, 1e15, -123456789012345678.0);
  assert_non_null(v);
  round_trip(v);
  json_decref(v);

  /* A key longer than libyaml's 128-byte simple key. */
  memset(big, 'k', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  v = json_pack("{s: s, s: {s: [s]}}", big, "v", "outer", big, "x: y");
  assert_non_null(v);
  round_trip(v);
  json_decref(v);
}

static void test_append_and_invalid(void **state) {
  json_t *a = json_pack("{s: i}", "a", 1), *b = json_pack("[s]", "x"), *docs, *v, *inner;
  char *buf = NULL, *before;
  size_t len = 0, i;

  (void)state;
  assert_int_equal(wr_json_to_yaml(a, &buf, &len), 0);
  assert_int_equal(wr_json_to_yaml(b, &buf, &len), 0);
  assert_string_equal(buf, "---\na: 1\n---\n- x\n");
  assert_int_equal(len, strlen(buf));
  docs = load(buf);
  assert_int_equal(json_array_size(docs), 2);
  assert_true(json_equal(json_array_get(docs, 0), a));
  assert_true(json_equal(json_array_get(docs, 1), b));
  json_decref(docs);

  /* Failures leave the buffer alone. */
  before = strdup(buf);
  assert_non_null(before);
  v = json_pack("{s: s#}", "nul", "a\0b", (size_t)3);
  assert_non_null(v);
  assert_int_equal(wr_json_to_yaml(v, &buf, &len), WR_ERR_INVAL);
  json_decref(v);
  v = json_object();
  assert_int_equal(json_object_setn_new(v, "k\0x", 3, json_null()), 0);
  assert_int_equal(wr_json_to_yaml(v, &buf, &len), WR_ERR_INVAL);
  json_decref(v);
  assert_int_equal(wr_json_to_yaml(NULL, &buf, &len), WR_ERR_INVAL);
  /* Nesting: WR_CONF_DEPTH_MAX collections are written, one more is not. */
  v = json_array();
  for (i = 1; i < WR_CONF_DEPTH_MAX; i++) {
    inner = json_array();
    assert_int_equal(json_array_append_new(inner, v), 0);
    v = inner;
  }
  round_trip(v);
  inner = json_array();
  assert_int_equal(json_array_append_new(inner, v), 0);
  assert_int_equal(wr_json_to_yaml(inner, &buf, &len), WR_ERR_INVAL);
  json_decref(inner);
  assert_string_equal(buf, before);
  assert_int_equal(len, strlen(before));
  free(before);
  free(buf);
  json_decref(a);
  json_decref(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_core_schema),
      cmocka_unit_test(test_quoted_plain),
      cmocka_unit_test(test_nested),
      cmocka_unit_test(test_documents),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_file),
      cmocka_unit_test(test_write_style),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_append_and_invalid),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
