/*
 * kconfig.c - the Kubernetes API endpoint and credentials from a kubeconfig,
 * the in-cluster service account or explicit values (docs/internals/kconfig.md).
 *
 * A kubeconfig is read through conf.h, so every error names the file, line
 * and key. Only the selected context, its cluster and its user are
 * interpreted; the other entries need only be well-formed enough to be
 * searched (mappings with a string name), as kubectl tolerates unknown
 * auth methods in contexts it does not use. Unknown keys are ignored, as
 * client-go does, except the ones whose silent omission would change who we
 * are or where we connect: those are refused by name.
 *
 * Secrets (tokens, client keys) live in buffers that are wiped before they
 * are freed: file contents, base64 output, the parsed YAML scalars. What
 * libyaml copies internally while parsing is freed without wiping; see
 * kconfig.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "warren/conf.h"
#include "warren/err.h"
#include "warren/kconfig.h"
#include "warren/log.h"

#define KC_LIST_MAX 4096   /* clusters, users or contexts in one file */
#define KC_URL_MAX 2048    /* bytes of a server URL */
#define KC_NAME_MAX 253    /* bytes of a tls-server-name */
#define KC_NS_MAX 63       /* a namespace is a DNS label */
#define KC_NS_FILE_MAX 256 /* bytes of the in-cluster namespace file */
#define KC_PATH_MAX 4096   /* bytes of a resolved path */
#define KC_ENV_MAX 65536   /* bytes of $KUBECONFIG considered */

#define PEM_CERT "-----BEGIN CERTIFICATE-----"
#define PEM_KEY_BEGIN "-----BEGIN "
#define PEM_KEY_END "PRIVATE KEY-----"

static char *dup_printf(const char *fmt, ...) WR_PRINTF(1, 2);

