/* test_identity.c - key file format and permissions, endpoint ID text forms. */
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

#include "warren/err.h"
#include "warren/identity.h"

/* RFC 8032 section 7.1, TEST 1. */
static const char rfc_seed_hex[] =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char rfc_pk_hex[] = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

/* From iroh's test_from_txt_lookup (iroh-relay): one key in both forms. */
static const char iroh_hex[] = "1992d53c02cdc04566e5c0edb1ce83305cd550297953a047a445ea3264b54b18";
static const char iroh_z32[] = "dgjpkxyn3zyrk3zfads5duwdgbqpkwbjxfj4yt7rezidr3fijccy";

struct fixture {
  char dir[64];
  char path[128];
};

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));

  if (f == NULL)
    return -1;
  snprintf(f->dir, sizeof(f->dir), "/tmp/warren-test-identity.XXXXXX");
  if (mkdtemp(f->dir) == NULL) {
    free(f);
    return -1;
  }
  snprintf(f->path, sizeof(f->path), "%s/key", f->dir);
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

static void from_hex(uint8_t *out, const char *hex) {
  assert_int_equal(wr_id_from_hex(out, hex), 0);
}

/* write_file creates |path| with |mode| (exactly, despite the umask). */
static void write_file(const char *path, const char *data, size_t n, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, n), (ssize_t)n);
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
}

static mode_t file_mode(const char *path) {
  struct stat st;

  assert_int_equal(stat(path, &st), 0);
  return st.st_mode & 07777;
}

static void test_from_seed_rfc8032(void **state) {
  wr_identity id;
  uint8_t seed[32], pk[32];

  (void)state;
  from_hex(seed, rfc_seed_hex);
  from_hex(pk, rfc_pk_hex);
  wr_identity_from_seed(&id, seed);
  assert_memory_equal(id.seed, seed, 32);
  assert_memory_equal(id.pk, pk, 32);
  assert_memory_equal(id.sk, seed, 32);
  assert_memory_equal(id.sk + 32, pk, 32);
}

static void test_generate_differs(void **state) {
  wr_identity a, b;

  (void)state;
  wr_identity_generate(&a);
  wr_identity_generate(&b);
  assert_memory_not_equal(a.seed, b.seed, 32);
  assert_memory_not_equal(a.pk, b.pk, 32);
}

static void test_wipe(void **state) {
  static const uint8_t zero[sizeof(wr_identity)];
  wr_identity id;

  (void)state;
  wr_identity_generate(&id);
  wr_identity_wipe(&id);
  assert_memory_equal(&id, zero, sizeof(id));
}

static void test_save_then_load(void **state) {
  struct fixture *f = *state;
  wr_identity a, b;
  char hex[65], content[80];
  int fd;
  ssize_t n;

  wr_identity_generate(&a);
  assert_int_equal(wr_identity_save(&a, f->path), 0);
  assert_int_equal(wr_identity_load(&b, f->path), 0);
  assert_memory_equal(&a, &b, sizeof(a));

  /* The file is exactly the lowercase hex seed and a newline. */
  fd = open(f->path, O_RDONLY);
  assert_true(fd >= 0);
  n = read(fd, content, sizeof(content));
  close(fd);
  assert_int_equal(n, 65);
  wr_id_to_hex(a.seed, hex);
  assert_memory_equal(content, hex, 64);
  assert_int_equal(content[64], '\n');
}

static void test_save_replaces_and_leaves_no_tmp(void **state) {
  struct fixture *f = *state;
  wr_identity a, b, c;
  char tmp[160];

  wr_identity_generate(&a);
  wr_identity_generate(&b);
  assert_int_equal(wr_identity_save(&a, f->path), 0);
  assert_int_equal(wr_identity_save(&b, f->path), 0);
  assert_int_equal(wr_identity_load(&c, f->path), 0);
  assert_memory_equal(c.pk, b.pk, 32);
  snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", f->path, (long)getpid());
  assert_int_equal(access(tmp, F_OK), -1);
}

static void test_mode_0600_with_umask_0(void **state) {
  struct fixture *f = *state;
  wr_identity a;
  mode_t old = umask(0);

  wr_identity_generate(&a);
  assert_int_equal(wr_identity_save(&a, f->path), 0);
  umask(old);
  assert_int_equal(file_mode(f->path), 0600);
}

