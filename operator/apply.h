/*
 * apply.h - make an object the operator owns look like its desired state,
 * with as few requests as possible.
 *
 * The desired object carries, in an annotation, a digest of itself; the
 * cached object is compared by that digest only. The API server defaults
 * fields of what it stores (weights, groups, match defaults), so comparing
 * contents would see a difference forever and write forever; comparing
 * digests writes exactly when the desired state changed (or when the
 * object was edited behind the operator's back so that its digest went).
 * Writes are merge patches of metadata + spec: lists are replaced whole,
 * so the spec ends up exactly as desired, and fields others add to
 * metadata (annotations, finalizers) are kept.
 */
#ifndef OPERATOR_APPLY_H
#define OPERATOR_APPLY_H

#include "operator.h"

enum op_apply_result {
  OP_APPLY_PENDING = 0,   /* a request is on its way: |cb| will run */
  OP_APPLY_UNCHANGED = 1, /* already as desired: nothing sent, no callback */
  OP_APPLY_FOREIGN = 2    /* an object of that name exists that |owner| does not own */
};

/* op_apply_cb: rv 0 when written; WR_ERR_REFUSED with |st|; or a transport error. */
typedef void (*op_apply_cb)(void *ud, int rv, const struct wr_kstatus *st);

/* op_apply creates or patches |desired| (apiVersion, kind, metadata.name,
 * metadata.namespace, spec; its annotations get the digest). |inf| caches
 * the existing objects of |res| the operator manages (label selected).
 * |owner| ("ns/name" of an HTTPProxy) must be the one the existing object's
 * labels name; NULL: no check. |create_only|: never patch an existing
 * object (Leases, whose spec the agent writes). Returns an op_apply_result
 * or a negative error (nothing sent). */
int op_apply(struct op_ctx *x, const struct wr_kres *res, wr_informer *inf, json_t *desired,
             const char *owner, bool create_only, op_apply_cb cb, void *ud);

/* op_owner writes "ns/name" of the HTTPProxy whose labels |obj| carries
 * into |buf|; false when it has none. */
bool op_owner(const json_t *obj, char *buf, size_t len);

/* op_delete deletes |ns|/|name| of |res| when the cache has it and, unless
 * |owner| is NULL, its labels name |owner| (precondition on its uid).
 * Returns OP_APPLY_PENDING, OP_APPLY_UNCHANGED (nothing to delete) or a
 * negative error. */
int op_delete(struct op_ctx *x, const struct wr_kres *res, wr_informer *inf, const char *ns,
              const char *name, const char *owner, op_apply_cb cb, void *ud);

#endif
