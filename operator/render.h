/*
 * render.h - `warren-operator render`: HTTPProxy and Connector manifests in,
 * the HTTPRoute and EnvoyPatchPolicy the operator would write out, as YAML,
 * without a cluster (GitOps review, the standalone demo, golden tests).
 */
#ifndef OPERATOR_RENDER_H
#define OPERATOR_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "translate.h"

/* op_render reads |files| (YAML streams; other kinds are ignored), and
 * writes to |out| two documents per valid HTTPProxy (one without connector
 * rules). Connectors with a status.connectionDetails.publicKey.id are taken
 * as Ready unless |offline|; a proxy that cannot be translated is reported
 * on stderr as "file: HTTPProxy ns/name: reason: message". Returns 0 when
 * every proxy rendered, 1 when some did not, or a negative error (a file
 * could not be read or parsed, logged). */
int op_render(const struct op_gateway *gw, char *const *files, size_t nfiles, bool offline,
              FILE *out);

#endif