static void test_mode_0600_with_umask_077(void **state) {
  struct fixture *f = *state;
  wr_identity a;
  mode_t old = umask(0777);

  wr_identity_generate(&a);
  assert_int_equal(wr_identity_save(&a, f->path), 0);
  umask(old);
  assert_int_equal(file_mode(f->path), 0600);
}

static void test_creates_parent_0700(void **state) {
  struct fixture *f = *state;
  char path[192], dir[160];
  wr_identity a, b;

  snprintf(dir, sizeof(dir), "%s/a/b", f->dir);
  snprintf(path, sizeof(path), "%s/key", dir);
  wr_identity_generate(&a);
  assert_int_equal(wr_identity_save(&a, path), 0);
  assert_int_equal(file_mode(dir), 0700);
  assert_int_equal(file_mode(path), 0600);
  assert_int_equal(wr_identity_load(&b, path), 0);
  assert_memory_equal(a.pk, b.pk, 32);
}

static void test_load_or_create(void **state) {
  struct fixture *f = *state;
  wr_identity a, b;
  int created = -1;

  assert_int_equal(wr_identity_load_or_create(&a, f->path, &created), 0);
  assert_int_equal(created, 1);
  assert_int_equal(file_mode(f->path), 0600);
  assert_int_equal(wr_identity_load_or_create(&b, f->path, &created), 0);
  assert_int_equal(created, 0);
  assert_memory_equal(&a, &b, sizeof(a));
  assert_int_equal(wr_identity_load_or_create(&b, f->path, NULL), 0);
}

static void test_load_or_create_keeps_errors(void **state) {
  struct fixture *f = *state;
  wr_identity a;
  int created = -1;

  /* A refused file must not be silently replaced by a new key. */
  write_file(f->path, rfc_seed_hex, 64, 0644);
  assert_int_equal(wr_identity_load_or_create(&a, f->path, &created), WR_ERR_PERM);
  assert_int_equal(created, 0);
  assert_int_equal(file_mode(f->path), 0644);
}

static void test_group_or_world_readable_refused(void **state) {
  struct fixture *f = *state;
  static const mode_t modes[] = {0644, 0640, 0604, 0660, 0606, 0610, 0601};
  wr_identity a;
  size_t i;

  for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
    write_file(f->path, rfc_seed_hex, 64, modes[i]);
    assert_int_equal(wr_identity_load(&a, f->path), WR_ERR_PERM);
  }
  write_file(f->path, rfc_seed_hex, 64, 0400);
  assert_int_equal(wr_identity_load(&a, f->path), 0);
}

static void test_missing_file(void **state) {
  struct fixture *f = *state;
  wr_identity a;

  assert_int_equal(wr_identity_load(&a, f->path), -ENOENT);
}

static void test_symlink_refused(void **state) {
  struct fixture *f = *state;
  char target[160];
  wr_identity a, b;

  snprintf(target, sizeof(target), "%s/real", f->dir);
  wr_identity_generate(&a);
  assert_int_equal(wr_identity_save(&a, target), 0);
  assert_int_equal(symlink(target, f->path), 0);
  assert_int_equal(wr_identity_load(&b, f->path), -ELOOP);
}

static void test_directory_refused(void **state) {
  struct fixture *f = *state;
  wr_identity a;

  assert_int_equal(mkdir(f->path, 0700), 0);
  assert_int_equal(wr_identity_load(&a, f->path), WR_ERR_INVAL);
}

static void test_whitespace_and_case(void **state) {
  struct fixture *f = *state;
  char buf[128];
  uint8_t pk[32];
  wr_identity a;
  size_t i;

  from_hex(pk, rfc_pk_hex);
  /* No newline at all. */
  write_file(f->path, rfc_seed_hex, 64, 0600);
  assert_int_equal(wr_identity_load(&a, f->path), 0);
  assert_memory_equal(a.pk, pk, 32);
  /* Trailing whitespace of several kinds. */
  snprintf(buf, sizeof(buf), "%s \t\r\n\n", rfc_seed_hex);
  write_file(f->path, buf, strlen(buf), 0600);
  assert_int_equal(wr_identity_load(&a, f->path), 0);
  assert_memory_equal(a.pk, pk, 32);
  /* Upper-case hex. */
  for (i = 0; i < 64; i++)
    buf[i] = (rfc_seed_hex[i] >= 'a') ? (char)(rfc_seed_hex[i] - 32) : rfc_seed_hex[i];
  buf[64] = '\n';
  write_file(f->path, buf, 65, 0600);
  assert_int_equal(wr_identity_load(&a, f->path), 0);
  assert_memory_equal(a.pk, pk, 32);
}

