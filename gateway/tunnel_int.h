/* tunnel_int.h - what pool.c calls back in tunnel.c (private to the gateway). */
#ifndef WARREN_GW_TUNNEL_INT_H
#define WARREN_GW_TUNNEL_INT_H

#include "tunnel.h"
#include "warren/quic.h"

/* gw_tunnel_on_stream hands |t| its stream on a ready connection. */
void gw_tunnel_on_stream(gw_tunnel *t, wr_qstream *s);
/* gw_tunnel_on_fail reports that no stream can be had (node unreachable,
 * handshake refused). |err| is a WR_ERR_* code. */
void gw_tunnel_on_fail(gw_tunnel *t, int err);

#endif
