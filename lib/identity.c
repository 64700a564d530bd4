/*
 * identity.c - the node's Ed25519 key file and the textual forms of endpoint IDs
 * (docs/internals/identity.md).
 *
 * The key file holds the 32-byte seed as 64 lowercase hex characters and a
 * newline. It is written through a temporary file and rename(2), so a reader
 * never sees a half-written key, and it is refused when its mode gives any
 * access to group or others. The seed and every copy of it are wiped with
 * sodium_memzero() and never logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "warren/err.h"
#include "warren/identity.h"
#include "warren/log.h"
#include "warren/zbase32.h"

#define ID_FILE_MAX 256 /* more than this is not a key file */

static void sodium_ready(void) {
  /* sodium_init() is idempotent and thread-safe; it fails only when the
   * system has no usable randomness, which no caller could work around. */
  if (sodium_init() < 0)
    fatalx("libsodium initialisation failed");
}

static int is_hex(const char *s, size_t n) {
  size_t i;

  for (i = 0; i < n; i++) {
    char c = s[i];

    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
      return 0;
  }
  return 1;
}

/* hex32_decode parses exactly 64 hex characters into 32 bytes. */
static int hex32_decode(uint8_t out[static 32], const char *s) {
  size_t bin_len = 0;

  if (!is_hex(s, 64))
    return WR_ERR_INVAL;
  if (sodium_hex2bin(out, 32, s, 64, NULL, &bin_len, NULL) != 0 || bin_len != 32)
    return WR_ERR_INVAL;
  return 0;
}

void wr_identity_from_seed(wr_identity *id, const uint8_t seed[static WR_SEED_LEN]) {
  sodium_ready();
  /* The caller may pass id->seed itself; memmove keeps that safe. */
  memmove(id->seed, seed, WR_SEED_LEN);
  crypto_sign_seed_keypair(id->pk, id->sk, id->seed);
}

void wr_identity_generate(wr_identity *id) {
  sodium_ready();
  randombytes_buf(id->seed, WR_SEED_LEN);
  wr_identity_from_seed(id, id->seed);
}

void wr_identity_wipe(wr_identity *id) {
  sodium_memzero(id, sizeof(*id));
}

/* parse_key_file checks the whole content: 64 hex, then only whitespace. */
static int parse_key_file(wr_identity *id, const char *buf, size_t n) {
  uint8_t seed[WR_SEED_LEN];
  size_t i;
  int rv = WR_ERR_INVAL;

  if (n < 2 * WR_SEED_LEN)
    goto out;
  for (i = 2 * WR_SEED_LEN; i < n; i++) {
    if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n' && buf[i] != '\r')
      goto out;
  }
  if (hex32_decode(seed, buf) != 0)
    goto out;
  wr_identity_from_seed(id, seed);
  rv = 0;
out:
  sodium_memzero(seed, sizeof(seed));
  return rv;
}

int wr_identity_load(wr_identity *id, const char *path) {
  char buf[ID_FILE_MAX];
  struct stat st;
  size_t n = 0;
  int fd, rv;

  sodium_ready();
  fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (fstat(fd, &st) != 0) {
    rv = -errno;
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    log_warnx("identity %s: not a regular file", path);
    rv = WR_ERR_INVAL;
    goto out;
  }
  if ((st.st_mode & 077) != 0) {
    log_warnx("identity %s: mode %03o gives group or others access; chmod 600 it", path,
              (unsigned)(st.st_mode & 0777));
    rv = WR_ERR_PERM;
    goto out;
  }
  for (;;) {
    ssize_t r;

    if (n == sizeof(buf)) {
      char extra;

      /* The buffer is full: one more byte means the file is too long. */
      r = read(fd, &extra, 1);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0) {
        rv = -errno;
        goto out;
      }
      if (r > 0) {
        rv = WR_ERR_INVAL;
        goto out;
      }
      break;
    }
    r = read(fd, buf + n, sizeof(buf) - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      rv = -errno;
      goto out;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  rv = parse_key_file(id, buf, n);
  if (rv != 0)
    log_warnx("identity %s: malformed key file (want 64 hex characters)", path);
out:
  sodium_memzero(buf, sizeof(buf));
  close(fd);
  return rv;
}

/* dir_of copies the directory part of |path| into |dir| ("." when none). */
static int dir_of(char *dir, size_t dirlen, const char *path) {
  const char *slash = strrchr(path, '/');
  size_t n;

  if (slash == NULL) {
    if (dirlen < 2)
      return WR_ERR_TOOBIG;
    memcpy(dir, ".", 2);
    return 0;
  }
  n = (size_t)(slash - path);
  if (n == 0)
    n = 1; /* "/key" lives in "/" */
  if (n >= dirlen)
    return WR_ERR_TOOBIG;
  memcpy(dir, path, n);
  dir[n] = '\0';
  return 0;
}

/* make_dirs creates |dir| and its missing ancestors with mode 0700. */
static int make_dirs(const char *dir) {
  char tmp[PATH_MAX];
  size_t n = strlen(dir), i;

  if (n >= sizeof(tmp))
    return -ENAMETOOLONG;
  memcpy(tmp, dir, n + 1);
  for (i = 1; i <= n; i++) {
    if (tmp[i] != '/' && tmp[i] != '\0')
      continue;
    tmp[i] = '\0';
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
      return -errno;
    if (i < n)
      tmp[i] = '/';
  }
  return 0;
}

/* write_all writes |n| bytes, retrying short writes. */
static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);

    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/*
 * save_file writes |id| to a temporary file next to |path| and moves it into
 * place: with rename(2) (replacing any old key), or with link(2) when
 * |noclobber| is set, which fails with -EEXIST if |path| appeared meanwhile.
 */
