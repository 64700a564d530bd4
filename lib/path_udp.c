/*
 * path_udp.c - the direct UDP path: one socket, GSO batches out, GRO batches in.
 *
 * Following reference/quic-performance.md: bulk QUIC here is bound by system
 * calls, so sends hand the kernel up to ~63 KB per sendmsg (UDP_SEGMENT) and
 * receives let it coalesce datagrams (UDP_GRO). Socket buffers are raised to
 * 4 MiB. A send that finds the socket full is kept (one batch) and retried
 * when the socket becomes writable; QUIC stops writing meanwhile.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "warren/err.h"
#include "warren/log.h"
#include "warren/path.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define RECV_BUF 65536
#define RECV_BURST 64 /* recvmsg calls per readiness event, for fairness */

struct udp_path {
  struct wr_path base;
  uv_loop_t *loop;
  uv_poll_t poll;
  int fd;
  int gso; /* kernel accepted UDP_SEGMENT */
  int gro; /* kernel accepted UDP_GRO */
  struct wr_path_cbs cbs;
  void *ud;
  /* The one batch waiting for the socket to drain. */
  uint8_t *stash;
  size_t stash_len;
  size_t stash_seg;
  struct sockaddr_storage stash_to;
  socklen_t stash_tolen;
  uint8_t rbuf[RECV_BUF];
};

static int udp_send(wr_path *p, const struct sockaddr *to, socklen_t tolen, const uint8_t *data,
                    size_t len, size_t segsize);
static int udp_local_addr(wr_path *p, struct sockaddr_storage *ss, socklen_t *len);
static void udp_del(wr_path *p);

static void on_poll(uv_poll_t *h, int status, int events);

static const struct wr_path_ops udp_ops = {udp_send, udp_local_addr, udp_del};

static ssize_t send_batch(struct udp_path *u, const struct sockaddr *to, socklen_t tolen,
                          const uint8_t *data, size_t len, size_t segsize) {
  struct iovec iov = {(void *)data, len};
  struct msghdr msg;
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl;
  ssize_t n;

  memset(&msg, 0, sizeof(msg));
  msg.msg_name = (void *)to;
  msg.msg_namelen = tolen;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (len > segsize && u->gso) {
    struct cmsghdr *cm;
    uint16_t seg = (uint16_t)segsize;

    memset(&ctl, 0, sizeof(ctl));
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof(ctl.buf);
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(seg));
    memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
  } else if (len > segsize) {
    /* No GSO: one datagram per call. */
    size_t off;

    for (off = 0; off < len; off += segsize) {
      size_t n1 = len - off < segsize ? len - off : segsize;

      n = sendto(u->fd, data + off, n1, 0, to, tolen);
      if (n < 0)
        return off > 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? (ssize_t)off : -1;
    }
    return (ssize_t)len;
  }
  do {
    n = sendmsg(u->fd, &msg, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EIO && msg.msg_control != NULL) {
    /* Some devices refuse segmentation offload: fall back for good. */
    log_warnx("udp: GSO refused by the kernel, sending datagrams one by one");
    u->gso = 0;
    return send_batch(u, to, tolen, data, len, segsize);
  }
  return n;
}

static int udp_send(wr_path *p, const struct sockaddr *to, socklen_t tolen, const uint8_t *data,
                    size_t len, size_t segsize) {
  struct udp_path *u = (struct udp_path *)p;
  ssize_t n;

  if (u->stash_len > 0)
    return WR_ERR_AGAIN; /* Caller ignored the previous AGAIN: keep order. */
  n = send_batch(u, to, tolen, data, len, segsize);
  if (n >= 0 && (size_t)n == len)
    return 0;
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    int err = -errno;

    log_trace(WR_TRACE_PATH, "udp: send of %zu bytes failed: %s", len, strerror(errno));
    return err;
  }
  if (n < 0)
    n = 0;
  /* Socket full: keep the unsent remainder and wait for POLLOUT. */
  u->stash = malloc(len - (size_t)n);
  if (u->stash == NULL)
    return WR_ERR_NOMEM;
  memcpy(u->stash, data + n, len - (size_t)n);
  u->stash_len = len - (size_t)n;
  u->stash_seg = segsize;
  memcpy(&u->stash_to, to, tolen);
  u->stash_tolen = tolen;
  uv_poll_start(&u->poll, UV_READABLE | UV_WRITABLE, on_poll);
  return WR_ERR_AGAIN;
}

