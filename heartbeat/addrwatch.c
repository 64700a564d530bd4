/*
 * addrwatch.c - the host's addresses from rtnetlink (see addrwatch.h).
 *
 * The parser copies every header out of the buffer with memcpy before reading
 * it: datagrams (and fuzz inputs) need not be aligned, and each length is
 * checked against what is left before anything behind it is touched. A
 * buffer is walked twice, validating first, so malformed input changes
 * nothing.
 *
 * The watcher keeps one NETLINK_ROUTE socket subscribed to the IPv4 and IPv6
 * address groups *before* it asks for a dump, so no change can fall between
 * the dump and the notifications; a notification that races the dump is
 * merely applied twice, which the set absorbs (same key, same entry).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addrwatch.h"
#include "warren/err.h"
#include "warren/log.h"

#define RBUF_SIZE (64u << 10)
#define RECV_BURST 64 /* datagrams per poll callback, so a flood cannot starve the loop */
#define RETRY_MS 1000 /* after a failed dump request */
/* Linux errnos, kernel-internal ones included, stay below 1000; beyond, a value would read as a
 * WR_ERR_* code (<= -1001) once returned. */
#define ERRNO_MAX 999

/* ---- parser ---------------------------------------------------------------------------------- */

enum op { OP_NONE, OP_ADD, OP_DEL, OP_DONE, OP_ERROR };

struct msg {
  enum op op;
  int err;  /* OP_DONE, OP_ERROR: 0 or a negative errno */
  int intr; /* NLM_F_DUMP_INTR */
  uint32_t seq;
  struct hb_addr addr;
};

static int is_candidate(const struct hb_addr *a) {
  static const uint8_t v6_loopback[16] = {[15] = 1};

  if (a->scope != RT_SCOPE_UNIVERSE)
    return 0;
  if (a->family == AF_INET)
    return a->addr[0] != 127 && !(a->addr[0] == 169 && a->addr[1] == 254);
  return memcmp(a->addr, v6_loopback, 16) != 0 &&
         !(a->addr[0] == 0xfe && (a->addr[1] & 0xc0) == 0x80);
}

static int is_usable(const struct hb_addr *a) {
  return is_candidate(a) &&
         (a->flags & (IFA_F_DEPRECATED | IFA_F_TENTATIVE | IFA_F_DADFAILED)) == 0;
}

/* parse_ifaddr reads an RTM_NEWADDR/RTM_DELADDR payload (after the nlmsghdr). */
static int parse_ifaddr(const uint8_t *p, size_t len, uint16_t type, struct msg *m) {
  struct ifaddrmsg ifa;
  const uint8_t *local = NULL, *address = NULL;
  size_t alen, off = NLMSG_ALIGN(sizeof(ifa));
  uint32_t flags;

  if (len < sizeof(ifa))
    return WR_ERR_PROTO;
  memcpy(&ifa, p, sizeof(ifa));
  alen = ifa.ifa_family == AF_INET ? 4 : ifa.ifa_family == AF_INET6 ? 16 : 0;
  flags = ifa.ifa_flags;
  if (off > len)
    return WR_ERR_PROTO;
  while (len - off >= sizeof(struct rtattr)) {
    struct rtattr rta;
    size_t step;

    memcpy(&rta, p + off, sizeof(rta));
    if (rta.rta_len < sizeof(rta) || rta.rta_len > len - off)
      return WR_ERR_PROTO;
    /* Other families (AF_MCTP, ...) have other address sizes: only the framing is checked. */
    switch (rta.rta_type) {
    case IFA_ADDRESS:
    case IFA_LOCAL:
      if (alen != 0 && rta.rta_len - sizeof(rta) != alen)
        return WR_ERR_PROTO;
      /* The last copy wins, as in the kernel's attribute parser. */
      if (rta.rta_type == IFA_LOCAL)
        local = p + off + RTA_LENGTH(0);
      else
        address = p + off + RTA_LENGTH(0);
      break;
    case IFA_FLAGS:
      /* 32-bit flags, added when ifa_flags' 8 bits ran out; they supersede it. */
      if (rta.rta_len != RTA_LENGTH(sizeof(flags)))
        return WR_ERR_PROTO;
      memcpy(&flags, p + off + RTA_LENGTH(0), sizeof(flags));
      break;
    default:
      break;
    }
    /* The last attribute's padding may be left out of the message length. */
    step = RTA_ALIGN((size_t)rta.rta_len);
    off = step >= len - off ? len : off + step;
  }
  if (off != len)
    return WR_ERR_PROTO; /* 1-3 bytes that cannot hold an attribute */
  if (alen == 0)
    return 0;
  if (ifa.ifa_prefixlen > alen * 8)
    return WR_ERR_PROTO;
  /* IFA_LOCAL is the local address; on a point-to-point link IFA_ADDRESS is the peer's. IPv6
   * usually sends IFA_ADDRESS alone. glibc's getifaddrs makes the same choice. */
  if (local == NULL)
    local = address;
  if (local == NULL)
    return WR_ERR_PROTO;
  memset(&m->addr, 0, sizeof(m->addr));
  m->addr.family = ifa.ifa_family;
  /* The kernel tells IPv4 addresses apart by prefix length too (10.0.0.1/24 and /16 may
   * coexist on one interface), IPv6 ones by address alone. */
  m->addr.prefixlen = ifa.ifa_family == AF_INET ? ifa.ifa_prefixlen : 0;
  m->addr.scope = ifa.ifa_scope;
  m->addr.flags = flags;
  m->addr.ifindex = ifa.ifa_index;
  memcpy(m->addr.addr, local, alen);
  /* An address that can never be published is not kept (see struct hb_addrset); a NEWADDR for
   * one removes any entry of that key, which keeps the set right even if a scope changed. */
  m->op = type == RTM_NEWADDR && is_candidate(&m->addr) ? OP_ADD : OP_DEL;
  return 0;
}

