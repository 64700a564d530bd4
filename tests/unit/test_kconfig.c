/* test_kconfig.c - kubeconfig, in-cluster and default-precedence loading; token re-reads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "warren/err.h"
#include "warren/kconfig.h"

/* A real self-signed P-256 certificate and its key (test only). */
static const char cert_pem[] = "-----BEGIN CERTIFICATE-----\n"
                               "MIIBgDCCASegAwIBAgIURMM8mYFWynMqV0j/14Fqfl0PBlswCgYIKoZIzj0EAwIw\n"
                               "FjEUMBIGA1UEAwwLd2FycmVuLXRlc3QwHhcNMjYxMTI1MjEyNzMwWhcNMzYxMTIy\n"
                               "MjEyNzMwWjAWMRQwEgYDVQQDDAt3YXJyZW4tdGVzdDBZMBMGByqGSM49AgEGCCqG\n"
                               "SM49AwEHA0IABDLGlc7+B/jauW0gZFUWfwrscohcDaYz+qNdQqIwszCgSmO/maVC\n"
                               "YYgn8V3GcMrR1PbzAmIYv+wdVETKqJR+4z6jUzBRMB0GA1UdDgQWBBSMOAJZtxEp\n"
                               "kHjkU7vMjs/cIapN0jAfBgNVHSMEGDAWgBSMOAJZtxEpkHjkU7vMjs/cIapN0jAP\n"
                               "BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIBPO04asqSJoL8TdnJpf\n"
                               "p8l2lcwM77E2o+k+wDeCKK1sAiAI7LTCBdC7IeYy/ayGgukZE4xN/TM0rRYj7/DP\n"
                               "hkfKvQ==\n"
                               "-----END CERTIFICATE-----\n";
static const char key_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8EewbEgXE7VHfAbc\n"
                              "0coscPurndBEPiBITzS16c0tI5qhRANCAAQyxpXO/gf42rltIGRVFn8K7HKIXA2m\n"
                              "M/qjXUKiMLMwoEpjv5mlQmGIJ/FdxnDK0dT28wJiGL/sHVREyqiUfuM+\n"
                              "-----END PRIVATE KEY-----\n";

#define SA "/var/run/secrets/kubernetes.io/serviceaccount"

struct fixture {
  char dir[64];
};

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));

  if (f == NULL)
    return -1;
  snprintf(f->dir, sizeof(f->dir), "/tmp/warren-test-kconfig.XXXXXX");
  if (mkdtemp(f->dir) == NULL) {
    free(f);
    return -1;
  }
  unsetenv("KUBECONFIG");
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  *state = f;
  return 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static int teardown(void **state) {
  struct fixture *f = *state;

  nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

/* path_in writes "<dir>/<name>" into |buf|. */
static const char *path_in(const struct fixture *f, const char *name, char *buf, size_t len) {
  assert_true((size_t)snprintf(buf, len, "%s/%s", f->dir, name) < len);
  return buf;
}

/* mkdirs creates every directory of "<dir>/<rel>" up to its last '/'. */
static void mkdirs(const struct fixture *f, const char *rel) {
  char p[512];
  char *s;

  path_in(f, rel, p, sizeof(p));
  for (s = p + strlen(f->dir) + 1; (s = strchr(s, '/')) != NULL; s++) {
    *s = '\0';
    assert_true(mkdir(p, 0700) == 0 || errno == EEXIST);
    *s = '/';
  }
}

/* put writes |data| to "<dir>/<rel>", creating directories, replacing the file. */
static void put(const struct fixture *f, const char *rel, const char *data) {
  char p[512];
  size_t n = strlen(data);
  int fd;

  mkdirs(f, rel);
  fd = open(path_in(f, rel, p, sizeof(p)), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, n), (ssize_t)n);
  close(fd);
}

/* b64 encodes |s| as standard base64 into a new string. */
static char *b64(const char *s) {
  size_t n = strlen(s), len = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
  char *out = malloc(len);

  assert_non_null(out);
  sodium_bin2base64(out, len, (const unsigned char *)s, n, sodium_base64_VARIANT_ORIGINAL);
  return out;
}

/* load_mem loads |yaml| named "kc" with relative paths resolved in |dir|. */
static int load_mem(struct wr_kconfig *kc, const char *yaml, const char *dir, const char *context,
                    char *err, size_t errlen) {
  return wr_kconfig_load_kubeconfig_mem(kc, "kc", yaml, strlen(yaml), dir, context, err, errlen);
}

/* A kubeconfig with two of everything; current-context is "b". */
static const char two[] = "apiVersion: v1\n"                     /* 1 */
                          "kind: Config\n"                       /* 2 */
                          "clusters:\n"                          /* 3 */
                          "- name: ca\n"                         /* 4 */
                          "  cluster:\n"                         /* 5 */
                          "    server: https://a.example:6443\n" /* 6 */
                          "- name: cb\n"                         /* 7 */
                          "  cluster:\n"                         /* 8 */
                          "    server: https://[fd00::1]:443/\n" /* 9 */
                          "users:\n"                             /* 10 */
                          "- name: ua\n"                         /* 11 */
                          "  user: {token: token-a}\n"           /* 12 */
                          "- name: ub\n"                         /* 13 */
                          "  user:\n"                            /* 14 */
                          "    token: token-b\n"                 /* 15 */
                          "- name: other\n"                      /* 16 */
                          "  user: {exec: {command: x}}\n"       /* 17 */
                          "contexts:\n"                          /* 18 */
                          "- name: a\n"                          /* 19 */
                          "  context: {cluster: ca, user: ua}\n" /* 20 */
                          "- name: b\n"                          /* 21 */
                          "  context:\n"                         /* 22 */
                          "    cluster: cb\n"                    /* 23 */
                          "    user: ub\n"                       /* 24 */
                          "    namespace: team-b\n"              /* 25 */
                          "current-context: b\n"                 /* 26 */
                          "preferences: {}\n";                   /* 27 */