/* dup_printf returns a malloc'd formatted string, or NULL. */
static char *dup_printf(const char *fmt, ...) {
  va_list ap;
  char *s;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  s = malloc((size_t)n + 1);
  if (s == NULL)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* wipe_free wipes |len| bytes of |p| and frees it. */
static void wipe_free(void *p, size_t len) {
  if (p == NULL)
    return;
  sodium_memzero(p, len);
  free(p);
}

static void wipe_free_str(char *s) {
  if (s != NULL)
    wipe_free(s, strlen(s));
}

/* file_error describes a read_file() failure. */
static const char *file_error(int rv, size_t cap, char *buf, size_t len) {
  if (rv == WR_ERR_TOOBIG)
    snprintf(buf, len, "larger than %zu bytes", cap);
  else if (rv == -EINVAL)
    snprintf(buf, len, "not a regular file");
  else
    snprintf(buf, len, "%s", wr_strerror(rv));
  return buf;
}

/* grow_wiped moves |len| bytes of *buf (|size| allocated) into |nsize| new
 * bytes, wiping the old allocation: file contents may be secrets. */
static int grow_wiped(uint8_t **buf, size_t size, size_t len, size_t nsize) {
  uint8_t *nb = malloc(nsize);

  if (nb == NULL)
    return WR_ERR_NOMEM;
  if (len > 0)
    memcpy(nb, *buf, len);
  wipe_free(*buf, size);
  *buf = nb;
  return 0;
}

/* read_file reads regular file |path| (at most |cap| bytes) into a new
 * NUL-terminated buffer. It opens with O_NONBLOCK so that a FIFO cannot
 * block it before it is refused. Returns 0, -errno (-EINVAL: not a regular
 * file), WR_ERR_TOOBIG or WR_ERR_NOMEM. */
static int read_file(const char *path, size_t cap, uint8_t **out, size_t *outlen) {
  uint8_t *buf = NULL;
  size_t size = 0, nsize, len = 0;
  struct stat st;
  ssize_t n;
  int fd, rv;

  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return -errno;
  rv = fstat(fd, &st) < 0 ? -errno : 0;
  if (rv == 0 && S_ISDIR(st.st_mode))
    rv = -EISDIR;
  else if (rv == 0 && !S_ISREG(st.st_mode))
    rv = -EINVAL;
  else if (rv == 0 && (uintmax_t)st.st_size > cap)
    rv = WR_ERR_TOOBIG;
  if (rv != 0)
    goto out;
  /* Room for one byte more than the file, so that EOF is seen without
   * growing; a file that reports size 0 (procfs) starts small and grows. */
  size = (size_t)st.st_size + 1;
  if (size < 256)
    size = 256;
  if (size > cap + 1)
    size = cap + 1;
  buf = malloc(size + 1); /* + the NUL */
  if (buf == NULL) {
    rv = WR_ERR_NOMEM;
    goto out;
  }
  for (;;) {
    if (len == size) {
      if (size > cap) {
        rv = WR_ERR_TOOBIG;
        break;
      }
      nsize = size > cap / 2 ? cap + 1 : size * 2;
      rv = grow_wiped(&buf, size + 1, len, nsize + 1);
      if (rv != 0)
        break;
      size = nsize;
    }
    n = read(fd, buf + len, size - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      rv = -errno;
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  if (rv != 0)
    goto out;
  buf[len] = '\0';
  *out = buf;
  *outlen = len;
  buf = NULL;
out:
  wipe_free(buf, size + 1);
  close(fd);
  return rv;
}

static bool is_space(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* token_ok tells whether |s| can be sent as "Authorization: Bearer <s>":
 * not empty, no whitespace or control bytes (no header injection). */
static bool token_ok(const char *s, size_t len) {
  size_t i;

  if (len == 0)
    return false;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];

    if (c <= 0x20 || c == 0x7f)
      return false;
  }
  return true;
}

/* token_take trims the token file contents |buf| (|len| bytes, |len| + 1
 * allocated, owned from here on) into *out. Returns 0 or WR_ERR_INVAL for an
 * empty or unusable token. */
static int token_take(uint8_t *buf, size_t len, char **out) {
  size_t alloc = len + 1, start = 0;

  while (len > 0 && is_space(buf[len - 1]))
    len--;
  while (start < len && is_space(buf[start]))
    start++;
  len -= start;
  memmove(buf, buf + start, len);
  sodium_memzero(buf + len, alloc - len);
  if (!token_ok((const char *)buf, len)) {
    wipe_free(buf, alloc);
    return WR_ERR_INVAL;
  }
  *out = (char *)buf;
  return 0;
}

/* read_token reads and trims token file |path| into a new string. Returns
 * what read_file() returns, or WR_ERR_INVAL for an empty or unusable token. */
static int read_token(const char *path, char **out) {
  uint8_t *buf = NULL;
  size_t len = 0;
  int rv = read_file(path, WR_KCONFIG_TOKEN_MAX, &buf, &len);

  return rv != 0 ? rv : token_take(buf, len, out);
}

/* has_pem tells whether |data| holds a PEM block of the wanted kind. */
static bool has_pem(const uint8_t *data, size_t len, bool key) {
  const uint8_t *p;

  if (!key)
    return memmem(data, len, PEM_CERT, strlen(PEM_CERT)) != NULL;
  p = memmem(data, len, PEM_KEY_BEGIN, strlen(PEM_KEY_BEGIN));
  return p != NULL && memmem(p, len - (size_t)(p - data), PEM_KEY_END, strlen(PEM_KEY_END)) != NULL;
}

/* b64_decode decodes standard base64 with padding (line breaks and spaces
 * allowed, as Go's decoder allows) into a new NUL-terminated buffer. */
static int b64_decode(const char *s, uint8_t **out, size_t *outlen) {
  size_t n = strlen(s), max = n / 4 * 3 + 3, len = 0;
  uint8_t *buf = malloc(max + 1);

  if (buf == NULL)
    return WR_ERR_NOMEM;
  if (sodium_base642bin(buf, max, s, n, " \t\r\n", &len, NULL, sodium_base64_VARIANT_ORIGINAL) !=
      0) {
    wipe_free(buf, max + 1);
    return WR_ERR_INVAL;
  }
  sodium_memzero(buf + len, max + 1 - len);
  *out = buf;
  *outlen = len;
  return 0;
}

static bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* valid_namespace matches a DNS-1123 label: it goes into URL paths. */
static bool valid_namespace(const char *s) {
  size_t i, n = strlen(s);

  if (n == 0 || n > KC_NS_MAX || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
    return false;
  for (i = 0; i < n; i++) {
    if (!is_lower_alnum(s[i]) && s[i] != '-')
      return false;
  }
  return true;
}

static bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

/* check_port accepts 1 to 65535 in |n| decimal digits. */
static bool check_port(const char *s, size_t n) {
  unsigned long v = 0;
  size_t i;

  if (n == 0 || n > 5)
    return false;
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (unsigned long)(s[i] - '0');
  }
  return v >= 1 && v <= 65535;
}

/* check_authority checks "host[:port]" or "[v6][:port]" of |n| bytes;
 * NULL, or what is wrong. */
static const char *check_authority(const char *s, size_t n) {
  char v6[INET6_ADDRSTRLEN];
  struct in6_addr a6;
  const char *end = s + n, *colon;
  size_t i;

  if (n == 0)
    return "has no host";
  if (s[0] == '[') {
    const char *close = memchr(s, ']', n);

    if (close == NULL || (size_t)(close - s - 1) >= sizeof(v6))
      return "has an unterminated or overlong IPv6 literal";
    memcpy(v6, s + 1, (size_t)(close - s - 1));
    v6[close - s - 1] = '\0';
    if (inet_pton(AF_INET6, v6, &a6) != 1)
      return "has an invalid IPv6 literal";
    colon = close + 1 < end ? close + 1 : NULL;
    if (colon != NULL && *colon != ':')
      return "has bytes after the IPv6 literal";
  } else {
    colon = memchr(s, ':', n);
    if (colon != NULL && memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL)
      return "has an IPv6 address without [brackets]";
    if (colon == s)
      return "has no host";
    for (i = 0; i < (colon ? (size_t)(colon - s) : n); i++) {
      if (!is_host_char(s[i]))
        return "has an invalid host (a name, an IPv4 address or a [bracketed] IPv6 address)";
    }
  }
  if (colon != NULL && !check_port(colon + 1, (size_t)(end - colon - 1)))
    return "has an invalid port (1 to 65535)";
  return NULL;
}

/* normalize_server checks an "http(s)://authority[/path]" URL and puts a
 * copy with a lowercase scheme and no trailing '/' in *out. Userinfo, query
 * and fragment are refused. Returns 0, WR_ERR_INVAL with *why set, or
 * WR_ERR_NOMEM. */
static int normalize_server(const char *url, char **out, const char **why) {
  size_t n = strlen(url), skip, auth, i;
  const char *scheme;

  *why = "must start with https:// (or http://)";
  if (strncasecmp(url, "https://", 8) == 0) {
    scheme = "https://";
    skip = 8;
  } else if (strncasecmp(url, "http://", 7) == 0) {
    scheme = "http://";
    skip = 7;
  } else {
    return WR_ERR_INVAL;
  }
  *why = "is too long";
  if (n > KC_URL_MAX)
    return WR_ERR_INVAL;
  *why = "has a space, control byte, '?', '#', '@' or '\\'";
  for (i = skip; i < n; i++) {
    unsigned char c = (unsigned char)url[i];

    if (c <= 0x20 || c == 0x7f || c == '?' || c == '#' || c == '@' || c == '\\')
      return WR_ERR_INVAL;
  }
  while (n > skip && url[n - 1] == '/')
    n--;
  for (auth = skip; auth < n && url[auth] != '/'; auth++)
    ;
  *why = check_authority(url + skip, auth - skip);
  if (*why != NULL)
    return WR_ERR_INVAL;
  *out = dup_printf("%s%.*s", scheme, (int)(n - skip), url + skip);
  return *out == NULL ? WR_ERR_NOMEM : 0;
}

/* valid_server_name checks a tls-server-name: a host name or address. */
static bool valid_server_name(const char *s) {
  size_t i, n = strlen(s);

  if (n == 0 || n > KC_NAME_MAX)
    return false;
  for (i = 0; i < n; i++) {
    if (!is_host_char(s[i]) && s[i] != ':')
      return false;
  }
  return true;
}

/* abs_dir_of returns the absolute directory of |path| in a new string. */
static int abs_dir_of(const char *path, char **out) {
  const char *slash = strrchr(path, '/');
  char cwd[KC_PATH_MAX];

  if (slash == path) {
    *out = strdup("/");
  } else if (slash != NULL && path[0] == '/') {
    *out = dup_printf("%.*s", (int)(slash - path), path);
  } else {
    if (getcwd(cwd, sizeof(cwd)) == NULL)
      return -errno;
    if (slash == NULL)
      *out = strdup(cwd);
    else
      *out = dup_printf("%s/%.*s", cwd, (int)(slash - path), path);
  }
  return *out == NULL ? WR_ERR_NOMEM : 0;
}

/* ---- kubeconfig ---- */

struct kc_load {
  wr_conf *conf;
  const char *dir; /* absolute, for relative paths; NULL refuses them */
  struct wr_kconfig kc;
};

/* present tells whether a key holds anything: not missing, null or "". */
static bool present(wr_conf_node n) {
  enum wr_conf_kind k = wr_conf_kind(n);
  const char *s = wr_conf_scalar(n);

  return k == WR_CONF_SEQ || k == WR_CONF_MAP || (k == WR_CONF_SCALAR && s != NULL && s[0] != '\0');
}

/* get_nonempty reads optional string |key|; "" counts as absent (*out NULL). */
static int get_nonempty(wr_conf_node map, const char *key, const char **out) {
  int rv;

  *out = NULL;
  rv = wr_conf_get_str(map, key, WR_CONF_OPTIONAL, out);
  if (rv == 0 && *out != NULL && (*out)[0] == '\0')
    *out = NULL;
  return rv;
}

/* resolve makes |p| absolute against the kubeconfig's directory. */
static int resolve(struct kc_load *l, wr_conf_node at, const char *p, char **out) {
  if (p[0] != '/' && l->dir == NULL)
    return wr_conf_errorf(at, "relative path \"%.64s\" with no directory to resolve it in", p);
  *out = p[0] == '/' ? strdup(p) : dup_printf("%s/%s", l->dir, p);
  if (*out == NULL)
    return WR_ERR_NOMEM;
  if (strlen(*out) >= KC_PATH_MAX) {
    free(*out);
    *out = NULL;
    return wr_conf_errorf(at, "path longer than %d bytes", KC_PATH_MAX - 1);
  }
  return 0;
}

/* load_pem fills *data from file key |fkey| or base64 key |dkey| of |map|
 * (at most one), checking that it is a PEM certificate or private key. */
static int load_pem(struct kc_load *l, wr_conf_node map, const char *fkey, const char *dkey,
                    bool key, uint8_t **data, size_t *len) {
  const char *what = key ? "a PEM private key" : "a PEM certificate";
  const char *file, *b64;
  char *path = NULL, why[64];
  uint8_t *buf = NULL;
  size_t n = 0;
  int rv;

  rv = get_nonempty(map, fkey, &file);
  if (rv == 0)
    rv = get_nonempty(map, dkey, &b64);
  if (rv != 0 || (file == NULL && b64 == NULL))
    return rv;
  if (file != NULL && b64 != NULL)
    return wr_conf_errorf(wr_conf_map_get(map, dkey), "%s and %s are both set; keep one", fkey,
                          dkey);
  if (file != NULL) {
    rv = resolve(l, wr_conf_map_get(map, fkey), file, &path);
    if (rv == 0) {
      rv = read_file(path, WR_KCONFIG_FILE_MAX, &buf, &n);
      if (rv != 0 && rv != WR_ERR_NOMEM)
        rv = wr_conf_errorf(wr_conf_map_get(map, fkey), "%s: %s", path,
                            file_error(rv, WR_KCONFIG_FILE_MAX, why, sizeof(why)));
    }
    if (rv == 0 && !has_pem(buf, n, key))
      rv = wr_conf_errorf(wr_conf_map_get(map, fkey), "%s: not %s", path, what);
  } else {
    rv = b64_decode(b64, &buf, &n);
    if (rv == WR_ERR_INVAL)
      rv = wr_conf_errorf(wr_conf_map_get(map, dkey), "invalid base64");
    if (rv == 0 && !has_pem(buf, n, key))
      rv = wr_conf_errorf(wr_conf_map_get(map, dkey), "the decoded data is not %s", what);
  }
  free(path);
  if (rv != 0) {
    wipe_free(buf, n + 1);
    return rv;
  }
  *data = buf;
  *len = n;
  return 0;
}

/* find_named finds the item named |name| in sequence |list| of |root|. Every
 * item must be a mapping with a string name; |name| must occur once. *item
 * is the none node when no item has it. */
static int find_named(wr_conf_node root, const char *list, const char *name, wr_conf_node *item) {
  wr_conf_node seq = {0}, it, first = {0};
  const char *s;
  size_t i, n;
  int rv;

  *item = first;
  rv = wr_conf_get_seq(root, list, WR_CONF_OPTIONAL, 0, KC_LIST_MAX, &seq);
  n = wr_conf_seq_len(seq);
  for (i = 0; i < n && rv == 0; i++) {
    it = wr_conf_seq_at(seq, i);
    rv = wr_conf_get_str(it, "name", WR_CONF_REQUIRED, &s);
    if (rv != 0 || strcmp(s, name) != 0)
      continue;
    if (wr_conf_kind(first) != WR_CONF_NONE)
      rv =
          wr_conf_errorf(wr_conf_map_get(it, "name"),
                         "duplicate name \"%.64s\" (first at line %zu)", name, wr_conf_line(first));
    first = it;
  }
  if (rv == 0)
    *item = first;
  return rv;
}

static int load_cluster(struct kc_load *l, wr_conf_node item) {
  wr_conf_node c = {0};
  const char *server, *sni = NULL, *why;
  int rv;

  rv = wr_conf_get_map(item, "cluster", WR_CONF_REQUIRED, &c);
  if (rv == 0)
    rv = wr_conf_get_str(c, "server", WR_CONF_REQUIRED, &server);
  if (rv == 0)
    rv = normalize_server(server, &l->kc.server, &why);
  if (rv == WR_ERR_INVAL)
    rv = wr_conf_errorf(wr_conf_map_get(c, "server"), "\"%.64s\" %s", server, why);
  if (rv != 0)
    return rv;
  if (present(wr_conf_map_get(c, "proxy-url")))
    return wr_conf_errorf(wr_conf_map_get(c, "proxy-url"),
                          "proxy-url is not supported; connect to the server directly");
  rv = wr_conf_get_bool(c, "insecure-skip-tls-verify", WR_CONF_OPTIONAL, &l->kc.insecure);
  if (rv == 0)
    rv = get_nonempty(c, "tls-server-name", &sni);
  if (rv == 0 && sni != NULL && !valid_server_name(sni))
    rv = wr_conf_errorf(wr_conf_map_get(c, "tls-server-name"), "\"%.64s\" is not a host name", sni);
  if (rv == 0 && sni != NULL && (l->kc.tls_server_name = strdup(sni)) == NULL)
    rv = WR_ERR_NOMEM;
  if (rv == 0)
    rv = load_pem(l, c, "certificate-authority", "certificate-authority-data", false, &l->kc.ca_pem,
                  &l->kc.ca_pem_len);
  if (rv == 0 && l->kc.insecure && l->kc.ca_pem != NULL)
    rv = wr_conf_errorf(wr_conf_map_get(c, "insecure-skip-tls-verify"),
                        "cannot be combined with a certificate authority");
  return rv;
}

/* Keys of a user we refuse rather than ignore, and why. */
static const struct {
  const char *key;
  const char *why;
} refused[] = {
    {"exec", "exec credential plugins are not supported; use token, tokenFile or a client "
             "certificate"},
    {"auth-provider", "auth-provider plugins are not supported; use token, tokenFile or a client "
                      "certificate"},
    {"username", "basic authentication (username/password) is not supported: Kubernetes removed "
                 "it in 1.19; use a token or a client certificate"},
    {"password", "basic authentication (username/password) is not supported: Kubernetes removed "
                 "it in 1.19; use a token or a client certificate"},
    {"as", "impersonation is not supported"},
    {"as-uid", "impersonation is not supported"},
    {"as-groups", "impersonation is not supported"},
    {"as-user-extra", "impersonation is not supported"},
};

static int load_user(struct kc_load *l, wr_conf_node item) {
  wr_conf_node u = {0};
  const char *token, *file;
  char why[64];
  size_t i;
  int rv;

  rv = wr_conf_get_map(item, "user", WR_CONF_OPTIONAL, &u);
  if (rv != 0 || wr_conf_kind(u) == WR_CONF_NONE)
    return rv; /* a user without credentials */
  for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    if (present(wr_conf_map_get(u, refused[i].key)))
      return wr_conf_errorf(wr_conf_map_get(u, refused[i].key), "%s", refused[i].why);
  }
  rv = get_nonempty(u, "token", &token);
  if (rv == 0)
    rv = get_nonempty(u, "tokenFile", &file);
  if (rv != 0)
    return rv;
  if (token != NULL && file != NULL)
    return wr_conf_errorf(wr_conf_map_get(u, "tokenFile"), "token and tokenFile are both set; "
                                                           "keep one");
  if (token != NULL) {
    if (!token_ok(token, strlen(token)))
      return wr_conf_errorf(wr_conf_map_get(u, "token"),
                            "not a usable bearer token (whitespace or control bytes)");
    if ((l->kc.token = strdup(token)) == NULL)
      return WR_ERR_NOMEM;
  } else if (file != NULL) {
    rv = resolve(l, wr_conf_map_get(u, "tokenFile"), file, &l->kc.token_file);
    if (rv == 0)
      rv = read_token(l->kc.token_file, &l->kc.token);
    if (rv == WR_ERR_INVAL)
      return wr_conf_errorf(wr_conf_map_get(u, "tokenFile"),
                            "%s: not a usable bearer token (empty, or whitespace or control "
                            "bytes inside)",
                            l->kc.token_file);
    if (rv != 0 && rv != WR_ERR_NOMEM && rv != WR_ERR_CONFIG)
      return wr_conf_errorf(wr_conf_map_get(u, "tokenFile"), "%s: %s", l->kc.token_file,
                            file_error(rv, WR_KCONFIG_TOKEN_MAX, why, sizeof(why)));
    if (rv != 0)
      return rv;
  }
  rv = load_pem(l, u, "client-certificate", "client-certificate-data", false, &l->kc.cert_pem,
                &l->kc.cert_pem_len);
  if (rv == 0)
    rv = load_pem(l, u, "client-key", "client-key-data", true, &l->kc.key_pem, &l->kc.key_pem_len);
  if (rv == 0 && l->kc.cert_pem != NULL && l->kc.key_pem == NULL)
    rv = wr_conf_errorf_key(u, "client-key",
                            "a client certificate needs client-key or "
                            "client-key-data");
  if (rv == 0 && l->kc.key_pem != NULL && l->kc.cert_pem == NULL)
    rv = wr_conf_errorf_key(u, "client-certificate",
                            "a client key needs client-certificate or client-certificate-data");
  return rv;
}

/* check_header checks apiVersion and kind when they are given (client-go
 * accepts files without them). */
static int check_header(wr_conf_node root) {
  const char *api = NULL, *kind = NULL;
  int rv = get_nonempty(root, "apiVersion", &api);

  if (rv == 0)
    rv = get_nonempty(root, "kind", &kind);
  if (rv == 0 && api != NULL && strcmp(api, "v1") != 0)
    rv = wr_conf_errorf(wr_conf_map_get(root, "apiVersion"), "expected v1, found \"%.64s\"", api);
  if (rv == 0 && kind != NULL && strcmp(kind, "Config") != 0)
    rv = wr_conf_errorf(wr_conf_map_get(root, "kind"), "expected Config, found \"%.64s\"", kind);
  return rv;
}

/* kc_build fills l->kc from the selected context. *no_current tells the
 * caller that the only problem is an unset current-context. */
static int kc_build(struct kc_load *l, const char *context, bool *no_current) {
  wr_conf_node root = wr_conf_root(l->conf, 0), ctx = {0}, cm = {0}, item;
  const char *cluster, *user = NULL, *ns = "default";
  bool given = context != NULL;
  int rv;

  if (wr_conf_ndocs(l->conf) != 1)
    return wr_conf_errorf(root, "expected one YAML document, found %zu", wr_conf_ndocs(l->conf));
  if (wr_conf_kind(root) != WR_CONF_MAP)
    return wr_conf_errorf(root, "expected a mapping, found %s",
                          wr_conf_kind_name(wr_conf_kind(root)));
  rv = check_header(root);
  if (rv == 0 && context == NULL) {
    rv = get_nonempty(root, "current-context", &context);
    if (rv == 0 && context == NULL) {
      *no_current = true;
      return wr_conf_errorf_key(root, "current-context", "not set, and no context was given");
    }
  }
  if (rv == 0)
    rv = find_named(root, "contexts", context, &ctx);
  if (rv == 0 && wr_conf_kind(ctx) == WR_CONF_NONE) {
    item = wr_conf_map_get(root, given ? "contexts" : "current-context");
    if (wr_conf_kind(item) == WR_CONF_NONE)
      return wr_conf_errorf_key(root, "contexts", "no context named \"%.64s\"", context);
    return wr_conf_errorf(item, "no context named \"%.64s\"", context);
  }
  if (rv == 0)
    rv = wr_conf_get_map(ctx, "context", WR_CONF_REQUIRED, &cm);
  if (rv == 0)
    rv = wr_conf_get_str(cm, "cluster", WR_CONF_REQUIRED, &cluster);
  if (rv == 0)
    rv = get_nonempty(cm, "user", &user);
  if (rv == 0)
    rv = get_nonempty(cm, "namespace", &ns);
  if (rv == 0 && ns == NULL)
    ns = "default";
  if (rv == 0 && !valid_namespace(ns))
    rv = wr_conf_errorf(wr_conf_map_get(cm, "namespace"),
                        "\"%.64s\" is not a namespace name (a DNS label)", ns);
  if (rv == 0)
    rv = find_named(root, "clusters", cluster, &item);
  if (rv == 0 && wr_conf_kind(item) == WR_CONF_NONE)
    rv = wr_conf_errorf(wr_conf_map_get(cm, "cluster"), "no cluster named \"%.64s\"", cluster);
  if (rv == 0)
    rv = load_cluster(l, item);
  if (rv == 0 && user != NULL) {
    rv = find_named(root, "users", user, &item);
    if (rv == 0 && wr_conf_kind(item) == WR_CONF_NONE)
      rv = wr_conf_errorf(wr_conf_map_get(cm, "user"), "no user named \"%.64s\"", user);
    if (rv == 0)
      rv = load_user(l, item);
  }
  if (rv != 0)
    return rv;
  l->kc.namespace = strdup(ns);
  l->kc.source = dup_printf("%s, context %.64s", wr_conf_name(l->conf), context);
  if (l->kc.namespace == NULL || l->kc.source == NULL)
    return WR_ERR_NOMEM;
  wr_conf_clean_msg(l->kc.source);
  return 0;
}

/* wipe_node wipes every scalar under |n|: the tree holds tokens and keys.
 * The depth is bounded by conf.c (WR_CONF_DEPTH_MAX). */
static void wipe_node(wr_conf_node n) {
  const char *s;
  size_t i;

  switch (wr_conf_kind(n)) {
  case WR_CONF_SEQ:
    for (i = 0; i < wr_conf_seq_len(n); i++)
      wipe_node(wr_conf_seq_at(n, i));
    break;
  case WR_CONF_MAP:
    for (i = 0; i < wr_conf_map_len(n); i++)
      wipe_node(wr_conf_map_value(n, i));
    break;
  default:
    s = wr_conf_scalar(n);
    if (s != NULL) /* libyaml's own heap copy, writable; conf.h hands it out const */
      sodium_memzero((void *)(uintptr_t)s, strlen(s));
    break;
  }
}

static void wipe_conf_del(wr_conf *c) {
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < wr_conf_ndocs(c); i++)
    wipe_node(wr_conf_root(c, i));
  wr_conf_del(c);
}

