/* cli.c - shared command-line helpers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warren/cli.h"
#include "warren/err.h"

int wr_cli_log_level(const char *s, enum wr_log_level *out) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  size_t i;

  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (strcmp(s, names[i]) == 0) {
      *out = (enum wr_log_level)i;
      return 0;
    }
  }
  return WR_ERR_INVAL;
}

int wr_cli_default_identity(const char *name, char *buf, size_t len) {
  const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
  int n;

  if (xdg != NULL && *xdg != '\0')
    n = snprintf(buf, len, "%s/warren/%s.key", xdg, name);
  else
    n = snprintf(buf, len, "%s/.config/warren/%s.key", home ? home : ".", name);
  return n < 0 || (size_t)n >= len ? WR_ERR_TOOBIG : 0;
}

int wr_cli_common_init(struct wr_cli_common *c, const char *name) {
  memset(c, 0, sizeof(*c));
  c->level = WR_LOG_INFO;
  return wr_cli_default_identity(name, c->identity, sizeof(c->identity));
}

int wr_cli_common_opt(struct wr_cli_common *c, int ch, const char *arg) {
  switch (ch) {
  case 'i':
    if (snprintf(c->identity, sizeof(c->identity), "%s", arg) >= (int)sizeof(c->identity)) {
      log_warnx("--identity: path too long");
      return -1;
    }
    return 1;
  case 'L':
    if (wr_cli_log_level(arg, &c->level) != 0) {
      log_warnx("--log-level '%s': expected error, warn, info or debug", arg);
      return -1;
    }
    return 1;
  case 'T':
    c->trace = arg;
    return 1;
  default:
    return 0;
  }
}

int wr_cli_common_apply(const struct wr_cli_common *c) {
  log_set_level(c->level);
  if (c->trace != NULL && log_set_trace(c->trace) != 0)
    return -1;
  return 0;
}

int wr_cli_load_identity(wr_identity *id, const char *path) {
  int created = 0;
  int rv = wr_identity_load_or_create(id, path, &created);

  switch (rv) {
  case 0:
    if (created)
      log_info("created a new identity in %s", path);
    break;
  case WR_ERR_PERM:
    log_warnx("%s: refusing a secret key readable by group or others (chmod 600 it)", path);
    break;
  case WR_ERR_INVAL:
    log_warnx("%s: not a warren identity file (expected 64 hex characters)", path);
    break;
  default:
    log_warnx("%s: cannot load identity: %s", path, wr_strerror(rv));
    break;
  }
  return rv;
}

int wr_cli_print_id(const char *path) {
  char hex[WR_ID_HEX_LEN + 1], z32[WR_ID_Z32_LEN + 1];
  wr_identity id;

  if (wr_cli_load_identity(&id, path) != 0)
    return 1;
  wr_id_to_hex(id.pk, hex);
  wr_id_to_z32(id.pk, z32);
  wr_identity_wipe(&id);
  printf("%s\n%s\n", hex, z32);
  return 0;
}