/* parse_errno reads the int that NLMSG_ERROR and NLMSG_DONE carry first. */
static int parse_errno(const uint8_t *p, size_t len, int *err) {
  int v;

  if (len < sizeof(v))
    return WR_ERR_PROTO;
  memcpy(&v, p, sizeof(v));
  if (v > 0 || v < -ERRNO_MAX)
    return WR_ERR_PROTO;
  *err = v;
  return 0;
}

static int parse_msg(const struct nlmsghdr *h, const uint8_t *p, size_t len, struct msg *m) {
  memset(m, 0, sizeof(*m));
  m->intr = (h->nlmsg_flags & NLM_F_DUMP_INTR) != 0;
  m->seq = h->nlmsg_seq;
  switch (h->nlmsg_type) {
  case NLMSG_ERROR:
    m->op = OP_ERROR;
    return parse_errno(p, len, &m->err); /* 0 is an acknowledgment */
  case NLMSG_DONE:
    /* The kernel appends the dump's result; very old ones sent none. */
    m->op = OP_DONE;
    return len == 0 ? 0 : parse_errno(p, len, &m->err);
  case NLMSG_OVERRUN:
    m->op = OP_ERROR;
    m->err = -ENOBUFS;
    return 0;
  case RTM_NEWADDR:
  case RTM_DELADDR:
    return parse_ifaddr(p, len, h->nlmsg_type, m);
  default:
    return 0; /* NLMSG_NOOP, other rtnetlink messages: not ours */
  }
}

static int find(const struct hb_addrset *s, const struct hb_addr *a) {
  size_t i;

  for (i = 0; i < s->n; i++) {
    const struct hb_addr *e = &s->a[i];

    if (e->family == a->family && e->ifindex == a->ifindex && e->prefixlen == a->prefixlen &&
        memcmp(e->addr, a->addr, sizeof(e->addr)) == 0)
      return (int)i;
  }
  return -1;
}

/* apply_msg returns 1 if the entries changed. */
static int apply_msg(struct hb_addrset *s, const struct msg *m) {
  int i;

  s->intr += (unsigned)m->intr;
  switch (m->op) {
  case OP_ADD:
    i = find(s, &m->addr);
    if (i >= 0) {
      if (memcmp(&s->a[i], &m->addr, sizeof(m->addr)) == 0)
        return 0;
      s->a[i] = m->addr;
      return 1;
    }
    if (s->n == HB_ADDRS_MAX) {
      s->overflow++;
      return 0;
    }
    s->a[s->n++] = m->addr;
    return 1;
  case OP_DEL:
    i = find(s, &m->addr);
    if (i < 0)
      return 0;
    s->a[i] = s->a[--s->n];
    memset(&s->a[s->n], 0, sizeof(s->a[0])); /* unused slots stay zero: sets compare by memcmp */
    return 1;
  case OP_DONE:
    s->done++;
    s->end_seq = m->seq;
    return 0;
  case OP_ERROR:
    s->end_seq = m->seq;
    return 0;
  default:
    return 0;
  }
}