static void recv_burst(struct udp_path *u) {
  int i;

  for (i = 0; i < RECV_BURST; i++) {
    struct sockaddr_storage from;
    struct iovec iov = {u->rbuf, sizeof(u->rbuf)};
    union {
      char buf[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } ctl;
    struct msghdr msg;
    struct cmsghdr *cm;
    size_t seg, off;
    ssize_t n;

    memset(&msg, 0, sizeof(msg));
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof(ctl.buf);
    n = recvmsg(u->fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        log_trace(WR_TRACE_PATH, "udp: recvmsg: %s", strerror(errno));
      break;
    }
    seg = (size_t)n;
    for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
        int gso_size;

        memcpy(&gso_size, CMSG_DATA(cm), sizeof(gso_size));
        if (gso_size > 0)
          seg = (size_t)gso_size;
      }
    }
    for (off = 0; off < (size_t)n; off += seg) {
      size_t dl = (size_t)n - off < seg ? (size_t)n - off : seg;

      u->cbs.on_recv(u->ud, (struct sockaddr *)&from, msg.msg_namelen, u->rbuf + off, dl);
    }
  }
  if (u->cbs.on_recv_done != NULL)
    u->cbs.on_recv_done(u->ud);
}

static void flush_stash(struct udp_path *u) {
  ssize_t n = send_batch(u, (struct sockaddr *)&u->stash_to, u->stash_tolen, u->stash, u->stash_len,
                         u->stash_seg);

  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return;
  if (n >= 0 && (size_t)n < u->stash_len) {
    memmove(u->stash, u->stash + n, u->stash_len - (size_t)n);
    u->stash_len -= (size_t)n;
    return;
  }
  /* Sent, or failed for good (lost like any datagram). */
  free(u->stash);
  u->stash = NULL;
  u->stash_len = 0;
  uv_poll_start(&u->poll, UV_READABLE, on_poll);
  if (u->cbs.on_writable != NULL)
    u->cbs.on_writable(u->ud);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  struct udp_path *u = h->data;

  if (status < 0) {
    log_warnx("udp: poll: %s", uv_strerror(status));
    return;
  }
  if (events & UV_WRITABLE)
    flush_stash(u);
  if (events & UV_READABLE)
    recv_burst(u);
}

static int udp_local_addr(wr_path *p, struct sockaddr_storage *ss, socklen_t *len) {
  struct udp_path *u = (struct udp_path *)p;

  *len = sizeof(*ss);
  if (getsockname(u->fd, (struct sockaddr *)ss, len) != 0)
    return -errno;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  struct udp_path *u = h->data;

  close(u->fd);
  free(u->stash);
  free(u);
}

static void udp_del(wr_path *p) {
  struct udp_path *u = (struct udp_path *)p;

  uv_close((uv_handle_t *)&u->poll, on_closed);
}

int wr_udp_path_new(wr_path **out, uv_loop_t *loop, const struct sockaddr *bindaddr,
                    const struct wr_path_cbs *cbs, void *ud) {
  struct udp_path *u;
  int one = 1, bufsz = 4 << 20, rv;
  socklen_t blen =
      bindaddr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

  u = calloc(1, sizeof(*u));
  if (u == NULL)
    return WR_ERR_NOMEM;
  u->base.ops = &udp_ops;
  u->loop = loop;
  u->cbs = *cbs;
  u->ud = ud;
  u->fd = socket(bindaddr->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (u->fd < 0) {
    rv = -errno;
    free(u);
    return rv;
  }
  (void)setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
  (void)setsockopt(u->fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
  if (bindaddr->sa_family == AF_INET6)
    (void)setsockopt(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  u->gro = setsockopt(u->fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
  u->gso = 1; /* Probed on first use: EIO turns it off. */
  if (bind(u->fd, bindaddr, blen) != 0) {
    rv = -errno;
    close(u->fd);
    free(u);
    return rv;
  }
  rv = uv_poll_init(loop, &u->poll, u->fd);
  if (rv != 0) {
    close(u->fd);
    free(u);
    return rv;
  }
  u->poll.data = u;
  uv_poll_start(&u->poll, UV_READABLE, on_poll);
  *out = &u->base;
  return 0;
}
