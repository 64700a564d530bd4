/*
 * kconfig.h - where and how to reach the Kubernetes API (docs/internals/kconfig.md).
 *
 * A wr_kconfig is the result of reading one source: a kubeconfig file, the
 * in-cluster service account, or explicit values. It holds the server URL,
 * the trust anchors (CA PEM or insecure-skip-tls-verify), the client
 * credentials (certificate + key PEM and/or a bearer token) and the default
 * namespace, everything copied out of the source, so the file can change or
 * go away afterwards. The one exception is a token file (in-cluster, or a
 * kubeconfig's tokenFile): its path is kept and wr_kconfig_token() re-reads it
 * the way client-go does, because bound service-account tokens rotate.
 *
 * Storage is the caller's: every loader fills caller-owned |out|, which must
 * be zeroed or freed, and on failure leaves it untouched with the reason in
 * |err| ("kubeconfig /x/config:12: contexts[2].context.cluster: no cluster
 * named \"foo\""). wr_kconfig_free() wipes secrets (token, key) with
 * sodium_memzero(); they are never logged or put in messages.
 *
 * Every input is capped: WR_KCONFIG_FILE_MAX for a kubeconfig and the files
 * it names, WR_KCONFIG_TOKEN_MAX for token files. Files must be regular files
 * (after following symlinks, as the ..data swaps of projected volumes need).
 *
 * Not thread-safe: one wr_kconfig belongs to one thread (the loop's).
 */
#ifndef WARREN_KCONFIG_H
#define WARREN_KCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WR_KCONFIG_FILE_MAX (1u << 20)   /* bytes of a kubeconfig, CA, certificate or key file */
#define WR_KCONFIG_TOKEN_MAX (64u << 10) /* bytes of a token file */
#define WR_KCONFIG_TOKEN_TTL_MS 60000u   /* a token file is re-read when older (client-go: 1 min) */
#define WR_KCONFIG_ERR_MAX 1024          /* enough for any message; longer ones are truncated */
#define WR_KCONFIG_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* Read the public members; change them only through these functions. */
struct wr_kconfig {
  char *server;          /* "https://host:port[/prefix]", IPv6 bracketed, no trailing '/' */
  char *tls_server_name; /* name to verify (and send as SNI), NULL: the server's host */
  bool insecure;         /* insecure-skip-tls-verify: no server verification at all */
  uint8_t *ca_pem;       /* NUL-terminated PEM, NULL: the system trust store */
  size_t ca_pem_len;     /* without the NUL */
  uint8_t *cert_pem;     /* client certificate PEM, NULL: none (then key_pem is NULL too) */
  size_t cert_pem_len;
  uint8_t *key_pem; /* client key PEM (secret) */
  size_t key_pem_len;
  char *namespace; /* default namespace, never NULL after a load: "default" unless set */
  char *source;    /* what was loaded, for logs: "kubeconfig /x/config, context kind" */

  /* Bearer token: private, read it with wr_kconfig_token(). */
  char *token;            /* secret; NULL: no bearer token */
  char *token_file;       /* absolute path re-read by wr_kconfig_token(), NULL: static */
  uint64_t token_read_ms; /* when |token| was read from token_file */
  bool token_dated;       /* token_read_ms is set (the first wr_kconfig_token() call sets it) */
  bool token_invalid;     /* wr_kconfig_token_invalidate() was called */
};

/* wr_kconfig_load_kubeconfig reads kubeconfig |path| (apiVersion v1, kind
 * Config) and takes the cluster and user of |context|, or of current-context
 * when |context| is NULL. Relative file paths in it resolve against the
 * directory of |path|. Refused with a clear message: username/password,
 * exec and auth-provider plugins, impersonation (as, as-groups, ...),
 * proxy-url, insecure-skip-tls-verify together with a CA, a file and its
 * -data both set, a certificate without a key. Returns 0, WR_ERR_CONFIG,
 * WR_ERR_TOOBIG, WR_ERR_NOMEM or -errno (reading |path|). */
