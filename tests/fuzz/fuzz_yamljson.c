/*
 * fuzz_yamljson.c - libFuzzer target for YAML <-> JSON (lib/yamljson.c on lib/conf.c).
 *
 * Each input is read as a YAML stream. A failure must use a documented code,
 * leave the output untouched and explain itself. On success every document is
 * written back with wr_json_to_yaml(), alone and appended to one stream, and
 * both must read back equal (json_equal); any difference aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warren/err.h"
#include "warren/yamljson.h"

#define FUZZ_MAXBYTES (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* reread reads back what wr_json_to_yaml wrote, which may be longer than the input. */
static json_t *reread(const char *buf, size_t len) {
  char err[512] = "";
  json_t *docs = NULL;

  if (wr_yaml_to_json("out.yaml", buf, len, SIZE_MAX, &docs, err, sizeof(err)) != 0) {
    fprintf(stderr, "written YAML does not read back: %s\n%.*s\n", err, (int)len, buf);
    abort();
  }
  return docs;
}

static void check_equal(const json_t *want, const json_t *got, const char *yaml) {
  if (!json_equal(want, got)) {
    fprintf(stderr, "round trip differs:\n%s\n", yaml);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[512] = "", *one, *all = NULL;
  json_t *docs = (json_t *)err, *back;
  size_t i, onelen, alllen = 0;
  int rv;

  rv = wr_yaml_to_json("fuzz.yaml", data, size, FUZZ_MAXBYTES, &docs, err, sizeof(err));
  if (rv != 0) {
    if (rv != WR_ERR_CONFIG && rv != WR_ERR_TOOBIG && rv != WR_ERR_NOMEM)
      abort();
    if (err[0] == '\0' || docs != (json_t *)err)
      abort();
    return 0;
  }
  if (!json_is_array(docs))
    abort();
  for (i = 0; i < json_array_size(docs); i++) {
    const json_t *doc = json_array_get(docs, i);

    one = NULL;
    onelen = 0;
    if (wr_json_to_yaml(doc, &one, &onelen) != 0 || wr_json_to_yaml(doc, &all, &alllen) != 0)
      abort();
    if (onelen < 4 || memcmp(one, "---\n", 4) != 0 || strlen(one) != onelen)
      abort();
    back = reread(one, onelen);
    if (json_array_size(back) != 1)
      abort();
    check_equal(doc, json_array_get(back, 0), one);
    json_decref(back);
    free(one);
  }
  if (all != NULL) {
    back = reread(all, alllen);
    check_equal(docs, back, all);
    json_decref(back);
  }
  free(all);
  json_decref(docs);
  return 0;
}