static void test_context_selection(void **state) {
  struct wr_kconfig kc;
  char err[WR_KCONFIG_ERR_MAX] = "";
  const char *tok;

  (void)state;
  memset(&kc, 0, sizeof(kc));
  assert_int_equal(load_mem(&kc, two, NULL, NULL, err, sizeof(err)), 0);
  assert_string_equal(kc.server, "https://[fd00::1]:443");
  assert_string_equal(kc.namespace, "team-b");
  assert_string_equal(kc.source, "kc, context b");
  assert_false(kc.insecure);
  assert_null(kc.ca_pem);
  assert_null(kc.cert_pem);
  assert_null(kc.key_pem);
  assert_null(kc.tls_server_name);
  assert_int_equal(wr_kconfig_token(&kc, 0, &tok), 0);
  assert_string_equal(tok, "token-b");
  wr_kconfig_token_invalidate(&kc); /* a static token stays */
  assert_int_equal(wr_kconfig_token(&kc, 1, &tok), 0);
  assert_string_equal(tok, "token-b");
  wr_kconfig_free(&kc);

  /* An explicit context wins; its namespace defaults to "default". The user
   * "other" (exec) is never looked at. */
  assert_int_equal(load_mem(&kc, two, NULL, "a", err, sizeof(err)), 0);
  assert_string_equal(kc.server, "https://a.example:6443");
  assert_string_equal(kc.namespace, "default");
  assert_int_equal(wr_kconfig_token(&kc, 0, &tok), 0);
  assert_string_equal(tok, "token-a");
  wr_kconfig_free(&kc);
  wr_kconfig_free(&kc); /* twice is harmless */
  assert_null(kc.server);
}

static void test_files_relative(void **state) {
  struct fixture *f = *state;
  struct wr_kconfig kc;
  char err[WR_KCONFIG_ERR_MAX] = "", path[512], cwd[4096];
  const char *tok;

  put(f, "certs/ca.crt", cert_pem);
  put(f, "certs/client.crt", cert_pem);
  put(f, "certs/client.key", key_pem);
  put(f, "kube/token", "  file-token\n\n");
  put(f, "kube/config",
      "apiVersion: v1\n"
      "kind: Config\n"
      "clusters:\n"
      "- name: c\n"
      "  cluster:\n"
      "    server: https://k.example:6443\n"
      "    certificate-authority: ../certs/ca.crt\n"
      "    tls-server-name: kubernetes.default.svc\n"
      "users:\n"
      "- name: u\n"
      "  user:\n"
      "    client-certificate: ../certs/client.crt\n"
      "    client-key: ../certs/client.key\n"
      "    tokenFile: token\n"
      "contexts:\n"
      "- {name: x, context: {cluster: c, user: u}}\n"
      "current-context: x\n");
  memset(&kc, 0, sizeof(kc));
  path_in(f, "kube/config", path, sizeof(path));
  assert_int_equal(wr_kconfig_load_kubeconfig(&kc, path, NULL, err, sizeof(err)), 0);
  assert_int_equal(kc.ca_pem_len, strlen(cert_pem));
  assert_memory_equal(kc.ca_pem, cert_pem, kc.ca_pem_len);
  assert_int_equal(kc.ca_pem[kc.ca_pem_len], '\0');
  assert_int_equal(kc.cert_pem_len, strlen(cert_pem));
  assert_memory_equal(kc.cert_pem, cert_pem, kc.cert_pem_len);
  assert_int_equal(kc.key_pem_len, strlen(key_pem));
  assert_memory_equal(kc.key_pem, key_pem, kc.key_pem_len);
  assert_string_equal(kc.tls_server_name, "kubernetes.default.svc");
  assert_string_equal(kc.token_file, path_in(f, "kube/token", path, sizeof(path)));
  assert_int_equal(wr_kconfig_token(&kc, 5, &tok), 0);
  assert_string_equal(tok, "file-token");
  put(f, "kube/token", "rotated\n");
  assert_int_equal(wr_kconfig_token(&kc, 5 + WR_KCONFIG_TOKEN_TTL_MS, &tok), 0);
  assert_string_equal(tok, "rotated");
  wr_kconfig_free(&kc);

  /* A relative kubeconfig path: the token file is still kept absolute. */
  assert_non_null(getcwd(cwd, sizeof(cwd)));
  assert_int_equal(chdir(f->dir), 0);
  assert_int_equal(wr_kconfig_load_kubeconfig(&kc, "kube/config", NULL, err, sizeof(err)), 0);
  assert_int_equal(chdir(cwd), 0);
  assert_string_equal(kc.token_file, path_in(f, "kube/token", path, sizeof(path)));
  assert_int_equal(kc.key_pem_len, strlen(key_pem));
  wr_kconfig_free(&kc);
}

