/* addr.h - socket address text forms: "ip:port" and "[v6]:port". */
#ifndef WARREN_ADDR_H
#define WARREN_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define WR_ADDRSTRLEN 56

/* wr_addr_parse parses an IP literal with port (0 allowed, for binding) into
 * |ss|. Returns 0 or WR_ERR_INVAL. */
int wr_addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* wr_addr_format writes |sa| as text into |buf| and returns |buf|. */
const char *wr_addr_format(const struct sockaddr *sa, char *buf, size_t len);
/* wr_addr_len returns the socklen_t of |sa| by family (0 if unknown). */
socklen_t wr_addr_len(const struct sockaddr *sa);

#endif
