/* addr.c - parse and format socket addresses. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warren/addr.h"
#include "warren/err.h"

static int parse_port(const char *s, uint16_t *port) {
  char *end;
  unsigned long v;

  if (*s < '0' || *s > '9')
    return WR_ERR_INVAL;
  v = strtoul(s, &end, 10);
  if (*end != '\0' || v > 65535)
    return WR_ERR_INVAL;
  *port = (uint16_t)v;
  return 0;
}

int wr_addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len) {
  char host[INET6_ADDRSTRLEN];
  const char *colon, *hs;
  size_t hl;
  uint16_t port;

  memset(ss, 0, sizeof(*ss));
  if (s[0] == '[') {
    const char *rb = strchr(s, ']');

    if (rb == NULL || rb[1] != ':')
      return WR_ERR_INVAL;
    hs = s + 1;
    hl = (size_t)(rb - hs);
    colon = rb + 1;
  } else {
    colon = strrchr(s, ':');
    if (colon == NULL)
      return WR_ERR_INVAL;
    hs = s;
    hl = (size_t)(colon - s);
  }
  if (hl == 0 || hl >= sizeof(host) || parse_port(colon + 1, &port) != 0)
    return WR_ERR_INVAL;
  memcpy(host, hs, hl);
  host[hl] = '\0';
  if (s[0] != '[') {
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;

    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
      return WR_ERR_INVAL;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    *len = sizeof(*sin);
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
      return WR_ERR_INVAL;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    *len = sizeof(*sin6);
  }
  return 0;
}

const char *wr_addr_format(const struct sockaddr *sa, char *buf, size_t len) {
  char host[INET6_ADDRSTRLEN];

  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
    snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
    snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
  } else {
    snprintf(buf, len, "?");
  }
  return buf;
}

socklen_t wr_addr_len(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return sizeof(struct sockaddr_in);
  if (sa->sa_family == AF_INET6)
    return sizeof(struct sockaddr_in6);
  return 0;
}