static void test_data_base64(void **state) {
  struct wr_kconfig kc;
  char err[WR_KCONFIG_ERR_MAX] = "", yaml[8192], wrapped[2048];
  char *ca = b64(cert_pem), *crt = b64(cert_pem), *key = b64(key_pem);
  size_t i, j = 0;

  (void)state;
  /* certificate-authority-data wrapped at 40 columns, as some tools write it. */
  for (i = 0; ca[i] != '\0'; i++) {
    if (i > 0 && i % 40 == 0) {
      memcpy(wrapped + j, "\n      ", 7);
      j += 7;
    }
    wrapped[j++] = ca[i];
  }
  wrapped[j] = '\0';
  snprintf(yaml, sizeof(yaml),
           "clusters:\n"
           "- name: c\n"
           "  cluster:\n"
           "    server: HTTPS://10.0.0.1\n"
           "    certificate-authority-data: |\n"
           "      %s\n"
           "users:\n"
           "- name: u\n"
           "  user:\n"
           "    client-certificate-data: %s\n"
           "    client-key-data: %s\n"
           "contexts:\n"
           "- {name: x, context: {cluster: c, user: u}}\n"
           "current-context: x\n",
           wrapped, crt, key);
  memset(&kc, 0, sizeof(kc));
  if (load_mem(&kc, yaml, NULL, NULL, err, sizeof(err)) != 0)
    fail_msg("%s", err);
  assert_string_equal(kc.server, "https://10.0.0.1");
  assert_int_equal(kc.ca_pem_len, strlen(cert_pem));
  assert_memory_equal(kc.ca_pem, cert_pem, kc.ca_pem_len);
  assert_int_equal(kc.cert_pem_len, strlen(cert_pem));
  assert_memory_equal(kc.cert_pem, cert_pem, kc.cert_pem_len);
  assert_int_equal(kc.key_pem_len, strlen(key_pem));
  assert_memory_equal(kc.key_pem, key_pem, kc.key_pem_len);
  assert_int_equal(kc.key_pem[kc.key_pem_len], '\0');
  assert_null(kc.token);
  wr_kconfig_free(&kc);
  free(ca);
  free(crt);
  free(key);
}

static void test_insecure(void **state) {
  struct wr_kconfig kc;
  char err[WR_KCONFIG_ERR_MAX] = "";

  (void)state;
  memset(&kc, 0, sizeof(kc));
  assert_int_equal(load_mem(&kc,
                            "clusters:\n"
                            "- name: c\n"
                            "  cluster: {server: 'https://h:1', insecure-skip-tls-verify: true}\n"
                            "contexts: [{name: x, context: {cluster: c}}]\n"
                            "current-context: x\n",
                            NULL, NULL, err, sizeof(err)),
                   0);
  assert_true(kc.insecure);
  assert_null(kc.ca_pem);
  assert_null(kc.token); /* a context without a user */
  wr_kconfig_free(&kc);
}

struct bad {
  const char *yaml;
  const char *context;
  const char *want;
};

static const char head[] = "clusters:\n"                  /* 1 */
                           "- name: c\n"                  /* 2 */
                           "  cluster:\n"                 /* 3 */
                           "    server: https://h:6443\n" /* 4 */
                           "contexts:\n"                  /* 5 */
                           "- name: x\n"                  /* 6 */
                           "  context:\n"                 /* 7 */
                           "    cluster: c\n"             /* 8 */
                           "    user: u\n"                /* 9 */
                           "current-context: x\n"         /* 10 */
                           "users:\n"                     /* 11 */
                           "- name: u\n"                  /* 12 */
                           "  user:\n";                   /* 13 */

