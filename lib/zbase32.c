/*
 * zbase32.c - z-base-32 encoding and decoding (docs/internals/identity.md).
 *
 * The input is read as one big-endian bit stream and cut into 5-bit groups;
 * the last group is padded with zero bits. No '=' padding is written. The
 * decoder is strict: it refuses characters outside the alphabet, lengths that
 * no byte string encodes to, and non-zero padding bits, so every byte string
 * has exactly one encoding (up to letter case, see below).
 */
#include <limits.h>

#include "warren/err.h"
#include "warren/zbase32.h"

static const char z32_alphabet[32] = "ybndrfg8ejkmcpqxot1uwisza345h769";

/*
 * z32_value maps a character to its 5-bit value, or -1. Upper-case letters
 * are accepted because DNS names, where these strings travel, are
 * case-insensitive (RFC 4343) and resolvers may change the case.
 */
static int z32_value(unsigned char c) {
  int i;

  if (c >= 'A' && c <= 'Z')
    c = (unsigned char)(c - 'A' + 'a');
  for (i = 0; i < 32; i++) {
    if ((unsigned char)z32_alphabet[i] == c)
      return i;
  }
  return -1;
}

size_t wr_z32_encoded_len(size_t n) {
  /* ceil(8n / 5), written to avoid overflowing 8n. */
  return n / 5 * 8 + (n % 5 * 8 + 4) / 5;
}

int wr_z32_encode(char *out, size_t outlen, const uint8_t *in, size_t n) {
  size_t want, i, o = 0;
  uint32_t acc = 0;
  unsigned bits = 0;

  if (n > (size_t)INT_MAX / 8 * 5)
    return WR_ERR_TOOBIG;
  want = wr_z32_encoded_len(n);
  if (outlen < want + 1)
    return WR_ERR_TOOBIG;
  for (i = 0; i < n; i++) {
    acc = (acc << 8) | in[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out[o++] = z32_alphabet[(acc >> bits) & 31];
    }
  }
  if (bits > 0)
    out[o++] = z32_alphabet[(acc << (5 - bits)) & 31];
  out[o] = '\0';
  return (int)o;
}

int wr_z32_decode(uint8_t *out, size_t outlen, const char *in, size_t len) {
  size_t want, i, o = 0;
  uint32_t acc = 0;
  unsigned bits = 0;

  if (len > (size_t)INT_MAX)
    return WR_ERR_TOOBIG;
  /* A group of 5 or more leftover bits would be a whole character of padding,
   * which no encoder produces: lengths 1, 3 and 6 modulo 8 are invalid. */
  if (len % 8 * 5 % 8 >= 5)
    return WR_ERR_INVAL;
  want = len / 8 * 5 + len % 8 * 5 / 8;
  if (outlen < want)
    return WR_ERR_TOOBIG;
  for (i = 0; i < len; i++) {
    int v = z32_value((unsigned char)in[i]);

    if (v < 0)
      return WR_ERR_INVAL;
    acc = ((acc << 5) | (uint32_t)v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0)
    return WR_ERR_INVAL;
  return (int)o;
}
