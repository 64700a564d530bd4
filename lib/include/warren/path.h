/*
 * path.h - the datagram layer beneath QUIC (DESIGN.md §4, "magicsock").
 *
 * QUIC hands each outgoing datagram batch to a path and receives datagrams
 * from it; it never touches sockets. Today the only path is direct UDP
 * (path_udp.c, with GSO on send and GRO on receive); a relay path and a
 * multiplexing path that picks the best of several per peer implement the
 * same operations later, without changes to quic.c.
 */
#ifndef WARREN_PATH_H
#define WARREN_PATH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/* The largest batch handed to one send: below 64 KiB, because a GSO batch of
 * exactly 65,536 bytes fails with EMSGSIZE (reference/quic-performance.md). */
#define WR_PATH_MAX_BATCH 63000
#define WR_PATH_MAX_DGRAM 1472

typedef struct wr_path wr_path;

struct wr_path_cbs {
  /* One datagram arrived from |from|. |data| is valid during the call. */
  void (*on_recv)(void *ud, const struct sockaddr *from, socklen_t fromlen, const uint8_t *data,
                  size_t len);
  /* A burst of on_recv calls ended: a good moment to write replies. */
  void (*on_recv_done)(void *ud);
  /* A send that returned WR_ERR_AGAIN has gone out; sending may resume. */
  void (*on_writable)(void *ud);
};

struct wr_path_ops {
  int (*send)(wr_path *p, const struct sockaddr *to, socklen_t tolen, const uint8_t *data,
              size_t len, size_t segsize);
  int (*local_addr)(wr_path *p, struct sockaddr_storage *ss, socklen_t *len);
  void (*del)(wr_path *p);
};

struct wr_path {
  const struct wr_path_ops *ops;
};

/* wr_path_send sends |len| bytes to |to| as datagrams of |segsize| bytes (the
 * last may be shorter). Returns 0; WR_ERR_AGAIN when the batch was queued
 * inside the path because the socket is full (send nothing more until
 * on_writable); or -errno (the batch is lost, as on a real network). */
static inline int wr_path_send(wr_path *p, const struct sockaddr *to, socklen_t tolen,
                               const uint8_t *data, size_t len, size_t segsize) {
  return p->ops->send(p, to, tolen, data, len, segsize);
}
static inline int wr_path_local_addr(wr_path *p, struct sockaddr_storage *ss, socklen_t *len) {
  return p->ops->local_addr(p, ss, len);
}
/* wr_path_del closes the path; its handles finish closing on the loop. */
static inline void wr_path_del(wr_path *p) {
  p->ops->del(p);
}

/* wr_udp_path_new binds a UDP socket to |bind| with 4 MiB socket buffers,
 * UDP_GRO and GSO sends. Returns 0, -errno or WR_ERR_NOMEM. */
int wr_udp_path_new(wr_path **out, uv_loop_t *loop, const struct sockaddr *bind,
                    const struct wr_path_cbs *cbs, void *ud);

#endif