static void test_errors(void **state) {
  static const struct bad cases[] = {
      {"clusters: []\ncontexts: []\n", NULL,
       "kc:1: current-context: not set, and no context was given"},
      {"current-context: x\ncontexts: []\n", NULL, "kc:1: current-context: no context named \"x\""},
      {"current-context: \"\"\ncontexts: [{name: y, context: {cluster: c}}]\n", "x",
       "kc:2: contexts: no context named \"x\""},
      {"contexts: [{name: y, context: {cluster: nope}}]\n", "y",
       "kc:1: contexts[0].context.cluster: no cluster named \"nope\""},
      {"clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
       "contexts: [{name: y, context: {cluster: c, user: ghost}}]\n",
       "y", "kc:2: contexts[0].context.user: no user named \"ghost\""},
      {"clusters: [{name: c, cluster: {server: 'https://h'}}, {name: c, cluster: {}}]\n"
       "contexts: [{name: y, context: {cluster: c}}]\n",
       "y", "kc:1: clusters[1].name: duplicate name \"c\" (first at line 1)"},
      {"clusters: [{name: c, cluster: {server: 'h:6443'}}]\n"
       "contexts: [{name: y, context: {cluster: c}}]\n",
       "y", "kc:1: clusters[0].cluster.server: \"h:6443\" must start with https:// (or http://)"},
      {"clusters: [{name: c, cluster: {server: 'https://fd00::1:443'}}]\n"
       "contexts: [{name: y, context: {cluster: c}}]\n",
       "y",
       "kc:1: clusters[0].cluster.server: \"https://fd00::1:443\" has an IPv6 address without "
       "[brackets]"},
      {"clusters: [{name: c, cluster: {server: 'https://u:p@h'}}]\n"
       "contexts: [{name: y, context: {cluster: c}}]\n",
       "y",
       "kc:1: clusters[0].cluster.server: \"https://u:p@h\" has a space, control byte, '?', '#', "
       "'@' or '\\'"},
      {"clusters: [{name: c, cluster: {server: 'https://h', proxy-url: 'http://p:3128'}}]\n"
       "contexts: [{name: y, context: {cluster: c}}]\n",
       "y",
       "kc:1: clusters[0].cluster.proxy-url: proxy-url is not supported; connect to the server "
       "directly"},
      {"clusters: [{name: c, cluster: {server: 'https://h', insecure-skip-tls-verify: true,\n"
       "  certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t}}]\n"
       "contexts: [{name: y, context: {cluster: c}}]\n",
       "y",
       "kc:1: clusters[0].cluster.insecure-skip-tls-verify: cannot be combined with a certificate "
       "authority"},
      {"clusters: [{name: c, cluster: {server: 'https://h', certificate-authority-data: 'a$b='}}]\n"
       "contexts: [{name: y, context: {cluster: c}}]\n",
       "y", "kc:1: clusters[0].cluster.certificate-authority-data: invalid base64"},
      {"clusters: [{name: c, cluster: {server: 'https://h', certificate-authority-data: "
       "'aGVsbG8'}}]\n"
       "contexts: [{name: y, context: {cluster: c}}]\n",
       "y", "kc:1: clusters[0].cluster.certificate-authority-data: invalid base64"},
      {"clusters: [{name: c, cluster: {server: 'https://h', certificate-authority-data: "
       "aGVsbG8=}}]\n"
       "contexts: [{name: y, context: {cluster: c}}]\n",
       "y",
       "kc:1: clusters[0].cluster.certificate-authority-data: the decoded data is not a PEM "
       "certificate"},
      {"clusters: [{name: c, cluster: {server: 'https://h', certificate-authority: ca.crt}}]\n"
       "contexts: [{name: y, context: {cluster: c}}]\n",
       "y",
       "kc:1: clusters[0].cluster.certificate-authority: relative path \"ca.crt\" with no "
       "directory to resolve it in"},
      {"clusters: [{name: c, cluster: {server: 'https://h', certificate-authority: /nonexistent/"
       "ca.crt, certificate-authority-data: eA==}}]\n"
       "contexts: [{name: y, context: {cluster: c}}]\n",
       "y",
       "kc:1: clusters[0].cluster.certificate-authority-data: certificate-authority and "
       "certificate-authority-data are both set; keep one"},
      {"clusters: [{name: c, cluster: {server: 'https://h', certificate-authority: "
       "/nonexistent/ca.crt}}]\n"
       "contexts: [{name: y, context: {cluster: c}}]\n",
       "y",
       "kc:1: clusters[0].cluster.certificate-authority: /nonexistent/ca.crt: No such file or "
       "directory"},
      {"apiVersion: v2\n", NULL, "kc:1: apiVersion: expected v1, found \"v2\""},
      {"kind: Pod\n", NULL, "kc:1: kind: expected Config, found \"Pod\""},
      {"- a\n", NULL, "kc:1: expected a mapping, found a sequence"},
      {"", NULL, "kc: expected one YAML document, found 0"},
      {"contexts: [{name: y, context: {cluster: c, namespace: Team_B}}]\n", "y",
       "kc:1: contexts[0].context.namespace: \"Team_B\" is not a namespace name (a DNS label)"},
  };
  static const struct bad user_cases[] = {
      {"    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n", NULL,
       "kc:15: users[0].user.exec: exec credential plugins are not supported; use token, "
       "tokenFile or a client certificate"},
      {"    auth-provider: {name: gcp}\n", NULL,
       "kc:14: users[0].user.auth-provider: auth-provider plugins are not supported; use token, "
       "tokenFile or a client certificate"},
      {"    username: admin\n    password: secret\n", NULL,
       "kc:14: users[0].user.username: basic authentication (username/password) is not "
       "supported: Kubernetes removed it in 1.19; use a token or a client certificate"},
      {"    password: secret\n", NULL,
       "kc:14: users[0].user.password: basic authentication (username/password) is not "
       "supported: Kubernetes removed it in 1.19; use a token or a client certificate"},
      {"    as: someone\n", NULL, "kc:14: users[0].user.as: impersonation is not supported"},
      {"    token: \"two words\"\n", NULL,
       "kc:14: users[0].user.token: not a usable bearer token (whitespace or control bytes)"},
      {"    token: t\n    tokenFile: /x\n", NULL,
       "kc:15: users[0].user.tokenFile: token and tokenFile are both set; keep one"},
      {"    tokenFile: /nonexistent/token\n", NULL,
       "kc:14: users[0].user.tokenFile: /nonexistent/token: No such file or directory"},
      {"    client-key-data: \"!!\"\n", NULL,
       "kc:14: users[0].user.client-key-data: invalid base64"},
      {"    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n", NULL,
       "kc:14: users[0].user.client-key: a client certificate needs client-key or "
       "client-key-data"},
      {"    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n"
       "    client-key-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n",
       NULL, "kc:15: users[0].user.client-key-data: the decoded data is not a PEM private key"},
  };
  struct wr_kconfig kc, untouched;
  char err[WR_KCONFIG_ERR_MAX], yaml[4096];
  size_t i;

  (void)state;
  memset(&untouched, 0xa5, sizeof(untouched));
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    memcpy(&kc, &untouched, sizeof(kc));
    err[0] = '\0';
    assert_int_equal(load_mem(&kc, cases[i].yaml, NULL, cases[i].context, err, sizeof(err)),
                     WR_ERR_CONFIG);
    assert_string_equal(err, cases[i].want);
    assert_memory_equal(&kc, &untouched, sizeof(kc));
  }
  for (i = 0; i < sizeof(user_cases) / sizeof(user_cases[0]); i++) {
    snprintf(yaml, sizeof(yaml), "%s%s", head, user_cases[i].yaml);
    memcpy(&kc, &untouched, sizeof(kc));
    err[0] = '\0';
    assert_int_equal(load_mem(&kc, yaml, NULL, NULL, err, sizeof(err)), WR_ERR_CONFIG);
    assert_string_equal(err, user_cases[i].want);
    assert_memory_equal(&kc, &untouched, sizeof(kc));
  }
}