/* kc_load_mem is wr_kconfig_load_kubeconfig_mem() with the current-context signal. */
static int kc_load_mem(struct wr_kconfig *out, const char *name, const void *data, size_t len,
                       const char *dir, const char *context, bool *no_current, char *err,
                       size_t errlen) {
  struct kc_load l;
  int rv;

  memset(&l, 0, sizeof(l));
  *no_current = false;
  rv = wr_conf_load_mem(&l.conf, name, data, len, WR_KCONFIG_FILE_MAX, err, errlen);
  if (rv != 0)
    return rv;
  l.dir = dir;
  rv = kc_build(&l, context, no_current);
  if (rv == WR_ERR_CONFIG)
    wr_conf_set_err(err, errlen, "%s", wr_conf_errmsg(l.conf));
  else if (rv != 0)
    wr_conf_set_err(err, errlen, "%s: %s", name, wr_strerror(rv));
  if (rv == 0) {
    *out = l.kc;
    memset(&l.kc, 0, sizeof(l.kc));
  }
  wr_kconfig_free(&l.kc);
  wipe_conf_del(l.conf);
  return rv;
}

int wr_kconfig_load_kubeconfig_mem(struct wr_kconfig *out, const char *name, const void *data,
                                   size_t len, const char *dir, const char *context, char *err,
                                   size_t errlen) {
  bool no_current;

  return kc_load_mem(out, name, data, len, dir, context, &no_current, err, errlen);
}

