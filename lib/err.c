/* err.c - names for warren error codes. */
#include <string.h>

#include "warren/err.h"

const char *wr_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
  case WR_ERR_NOMEM:
    return "out of memory";
  case WR_ERR_INVAL:
    return "invalid argument";
  case WR_ERR_PROTO:
    return "protocol error";
  case WR_ERR_TOOBIG:
    return "input too large";
  case WR_ERR_AGAIN:
    return "resource temporarily unavailable";
  case WR_ERR_TRUNCATED:
    return "truncated input";
  case WR_ERR_VERSION:
    return "unsupported version";
  case WR_ERR_CONFIG:
    return "configuration error";
  case WR_ERR_PERM:
    return "insecure permissions";
  case WR_ERR_CRYPTO:
    return "cryptographic failure";
  case WR_ERR_TLS:
    return "TLS failure";
  case WR_ERR_QUIC:
    return "QUIC failure";
  case WR_ERR_PEER:
    return "peer key mismatch";
  case WR_ERR_REFUSED:
    return "refused";
  case WR_ERR_CLOSED:
    return "closed";
  case WR_ERR_TIMEOUT:
    return "timed out";
  case WR_ERR_NOTFOUND:
    return "not found";
  case WR_ERR_STOPPED:
    return "stopped by callback";
  default:
    break;
  }
  if (err < 0 && err > WR_ERR_BASE)
    return strerror(-err);
  return "unknown error";
}
