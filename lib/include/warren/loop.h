/*
 * loop.h - glue between warren and the libuv loop every binary runs.
 *
 * Signal handlers only set flags (libuv delivers signals on the loop), and
 * shutdown closes every handle so that leak checkers see a clean exit.
 */
#ifndef WARREN_LOOP_H
#define WARREN_LOOP_H

#include <stdint.h>
#include <uv.h>

/* wr_now returns monotonic time in nanoseconds (the clock ngtcp2 is fed). */
uint64_t wr_now(void);

typedef void (*wr_stop_cb)(void *arg);

/* wr_loop_signals arranges for |cb| to run once on SIGINT or SIGTERM and
 * ignores SIGPIPE. The two signal handles are unref'd so they never keep the
 * loop alive. Returns 0 or -errno. */
int wr_loop_signals(uv_loop_t *loop, wr_stop_cb cb, void *arg);

/* wr_loop_close_all closes every handle still open on |loop| and runs it
 * until they are gone. Call after the owners have released their state. */
void wr_loop_close_all(uv_loop_t *loop);

#endif