/* kc_load_file reads |path| and loads it (see kc_load_mem). */
static int kc_load_file(struct wr_kconfig *out, const char *path, const char *context,
                        bool *no_current, char *err, size_t errlen) {
  char *name = NULL, *dir = NULL, why[64];
  uint8_t *data = NULL;
  size_t len = 0;
  int rv;

  *no_current = false;
  rv = read_file(path, WR_KCONFIG_FILE_MAX, &data, &len);
  if (rv != 0) {
    wr_conf_set_err(err, errlen, "kubeconfig %s: %s", path,
                    file_error(rv, WR_KCONFIG_FILE_MAX, why, sizeof(why)));
    return rv;
  }
  rv = abs_dir_of(path, &dir);
  if (rv == 0 && (name = dup_printf("kubeconfig %s", path)) == NULL)
    rv = WR_ERR_NOMEM;
  if (rv != 0)
    wr_conf_set_err(err, errlen, "kubeconfig %s: %s", path, wr_strerror(rv));
  else
    rv = kc_load_mem(out, name, data, len, dir, context, no_current, err, errlen);
  wipe_free(data, len + 1);
  free(name);
  free(dir);
  return rv;
}

int wr_kconfig_load_kubeconfig(struct wr_kconfig *out, const char *path, const char *context,
                               char *err, size_t errlen) {
  bool no_current;

  return kc_load_file(out, path, context, &no_current, err, errlen);
}

