/*
 * render.c - offline translation of manifests (render.h).
 */
#include "render.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "warren/err.h"
#include "warren/log.h"
#include "warren/yamljson.h"

#define FILE_MAX (16u << 20)

static const char *meta(const json_t *o, const char *k) {
  return json_string_value(json_object_get(json_object_get(o, "metadata"), k));
}

struct input {
  json_t *connectors;   /* "ns/name" -> Connector */
  json_t *owners;       /* "ns/host" -> "ns/name" of the proxy that registers it */
  const char *ns, *key; /* the proxy being translated */
  bool offline;
};

/* claim applies the operator's rule to the files' proxies: a tunnel host
 * shared by several is registered by the smallest "ns/name". */
static bool claim(void *ud, const char *listener, const char *host) {
  struct input *in = ud;
  char d[600];
  const char *owner;

  (void)listener;
  snprintf(d, sizeof(d), "%s/%s", in->ns, host);
  owner = json_string_value(json_object_get(in->owners, d));
  return owner == NULL || strcmp(owner, in->key) == 0;
}

static void add_owners(struct input *in, const json_t *proxy) {
  json_t *domains = json_array(), *v;
  char d[600], key[600];
  size_t i;
  const char *was;

  if (domains == NULL || op_proxy_domains(proxy, domains) != 0)
    goto out;
  snprintf(key, sizeof(key), "%s/%s", meta(proxy, "namespace"), meta(proxy, "name"));
  json_array_foreach(domains, i, v) {
    snprintf(d, sizeof(d), "%s/%s", meta(proxy, "namespace"), json_string_value(v));
    was = json_string_value(json_object_get(in->owners, d));
    if (was == NULL || strcmp(key, was) < 0)
      json_object_set_new(in->owners, d, json_string(key));
  }
out:
  json_decref(domains);
}

static void lookup(void *ud, const char *ns, const char *name, struct op_conn_info *out) {
  struct input *in = ud;
  char key[600];
  const char *id;
  json_t *c;

  memset(out, 0, sizeof(*out));
  snprintf(key, sizeof(key), "%s/%s", ns, name);
  c = json_object_get(in->connectors, key);
  out->state = c == NULL ? OP_CONN_MISSING : OP_CONN_NOT_READY;
  id = json_string_value(json_object_get(
      json_object_get(json_object_get(json_object_get(c, "status"), "connectionDetails"),
                      "publicKey"),
      "id"));
  if (c == NULL || in->offline || id == NULL || strlen(id) != 64 ||
      strspn(id, "0123456789abcdefABCDEF") != 64)
    return;
  for (size_t i = 0; i < 64; i++)
    out->endpoint_id[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] + 32 : id[i]);
  out->state = OP_CONN_READY;
}

/* A document's namespace defaults to "default", as kubectl's would. */
static void default_ns(json_t *doc) {
  json_t *m = json_object_get(doc, "metadata");

  if (json_is_object(m) && json_object_get(m, "namespace") == NULL)
    json_object_set_new(m, "namespace", json_string("default"));
}

static int emit(FILE *out, const json_t *doc) {
  char *buf = NULL;
  size_t len = 0;
  int rv = wr_json_to_yaml(doc, &buf, &len);

  if (rv == 0 && fwrite(buf, 1, len, out) != len)
    rv = -EIO;
  free(buf);
  return rv;
}

int op_render(const struct op_gateway *gw, char *const *files, size_t nfiles, bool offline,
              FILE *out) {
  struct input in = {json_object(), json_object(), NULL, NULL, offline};
  json_t *proxies = json_array(), *all = json_array(), *docs, *d;
  char err[512], key[600];
  size_t f, i;

  int rv = 0, bad = 0;

  if (in.connectors == NULL || in.owners == NULL || proxies == NULL || all == NULL) {
    rv = WR_ERR_NOMEM;
    goto done;
  }
  for (f = 0; f < nfiles; f++) {
    rv = wr_yaml_file_to_json(files[f], FILE_MAX, &docs, err, sizeof(err));
    if (rv < 0) {
      log_warnx("%s", err);
      goto done;
    }
    json_array_foreach(docs, i, d) {
      const char *kind = json_string_value(json_object_get(d, "kind"));
      default_ns(d);
      if (kind != NULL && strcmp(kind, "Connector") == 0 && meta(d, "name") != NULL) {
        snprintf(key, sizeof(key), "%s/%s", meta(d, "namespace"), meta(d, "name"));
        json_object_set(in.connectors, key, d);
      } else if (kind != NULL && strcmp(kind, "HTTPProxy") == 0) {
        json_array_append_new(proxies, json_pack("[s, O]", files[f], d));
        if (meta(d, "name") != NULL && meta(d, "namespace") != NULL)
          add_owners(&in, d);
      }
    }
    json_decref(docs);
  }
  json_array_foreach(proxies, i, d) {
    const json_t *p = json_array_get(d, 1);
    struct op_translation t;

    /* render sees the files alone: no owner UIDs */
    snprintf(key, sizeof(key), "%s/%s", meta(p, "namespace"), meta(p, "name"));
    in.ns = meta(p, "namespace");
    in.key = key;
    rv = op_translate(p, gw, lookup, in.ns != NULL ? claim : NULL, &in, &t);
    if (rv < 0) {
      op_translation_free(&t);
      goto done;
    }
    if (t.verdict != OP_OK) {
      fprintf(stderr, "%s: HTTPProxy %s/%s: %s: %s\n", json_string_value(json_array_get(d, 0)),
              meta(p, "namespace") ? meta(p, "namespace") : "?",
              meta(p, "name") ? meta(p, "name") : "?", t.reason, t.message);
      bad = 1;
    } else {
      rv = emit(out, t.route);
      if (rv == 0 && t.policy != NULL)
        rv = emit(out, t.policy);
    }
    op_translation_free(&t);
    if (rv < 0)
      goto done;
  }
  rv = bad;
done:
  json_decref(in.connectors);
  json_decref(in.owners);
  json_decref(proxies);
  json_decref(all);
  return rv;
}
