/*
 * h2server.h - an nghttp2 server session on a client connection (gw_conn).
 *
 * This is the glue the CONNECT listener and the edge's HTTP/2 handler share:
 * it feeds everything read from the client to nghttp2, pulls frames out of
 * the session while the connection's output queue is below a high-water
 * mark, stops reading from a client whose output is backed up, and closes
 * the connection when the session is done or the peer broke the protocol
 * (a protocol error only ever ends that one connection).
 *
 * The owner installs its own nghttp2 callbacks with |ud| as user_data and
 * calls gw_h2s_flush() whenever it changed the session outside an nghttp2
 * callback (submitted a response, resumed data, consumed a window); the
 * output is produced from the loop, so that tunnel callbacks never re-enter
 * nghttp2. When the connection closes, on_teardown(ud) runs once: the owner
 * releases its streams and itself; the session and the gw_h2s are freed
 * right after.
 */
#ifndef WARREN_GW_H2SERVER_H
#define WARREN_GW_H2SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "conn.h"

#define GW_H2S_OUT_HIGH (256u << 10) /* stop pulling frames / reading above this */

struct gw_h2s;

struct gw_h2s_config {
  const nghttp2_settings_entry *settings;
  size_t nsettings;
  int32_t conn_window; /* connection receive window, >= 65535 */
  int manual_window;   /* NGHTTP2_OPT_NO_AUTO_WINDOW_UPDATE */
};

/* gw_h2s_new takes over |c| and starts a server session with |cbs|;
 * |pre| holds bytes already read from the client (the preface). Returns 0,
 * WR_ERR_NOMEM or WR_ERR_PROTO; on failure |c| is closed. */
int gw_h2s_new(struct gw_h2s **out, struct gw_conn *c, const struct gw_h2s_config *cfg,
               const nghttp2_session_callbacks *cbs, void (*on_teardown)(void *ud), void *ud,
               const uint8_t *pre, size_t prelen);
nghttp2_session *gw_h2s_session(struct gw_h2s *h);
struct gw_conn *gw_h2s_conn(struct gw_h2s *h);
/* gw_h2s_feed hands bytes read from the client to the session, as if just read. */
void gw_h2s_feed(struct gw_h2s *h, const uint8_t *data, size_t len);
/* gw_h2s_flush schedules sending whatever the session has queued. */
void gw_h2s_flush(struct gw_h2s *h);

#endif
