/*
 * tunnel_hdr.h - the header that opens every tunnel stream (docs/internals/tunnel-header.md).
 *
 * Each proxied connection is one QUIC stream. The gateway writes a request
 * header, the agent answers with a response header, then raw bytes flow both
 * ways until each side's FIN. Both headers share one frame layout:
 *
 *   magic "WT" | version u8 (=1) | type u8 | body length u16 (network order) | body
 *
 * The body is a sequence of TLV fields: tag u8 | length u16 | value. Unknown
 * tags are skipped (forward compatibility); required ones must appear once.
 * The body is capped at WR_THDR_MAX_BODY bytes. This codec does no I/O.
 */
#ifndef WARREN_TUNNEL_HDR_H
#define WARREN_TUNNEL_HDR_H

#include <stddef.h>
#include <stdint.h>

#define WR_THDR_VERSION 1
#define WR_THDR_PREFIX 6 /* magic(2) + version + type + length(2) */
#define WR_THDR_MAX_BODY 2048
#define WR_THDR_MAX (WR_THDR_PREFIX + WR_THDR_MAX_BODY)
#define WR_THDR_TARGET_MAX 261 /* host (253) + ':' + port + brackets */
#define WR_THDR_PEER_MAX 63    /* client address "ip:port" for logging */
#define WR_THDR_REASON_MAX 255

enum wr_thdr_type { WR_THDR_REQUEST = 1, WR_THDR_RESPONSE = 2 };

/* Response codes; 0 is acceptance, everything else a refusal. */
enum wr_thdr_code {
  WR_THDR_OK = 0,
  WR_THDR_NOT_EXPOSED = 1,    /* target is not one the agent exposes (HTTP 403) */
  WR_THDR_CONNECT_FAILED = 2, /* agent could not reach the target (HTTP 502) */
  WR_THDR_BAD_REQUEST = 3,    /* malformed header (HTTP 400) */
  WR_THDR_OVERLOADED = 4,     /* agent at its stream limit (HTTP 503) */
  WR_THDR_TIMEOUT = 5,        /* target did not answer in time (HTTP 504) */
};

struct wr_thdr_req {
  char target[WR_THDR_TARGET_MAX + 1]; /* "host:port" or "[v6]:port"; required */
  char peer[WR_THDR_PEER_MAX + 1];     /* original client address; optional ("" if absent) */
};

struct wr_thdr_resp {
  uint16_t code;                       /* enum wr_thdr_code */
  char reason[WR_THDR_REASON_MAX + 1]; /* human-readable; optional */
};

/* Encoders write the whole frame into |out| and return its length, or
 * WR_ERR_TOOBIG when |outlen| is too small or a field exceeds its cap, or
 * WR_ERR_INVAL for a missing required field, a target that is not
 * "host:port", or a control character in any string field. */
int wr_thdr_req_encode(uint8_t *out, size_t outlen, const struct wr_thdr_req *req);
int wr_thdr_resp_encode(uint8_t *out, size_t outlen, const struct wr_thdr_resp *resp);

/* Decoders parse a frame from the first |len| bytes of |in|. They return the
 * number of bytes consumed (> 0), or WR_ERR_TRUNCATED when more bytes are
 * needed, WR_ERR_TOOBIG when the declared body exceeds WR_THDR_MAX_BODY or a
 * field exceeds its cap, WR_ERR_VERSION for another version, WR_ERR_PROTO for
 * bad magic, wrong type, malformed TLVs, duplicate or missing fields, a bad
 * target or a control character (NUL included) in a string field. |*req| or
 * |*resp| is written only on success. */
int wr_thdr_req_decode(struct wr_thdr_req *req, const uint8_t *in, size_t len);
int wr_thdr_resp_decode(struct wr_thdr_resp *resp, const uint8_t *in, size_t len);

/* wr_thdr_target_valid tells whether |target| is a well-formed "host:port"
 * or "[v6]:port" (port 1-65535, no leading zero) that fits a request header.
 * Front ends use it to reject a bad target before opening a tunnel. */
int wr_thdr_target_valid(const char *target);

/* wr_thdr_code_str names a code ("not-exposed"). */
const char *wr_thdr_code_str(uint16_t code);
/* wr_thdr_code_http maps a refusal to the HTTP status the gateway returns. */
int wr_thdr_code_http(uint16_t code);

#endif