/* ---- in-cluster ---- */

/* incluster_server builds "https://host:port" from the service variables. */
static int incluster_server(const char *host, const char *port, char **out, char *err,
                            size_t errlen) {
  struct in6_addr a6;
  const char *why;
  char *url;
  int rv;

  if (strchr(host, ':') != NULL && inet_pton(AF_INET6, host, &a6) == 1)
    url = dup_printf("https://[%s]:%s", host, port);
  else
    url = dup_printf("https://%s:%s", host, port);
  if (url == NULL)
    return WR_ERR_NOMEM;
  rv = normalize_server(url, out, &why);
  free(url);
  if (rv == WR_ERR_INVAL) {
    wr_conf_set_err(
        err, errlen,
        "in-cluster: KUBERNETES_SERVICE_HOST \"%.64s\" and KUBERNETES_SERVICE_PORT \"%.16s\" "
        "give a URL that %s",
        host, port, why);
    rv = WR_ERR_CONFIG;
  }
  return rv;
}

/* incluster_read reads file |name| of service-account directory |dir|
 * into a new buffer; a failure is described in |err|. */
static int incluster_read(const char *dir, const char *name, size_t cap, uint8_t **out, size_t *len,
                          char *err, size_t errlen) {
  char path[KC_PATH_MAX], why[64];
  int rv;

  snprintf(path, sizeof(path), "%s/%s", dir, name);
  rv = read_file(path, cap, out, len);
  if (rv != 0)
    wr_conf_set_err(err, errlen, "in-cluster: %s: %s", path, file_error(rv, cap, why, sizeof(why)));
  return rv;
}