int wr_kconfig_load_kubeconfig(struct wr_kconfig *out, const char *path, const char *context,
                               char *err, size_t errlen);

/* wr_kconfig_load_kubeconfig_mem is the same for |len| bytes of |data|
 * named |name| in messages. Relative paths resolve against |dir| (absolute),
 * or are refused when |dir| is NULL. Returns 0, WR_ERR_CONFIG, WR_ERR_TOOBIG
 * or WR_ERR_NOMEM. |data| is not kept; the caller wipes it if it wants. */
int wr_kconfig_load_kubeconfig_mem(struct wr_kconfig *out, const char *name, const void *data,
                                   size_t len, const char *dir, const char *context, char *err,
                                   size_t errlen);

/* wr_kconfig_load_incluster reads the pod's service account: the server
 * from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (an IPv6 host is
 * bracketed), and <root>WR_KCONFIG_SA_DIR/{token,ca.crt,namespace}; |root|
 * NULL means "/" (tests point it at a temporary directory). The token must be
 * readable now and is then re-read by path; ca.crt is required; a missing
 * namespace file means "default". Returns 0, WR_ERR_NOTFOUND (the variables
 * are unset: not in a pod), WR_ERR_CONFIG, WR_ERR_TOOBIG or WR_ERR_NOMEM. */
int wr_kconfig_load_incluster(struct wr_kconfig *out, const char *root, char *err, size_t errlen);

/* wr_kconfig_load_default picks the source as controller-runtime does:
 * |explicit_path| (a --kubeconfig flag) when not NULL or ""; else $KUBECONFIG
 * when set; else in-cluster when KUBERNETES_SERVICE_HOST/PORT are set; else
 * ~/.kube/config ($HOME, or the password database). $KUBECONFIG is a ':' list
 * of which only ONE file is used: the first that exists and sets
 * current-context (client-go merges all of them; see kconfig.md). A failed
 * in-cluster load falls back to ~/.kube/config when that file exists.
 * Returns what the chosen loader returns, or WR_ERR_NOTFOUND when there is
 * no source at all. */
int wr_kconfig_load_default(struct wr_kconfig *out, const char *explicit_path, char *err,
                            size_t errlen);

/* wr_kconfig_set fills |out| with explicit values, for tests and flags:
 * |server| ("http(s)://host[:port]"), a CA PEM or NULL (system store), a
 * static bearer token or NULL, and |insecure|. The namespace is "default".
 * Returns 0, WR_ERR_INVAL (a bad server URL or token) or WR_ERR_NOMEM. */
int wr_kconfig_set(struct wr_kconfig *out, const char *server, const char *ca_pem,
                   const char *token, bool insecure);

/* wr_kconfig_free wipes and frees the contents of |c| (not |c| itself) and
 * zeroes it, so freeing twice is harmless. */
void wr_kconfig_free(struct wr_kconfig *c);

/* wr_kconfig_token gives the bearer token to send now in *token (NULL when
 * there is none; valid until the next call or wr_kconfig_free()). A token
 * file is re-read by path (never through a kept descriptor, so an atomic
 * ..data symlink swap is seen) when the cached copy is older than
 * WR_KCONFIG_TOKEN_TTL_MS at |now_ms| (any monotonic clock in ms; a clock
 * that went backwards also re-reads) or was invalidated. Whitespace around
 * the token is stripped. When a timed re-read fails the previous token is
 * kept and given (client-go does the same) and the next call tries again;
 * after an invalidation a failure is returned. Returns 0, -errno,
 * WR_ERR_TOOBIG or WR_ERR_INVAL (empty, or bytes a header cannot carry). */
int wr_kconfig_token(struct wr_kconfig *c, uint64_t now_ms, const char **token);

/* wr_kconfig_token_invalidate makes the next wr_kconfig_token() re-read the
 * token file; call it after a 401 (client-go drops its cached token then and
 * does not retry the request). A no-op for a static token. */
void wr_kconfig_token_invalidate(struct wr_kconfig *c);

#endif