/* The secrets of a refused file never appear in its message. */
static void test_errors_do_not_leak(void **state) {
  struct wr_kconfig kc;
  char err[WR_KCONFIG_ERR_MAX], yaml[4096];

  (void)state;
  memset(&kc, 0, sizeof(kc));
  snprintf(yaml, sizeof(yaml), "%s    token: \"s3cr3t\\nX\"\n", head);
  assert_int_equal(load_mem(&kc, yaml, NULL, NULL, err, sizeof(err)), WR_ERR_CONFIG);
  assert_null(strstr(err, "s3cr3t"));
  snprintf(yaml, sizeof(yaml), "%s    token: [s3cr3t]\n", head);
  assert_int_equal(load_mem(&kc, yaml, NULL, NULL, err, sizeof(err)), WR_ERR_CONFIG);
  assert_null(strstr(err, "s3cr3t"));
}

static void test_file_errors(void **state) {
  struct fixture *f = *state;
  struct wr_kconfig kc;
  char err[WR_KCONFIG_ERR_MAX], path[256], want[1024], fifo[256];
  char *big;

  memset(&kc, 0, sizeof(kc));
  /* The file name starts every message. */
  put(f, "config",
      "clusters: []\n"
      "contexts:\n"
      "- name: a\n"
      "  context: {cluster: c}\n"
      "- name: b\n"
      "  context: {cluster: c}\n"
      "- name: d\n"
      "  context: {cluster: foo}\n"
      "current-context: d\n");
  path_in(f, "config", path, sizeof(path));
  assert_int_equal(wr_kconfig_load_kubeconfig(&kc, path, NULL, err, sizeof(err)), WR_ERR_CONFIG);
  snprintf(want, sizeof(want),
           "kubeconfig %s:8: contexts[2].context.cluster: no cluster named \"foo\"", path);
  assert_string_equal(err, want);

  path_in(f, "missing", path, sizeof(path));
  assert_int_equal(wr_kconfig_load_kubeconfig(&kc, path, NULL, err, sizeof(err)), -ENOENT);
  snprintf(want, sizeof(want), "kubeconfig %s: No such file or directory", path);
  assert_string_equal(err, want);

  /* Capped at 1 MiB. */
  big = malloc(WR_KCONFIG_FILE_MAX + 2);
  assert_non_null(big);
  memset(big, '#', WR_KCONFIG_FILE_MAX + 1);
  big[WR_KCONFIG_FILE_MAX + 1] = '\0';
  put(f, "big", big);
  path_in(f, "big", path, sizeof(path));
  assert_int_equal(wr_kconfig_load_kubeconfig(&kc, path, NULL, err, sizeof(err)), WR_ERR_TOOBIG);
  snprintf(want, sizeof(want), "kubeconfig %s: larger than %u bytes", path, WR_KCONFIG_FILE_MAX);
  assert_string_equal(err, want);
  free(big);

  /* A FIFO is refused without blocking on it. */
  path_in(f, "fifo", fifo, sizeof(fifo));
  assert_int_equal(mkfifo(fifo, 0600), 0);
  put(f, "config",
      "clusters: [{name: c, cluster: {server: 'https://h', certificate-authority: "
      "fifo}}]\n"
      "contexts: [{name: y, context: {cluster: c}}]\n"
      "current-context: y\n");
  path_in(f, "config", path, sizeof(path));
  assert_int_equal(wr_kconfig_load_kubeconfig(&kc, path, NULL, err, sizeof(err)), WR_ERR_CONFIG);
  snprintf(want, sizeof(want),
           "kubeconfig %s:1: clusters[0].cluster.certificate-authority: %s: not a regular file",
           path, fifo);
  assert_string_equal(err, want);
  assert_int_equal(wr_kconfig_load_kubeconfig(&kc, fifo, NULL, err, sizeof(err)), -EINVAL);
  assert_int_equal(wr_kconfig_load_kubeconfig(&kc, f->dir, NULL, err, sizeof(err)), -EISDIR);
  assert_null(kc.server);
}

/* make_sa creates <dir>/root/SA with kubelet's layout: files are symlinks
 * through "..data" into a timestamped directory. */
static void make_sa(const struct fixture *f, const char *token, const char *ns) {
  char target[512], link[512];
  const char *names[] = {"token", "ca.crt", "namespace"};
  size_t i;

  put(f, "root" SA "/..2024_01/token", token);
  put(f, "root" SA "/..2024_01/ca.crt", cert_pem);
  if (ns != NULL)
    put(f, "root" SA "/..2024_01/namespace", ns);
  assert_int_equal(symlink("..2024_01", path_in(f, "root" SA "/..data", link, sizeof(link))), 0);
  for (i = 0; i < 3; i++) {
    if (i == 2 && ns == NULL)
      continue;
    snprintf(target, sizeof(target), "..data/%s", names[i]);
    snprintf(link, sizeof(link), "%s/root" SA "/%s", f->dir, names[i]);
    assert_int_equal(symlink(target, link), 0);
  }
}

/* swap_token does what the kubelet does on rotation: a new timestamped
 * directory, a new "..data" link renamed over the old one. */
