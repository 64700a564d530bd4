/*
 * yamljson.h - YAML streams to jansson values and back, for Kubernetes
 * manifests (the operator's render mode reads HTTPProxy/Connector YAML and
 * prints HTTPRoute/EnvoyPatchPolicy YAML).
 *
 * Reading goes through conf.h, so it inherits its defences: the input is
 * capped, anchors, aliases and explicit tags are refused, nesting and node
 * counts are capped, keys must be unique scalars, and errors are positioned
 * ("<name>:<line>: <key path>: <what>").
 *
 * Plain scalars are typed by the YAML 1.2 core schema (as kubectl's reader
 * mostly does); quoted and block scalars are always strings. JSON has no
 * infinities or NaNs, so .inf/.nan and floats that overflow a double stay
 * strings, as do integers outside int64.
 *
 * Writing quotes every string that a YAML 1.2 core-schema reader, or a YAML
 * 1.1 one (go-yaml's "yes", "on", dates...), could read as another type, so
 * wr_yaml_to_json(wr_json_to_yaml(v)) == v for every value it accepts.
 */
#ifndef WARREN_YAMLJSON_H
#define WARREN_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

/* wr_yaml_to_json loads a YAML stream (|name| used in messages) and returns in *docs a JSON array
 * with one value per non-empty document. Plain scalars follow the YAML 1.2 core schema: null/~/""
 * -> null, true/false (and True/TRUE/False/FALSE) -> boolean, decimal integers (optionally signed;
 * also 0x.. and 0o.. forms) -> integer (out of int64 range -> the string kept), floats
 * ([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, .inf, .nan) -> real (the string kept for
 * .inf, .nan and overflows, which JSON cannot hold); every quoted or block scalar is a string.
 * Mapping keys must be scalars and become strings (their text). A document is empty when it holds
 * nothing but comments; "--- null" is a non-empty document whose value is null. On failure *docs
 * is untouched. Returns 0, WR_ERR_CONFIG with a message "<name>:<line>: <key path>: <what>" in
 * |err| (YAML syntax error, duplicate key, non-scalar key, NUL byte in a string ...),
 * WR_ERR_TOOBIG (input over |maxbytes|), WR_ERR_NOMEM. */
int wr_yaml_to_json(const char *name, const void *data, size_t len, size_t maxbytes, json_t **docs,
                    char *err, size_t errlen);
/* wr_yaml_file_to_json: the same for a file path (read with the same caps as wr_conf_load_file);
 * also -errno when the file cannot be read. */
int wr_yaml_file_to_json(const char *path, size_t maxbytes, json_t **docs, char *err,
                         size_t errlen);
/* wr_json_to_yaml appends |doc| as one YAML document, starting with "---\n", to the malloc'd buffer
 * *buf, *len (realloc'd, kept NUL-terminated after *len; *buf may start NULL). Object keys in
 * jansson's insertion order; block style ({} and [] for empty collections); strings that would
 * read back as another type, or that plain style cannot hold, are double-quoted; reals are printed
 * in the fewest digits that read back equal, whole numbers with ".0". On failure *buf and *len
 * are untouched. Returns 0, WR_ERR_NOMEM, or WR_ERR_INVAL for what wr_yaml_to_json would not read
 * back: a string or key with a NUL byte or invalid UTF-8, nesting deeper than WR_CONF_DEPTH_MAX,
 * more than WR_CONF_NODES_MAX nodes, a NULL |doc|. */
int wr_json_to_yaml(const json_t *doc, char **buf, size_t *len);

#endif