/* incluster_files reads token, ca.crt and namespace of service-account
 * directory |dir| (shorter than KC_PATH_MAX - 16) into |kc|. */
static int incluster_files(struct wr_kconfig *kc, const char *dir, char *err, size_t errlen) {
  uint8_t *ns = NULL, *tok = NULL;
  size_t nslen = 0, toklen = 0;
  int rv;

  kc->token_file = dup_printf("%s/token", dir);
  if (kc->token_file == NULL)
    return WR_ERR_NOMEM;
  rv = incluster_read(dir, "token", WR_KCONFIG_TOKEN_MAX, &tok, &toklen, err, errlen);
  if (rv == 0 && token_take(tok, toklen, &kc->token) != 0) {
    wr_conf_set_err(err, errlen,
                    "in-cluster: %s: not a usable bearer token (empty, or whitespace or "
                    "control bytes inside)",
                    kc->token_file);
    rv = WR_ERR_CONFIG;
  }
  if (rv != 0)
    return rv == WR_ERR_NOMEM || rv == WR_ERR_TOOBIG ? rv : WR_ERR_CONFIG;
  rv =
      incluster_read(dir, "ca.crt", WR_KCONFIG_FILE_MAX, &kc->ca_pem, &kc->ca_pem_len, err, errlen);
  if (rv == 0 && !has_pem(kc->ca_pem, kc->ca_pem_len, false)) {
    wr_conf_set_err(err, errlen, "in-cluster: %s/ca.crt: not a PEM certificate", dir);
    rv = WR_ERR_CONFIG;
  }
  if (rv != 0)
    return rv == WR_ERR_NOMEM || rv == WR_ERR_TOOBIG ? rv : WR_ERR_CONFIG;
  rv = incluster_read(dir, "namespace", KC_NS_FILE_MAX, &ns, &nslen, err, errlen);
  if (rv == -ENOENT) {
    kc->namespace = strdup("default");
    return kc->namespace == NULL ? WR_ERR_NOMEM : 0;
  }
  if (rv != 0)
    return rv == WR_ERR_NOMEM || rv == WR_ERR_TOOBIG ? rv : WR_ERR_CONFIG;
  while (nslen > 0 && is_space(ns[nslen - 1]))
    ns[--nslen] = '\0';
  if (strlen((const char *)ns) != nslen || !valid_namespace((const char *)ns)) {
    wr_conf_set_err(err, errlen, "in-cluster: %s/namespace: \"%.64s\" is not a namespace name", dir,
                    (const char *)ns);
    free(ns);
    return WR_ERR_CONFIG;
  }
  kc->namespace = (char *)ns;
  return 0;
}

