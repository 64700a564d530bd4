/*
 * addrwatch.h - the host's current addresses, and when they change.
 *
 * The agent publishes the addresses it can be reached at in its Connector
 * status; this module tells it what they are, at start and within ~100 ms of
 * a change. Two layers:
 *
 *  - hb_addrset: a pure parser (no I/O, fuzzed) that applies rtnetlink
 *    messages (RTM_NEWADDR / RTM_DELADDR, NLMSG_DONE, NLMSG_ERROR) to a
 *    bounded set of addresses, and lists the usable ones as text;
 *  - hb_addrwatch: a NETLINK_ROUTE socket on a libuv loop that dumps the
 *    addresses once, follows the kernel's address notifications, and calls
 *    back, debounced, when the usable list changes.
 */
#ifndef WARREN_HB_ADDRWATCH_H
#define WARREN_HB_ADDRWATCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HB_ADDRS_MAX 32 /* entries an hb_addrset holds */
#define HB_ADDR_TEXT 46 /* INET6_ADDRSTRLEN: the text form of any address, with its NUL */
#define HB_DEBOUNCE_MS 100

struct hb_addr {
  uint8_t family;    /* AF_INET or AF_INET6 */
  uint8_t prefixlen; /* part of an IPv4 address's identity, as in the kernel */
  uint8_t scope;     /* RT_SCOPE_* */
  uint8_t pad;
  uint32_t flags;   /* IFA_F_* (IFA_FLAGS when present, else ifa_flags) */
  uint32_t ifindex; /* the interface */
  uint8_t addr[16]; /* 4 or 16 bytes, network order; the rest zero */
};

/* A zeroed struct is an empty set. Only addresses that could ever be usable
 * (global scope, not loopback, not link-local) are kept: their flags can
 * change, their scope and address cannot, and a host with many interfaces
 * (containers give each veth an fe80:: address) would otherwise fill the set
 * with addresses the agent never publishes. */
struct hb_addrset {
  struct hb_addr a[HB_ADDRS_MAX];
  size_t n;
  unsigned overflow; /* additions refused because the set was full */
  unsigned done;     /* NLMSG_DONE messages seen: the ends of dumps */
  uint32_t end_seq;  /* nlmsg_seq of the last NLMSG_DONE or NLMSG_ERROR: the request it ended */
  unsigned intr;     /* messages flagged NLM_F_DUMP_INTR: a dump was inconsistent */
};

/* hb_addrset_apply applies the netlink messages in |buf| (one datagram as
 * received). Returns 1 if the set's entries changed, 0 if not, WR_ERR_PROTO
 * for malformed input (then nothing is applied; it never reads outside
 * buf[0..len)), or the negative errno (-1..-999, so never a WR_ERR_* code) an
 * NLMSG_ERROR or NLMSG_DONE carried, -ENOBUFS for NLMSG_OVERRUN (the other
 * messages are still applied; an acknowledgment, error 0, is not an error). */
int hb_addrset_apply(struct hb_addrset *s, const uint8_t *buf, size_t len);

/* hb_addrset_usable writes, up to |max|, the addresses an agent should
 * publish: global scope (RT_SCOPE_UNIVERSE), not loopback, not link-local
 * (169.254/16, fe80::/10), neither deprecated, tentative nor DAD-failed;
 * IPv4 before IPv6, each in byte order, each once (an address on two
 * interfaces is one address). Returns how many it wrote. */
size_t hb_addrset_usable(const struct hb_addrset *s, char out[][HB_ADDR_TEXT], size_t max);

typedef struct hb_addrwatch hb_addrwatch;

/* on_change runs on the loop once after the initial dump, then after each
 * change of the usable list, HB_DEBOUNCE_MS after the first message of a
 * burst (one call per burst). |addrs| is valid during the call only. The
 * callback may call hb_addrwatch_del. */
typedef void (*hb_addrwatch_cb)(void *ud, const char (*addrs)[HB_ADDR_TEXT], size_t n);

/* hb_addrwatch_new opens the netlink socket and requests the first dump.
 * Returns 0, -errno or WR_ERR_NOMEM. */
int hb_addrwatch_new(hb_addrwatch **out, uv_loop_t *loop, hb_addrwatch_cb on_change, void *ud);
/* hb_addrwatch_del stops the watcher (no callback after it) and frees it once
 * its handles have closed. NULL is allowed. */
void hb_addrwatch_del(hb_addrwatch *w);

#endif