static void swap_token(const struct fixture *f, const char *dirname, const char *token) {
  char rel[256], target[512], tmp[512];

  snprintf(rel, sizeof(rel), "root" SA "/%s/token", dirname);
  put(f, rel, token);
  snprintf(rel, sizeof(rel), "root" SA "/%s/ca.crt", dirname);
  put(f, rel, cert_pem);
  path_in(f, "root" SA "/..data_tmp", tmp, sizeof(tmp));
  assert_int_equal(symlink(dirname, tmp), 0);
  assert_int_equal(rename(tmp, path_in(f, "root" SA "/..data", target, sizeof(target))), 0);
}

static void test_incluster(void **state) {
  struct fixture *f = *state;
  struct wr_kconfig kc;
  char err[WR_KCONFIG_ERR_MAX], root[512], want[1024];
  const char *tok;

  memset(&kc, 0, sizeof(kc));
  path_in(f, "root", root, sizeof(root));
  assert_int_equal(wr_kconfig_load_incluster(&kc, root, err, sizeof(err)), WR_ERR_NOTFOUND);
  make_sa(f, "jwt-1\n", "operators\n");
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  assert_int_equal(wr_kconfig_load_incluster(&kc, root, err, sizeof(err)), 0);
  assert_string_equal(kc.server, "https://10.96.0.1:443");
  assert_string_equal(kc.namespace, "operators");
  assert_int_equal(kc.ca_pem_len, strlen(cert_pem));
  assert_memory_equal(kc.ca_pem, cert_pem, kc.ca_pem_len);
  assert_false(kc.insecure);
  assert_null(kc.cert_pem);
  assert_int_equal(wr_kconfig_token(&kc, 100, &tok), 0);
  assert_string_equal(tok, "jwt-1");
  snprintf(want, sizeof(want), "%s" SA "/token", root);
  assert_string_equal(kc.token_file, want);
  wr_kconfig_free(&kc);

  /* IPv6 service address; a root with a trailing '/'. */
  setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
  strcat(root, "/");
  assert_int_equal(wr_kconfig_load_incluster(&kc, root, err, sizeof(err)), 0);
  assert_string_equal(kc.server, "https://[fd00:10:96::1]:443");
  wr_kconfig_free(&kc);

  setenv("KUBERNETES_SERVICE_PORT", "https", 1);
  assert_int_equal(wr_kconfig_load_incluster(&kc, root, err, sizeof(err)), WR_ERR_CONFIG);
  assert_string_equal(err, "in-cluster: KUBERNETES_SERVICE_HOST \"fd00:10:96::1\" and "
                           "KUBERNETES_SERVICE_PORT \"https\" give a URL that has an invalid "
                           "port (1 to 65535)");
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);

  /* No namespace file: "default". An empty token is refused. */
  path_in(f, "root" SA "/namespace", want, sizeof(want));
  assert_int_equal(unlink(want), 0);
  assert_int_equal(wr_kconfig_load_incluster(&kc, root, err, sizeof(err)), 0);
  assert_string_equal(kc.namespace, "default");
  assert_string_equal(kc.server, "https://[fd00:10:96::1]:443");
  wr_kconfig_free(&kc);
  put(f, "root" SA "/..2024_01/token", " \n");
  assert_int_equal(wr_kconfig_load_incluster(&kc, root, err, sizeof(err)), WR_ERR_CONFIG);
  assert_non_null(strstr(err, "/token: not a usable bearer token"));
  path_in(f, "root" SA "/..2024_01/token", want, sizeof(want));
  assert_int_equal(unlink(want), 0);
  assert_int_equal(wr_kconfig_load_incluster(&kc, root, err, sizeof(err)), WR_ERR_CONFIG);
  assert_non_null(strstr(err, "/token: No such file or directory"));
  assert_null(kc.server);
}

static void test_token_reread(void **state) {
  struct fixture *f = *state;
  struct wr_kconfig kc;
  char err[WR_KCONFIG_ERR_MAX], root[512], path[512];
  const uint64_t t0 = 1000000;
  const char *tok;

  memset(&kc, 0, sizeof(kc));
  make_sa(f, "jwt-1", NULL);
  setenv("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc", 1);
  setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
  path_in(f, "root", root, sizeof(root));
  assert_int_equal(wr_kconfig_load_incluster(&kc, root, err, sizeof(err)), 0);
  assert_string_equal(kc.server, "https://kubernetes.default.svc:6443");
  assert_int_equal(wr_kconfig_token(&kc, t0, &tok), 0);
  assert_string_equal(tok, "jwt-1");

  /* Written in place: seen only after 60 s. */
  put(f, "root" SA "/..2024_01/token", "jwt-2\n");
  assert_int_equal(wr_kconfig_token(&kc, t0 + WR_KCONFIG_TOKEN_TTL_MS - 1, &tok), 0);
  assert_string_equal(tok, "jwt-1");
  assert_int_equal(wr_kconfig_token(&kc, t0 + WR_KCONFIG_TOKEN_TTL_MS, &tok), 0);
  assert_string_equal(tok, "jwt-2");

  /* After a 401: at once. */
  put(f, "root" SA "/..2024_01/token", "jwt-3");
  assert_int_equal(wr_kconfig_token(&kc, t0 + WR_KCONFIG_TOKEN_TTL_MS + 1, &tok), 0);
  assert_string_equal(tok, "jwt-2");
  wr_kconfig_token_invalidate(&kc);
  assert_int_equal(wr_kconfig_token(&kc, t0 + WR_KCONFIG_TOKEN_TTL_MS + 2, &tok), 0);
  assert_string_equal(tok, "jwt-3");

  /* The kubelet's atomic ..data swap is followed (the path is re-opened). */
  swap_token(f, "..2024_02", "jwt-4\n");
  path_in(f, "root" SA "/..2024_01/token", path, sizeof(path));
  assert_int_equal(unlink(path), 0);
  wr_kconfig_token_invalidate(&kc);
  assert_int_equal(wr_kconfig_token(&kc, t0 + 2 * WR_KCONFIG_TOKEN_TTL_MS, &tok), 0);
  assert_string_equal(tok, "jwt-4");

  /* A clock that went backwards re-reads too. */
  put(f, "root" SA "/..2024_02/token", "jwt-5");
  assert_int_equal(wr_kconfig_token(&kc, t0, &tok), 0);
  assert_string_equal(tok, "jwt-5");
  wr_kconfig_free(&kc);
}

