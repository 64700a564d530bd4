/* log.c - the log sink: stderr, with level, program name and monotonic-free wall time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "warren/err.h"
#include "warren/log.h"

/* The log sink: the only mutable globals besides signal flags. */
static const char *log_progname = "warren";
static enum wr_log_level log_level = WR_LOG_INFO;
static unsigned log_traces;

static const struct {
  const char *name;
  unsigned bit;
} trace_names[] = {
    {"quic", WR_TRACE_QUIC}, {"path", WR_TRACE_PATH},     {"h2", WR_TRACE_H2},
    {"http", WR_TRACE_HTTP}, {"tunnel", WR_TRACE_TUNNEL}, {"pool", WR_TRACE_POOL},
    {"conf", WR_TRACE_CONF}, {"kube", WR_TRACE_KUBE},     {"all", WR_TRACE_ALL},
};

void log_init(const char *progname, enum wr_log_level level) {
  const char *env;

  if (progname != NULL)
    log_progname = progname;
  log_level = level;
  env = getenv("WARREN_TRACE");
  if (env != NULL && *env != '\0')
    (void)log_set_trace(env);
}

void log_set_level(enum wr_log_level level) {
  log_level = level;
}

int log_set_trace(const char *list) {
  const char *p = list;
  unsigned bits = 0;

  while (*p != '\0') {
    size_t n = strcspn(p, ",");
    size_t i;
    int found = 0;

    for (i = 0; i < sizeof(trace_names) / sizeof(trace_names[0]); i++) {
      if (strlen(trace_names[i].name) == n && strncmp(trace_names[i].name, p, n) == 0) {
        bits |= trace_names[i].bit;
        found = 1;
      }
    }
    if (!found && n > 0) {
      log_warnx("unknown trace category '%.*s'", (int)n, p);
      return WR_ERR_INVAL;
    }
    p += n;
    if (*p == ',')
      p++;
  }
  log_traces = bits;
  if (bits != 0 && log_level < WR_LOG_DEBUG)
    log_level = WR_LOG_DEBUG;
  return 0;
}

int log_trace_enabled(unsigned cat) {
  return (log_traces & cat) != 0;
}

static void vlog(const char *tag, const char *fmt, va_list ap, const char *suffix)
    __attribute__((__format__(__printf__, 2, 0)));
static void vlog(const char *tag, const char *fmt, va_list ap, const char *suffix) {
  char msg[1024];
  char ts[32];
  struct timespec now;
  struct tm tm;

  (void)vsnprintf(msg, sizeof(msg), fmt, ap);
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
  if (suffix != NULL)
    fprintf(stderr, "%s.%03ld %s %s: %s: %s\n", ts, now.tv_nsec / 1000000, log_progname, tag, msg,
            suffix);
  else
    fprintf(stderr, "%s.%03ld %s %s: %s\n", ts, now.tv_nsec / 1000000, log_progname, tag, msg);
}

void log_warn(const char *fmt, ...) {
  va_list ap;
  int saved = errno;

  va_start(ap, fmt);
  vlog("warn", fmt, ap, strerror(saved));
  va_end(ap);
  errno = saved;
}

void log_warnx(const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vlog("warn", fmt, ap, NULL);
  va_end(ap);
}

void log_info(const char *fmt, ...) {
  va_list ap;

  if (log_level < WR_LOG_INFO)
    return;
  va_start(ap, fmt);
  vlog("info", fmt, ap, NULL);
  va_end(ap);
}

void log_debug(const char *fmt, ...) {
  va_list ap;

  if (log_level < WR_LOG_DEBUG)
    return;
  va_start(ap, fmt);
  vlog("debug", fmt, ap, NULL);
  va_end(ap);
}

void log_trace_(unsigned cat, const char *fmt, ...) {
  va_list ap;

  (void)cat;
  va_start(ap, fmt);
  vlog("trace", fmt, ap, NULL);
  va_end(ap);
}

void fatal(const char *fmt, ...) {
  va_list ap;
  int saved = errno;

  va_start(ap, fmt);
  vlog("fatal", fmt, ap, strerror(saved));
  va_end(ap);
  exit(1);
}

void fatalx(const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vlog("fatal", fmt, ap, NULL);
  va_end(ap);
  exit(1);
}
