/*
 * zbase32.h - z-base-32 (Zooko's human-oriented base-32), as used by iroh and
 * pkarr for endpoint IDs in DNS names. Bit order is big-endian within the
 * stream; no padding.
 */
#ifndef WARREN_ZBASE32_H
#define WARREN_ZBASE32_H

#include <stddef.h>
#include <stdint.h>

/* wr_z32_encoded_len returns the characters needed for |n| bytes. */
size_t wr_z32_encoded_len(size_t n);
/* wr_z32_encode writes the encoding of |in| and a NUL into |out| (outlen must
 * be at least wr_z32_encoded_len(n)+1). Returns chars written or WR_ERR_TOOBIG. */
int wr_z32_encode(char *out, size_t outlen, const uint8_t *in, size_t n);
/* wr_z32_decode decodes |len| chars into |out|. Returns the byte count, or
 * WR_ERR_INVAL (bad char, non-zero trailing bits, a length no encoding has)
 * or WR_ERR_TOOBIG. Upper-case letters are accepted, as DNS ignores case. */
int wr_z32_decode(uint8_t *out, size_t outlen, const char *in, size_t len);

#endif