int wr_kconfig_load_incluster(struct wr_kconfig *out, const char *root, char *err, size_t errlen) {
  const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
  struct wr_kconfig kc;
  char *dir = NULL;
  size_t n;
  int rv;

  memset(&kc, 0, sizeof(kc));
  if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0') {
    wr_conf_set_err(err, errlen,
                    "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set "
                    "(not running in a pod)");
    return WR_ERR_NOTFOUND;
  }
  rv = incluster_server(host, port, &kc.server, err, errlen);
  if (rv == 0) {
    if (root == NULL)
      root = "";
    for (n = strlen(root); n > 0 && root[n - 1] == '/'; n--)
      ;
    dir = dup_printf("%.*s%s", (int)n, root, WR_KCONFIG_SA_DIR);
    rv = dir == NULL ? WR_ERR_NOMEM : 0;
  }
  if (rv == 0 && strlen(dir) >= KC_PATH_MAX - 16) {
    wr_conf_set_err(err, errlen, "in-cluster: root directory path too long");
    rv = WR_ERR_CONFIG;
  }
  if (rv == 0)
    rv = incluster_files(&kc, dir, err, errlen);
  if (rv == 0 && (kc.source = dup_printf("in-cluster (%s)", dir)) == NULL)
    rv = WR_ERR_NOMEM;
  if (rv == WR_ERR_NOMEM)
    wr_conf_set_err(err, errlen, "in-cluster: out of memory");
  if (rv == 0) {
    *out = kc;
    memset(&kc, 0, sizeof(kc));
  }
  wr_kconfig_free(&kc);
  free(dir);
  return rv;
}

/* ---- default precedence ---- */

static bool file_exists(const char *path) {
  struct stat st;

  return stat(path, &st) == 0 || (errno != ENOENT && errno != ENOTDIR);
}

/* load_env_list uses the first file of $KUBECONFIG that exists and sets
 * current-context. Files that exist are loaded in order; any other error stops. */
static int load_env_list(struct wr_kconfig *out, const char *list, char *err, size_t errlen) {
  char path[KC_PATH_MAX];
  const char *p = list, *end;
  bool no_current;
  size_t n;
  int rv;

  if (strlen(list) > KC_ENV_MAX) {
    wr_conf_set_err(err, errlen, "$KUBECONFIG: longer than %d bytes", KC_ENV_MAX);
    return WR_ERR_TOOBIG;
  }
  for (; *p != '\0'; p = *end == ':' ? end + 1 : end) {
    end = strchr(p, ':');
    if (end == NULL)
      end = p + strlen(p);
    n = (size_t)(end - p);
    if (n == 0)
      continue;
    if (n >= sizeof(path)) {
      wr_conf_set_err(err, errlen, "$KUBECONFIG: a path is longer than %zu bytes",
                      sizeof(path) - 1);
      return WR_ERR_CONFIG;
    }
    memcpy(path, p, n);
    path[n] = '\0';
    if (!file_exists(path))
      continue;
    rv = kc_load_file(out, path, NULL, &no_current, err, errlen);
    if (rv == 0 || !no_current)
      return rv;
  }
  wr_conf_set_err(
      err, errlen,
      "$KUBECONFIG \"%.200s\": no file in the list exists and sets current-context (only "
      "one file is used, not a merge of all)",
      list);
  return WR_ERR_NOTFOUND;
}

