/*
 * log.h - logging with the err(3) split of OpenBSD daemons.
 *
 * log_warn() appends strerror(errno); log_warnx() does not. fatal()/fatalx()
 * log and exit(1); they are only for startup failures and broken invariants.
 * log_trace(cat, ...) prints only when category |cat| was enabled at runtime
 * (--trace quic,h2 or WARREN_TRACE). The log sink is the one global allowed.
 * Secrets are never passed to these functions.
 */
#ifndef WARREN_LOG_H
#define WARREN_LOG_H

#include <stdarg.h>

enum wr_log_level { WR_LOG_ERROR, WR_LOG_WARN, WR_LOG_INFO, WR_LOG_DEBUG };

enum wr_trace {
  WR_TRACE_QUIC = 1u << 0,
  WR_TRACE_PATH = 1u << 1,
  WR_TRACE_H2 = 1u << 2,
  WR_TRACE_HTTP = 1u << 3,
  WR_TRACE_TUNNEL = 1u << 4,
  WR_TRACE_POOL = 1u << 5,
  WR_TRACE_CONF = 1u << 6,
  WR_TRACE_KUBE = 1u << 7,
  WR_TRACE_ALL = 0xffffffffu
};

#define WR_PRINTF(a, b) __attribute__((__format__(__printf__, a, b)))

/* log_init sets the program name and level; messages go to stderr. */
void log_init(const char *progname, enum wr_log_level level);
/* log_set_level changes the level at runtime. */
void log_set_level(enum wr_log_level level);
/* log_set_trace enables trace categories from a comma list ("quic,h2", "all").
 * Returns 0, or WR_ERR_INVAL naming an unknown category in the log. */
int log_set_trace(const char *list);
/* log_trace_enabled tells whether category |cat| is on (to skip costly formatting). */
int log_trace_enabled(unsigned cat);

void log_warn(const char *fmt, ...) WR_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) WR_PRINTF(1, 2);
void log_info(const char *fmt, ...) WR_PRINTF(1, 2);
void log_debug(const char *fmt, ...) WR_PRINTF(1, 2);
void log_trace_(unsigned cat, const char *fmt, ...) WR_PRINTF(2, 3);
_Noreturn void fatal(const char *fmt, ...) WR_PRINTF(1, 2);
_Noreturn void fatalx(const char *fmt, ...) WR_PRINTF(1, 2);

#define log_trace(cat, ...)                                                                        \
  do {                                                                                             \
    if (log_trace_enabled(cat))                                                                    \
      log_trace_((cat), __VA_ARGS__);                                                              \
  } while (0)

#endif
