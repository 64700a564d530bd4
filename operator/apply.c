/*
 * apply.c - create-or-patch by digest (apply.h).
 */
#include "apply.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "warren/err.h"
#include "warren/log.h"

struct call {
  op_apply_cb cb;
  void *ud;
};

void op_hash_json(const json_t *v, char out[33]) {
  unsigned char h[16];
  char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

  crypto_generichash(h, sizeof(h), (const unsigned char *)(s ? s : ""), s ? strlen(s) : 0, NULL, 0);
  free(s);
  sodium_bin2hex(out, 33, h, sizeof(h));
}

bool op_owner(const json_t *obj, char *buf, size_t len) {
  json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
  const char *ns = json_string_value(json_object_get(labels, OP_LABEL_PROXY_NS));
  const char *name = json_string_value(json_object_get(labels, OP_LABEL_PROXY));
  int n;

  if (ns == NULL || name == NULL)
    return false;
  n = snprintf(buf, len, "%s/%s", ns, name);
  return n > 0 && (size_t)n < len;
}

static bool owned_by(const json_t *obj, const char *owner) {
  char have[512];

  return owner == NULL || (op_owner(obj, have, sizeof(have)) && strcmp(have, owner) == 0);
}

static void on_done(void *ud, int rv, json_t *obj, const struct wr_kstatus *st) {
  struct call *c = ud;

  (void)obj;
  c->cb(c->ud, rv, st);
  free(c);
}

static int send_write(struct op_ctx *x, const char *method, const char *path, json_t *body,
                      op_apply_cb cb, void *ud, const char *uid) {
  struct call *c = malloc(sizeof(*c));
  int rv;

  if (c == NULL)
    return WR_ERR_NOMEM;
  c->cb = cb;
  c->ud = ud;
  if (strcmp(method, "POST") == 0)
    rv = wr_kclient_create(x->kc, path, body, on_done, c, NULL);
  else if (strcmp(method, "PATCH") == 0)
    rv = wr_kclient_patch(x->kc, path, WR_KPATCH_MERGE, body, NULL, 0, on_done, c, NULL);
  else
    rv = wr_kclient_delete(x->kc, path, uid, NULL, "Background", on_done, c, NULL);
  if (rv < 0) {
    free(c);
    return rv;
  }
  x->writes++;
  return OP_APPLY_PENDING;
}

int op_apply(struct op_ctx *x, const struct wr_kres *res, wr_informer *inf, json_t *desired,
             const char *owner, bool create_only, op_apply_cb cb, void *ud) {
  json_t *meta = json_object_get(desired, "metadata"), *existing, *annots, *patch;
  const char *ns = json_string_value(json_object_get(meta, "namespace"));
  const char *name = json_string_value(json_object_get(meta, "name"));
  const char *have;
  char hash[33], path[WR_KCLIENT_PATH_MAX], key[600];
  bool foreign, same;
  int rv;

  if (name == NULL)
    return WR_ERR_INVAL;
  /* the digest covers everything but itself */
  annots = json_object_get(meta, "annotations");
  if (annots != NULL)
    json_object_del(annots, OP_ANNOT_HASH);
  op_hash_json(desired, hash);
  if (annots == NULL) {
    annots = json_object();
    if (annots == NULL || json_object_set_new(meta, "annotations", annots) != 0)
      return WR_ERR_NOMEM;
  }
  if (json_object_set_new(annots, OP_ANNOT_HASH, json_string(hash)) != 0)
    return WR_ERR_NOMEM;
  snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name);
  existing = wr_informer_ref(inf, ns ? key : name);
  if (existing == NULL) {
    rv = wr_kpath(path, sizeof(path), res, ns, NULL, NULL);
    return rv < 0 ? rv : send_write(x, "POST", path, desired, cb, ud, NULL);
  }
  foreign = !owned_by(existing, owner);
  have = json_string_value(json_object_get(
      json_object_get(json_object_get(existing, "metadata"), "annotations"), OP_ANNOT_HASH));
  same = have != NULL && strcmp(have, hash) == 0;
  json_decref(existing);
  if (foreign)
    return OP_APPLY_FOREIGN;
  if (create_only || same) {
    x->skipped++;
    return OP_APPLY_UNCHANGED;
  }
  rv = wr_kpath(path, sizeof(path), res, ns, name, NULL);
  if (rv < 0)
    return rv;
  patch =
      json_pack("{s:{s:O, s:O, s:O*}, s:O}", "metadata", "labels", json_object_get(meta, "labels"),
                "annotations", annots, "ownerReferences", json_object_get(meta, "ownerReferences"),
                "spec", json_object_get(desired, "spec"));
  if (patch == NULL)
    return WR_ERR_NOMEM;
  rv = send_write(x, "PATCH", path, patch, cb, ud, NULL);
  json_decref(patch);
  return rv;
}

int op_delete(struct op_ctx *x, const struct wr_kres *res, wr_informer *inf, const char *ns,
              const char *name, const char *owner, op_apply_cb cb, void *ud) {
  json_t *existing = wr_informer_get(inf, ns, name);
  char path[WR_KCLIENT_PATH_MAX];
  int rv;

  if (existing == NULL || !owned_by(existing, owner))
    return OP_APPLY_UNCHANGED;
  rv = wr_kpath(path, sizeof(path), res, ns, name, NULL);
  if (rv < 0)
    return rv;
  return send_write(
      x, "DELETE", path, NULL, cb, ud,
      json_string_value(json_object_get(json_object_get(existing, "metadata"), "uid")));
}