/* walk validates (s == NULL) or applies the messages in buf. */
static int walk(struct hb_addrset *s, const uint8_t *buf, size_t len) {
  size_t off = 0, step;
  int changed = 0, err = 0, rv;

  while (off < len) {
    struct nlmsghdr h;
    struct msg m;

    if (len - off < sizeof(h))
      return WR_ERR_PROTO;
    memcpy(&h, buf + off, sizeof(h));
    if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > len - off)
      return WR_ERR_PROTO;
    rv = parse_msg(&h, buf + off + NLMSG_HDRLEN, h.nlmsg_len - NLMSG_HDRLEN, &m);
    if (rv < 0)
      return rv;
    if (s != NULL) {
      changed |= apply_msg(s, &m);
      if (err == 0 && m.err < 0)
        err = m.err;
    }
    step = NLMSG_ALIGN((size_t)h.nlmsg_len);
    off = step >= len - off ? len : off + step;
  }
  return err != 0 ? err : changed;
}

int hb_addrset_apply(struct hb_addrset *s, const uint8_t *buf, size_t len) {
  int rv;

  if (len > 0 && buf == NULL)
    return WR_ERR_INVAL;
  rv = walk(NULL, buf, len);
  if (rv < 0)
    return rv;
  return walk(s, buf, len);
}

static int cmp_addr(const void *pa, const void *pb) {
  const struct hb_addr *a = pa, *b = pb;

  if (a->family != b->family)
    return a->family == AF_INET ? -1 : 1;
  return memcmp(a->addr, b->addr, sizeof(a->addr));
}

size_t hb_addrset_usable(const struct hb_addrset *s, char out[][HB_ADDR_TEXT], size_t max) {
  struct hb_addr tmp[HB_ADDRS_MAX];
  size_t i, n = 0, k = 0;

  for (i = 0; i < s->n && i < HB_ADDRS_MAX; i++)
    if (is_usable(&s->a[i]))
      tmp[n++] = s->a[i];
  if (n > 1)
    qsort(tmp, n, sizeof(tmp[0]), cmp_addr);
  for (i = 0; i < n && k < max; i++) {
    if (i > 0 && cmp_addr(&tmp[i - 1], &tmp[i]) == 0)
      continue;
    if (inet_ntop(tmp[i].family, tmp[i].addr, out[k], HB_ADDR_TEXT) != NULL)
      k++;
  }
  return k;
}

/* ---- watcher --------------------------------------------------------------------------------- */

struct hb_addrwatch {
  uv_loop_t *loop;
  uv_poll_t poll;
  uv_timer_t timer; /* debounce, the initial report, and dump retries */
  int fd;
  int handles; /* open libuv handles; freed at 0 */
  int closing;
  hb_addrwatch_cb on_change;
  void *ud;
  uint32_t seq;
  int dumping;   /* a dump is in flight: the set is partial until its NLMSG_DONE */
  int want_dump; /* the set may miss changes (overrun, failure): dump again when possible */
  int overrun;   /* notifications were lost: dump after this round of reading */
  int reported;  /* the first list went out */
  uint64_t due;  /* loop time the pending report is due at; 0: none pending */
  int warned_overflow;
  struct hb_addrset set;
  size_t nlast;
  char last[HB_ADDRS_MAX][HB_ADDR_TEXT];
  uint8_t rbuf[RBUF_SIZE];
};

static void on_timer(uv_timer_t *t);

/* start_dump asks the kernel for every address. The set is rebuilt from scratch, because a dump
 * is only needed when the set can no longer be trusted; it is cleared only once the request is
 * sent, so a failure keeps the last known (if stale) addresses rather than none. */
