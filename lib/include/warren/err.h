/*
 * err.h - the one error convention of warren.
 *
 * Every fallible function returns 0 on success or a negative code: either a
 * negated errno value (-ENOENT, as libuv does) for system failures, or one of
 * the WR_ERR_* codes below for everything else. wr_strerror() names both.
 */
#ifndef WARREN_ERR_H
#define WARREN_ERR_H

enum {
  WR_ERR_BASE = -1000,
  WR_ERR_NOMEM = -1001,     /* allocation failed */
  WR_ERR_INVAL = -1002,     /* invalid argument or input */
  WR_ERR_PROTO = -1003,     /* peer violated the protocol */
  WR_ERR_TOOBIG = -1004,    /* input exceeds a cap */
  WR_ERR_AGAIN = -1005,     /* would block / buffer full, retry when writable */
  WR_ERR_TRUNCATED = -1006, /* need more input */
  WR_ERR_VERSION = -1007,   /* unsupported protocol version */
  WR_ERR_CONFIG = -1008,    /* configuration error (details logged) */
  WR_ERR_PERM = -1009,      /* insecure file permissions */
  WR_ERR_CRYPTO = -1010,    /* cryptographic operation failed */
  WR_ERR_TLS = -1011,       /* TLS handshake or certificate failure */
  WR_ERR_QUIC = -1012,      /* QUIC connection failure */
  WR_ERR_PEER = -1013,      /* peer identity does not match the pinned key */
  WR_ERR_REFUSED = -1014,   /* remote refused the request */
  WR_ERR_CLOSED = -1015,    /* object already closed */
  WR_ERR_TIMEOUT = -1016,   /* operation timed out */
  WR_ERR_NOTFOUND = -1017,  /* no such object */
  WR_ERR_STOPPED = -1018,   /* a callback asked to stop */
  WR_ERR_LAST = -1019
};

/* wr_strerror returns a static description of |err| (WR_ERR_* or -errno). */
const char *wr_strerror(int err);

#endif