static void test_token_reread_failure(void **state) {
  struct fixture *f = *state;
  struct wr_kconfig kc;
  char err[WR_KCONFIG_ERR_MAX], root[512], path[512], *big;
  const char *tok;

  memset(&kc, 0, sizeof(kc));
  make_sa(f, "jwt-1", "ns");
  setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  path_in(f, "root", root, sizeof(root));
  assert_int_equal(wr_kconfig_load_incluster(&kc, root, err, sizeof(err)), 0);
  /* Invalidated before the first use: re-read at once. */
  put(f, "root" SA "/..2024_01/token", "jwt-2");
  wr_kconfig_token_invalidate(&kc);
  assert_int_equal(wr_kconfig_token(&kc, 0, &tok), 0);
  assert_string_equal(tok, "jwt-2");

  /* A timed re-read that fails keeps the token; after a 401 it is an error. */
  path_in(f, "root" SA "/..2024_01/token", path, sizeof(path));
  assert_int_equal(unlink(path), 0);
  assert_int_equal(wr_kconfig_token(&kc, WR_KCONFIG_TOKEN_TTL_MS, &tok), 0);
  assert_string_equal(tok, "jwt-2");
  wr_kconfig_token_invalidate(&kc);
  assert_int_equal(wr_kconfig_token(&kc, WR_KCONFIG_TOKEN_TTL_MS + 1, &tok), -ENOENT);
  assert_null(tok);
  put(f, "root" SA "/..2024_01/token", "");
  assert_int_equal(wr_kconfig_token(&kc, WR_KCONFIG_TOKEN_TTL_MS + 2, &tok), WR_ERR_INVAL);
  put(f, "root" SA "/..2024_01/token", "bad\ntoken");
  assert_int_equal(wr_kconfig_token(&kc, WR_KCONFIG_TOKEN_TTL_MS + 3, &tok), WR_ERR_INVAL);
  big = malloc(WR_KCONFIG_TOKEN_MAX + 2);
  assert_non_null(big);
  memset(big, 'a', WR_KCONFIG_TOKEN_MAX + 1);
  big[WR_KCONFIG_TOKEN_MAX + 1] = '\0';
  put(f, "root" SA "/..2024_01/token", big);
  assert_int_equal(wr_kconfig_token(&kc, WR_KCONFIG_TOKEN_TTL_MS + 4, &tok), WR_ERR_TOOBIG);
  big[WR_KCONFIG_TOKEN_MAX] = '\0'; /* exactly the cap is fine */
  put(f, "root" SA "/..2024_01/token", big);
  assert_int_equal(wr_kconfig_token(&kc, WR_KCONFIG_TOKEN_TTL_MS + 5, &tok), 0);
  assert_int_equal(strlen(tok), WR_KCONFIG_TOKEN_MAX);
  free(big);
  put(f, "root" SA "/..2024_01/token", "jwt-3\r\n");
  wr_kconfig_token_invalidate(&kc);
  assert_int_equal(wr_kconfig_token(&kc, WR_KCONFIG_TOKEN_TTL_MS + 6, &tok), 0);
  assert_string_equal(tok, "jwt-3");
  wr_kconfig_free(&kc);
}

/* config_named writes a one-context kubeconfig whose server names |ctx|. */
static void config_named(const struct fixture *f, const char *rel, const char *ctx, bool current) {
  char yaml[1024];

  snprintf(yaml, sizeof(yaml),
           "clusters: [{name: c, cluster: {server: 'https://%s.example'}}]\n"
           "contexts: [{name: %s, context: {cluster: c}}]\n"
           "%s%s\n",
           ctx, ctx, current ? "current-context: " : "", current ? ctx : "");
  put(f, rel, yaml);
}