static int start_dump(struct hb_addrwatch *w) {
  struct {
    struct nlmsghdr nh;
    struct ifaddrmsg ifa;
  } req;
  struct sockaddr_nl kernel;

  memset(&req, 0, sizeof(req));
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifa));
  req.nh.nlmsg_type = RTM_GETADDR;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = ++w->seq;
  req.ifa.ifa_family = AF_UNSPEC;
  memset(&kernel, 0, sizeof(kernel));
  kernel.nl_family = AF_NETLINK;
  if (sendto(w->fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
    return -errno;
  memset(&w->set, 0, sizeof(w->set));
  w->dumping = 1;
  w->want_dump = 0;
  return 0;
}

/* retry_dump tries the dump again later: whatever failed (a full socket, an error the kernel
 * answered) is not likely to have cleared at once. */
static void retry_dump(struct hb_addrwatch *w) {
  w->want_dump = 1;
  uv_timer_start(&w->timer, on_timer, RETRY_MS, 0);
}

static void dump_now(struct hb_addrwatch *w) {
  int rv;

  if (w->dumping) {
    w->want_dump = 1; /* one dump at a time per socket (EBUSY): again after this one */
    return;
  }
  rv = start_dump(w);
  if (rv != 0) {
    log_warnx("addrwatch: address dump request: %s", wr_strerror(rv));
    retry_dump(w);
  }
}

static void on_timer(uv_timer_t *t) {
  struct hb_addrwatch *w = t->data;
  char cur[HB_ADDRS_MAX][HB_ADDR_TEXT];
  size_t n, i;

  if (w->closing)
    return;
  if (w->want_dump) {
    dump_now(w);
    return;
  }
  if (w->dumping)
    return; /* its NLMSG_DONE starts the timer again */
  w->due = 0;
  n = hb_addrset_usable(&w->set, cur, HB_ADDRS_MAX);
  if (w->reported && n == w->nlast) {
    for (i = 0; i < n && strcmp(cur[i], w->last[i]) == 0; i++)
      ;
    if (i == n)
      return; /* changes that cancelled out, or of addresses not published */
  }
  memcpy(w->last, cur, sizeof(cur));
  w->nlast = n;
  w->reported = 1;
  /* Last: the callback may delete the watcher (its memory lasts until the close callbacks). */
  w->on_change(w->ud, (const char(*)[HB_ADDR_TEXT])w->last, n);
}

/* mark_change schedules a report HB_DEBOUNCE_MS after the first change of a burst, not the last:
 * a host whose addresses never stop changing still gets a report every HB_DEBOUNCE_MS. */
static void mark_change(struct hb_addrwatch *w) {
  if (w->due != 0)
    return;
  w->due = uv_now(w->loop) + HB_DEBOUNCE_MS;
  uv_timer_start(&w->timer, on_timer, HB_DEBOUNCE_MS, 0);
}

/* dump_done reports the state a finished dump gave: at once the first time; later within the
 * debounce of the burst that led to it (a burst of deletions with the set full, an overrun),
 * so that a burst still gives one call. */
static void dump_done(struct hb_addrwatch *w) {
  uint64_t now = uv_now(w->loop);

  if (!w->reported)
    w->due = now;
  else if (w->due == 0)
    w->due = now + HB_DEBOUNCE_MS;
  /* From the timer rather than from inside the read loop: the callback may delete the watcher. */
  uv_timer_start(&w->timer, on_timer, w->due > now ? w->due - now : 0, 0);
}

static void on_datagram(struct hb_addrwatch *w, size_t len) {
  unsigned done0 = w->set.done;
  int rv;

  rv = hb_addrset_apply(&w->set, w->rbuf, len);
  if (rv == WR_ERR_PROTO) {
    /* The kernel does not send these; a dump would not help if it did. */
    log_warnx("addrwatch: malformed netlink datagram (%zu bytes) ignored", len);
    return;
  }
  if (rv < 0) {
    log_warnx("addrwatch: netlink: %s", wr_strerror(rv));
    /* Only an answer to the current request ends it: a dump given up earlier may still end. */
    if (w->dumping && w->set.end_seq == w->seq) {
      w->dumping = 0;
      retry_dump(w);
    }
    return;
  }
  if (w->set.overflow != 0 && !w->warned_overflow) {
    log_warnx("addrwatch: more than %d addresses; some will not be published", HB_ADDRS_MAX);
    w->warned_overflow = 1;
  }
  if (w->dumping) {
    if (w->set.done == done0 || w->set.end_seq != w->seq)
      return; /* the set is partial until the dump ends */
    w->dumping = 0;
    /* Dump again at once if it was inconsistent (interfaces changed under the kernel's iteration,
     * which can skip an address that never changed) or if notifications were lost meanwhile. */
    if (w->set.intr != 0 || w->want_dump) {
      w->want_dump = 0;
      dump_now(w);
      return;
    }
    /* An address was refused for room that a deletion has since freed: dump again, but only after
     * a debounce period, or a storm of deletions on a full set would chain dumps back to back. */
    if (w->set.overflow != 0 && w->set.n < HB_ADDRS_MAX) {
      w->want_dump = 1;
      w->due = 0;
      mark_change(w);
      return;
    }
    dump_done(w);
    return;
  }
  if (w->set.overflow != 0 && w->set.n < HB_ADDRS_MAX) {
    /* A refused address may fit now; only a dump can tell which. One per burst: the timer. */
    w->want_dump = 1;
    mark_change(w);
    return;
  }
  if (rv == 1)
    mark_change(w);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  struct hb_addrwatch *w = p->data;
  int i;

  (void)events;
  /* An overrun sets the socket's error, which polls as POLLERR: libuv then reports UV_EBADF and
   * stops the handle. recvfrom below returns the error (ENOBUFS) and clears it; poll again. */
  if (status < 0 && !w->closing)
    uv_poll_start(&w->poll, UV_READABLE, on_poll);
  for (i = 0; i < RECV_BURST && !w->closing; i++) {
    struct sockaddr_nl from;
    socklen_t flen = sizeof(from);
    ssize_t n;

    /* MSG_TRUNC makes netlink return the datagram's real length, so truncation is seen. */
    n = recvfrom(w->fd, w->rbuf, sizeof(w->rbuf), MSG_TRUNC, (struct sockaddr *)&from, &flen);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      if (errno == ENOBUFS) {
        /* The receive queue overran: notifications were dropped, start again. */
        log_debug("addrwatch: netlink overrun, dumping the addresses again");
        w->overrun = 1;
        continue;
      }
      log_warnx("addrwatch: netlink recv: %s", strerror(errno));
      break;
    }
    if (flen < sizeof(from) || from.nl_family != AF_NETLINK || from.nl_pid != 0)
      continue; /* only the kernel speaks for the kernel */
    if ((size_t)n > sizeof(w->rbuf)) {
      w->overrun = 1; /* truncated: its messages are lost */
      continue;
    }
    on_datagram(w, (size_t)n);
  }
  /* Ask for the dump after reading, not at the overrun: the kernel does not start a dump into a
   * full queue (it answers ENOBUFS, an answer that may itself be dropped). Waiting for an empty
   * queue is not needed (reading continues the dump) and could wait forever: the overrun may have
   * been seen on the burst's last datagram, with nothing left to wake the poll. */
  if (w->overrun && !w->closing) {
    w->overrun = 0;
    dump_now(w);
  }
}

