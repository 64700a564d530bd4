/*
 * serve.h - the agent's data plane: accept QUIC connections from trusted
 * gateways, and for each stream forward to the requested target if, and only
 * if, it is one the agent exposes. Anything else is refused with a reason
 * and logged. Bytes are piped both ways with backpressure: the agent holds at
 * most one stream window of data per direction per stream.
 */
#ifndef WARREN_HB_SERVE_H
#define WARREN_HB_SERVE_H

#include <stddef.h>
#include <uv.h>

#include "reqlog.h"
#include "warren/identity.h"

#define HB_MAX_EXPOSE 64
#define HB_MAX_TRUST 64

struct hb_serve;

struct hb_serve_config {
  uv_loop_t *loop;
  const wr_identity *id;    /* borrowed */
  const char *listen;       /* "ip:port" for QUIC (UDP) */
  const wr_pubkey *trusted; /* gateway keys accepted (borrowed) */
  size_t ntrusted;
  const char *const *expose; /* "host:port" targets (borrowed) */
  size_t nexpose;
  uint64_t connect_timeout_ms; /* 0: 10000 */
  uint64_t idle_timeout_ms;    /* 0: 30000 */
  /* on_request, when set, is told of each HTTP/1.x request (and each
   * non-HTTP stream) the tunnels carry, read from the forwarded bytes by
   * reqlog.h; forwarding never depends on it. */
  hb_reqlog_cb on_request;
  void *request_ud;
};

/* hb_serve_new starts listening. Returns 0, -errno or WR_ERR_*. */
int hb_serve_new(struct hb_serve **out, const struct hb_serve_config *cfg);
/* hb_serve_del closes every connection and stream. */
void hb_serve_del(struct hb_serve *sv);
/* hb_expose_normalize turns "3000" into "127.0.0.1:3000" and lowercases a
 * host. Returns 0 or WR_ERR_INVAL. */
int hb_expose_normalize(const char *in, char *out, size_t outlen);

#endif