/* home_config writes ~/.kube/config into |buf|; false when there is no home. */
static bool home_config(char *buf, size_t len) {
  const char *home = getenv("HOME");
  struct passwd pw, *res = NULL;
  char pwbuf[4096];

  if (home == NULL || home[0] == '\0') {
    if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) != 0 || res == NULL ||
        pw.pw_dir == NULL || pw.pw_dir[0] == '\0')
      return false;
    home = pw.pw_dir;
  }
  return (size_t)snprintf(buf, len, "%s/.kube/config", home) < len;
}

int wr_kconfig_load_default(struct wr_kconfig *out, const char *explicit_path, char *err,
                            size_t errlen) {
  const char *env = getenv("KUBECONFIG"), *host = getenv("KUBERNETES_SERVICE_HOST");
  char home[KC_PATH_MAX];
  bool have_home;
  int rv;

  if (explicit_path != NULL && explicit_path[0] != '\0')
    return wr_kconfig_load_kubeconfig(out, explicit_path, NULL, err, errlen);
  if (env != NULL && env[0] != '\0')
    return load_env_list(out, env, err, errlen);
  have_home = home_config(home, sizeof(home));
  if (host != NULL && host[0] != '\0') {
    rv = wr_kconfig_load_incluster(out, NULL, err, errlen);
    if (rv == 0 || !have_home || !file_exists(home))
      return rv;
    log_warnx("%s; using %s", err != NULL && errlen > 0 ? err : "in-cluster failed", home);
  }
  if (!have_home || !file_exists(home)) {
    wr_conf_set_err(
        err, errlen,
        "no Kubernetes API configuration: no --kubeconfig, $KUBECONFIG is unset, not in a pod "
        "and no %s",
        have_home ? home : "home directory");
    return WR_ERR_NOTFOUND;
  }
  return wr_kconfig_load_kubeconfig(out, home, NULL, err, errlen);
}

/* ---- explicit values, tokens, free ---- */

int wr_kconfig_set(struct wr_kconfig *out, const char *server, const char *ca_pem,
                   const char *token, bool insecure) {
  struct wr_kconfig kc;
  const char *why;
  int rv = WR_ERR_INVAL;

  memset(&kc, 0, sizeof(kc));
  kc.insecure = insecure;
  rv = normalize_server(server, &kc.server, &why);
  if (rv != 0)
    goto out;
  rv = WR_ERR_INVAL;
  if (token != NULL && !token_ok(token, strlen(token)))
    goto out;
  if (ca_pem != NULL && !has_pem((const uint8_t *)ca_pem, strlen(ca_pem), false))
    goto out;
  rv = WR_ERR_NOMEM;
  if (token != NULL && (kc.token = strdup(token)) == NULL)
    goto out;
  if (ca_pem != NULL) {
    kc.ca_pem_len = strlen(ca_pem);
    if ((kc.ca_pem = (uint8_t *)strdup(ca_pem)) == NULL)
      goto out;
  }
  if ((kc.namespace = strdup("default")) == NULL || (kc.source = strdup("explicit")) == NULL)
    goto out;
  *out = kc;
  memset(&kc, 0, sizeof(kc));
  rv = 0;
out:
  wr_kconfig_free(&kc);
  return rv;
}

void wr_kconfig_free(struct wr_kconfig *c) {
  if (c == NULL)
    return;
  free(c->server);
  free(c->tls_server_name);
  wipe_free(c->ca_pem, c->ca_pem_len + 1);
  wipe_free(c->cert_pem, c->cert_pem_len + 1);
  wipe_free(c->key_pem, c->key_pem_len + 1);
  free(c->namespace);
  free(c->source);
  wipe_free_str(c->token);
  free(c->token_file);
  sodium_memzero(c, sizeof(*c));
}

int wr_kconfig_token(struct wr_kconfig *c, uint64_t now_ms, const char **token) {
  char *fresh = NULL;
  int rv;

  *token = c->token;
  if (c->token_file == NULL)
    return 0;
  if (!c->token_dated) {
    /* The load read the file; its age counts from the first use. */
    c->token_dated = true;
    c->token_read_ms = now_ms;
  }
  if (!c->token_invalid && now_ms >= c->token_read_ms &&
      now_ms - c->token_read_ms < WR_KCONFIG_TOKEN_TTL_MS)
    return 0;
  rv = read_token(c->token_file, &fresh);
  if (rv != 0) {
    if (c->token_invalid || c->token == NULL) {
      *token = NULL;
      return rv;
    }
    return 0; /* keep the previous token; the next call tries again */
  }
  wipe_free_str(c->token);
  c->token = fresh;
  c->token_read_ms = now_ms;
  c->token_invalid = false;
  *token = c->token;
  return 0;
}

void wr_kconfig_token_invalidate(struct wr_kconfig *c) {
  if (c->token_file != NULL)
    c->token_invalid = true;
}