static void test_default_precedence(void **state) {
  struct fixture *f = *state;
  struct wr_kconfig kc;
  char err[WR_KCONFIG_ERR_MAX], home[256], env[2048], a[256], b[256], c[256], d[256];
  char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

  memset(&kc, 0, sizeof(kc));
  path_in(f, "home", home, sizeof(home));
  assert_int_equal(mkdir(home, 0700), 0);
  setenv("HOME", home, 1);

  /* Nothing at all. */
  assert_int_equal(wr_kconfig_load_default(&kc, NULL, err, sizeof(err)), WR_ERR_NOTFOUND);
  assert_non_null(strstr(err, "no Kubernetes API configuration"));

  /* ~/.kube/config */
  config_named(f, "home/.kube/config", "home", true);
  assert_int_equal(wr_kconfig_load_default(&kc, "", err, sizeof(err)), 0);
  assert_string_equal(kc.server, "https://home.example");
  wr_kconfig_free(&kc);

  /* $KUBECONFIG: missing files are skipped, and so is a file without
   * current-context; the first file that sets it is used alone. */
  config_named(f, "nocurrent", "nocurrent", false);
  config_named(f, "good", "good", true);
  config_named(f, "later", "later", true);
  snprintf(env, sizeof(env), "%s::%s:%s:%s", path_in(f, "missing", a, sizeof(a)),
           path_in(f, "nocurrent", b, sizeof(b)), path_in(f, "good", c, sizeof(c)),
           path_in(f, "later", d, sizeof(d)));
  setenv("KUBECONFIG", env, 1);
  assert_int_equal(wr_kconfig_load_default(&kc, NULL, err, sizeof(err)), 0);
  assert_string_equal(kc.server, "https://good.example");
  assert_non_null(strstr(kc.source, "/good, context good"));
  wr_kconfig_free(&kc);

  /* The flag wins over $KUBECONFIG. */
  assert_int_equal(wr_kconfig_load_default(&kc, d, err, sizeof(err)), 0);
  assert_string_equal(kc.server, "https://later.example");
  wr_kconfig_free(&kc);

  /* A broken file in the list stops the search. */
  put(f, "broken", "clusters: [\n");
  snprintf(env, sizeof(env), "%s:%s", path_in(f, "broken", a, sizeof(a)), c);
  setenv("KUBECONFIG", env, 1);
  assert_int_equal(wr_kconfig_load_default(&kc, NULL, err, sizeof(err)), WR_ERR_CONFIG);
  assert_non_null(strstr(err, "/broken:"));

  /* No usable file in the list: an error, not ~/.kube/config. */
  snprintf(env, sizeof(env), "%s:%s", path_in(f, "missing", a, sizeof(a)), b);
  setenv("KUBECONFIG", env, 1);
  assert_int_equal(wr_kconfig_load_default(&kc, NULL, err, sizeof(err)), WR_ERR_NOTFOUND);
  assert_non_null(strstr(err, "no file in the list exists and sets current-context"));
  unsetenv("KUBECONFIG");

  /* In a pod whose service account cannot be read (none here under "/"),
   * ~/.kube/config is the fallback; without it the in-cluster error stands. */
  if (access(SA "/token", F_OK) != 0) {
    setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(wr_kconfig_load_default(&kc, NULL, err, sizeof(err)), 0);
    assert_string_equal(kc.server, "https://home.example");
    wr_kconfig_free(&kc);
    path_in(f, "home/.kube/config", a, sizeof(a));
    assert_int_equal(unlink(a), 0);
    assert_int_equal(wr_kconfig_load_default(&kc, NULL, err, sizeof(err)), WR_ERR_CONFIG);
    assert_non_null(strstr(err, "in-cluster: " SA "/token: "));
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
  }
  if (old_home != NULL)
    setenv("HOME", old_home, 1);
  free(old_home);
}

static void test_set(void **state) {
  struct wr_kconfig kc;
  const char *tok;

  (void)state;
  memset(&kc, 0, sizeof(kc));
  assert_int_equal(wr_kconfig_set(&kc, "https://127.0.0.1:6443/", cert_pem, "t0k", false), 0);
  assert_string_equal(kc.server, "https://127.0.0.1:6443");
  assert_string_equal(kc.namespace, "default");
  assert_int_equal(kc.ca_pem_len, strlen(cert_pem));
  assert_int_equal(wr_kconfig_token(&kc, 0, &tok), 0);
  assert_string_equal(tok, "t0k");
  wr_kconfig_free(&kc);
  assert_int_equal(wr_kconfig_set(&kc, "http://[::1]:8080/prefix", NULL, NULL, true), 0);
  assert_string_equal(kc.server, "http://[::1]:8080/prefix");
  assert_true(kc.insecure);
  assert_int_equal(wr_kconfig_token(&kc, 0, &tok), 0);
  assert_null(tok);
  wr_kconfig_free(&kc);
  assert_int_equal(wr_kconfig_set(&kc, "ftp://h", NULL, NULL, false), WR_ERR_INVAL);
  assert_int_equal(wr_kconfig_set(&kc, "https://", NULL, NULL, false), WR_ERR_INVAL);
  assert_int_equal(wr_kconfig_set(&kc, "https://h:0", NULL, NULL, false), WR_ERR_INVAL);
  assert_int_equal(wr_kconfig_set(&kc, "https://h:65536", NULL, NULL, false), WR_ERR_INVAL);
  assert_int_equal(wr_kconfig_set(&kc, "https://[::1", NULL, NULL, false), WR_ERR_INVAL);
  assert_int_equal(wr_kconfig_set(&kc, "https://[::1]x", NULL, NULL, false), WR_ERR_INVAL);
  assert_int_equal(wr_kconfig_set(&kc, "https://h/a b", NULL, NULL, false), WR_ERR_INVAL);
  assert_int_equal(wr_kconfig_set(&kc, "https://h", "not pem", NULL, false), WR_ERR_INVAL);
  assert_int_equal(wr_kconfig_set(&kc, "https://h", NULL, "a\r\nX-Evil: 1", false), WR_ERR_INVAL);
  assert_null(kc.server);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_context_selection),
      cmocka_unit_test_setup_teardown(test_files_relative, setup, teardown),
      cmocka_unit_test(test_data_base64),
      cmocka_unit_test(test_insecure),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_errors_do_not_leak),
      cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_incluster, setup, teardown),
      cmocka_unit_test_setup_teardown(test_token_reread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_token_reread_failure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_default_precedence, setup, teardown),
      cmocka_unit_test(test_set),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