static void on_closed(uv_handle_t *h) {
  struct hb_addrwatch *w = h->data;

  if (--w->handles == 0) {
    close(w->fd);
    free(w);
  }
}

int hb_addrwatch_new(hb_addrwatch **out, uv_loop_t *loop, hb_addrwatch_cb on_change, void *ud) {
  struct hb_addrwatch *w;
  struct sockaddr_nl sa;
  int rv;

  *out = NULL;
  w = calloc(1, sizeof(*w));
  if (w == NULL)
    return WR_ERR_NOMEM;
  w->loop = loop;
  w->on_change = on_change;
  w->ud = ud;
  w->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (w->fd < 0) {
    rv = -errno;
    free(w);
    return rv;
  }
  /* Subscribe before the dump (see the top of this file). */
  memset(&sa, 0, sizeof(sa));
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (bind(w->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
    rv = -errno;
  else
    rv = start_dump(w);
  if (rv == 0)
    rv = uv_poll_init(loop, &w->poll, w->fd);
  if (rv != 0) {
    close(w->fd);
    free(w);
    return rv;
  }
  uv_timer_init(loop, &w->timer);
  w->poll.data = w;
  w->timer.data = w;
  w->handles = 2;
  rv = uv_poll_start(&w->poll, UV_READABLE, on_poll);
  if (rv != 0) {
    hb_addrwatch_del(w);
    return rv;
  }
  *out = w;
  return 0;
}

void hb_addrwatch_del(hb_addrwatch *w) {
  if (w == NULL || w->closing)
    return;
  w->closing = 1;
  uv_poll_stop(&w->poll);
  uv_timer_stop(&w->timer);
  uv_close((uv_handle_t *)&w->poll, on_closed);
  uv_close((uv_handle_t *)&w->timer, on_closed);
}