static void test_malformed(void **state) {
  struct fixture *f = *state;
  char buf[512];
  wr_identity a;

  /* Empty. */
  write_file(f->path, "", 0, 0600);
  assert_int_equal(wr_identity_load(&a, f->path), WR_ERR_INVAL);
  /* Short: 63 hex digits. */
  write_file(f->path, rfc_seed_hex, 63, 0600);
  assert_int_equal(wr_identity_load(&a, f->path), WR_ERR_INVAL);
  /* Short line with newline. */
  snprintf(buf, sizeof(buf), "%.62s\n", rfc_seed_hex);
  write_file(f->path, buf, strlen(buf), 0600);
  assert_int_equal(wr_identity_load(&a, f->path), WR_ERR_INVAL);
  /* Non-hex character. */
  memcpy(buf, rfc_seed_hex, 64);
  buf[17] = 'g';
  buf[64] = '\n';
  write_file(f->path, buf, 65, 0600);
  assert_int_equal(wr_identity_load(&a, f->path), WR_ERR_INVAL);
  /* Leading whitespace. */
  snprintf(buf, sizeof(buf), " %s\n", rfc_seed_hex);
  write_file(f->path, buf, strlen(buf), 0600);
  assert_int_equal(wr_identity_load(&a, f->path), WR_ERR_INVAL);
  /* Too long: 65 hex digits, or a second line. */
  snprintf(buf, sizeof(buf), "%sa\n", rfc_seed_hex);
  write_file(f->path, buf, strlen(buf), 0600);
  assert_int_equal(wr_identity_load(&a, f->path), WR_ERR_INVAL);
  snprintf(buf, sizeof(buf), "%s\n%s\n", rfc_seed_hex, rfc_seed_hex);
  write_file(f->path, buf, strlen(buf), 0600);
  assert_int_equal(wr_identity_load(&a, f->path), WR_ERR_INVAL);
  /* Too long even if only whitespace follows: over 256 bytes in all. */
  memset(buf, '\n', sizeof(buf));
  memcpy(buf, rfc_seed_hex, 64);
  write_file(f->path, buf, 257, 0600);
  assert_int_equal(wr_identity_load(&a, f->path), WR_ERR_INVAL);
  write_file(f->path, buf, 256, 0600);
  assert_int_equal(wr_identity_load(&a, f->path), 0);
  /* A NUL byte. */
  memcpy(buf, rfc_seed_hex, 64);
  buf[64] = '\0';
  write_file(f->path, buf, 65, 0600);
  assert_int_equal(wr_identity_load(&a, f->path), WR_ERR_INVAL);
}

static void test_hex_round_trip(void **state) {
  wr_identity id;
  uint8_t pk[32];
  char hex[65];
  int i;

  (void)state;
  for (i = 0; i < 50; i++) {
    wr_identity_generate(&id);
    wr_id_to_hex(id.pk, hex);
    assert_int_equal(strlen(hex), 64);
    assert_int_equal(wr_id_from_hex(pk, hex), 0);
    assert_memory_equal(pk, id.pk, 32);
  }
  from_hex(pk, rfc_pk_hex);
  wr_id_to_hex(pk, hex);
  assert_string_equal(hex, rfc_pk_hex);
}

static void test_hex_rejects(void **state) {
  uint8_t pk[32], before[32];
  char buf[80];

  (void)state;
  memset(pk, 0xaa, sizeof(pk));
  memcpy(before, pk, sizeof(pk));
  assert_int_equal(wr_id_from_hex(pk, ""), WR_ERR_INVAL);
  snprintf(buf, sizeof(buf), "%.63s", rfc_pk_hex);
  assert_int_equal(wr_id_from_hex(pk, buf), WR_ERR_INVAL);
  snprintf(buf, sizeof(buf), "%s0", rfc_pk_hex);
  assert_int_equal(wr_id_from_hex(pk, buf), WR_ERR_INVAL);
  snprintf(buf, sizeof(buf), "%s", rfc_pk_hex);
  buf[0] = 'x';
  assert_int_equal(wr_id_from_hex(pk, buf), WR_ERR_INVAL);
  snprintf(buf, sizeof(buf), "%s", rfc_pk_hex);
  buf[63] = ' ';
  assert_int_equal(wr_id_from_hex(pk, buf), WR_ERR_INVAL);
  assert_memory_equal(pk, before, 32);
  /* Upper case is accepted. */
  assert_int_equal(
      wr_id_from_hex(pk, "D75A980182B10AB7D54BFED3C964073A0EE172F3DAA62325AF021A68F707511A"), 0);
}

