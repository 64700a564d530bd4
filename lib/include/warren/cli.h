/* cli.h - what every warren binary's command line shares. */
#ifndef WARREN_CLI_H
#define WARREN_CLI_H

#include <stddef.h>

#include "warren/identity.h"
#include "warren/log.h"

/* The options every binary shares: --identity, --log-level, --trace (and
 * --help, which each binary answers with its own usage). */
struct wr_cli_common {
  char identity[4096];
  enum wr_log_level level;
  const char *trace;
};

#define WR_CLI_COMMON_OPTSTRING "i:L:T:h"
/* For a getopt_long table (needs <getopt.h>). */
#define WR_CLI_COMMON_LONGOPTS                                                                     \
  {"identity", required_argument, NULL, 'i'}, {"log-level", required_argument, NULL, 'L'},         \
      {"trace", required_argument, NULL, 'T'}, {                                                   \
    "help", no_argument, NULL, 'h'                                                                 \
  }

/* wr_cli_common_init sets the defaults; |name| names the identity file.
 * Returns 0 or WR_ERR_TOOBIG. */
int wr_cli_common_init(struct wr_cli_common *c, const char *name);
/* wr_cli_common_opt takes option |ch| if it is a shared one: returns 1 when
 * it was, 0 when it is not shared, -1 for a bad value (logged). */
int wr_cli_common_opt(struct wr_cli_common *c, int ch, const char *arg);
/* wr_cli_common_apply sets the log level and the trace categories.
 * Returns 0 or -1 (an unknown category, logged). */
int wr_cli_common_apply(const struct wr_cli_common *c);

/* wr_cli_log_level parses "error|warn|info|debug". Returns 0 or WR_ERR_INVAL. */
int wr_cli_log_level(const char *s, enum wr_log_level *out);
/* wr_cli_default_identity writes $XDG_CONFIG_HOME/warren/<name>.key (or
 * ~/.config/warren/<name>.key) into |buf|. Returns 0 or WR_ERR_TOOBIG. */
int wr_cli_default_identity(const char *name, char *buf, size_t len);
/* wr_cli_load_identity loads or creates |path|, logging a clear reason on
 * failure. Returns 0 or the error of wr_identity_load_or_create. */
int wr_cli_load_identity(wr_identity *id, const char *path);
/* wr_cli_print_id prints "<hex>\n<z32>\n" for the identity at |path|
 * (created if absent). Returns a process exit status. */
int wr_cli_print_id(const char *path);

#endif