static int save_file(const wr_identity *id, const char *path, int noclobber) {
  char line[2 * WR_SEED_LEN + 2];
  char tmp[PATH_MAX];
  char dir[PATH_MAX];
  int fd = -1, dfd, rv, n;

  sodium_ready();
  n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
  if (n < 0 || (size_t)n >= sizeof(tmp))
    return -ENAMETOOLONG;
  rv = dir_of(dir, sizeof(dir), path);
  if (rv != 0)
    return -ENAMETOOLONG;
  rv = make_dirs(dir);
  if (rv != 0) {
    log_warnx("identity %s: cannot create directory %s: %s", path, dir, wr_strerror(rv));
    return rv;
  }
  sodium_bin2hex(line, sizeof(line), id->seed, WR_SEED_LEN);
  line[2 * WR_SEED_LEN] = '\n';

  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    rv = -errno;
    goto out;
  }
  /* The umask may have cleared bits of 0600, never added any; set it exactly. */
  if (fchmod(fd, 0600) != 0) {
    rv = -errno;
    goto out;
  }
  rv = write_all(fd, line, sizeof(line) - 1);
  if (rv != 0)
    goto out;
  if (fsync(fd) != 0) {
    rv = -errno;
    goto out;
  }
  rv = close(fd) != 0 ? -errno : 0;
  fd = -1;
  if (rv != 0)
    goto out;
  if (noclobber) {
    rv = link(tmp, path) != 0 ? -errno : 0;
    (void)unlink(tmp);
  } else {
    rv = rename(tmp, path) != 0 ? -errno : 0;
  }
  if (rv != 0)
    goto out;
  /* Make the new directory entry durable too; failure here is not fatal. */
  dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
out:
  sodium_memzero(line, sizeof(line));
  if (fd >= 0)
    close(fd);
  if (rv != 0) {
    (void)unlink(tmp);
    if (rv != -EEXIST || !noclobber)
      log_warnx("identity %s: cannot save: %s", path, wr_strerror(rv));
  }
  return rv;
}

int wr_identity_save(const wr_identity *id, const char *path) {
  return save_file(id, path, 0);
}

int wr_identity_load_or_create(wr_identity *id, const char *path, int *created) {
  int rv;

  if (created != NULL)
    *created = 0;
  rv = wr_identity_load(id, path);
  if (rv != -ENOENT)
    return rv;
  wr_identity_generate(id);
  rv = save_file(id, path, 1);
  if (rv == -EEXIST) {
    /* Another process created the key first; use theirs. */
    wr_identity_wipe(id);
    return wr_identity_load(id, path);
  }
  if (rv != 0) {
    wr_identity_wipe(id);
    return rv;
  }
  if (created != NULL)
    *created = 1;
  return 0;
}

void wr_id_to_hex(const wr_pubkey pk, char out[static WR_ID_HEX_LEN + 1]) {
  sodium_ready();
  sodium_bin2hex(out, WR_ID_HEX_LEN + 1, pk, WR_PUBKEY_LEN);
}

int wr_id_from_hex(wr_pubkey pk, const char *s) {
  uint8_t tmp[WR_PUBKEY_LEN];

  if (strnlen(s, WR_ID_HEX_LEN + 1) != WR_ID_HEX_LEN)
    return WR_ERR_INVAL;
  if (hex32_decode(tmp, s) != 0)
    return WR_ERR_INVAL;
  memcpy(pk, tmp, WR_PUBKEY_LEN);
  return 0;
}

void wr_id_to_z32(const wr_pubkey pk, char out[static WR_ID_Z32_LEN + 1]) {
  /* Cannot fail: the output size is exact for 32 bytes. */
  (void)wr_z32_encode(out, WR_ID_Z32_LEN + 1, pk, WR_PUBKEY_LEN);
}

int wr_id_from_z32(wr_pubkey pk, const char *s) {
  uint8_t tmp[WR_PUBKEY_LEN];

  if (strnlen(s, WR_ID_Z32_LEN + 1) != WR_ID_Z32_LEN)
    return WR_ERR_INVAL;
  if (wr_z32_decode(tmp, sizeof(tmp), s, WR_ID_Z32_LEN) != WR_PUBKEY_LEN)
    return WR_ERR_INVAL;
  memcpy(pk, tmp, WR_PUBKEY_LEN);
  return 0;
}

int wr_id_parse(wr_pubkey pk, const char *s) {
  size_t n = strnlen(s, WR_ID_HEX_LEN + 1);

  if (n == WR_ID_HEX_LEN)
    return wr_id_from_hex(pk, s);
  if (n == WR_ID_Z32_LEN)
    return wr_id_from_z32(pk, s);
  return WR_ERR_INVAL;
}
