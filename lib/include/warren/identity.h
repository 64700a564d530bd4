/*
 * identity.h - a node's Ed25519 identity and the textual forms of its endpoint ID.
 *
 * The endpoint ID is the 32-byte Ed25519 public key, written as 64 lowercase
 * hex characters in Kubernetes fields and HTTP headers, and as 52 z-base-32
 * characters in DNS names. The secret key file holds one line: the 32-byte
 * seed in hex. It is created 0600 and refused when group- or world-accessible.
 */
#ifndef WARREN_IDENTITY_H
#define WARREN_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define WR_PUBKEY_LEN 32
#define WR_SEED_LEN 32
#define WR_SECKEY_LEN 64
#define WR_ID_HEX_LEN 64
#define WR_ID_Z32_LEN 52

typedef uint8_t wr_pubkey[WR_PUBKEY_LEN];

typedef struct wr_identity {
  uint8_t seed[WR_SEED_LEN]; /* secret: never logged */
  uint8_t sk[WR_SECKEY_LEN]; /* libsodium secret key (seed || pk) */
  wr_pubkey pk;
} wr_identity;

/* wr_identity_generate fills |id| with a fresh random keypair. */
void wr_identity_generate(wr_identity *id);
/* wr_identity_from_seed derives the keypair from a 32-byte seed. */
void wr_identity_from_seed(wr_identity *id, const uint8_t seed[static WR_SEED_LEN]);
/* wr_identity_load reads |path|. Returns 0, -ENOENT, WR_ERR_PERM (group/world
 * accessible file), WR_ERR_INVAL (malformed content) or another -errno. */
int wr_identity_load(wr_identity *id, const char *path);
/* wr_identity_save writes |id| to |path| atomically with mode 0600. */
int wr_identity_save(const wr_identity *id, const char *path);
/* wr_identity_load_or_create loads |path|, or generates and saves a new
 * identity when it does not exist. *created tells which (may be NULL). */
int wr_identity_load_or_create(wr_identity *id, const char *path, int *created);
/* wr_identity_wipe zeroes the secret material of |id|. */
void wr_identity_wipe(wr_identity *id);

/* wr_id_to_hex writes 64 lowercase hex chars and a NUL. */
void wr_id_to_hex(const wr_pubkey pk, char out[static WR_ID_HEX_LEN + 1]);
/* wr_id_from_hex parses exactly 64 hex chars (either case). Returns 0 or WR_ERR_INVAL. */
int wr_id_from_hex(wr_pubkey pk, const char *s);
/* wr_id_to_z32 writes 52 z-base-32 chars and a NUL. */
void wr_id_to_z32(const wr_pubkey pk, char out[static WR_ID_Z32_LEN + 1]);
/* wr_id_from_z32 parses exactly 52 z-base-32 chars. Returns 0 or WR_ERR_INVAL. */
int wr_id_from_z32(wr_pubkey pk, const char *s);
/* wr_id_parse accepts either form (64 hex or 52 z-base-32). */
int wr_id_parse(wr_pubkey pk, const char *s);

#endif
