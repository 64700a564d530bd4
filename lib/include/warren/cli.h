/* cli.h - what every warren binary's command line shares. */
#ifndef WARREN_CLI_H
#define WARREN_CLI_H

#include <stddef.h>

#include "warren/identity.h"
#include "warren/log.h"

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
