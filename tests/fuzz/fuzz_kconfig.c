/*
 * fuzz_kconfig.c - libFuzzer target for kubeconfig files (lib/kconfig.c on lib/conf.c).
 *
 * Each input is loaded as a kubeconfig from memory, once for its
 * current-context and once for the context "a". Relative paths resolve in a
 * temporary directory made at start, holding the files the seed corpus names
 * (ca.crt, client.crt, client.key, token). A failure must use a documented
 * code, leave the output untouched and explain itself in a message without
 * control bytes. A success must give a well-formed wr_kconfig: an http(s)
 * server without a trailing '/', a namespace, NUL-terminated PEM, a
 * certificate only with a key, no CA when insecure, a token a header can
 * carry. Any difference aborts.
 *
 * Inputs naming "/proc", "/sys", "kmsg" or "trace_pipe" are skipped: a path
 * may name any file, and a few regular files of procfs and tracefs block on
 * read (a path spelled with YAML escapes could still reach them; unlikely).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "warren/err.h"
#include "warren/kconfig.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzzer's one piece of state: where relative paths point (set once). */
static char fuzz_dir[64];

static const char cert[] = "-----BEGIN CERTIFICATE-----\n"
                           "MIIBgDCCASegAwIBAgIURMM8mYFWynMqV0j/14Fqfl0PBlswCgYIKoZIzj0EAwIw\n"
                           "-----END CERTIFICATE-----\n";
static const char key[] = "-----BEGIN PRIVATE KEY-----\n"
                          "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8EewbEgXE7VHfAbc\n"
                          "-----END PRIVATE KEY-----\n";

static void put(const char *name, const char *data) {
  char path[128];
  FILE *f;

  snprintf(path, sizeof(path), "%s/%s", fuzz_dir, name);
  f = fopen(path, "w");
  if (f == NULL || fputs(data, f) < 0 || fclose(f) != 0)
    abort();
}

static const char *const files[] = {"ca.crt", "client.crt", "client.key", "token"};

static void cleanup(void) {
  char path[128];
  size_t i;

  for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", fuzz_dir, files[i]);
    unlink(path);
  }
  rmdir(fuzz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/warren-fuzz-kconfig.XXXXXX");
  if (mkdtemp(fuzz_dir) == NULL)
    abort();
  put(files[0], cert);
  put(files[1], cert);
  put(files[2], key);
  put(files[3], "fuzz-token\n");
  atexit(cleanup);
  return 0;
}

static void check_msg(const char *err) {
  const char *s;

  if (err[0] == '\0')
    abort();
  for (s = err; *s != '\0'; s++) {
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      abort();
  }
}

static void check_ok(struct wr_kconfig *kc) {
  const char *tok, *s;
  size_t n;
  int rv;

  if (kc->server == NULL || kc->namespace == NULL || kc->namespace[0] == '\0' || kc->source == NULL)
    abort();
  if (strncmp(kc->server, "https://", 8) != 0 && strncmp(kc->server, "http://", 7) != 0)
    abort();
  n = strlen(kc->server);
  if (kc->server[n - 1] == '/' || strpbrk(kc->server, " \r\n\t@?#") != NULL)
    abort();
  if ((kc->ca_pem != NULL && kc->ca_pem[kc->ca_pem_len] != '\0') ||
      (kc->cert_pem != NULL && kc->cert_pem[kc->cert_pem_len] != '\0') ||
      (kc->key_pem != NULL && kc->key_pem[kc->key_pem_len] != '\0'))
    abort();
  if ((kc->cert_pem == NULL) != (kc->key_pem == NULL) || (kc->insecure && kc->ca_pem != NULL))
    abort();
  rv = wr_kconfig_token(kc, 1, &tok);
  if (rv == 0 && tok != NULL) {
    if (tok[0] == '\0')
      abort();
    for (s = tok; *s != '\0'; s++) {
      if ((unsigned char)*s <= 0x20 || *s == 0x7f)
        abort();
    }
  }
  wr_kconfig_token_invalidate(kc);
  (void)wr_kconfig_token(kc, 2, &tok);
}

static void one(const uint8_t *data, size_t size, const char *context) {
  struct wr_kconfig kc, untouched;
  char err[WR_KCONFIG_ERR_MAX] = "";
  int rv;

  memset(&untouched, 0x5a, sizeof(untouched));
  memcpy(&kc, &untouched, sizeof(kc));
  rv = wr_kconfig_load_kubeconfig_mem(&kc, "fuzz", data, size, fuzz_dir, context, err, sizeof(err));
  if (rv != 0) {
    if (rv != WR_ERR_CONFIG && rv != WR_ERR_TOOBIG && rv != WR_ERR_NOMEM)
      abort();
    if (memcmp(&kc, &untouched, sizeof(kc)) != 0)
      abort();
    check_msg(err);
    return;
  }
  check_ok(&kc);
  wr_kconfig_free(&kc);
  if (kc.server != NULL || kc.token != NULL)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const skip[] = {"/proc", "/sys", "kmsg", "trace_pipe"};
  size_t i;

  for (i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
    if (memmem(data, size, skip[i], strlen(skip[i])) != NULL)
      return 0;
  }
  one(data, size, NULL);
  one(data, size, "a");
  return 0;
}