static void test_z32_round_trip(void **state) {
  wr_identity id;
  uint8_t pk[32], key[32];
  char z[53];
  int i;

  (void)state;
  for (i = 0; i < 50; i++) {
    wr_identity_generate(&id);
    wr_id_to_z32(id.pk, z);
    assert_int_equal(strlen(z), 52);
    assert_int_equal(wr_id_from_z32(pk, z), 0);
    assert_memory_equal(pk, id.pk, 32);
  }
  from_hex(key, iroh_hex);
  wr_id_to_z32(key, z);
  assert_string_equal(z, iroh_z32);
  assert_int_equal(wr_id_from_z32(pk, iroh_z32), 0);
  assert_memory_equal(pk, key, 32);
}

static void test_z32_rejects(void **state) {
  uint8_t pk[32];
  char buf[80];

  (void)state;
  assert_int_equal(wr_id_from_z32(pk, ""), WR_ERR_INVAL);
  snprintf(buf, sizeof(buf), "%.51s", iroh_z32);
  assert_int_equal(wr_id_from_z32(pk, buf), WR_ERR_INVAL);
  snprintf(buf, sizeof(buf), "%sy", iroh_z32);
  assert_int_equal(wr_id_from_z32(pk, buf), WR_ERR_INVAL);
  snprintf(buf, sizeof(buf), "%s", iroh_z32);
  buf[3] = 'l';
  assert_int_equal(wr_id_from_z32(pk, buf), WR_ERR_INVAL);
  snprintf(buf, sizeof(buf), "%s", iroh_z32);
  buf[51] = 'b'; /* non-zero trailing bits */
  assert_int_equal(wr_id_from_z32(pk, buf), WR_ERR_INVAL);
}

static void test_id_parse(void **state) {
  uint8_t key[32], pk[32];
  char buf[80];

  (void)state;
  from_hex(key, iroh_hex);
  memset(pk, 0, sizeof(pk));
  assert_int_equal(wr_id_parse(pk, iroh_hex), 0);
  assert_memory_equal(pk, key, 32);
  memset(pk, 0, sizeof(pk));
  assert_int_equal(wr_id_parse(pk, iroh_z32), 0);
  assert_memory_equal(pk, key, 32);
  assert_int_equal(wr_id_parse(pk, ""), WR_ERR_INVAL);
  assert_int_equal(wr_id_parse(pk, "abc"), WR_ERR_INVAL);
  snprintf(buf, sizeof(buf), "%s0", iroh_hex);
  assert_int_equal(wr_id_parse(pk, buf), WR_ERR_INVAL);
  /* 52 hex digits are not z32 (they contain '0' and '2'). */
  snprintf(buf, sizeof(buf), "%.52s", iroh_hex);
  assert_int_equal(wr_id_parse(pk, buf), WR_ERR_INVAL);
  /* 64 z32 characters are not hex. */
  snprintf(buf, sizeof(buf), "%s%.12s", iroh_z32, iroh_z32);
  assert_int_equal(wr_id_parse(pk, buf), WR_ERR_INVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_from_seed_rfc8032),
      cmocka_unit_test(test_generate_differs),
      cmocka_unit_test(test_wipe),
      cmocka_unit_test_setup_teardown(test_save_then_load, setup, teardown),
      cmocka_unit_test_setup_teardown(test_save_replaces_and_leaves_no_tmp, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mode_0600_with_umask_0, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mode_0600_with_umask_077, setup, teardown),
      cmocka_unit_test_setup_teardown(test_creates_parent_0700, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_or_create, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_or_create_keeps_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_group_or_world_readable_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_directory_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_whitespace_and_case, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
      cmocka_unit_test(test_hex_round_trip),
      cmocka_unit_test(test_hex_rejects),
      cmocka_unit_test(test_z32_round_trip),
      cmocka_unit_test(test_z32_rejects),
      cmocka_unit_test(test_id_parse),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
