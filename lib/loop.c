/* loop.c - libuv glue: clock, signals, teardown. */
#include <signal.h>
#include <stdlib.h>

#include "warren/err.h"
#include "warren/log.h"
#include "warren/loop.h"

struct wr_sigctx {
  uv_signal_t sigint;
  uv_signal_t sigterm;
  wr_stop_cb cb;
  void *arg;
  int fired;
  int closed; /* handles closed so far; the context goes with the second */
};

uint64_t wr_now(void) {
  return uv_hrtime();
}

static void on_signal(uv_signal_t *h, int signum) {
  struct wr_sigctx *s = h->data;

  log_info("received signal %d, shutting down", signum);
  if (s->fired++ == 0)
    s->cb(s->arg);
  else
    exit(1); /* A second signal while shutting down: leave now. */
}

static void on_sig_closed(uv_handle_t *h) {
  struct wr_sigctx *s = h->data;

  if (++s->closed == 2)
    free(s);
}

int wr_loop_signals(uv_loop_t *loop, wr_stop_cb cb, void *arg) {
  struct wr_sigctx *s = calloc(1, sizeof(*s));
  int rv;

  if (s == NULL)
    return WR_ERR_NOMEM;
  signal(SIGPIPE, SIG_IGN);
  s->cb = cb;
  s->arg = arg;
  uv_signal_init(loop, &s->sigint);
  uv_signal_init(loop, &s->sigterm);
  s->sigint.data = s->sigterm.data = s;
  rv = uv_signal_start(&s->sigint, on_signal, SIGINT);
  if (rv == 0)
    rv = uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&s->sigint);
  uv_unref((uv_handle_t *)&s->sigterm);
  /* The context is freed when wr_loop_close_all has closed both handles. */
  return rv;
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (uv_is_closing(h))
    return;
  if (h->type == UV_SIGNAL)
    uv_close(h, on_sig_closed);
  else
    uv_close(h, NULL);
}

void wr_loop_close_all(uv_loop_t *loop) {
  uv_walk(loop, close_walk, NULL);
  while (uv_run(loop, UV_RUN_DEFAULT) != 0)
    ;
}
