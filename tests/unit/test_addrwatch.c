/* test_addrwatch.c - the agent's address set from rtnetlink messages built by hand, and the
 * watcher on a real loop against getifaddrs(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include "addrwatch.h"
#include "warren/err.h"

/* ---- message builder ------------------------------------------------------------------------- */

struct nlbuf {
  uint8_t b[16384];
  size_t len;
};

static void put(struct nlbuf *nb, const void *p, size_t n) {
  assert_true(nb->len + n <= sizeof(nb->b));
  memcpy(nb->b + nb->len, p, n);
  nb->len += n;
}

static void pad4(struct nlbuf *nb) {
  static const uint8_t zero[4];

  put(nb, zero, NLMSG_ALIGN(nb->len) - nb->len);
}

/* msg_begin appends an nlmsghdr (length fixed by msg_end) and returns its offset. */
static size_t msg_begin(struct nlbuf *nb, uint16_t type, uint16_t flags) {
  struct nlmsghdr h;
  size_t at = nb->len;

  memset(&h, 0, sizeof(h));
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  h.nlmsg_seq = 1;
  put(nb, &h, sizeof(h));
  return at;
}

static void set_len(struct nlbuf *nb, size_t at, uint32_t len) {
  memcpy(nb->b + at + offsetof(struct nlmsghdr, nlmsg_len), &len, sizeof(len));
}

static void msg_end(struct nlbuf *nb, size_t at) {
  set_len(nb, at, (uint32_t)(nb->len - at));
  pad4(nb);
}

static void put_ifa(struct nlbuf *nb, uint8_t family, uint8_t prefixlen, uint8_t flags,
                    uint8_t scope, uint32_t index) {
  struct ifaddrmsg ifa;

  memset(&ifa, 0, sizeof(ifa));
  ifa.ifa_family = family;
  ifa.ifa_prefixlen = prefixlen;
  ifa.ifa_flags = flags;
  ifa.ifa_scope = scope;
  ifa.ifa_index = index;
  put(nb, &ifa, sizeof(ifa));
}

/* put_attr appends an attribute; rta_len is |len| + 4 unless |rta_len| overrides it. */
static void put_attr_len(struct nlbuf *nb, uint16_t type, const void *data, size_t len,
                         uint16_t rta_len) {
  struct rtattr rta;

  rta.rta_type = type;
  rta.rta_len = rta_len;
  put(nb, &rta, sizeof(rta));
  if (len > 0)
    put(nb, data, len);
  pad4(nb);
}

static void put_attr(struct nlbuf *nb, uint16_t type, const void *data, size_t len) {
  put_attr_len(nb, type, data, len, (uint16_t)RTA_LENGTH(len));
}

static size_t pton(const char *text, uint8_t out[16], uint8_t *family) {
  memset(out, 0, 16);
  if (inet_pton(AF_INET, text, out) == 1) {
    *family = AF_INET;
    return 4;
  }
  assert_int_equal(inet_pton(AF_INET6, text, out), 1);
  *family = AF_INET6;
  return 16;
}

struct a {
  uint16_t type; /* RTM_NEWADDR, RTM_DELADDR */
  const char *text;
  uint8_t prefixlen;
  uint8_t scope;
  uint8_t ifa_flags;
  uint32_t index;
};

/* add_msg appends one address message the way the kernel writes it: IPv4 with IFA_ADDRESS and
 * IFA_LOCAL (equal), IPv6 with IFA_ADDRESS alone, and IFA_FLAGS when |flags32| is set. */
static void add_msg(struct nlbuf *nb, const struct a *a, int with_flags32, uint32_t flags32) {
  uint8_t bytes[16], family;
  size_t alen = pton(a->text, bytes, &family);
  size_t at = msg_begin(nb, a->type, 0);

  put_ifa(nb, family, a->prefixlen, a->ifa_flags, a->scope, a->index);
  put_attr(nb, IFA_ADDRESS, bytes, alen);
  if (family == AF_INET)
    put_attr(nb, IFA_LOCAL, bytes, alen);
  if (with_flags32)
    put_attr(nb, IFA_FLAGS, &flags32, sizeof(flags32));
  msg_end(nb, at);
}

static void add_done(struct nlbuf *nb, int with_payload, int err) {
  size_t at = msg_begin(nb, NLMSG_DONE, NLM_F_MULTI);

  if (with_payload)
    put(nb, &err, sizeof(err));
  msg_end(nb, at);
}

static void add_error(struct nlbuf *nb, int err) {
  struct nlmsgerr e;
  size_t at = msg_begin(nb, NLMSG_ERROR, 0);

  memset(&e, 0, sizeof(e));
  e.error = err;
  put(nb, &e, sizeof(e));
  msg_end(nb, at);
}

/* apply feeds a copy of exactly nb->len bytes on the heap, so ASan sees any read past the end. */
static int apply(struct hb_addrset *s, const struct nlbuf *nb) {
  uint8_t *copy = malloc(nb->len ? nb->len : 1);
  int rv;

  assert_non_null(copy);
  memcpy(copy, nb->b, nb->len);
  rv = hb_addrset_apply(s, copy, nb->len);
  free(copy);
  return rv;
}

/* apply_one builds and applies a single message. */
static int apply_one(struct hb_addrset *s, uint16_t type, const char *text, uint8_t scope,
                     uint8_t ifa_flags, uint32_t index) {
  struct nlbuf nb = {.len = 0};
  struct a a = {type, text, 0, scope, ifa_flags, index};

  a.prefixlen = strchr(text, ':') ? 64 : 24;
  add_msg(&nb, &a, 0, 0);
  return apply(s, &nb);
}

static int add(struct hb_addrset *s, const char *text) {
  return apply_one(s, RTM_NEWADDR, text, RT_SCOPE_UNIVERSE, IFA_F_PERMANENT, 2);
}

static int del(struct hb_addrset *s, const char *text) {
  return apply_one(s, RTM_DELADDR, text, RT_SCOPE_UNIVERSE, IFA_F_PERMANENT, 2);
}

/* expect_usable checks the usable list; the want list ends with NULL. */
static void expect_usable(const struct hb_addrset *s, const char *const *want) {
  char out[HB_ADDRS_MAX][HB_ADDR_TEXT];
  size_t n = hb_addrset_usable(s, out, HB_ADDRS_MAX), i;

  for (i = 0; want[i] != NULL; i++) {
    if (i >= n)
      fail_msg("usable[%zu]: missing %s (%zu listed)", i, want[i], n);
    assert_string_equal(out[i], want[i]);
  }
  assert_int_equal(n, i);
}

#define USABLE(s, ...)                                                                             \
  do {                                                                                             \
    static const char *const want_[] = {__VA_ARGS__, NULL};                                        \
    expect_usable(s, want_);                                                                       \
  } while (0)
#define NONE_USABLE(s) assert_int_equal(hb_addrset_usable(s, NULL, 0), 0)

/* ---- parser tests ---------------------------------------------------------------------------- */

static void test_add_del(void **state) {
  struct hb_addrset s;

  (void)state;
  memset(&s, 0, sizeof(s));
  assert_int_equal(add(&s, "198.18.0.2"), 1);
  assert_int_equal(add(&s, "198.18.0.2"), 0); /* same entry: no change */
  USABLE(&s, "198.18.0.2");
  assert_int_equal(add(&s, "2001:db8::1"), 1);
  USABLE(&s, "198.18.0.2", "2001:db8::1");
  assert_int_equal(del(&s, "198.18.0.2"), 1);
  assert_int_equal(del(&s, "198.18.0.2"), 0);
  assert_int_equal(del(&s, "192.0.2.99"), 0);
  USABLE(&s, "2001:db8::1");
  assert_int_equal(del(&s, "2001:db8::1"), 1);
  assert_int_equal(s.n, 0);
  NONE_USABLE(&s);

  /* Flags change on an existing address (DAD finishing): an update, not a second entry. */
  assert_int_equal(apply_one(&s, RTM_NEWADDR, "2001:db8::2", RT_SCOPE_UNIVERSE, IFA_F_TENTATIVE, 2),
                   1);
  NONE_USABLE(&s);
  assert_int_equal(apply_one(&s, RTM_NEWADDR, "2001:db8::2", RT_SCOPE_UNIVERSE, 0, 2), 1);
  assert_int_equal(s.n, 1);
  USABLE(&s, "2001:db8::2");
  /* The same address on another interface is another entry, deleted separately. */
  assert_int_equal(apply_one(&s, RTM_NEWADDR, "2001:db8::2", RT_SCOPE_UNIVERSE, 0, 3), 1);
  assert_int_equal(s.n, 2);
  assert_int_equal(apply_one(&s, RTM_DELADDR, "2001:db8::2", RT_SCOPE_UNIVERSE, 0, 2), 1);
  USABLE(&s, "2001:db8::2");
}

static void test_scopes(void **state) {
  static const struct {
    const char *text;
    uint8_t scope;
  } never[] = {
      {"127.0.0.1", RT_SCOPE_HOST},
      {"127.0.0.2", RT_SCOPE_UNIVERSE}, /* loopback by address */
      {"10.1.1.1", RT_SCOPE_LINK},
      {"169.254.3.4", RT_SCOPE_UNIVERSE},
      {"169.254.0.1", RT_SCOPE_LINK},
      {"::1", RT_SCOPE_HOST},
      {"::1", RT_SCOPE_UNIVERSE},
      {"fe80::1", RT_SCOPE_LINK},
      {"fe80::2", RT_SCOPE_UNIVERSE},
      {"febf:ffff::1", RT_SCOPE_UNIVERSE}, /* end of fe80::/10 */
      {"fec0::1", RT_SCOPE_SITE},
      {"2001:db8::9", RT_SCOPE_SITE},
      {"198.51.100.1", RT_SCOPE_NOWHERE},
  };
  struct hb_addrset s;
  size_t i;

  (void)state;
  memset(&s, 0, sizeof(s));
  for (i = 0; i < sizeof(never) / sizeof(never[0]); i++)
    assert_int_equal(apply_one(&s, RTM_NEWADDR, never[i].text, never[i].scope, 0, 1), 0);
  assert_int_equal(s.n, 0); /* never kept: they would only take room */
  assert_int_equal(apply_one(&s, RTM_NEWADDR, "203.0.113.7", RT_SCOPE_UNIVERSE, 0, 2), 1);
  assert_int_equal(apply_one(&s, RTM_NEWADDR, "fec0::5", RT_SCOPE_UNIVERSE, 0, 2), 1);
  assert_int_equal(apply_one(&s, RTM_NEWADDR, "169.255.0.1", RT_SCOPE_UNIVERSE, 0, 2), 1);
  assert_int_equal(apply_one(&s, RTM_NEWADDR, "128.0.0.1", RT_SCOPE_UNIVERSE, 0, 2), 1);
  USABLE(&s, "128.0.0.1", "169.255.0.1", "203.0.113.7", "fec0::5");
  /* A scope narrowed by a later NEWADDR removes the entry. */
  assert_int_equal(apply_one(&s, RTM_NEWADDR, "203.0.113.7", RT_SCOPE_LINK, 0, 2), 1);
  USABLE(&s, "128.0.0.1", "169.255.0.1", "fec0::5");
}

static void test_flags(void **state) {
  struct hb_addrset s;
  struct nlbuf nb = {.len = 0};
  struct a dep = {RTM_NEWADDR, "2001:db8::10", 64, RT_SCOPE_UNIVERSE, IFA_F_DEPRECATED, 2};
  struct a dad = {RTM_NEWADDR, "2001:db8::11", 64, RT_SCOPE_UNIVERSE, IFA_F_DADFAILED, 2};
  struct a ten = {RTM_NEWADDR, "2001:db8::12", 64, RT_SCOPE_UNIVERSE, 0, 2};
  struct a sup = {RTM_NEWADDR, "2001:db8::13", 64, RT_SCOPE_UNIVERSE, IFA_F_DEPRECATED, 2};
  struct a ok = {RTM_NEWADDR,
                 "2001:db8::14",
                 64,
                 RT_SCOPE_UNIVERSE,
                 IFA_F_SECONDARY | IFA_F_OPTIMISTIC | IFA_F_PERMANENT,
                 2};
  struct a v4 = {RTM_NEWADDR, "192.0.2.5", 24, RT_SCOPE_UNIVERSE, IFA_F_TENTATIVE, 2};

  (void)state;
  memset(&s, 0, sizeof(s));
  add_msg(&nb, &dep, 0, 0);
  add_msg(&nb, &dad, 0, 0);
  add_msg(&nb, &ten, 1, IFA_F_TENTATIVE);                            /* only in IFA_FLAGS */
  add_msg(&nb, &sup, 1, IFA_F_MANAGETEMPADDR | IFA_F_NOPREFIXROUTE); /* IFA_FLAGS supersedes */
  add_msg(&nb, &ok, 0, 0);
  add_msg(&nb, &v4, 0, 0);
  assert_int_equal(apply(&s, &nb), 1);
  assert_int_equal(s.n, 6); /* kept: flags change */
  USABLE(&s, "2001:db8::13", "2001:db8::14");
  for (size_t i = 0; i < s.n; i++)
    if (s.a[i].family == AF_INET6 && s.a[i].addr[15] == 0x13)
      assert_int_equal(s.a[i].flags, IFA_F_MANAGETEMPADDR | IFA_F_NOPREFIXROUTE);
  /* The tentative IPv4 address passes DAD (acd). */
  v4.ifa_flags = 0;
  nb.len = 0;
  add_msg(&nb, &v4, 0, 0);
  assert_int_equal(apply(&s, &nb), 1);
  USABLE(&s, "192.0.2.5", "2001:db8::13", "2001:db8::14");
}

static void test_local_vs_address(void **state) {
  struct hb_addrset s;
  struct nlbuf nb = {.len = 0};
  uint8_t local[16], peer[16], fam;
  size_t at;

  (void)state;
  memset(&s, 0, sizeof(s));
  /* Point-to-point IPv4: IFA_ADDRESS is the peer, IFA_LOCAL ours, in either order. */
  pton("192.0.2.1", local, &fam);
  pton("10.0.0.2", peer, &fam);
  at = msg_begin(&nb, RTM_NEWADDR, 0);
  put_ifa(&nb, AF_INET, 32, 0, RT_SCOPE_UNIVERSE, 5);
  put_attr(&nb, IFA_ADDRESS, peer, 4);
  put_attr(&nb, IFA_LOCAL, local, 4);
  msg_end(&nb, at);
  pton("198.51.100.3", local, &fam);
  at = msg_begin(&nb, RTM_NEWADDR, 0);
  put_ifa(&nb, AF_INET, 32, 0, RT_SCOPE_UNIVERSE, 6);
  put_attr(&nb, IFA_LOCAL, local, 4);
  put_attr(&nb, IFA_ADDRESS, peer, 4);
  msg_end(&nb, at);
  /* IPv6 with a peer: the same rule. */
  pton("2001:db8::a", local, &fam);
  pton("2001:db8::b", peer, &fam);
  at = msg_begin(&nb, RTM_NEWADDR, 0);
  put_ifa(&nb, AF_INET6, 128, 0, RT_SCOPE_UNIVERSE, 7);
  put_attr(&nb, IFA_ADDRESS, peer, 16);
  put_attr(&nb, IFA_LOCAL, local, 16);
  put_attr(&nb, IFA_CACHEINFO, peer, 16); /* unknown to us: skipped */
  msg_end(&nb, at);
  assert_int_equal(apply(&s, &nb), 1);
  USABLE(&s, "192.0.2.1", "198.51.100.3", "2001:db8::a");
}

static void test_sort_dedup_max(void **state) {
  struct hb_addrset s;
  char out[HB_ADDRS_MAX][HB_ADDR_TEXT];
  struct nlbuf nb = {.len = 0};
  struct a a24 = {RTM_NEWADDR, "192.0.2.1", 24, RT_SCOPE_UNIVERSE, 0, 2};
  struct a a16 = {RTM_NEWADDR, "192.0.2.1", 16, RT_SCOPE_UNIVERSE, 0, 2};

  (void)state;
  memset(&s, 0, sizeof(s));
  assert_int_equal(add(&s, "2001:db8::1"), 1);
  assert_int_equal(add(&s, "198.51.100.9"), 1);
  assert_int_equal(apply_one(&s, RTM_NEWADDR, "2001:db8::1", RT_SCOPE_UNIVERSE, 0, 3), 1);
  assert_int_equal(add(&s, "10.0.0.1"), 1);
  assert_int_equal(add(&s, "2001:db8:0:1::"), 1);
  assert_int_equal(add(&s, "9.9.9.9"), 1);
  USABLE(&s, "9.9.9.9", "10.0.0.1", "198.51.100.9", "2001:db8::1", "2001:db8:0:1::");
  assert_int_equal(hb_addrset_usable(&s, out, 2), 2);
  assert_string_equal(out[0], "9.9.9.9");
  assert_string_equal(out[1], "10.0.0.1");
  assert_int_equal(hb_addrset_usable(&s, out, 4), 4);
  assert_string_equal(out[3], "2001:db8::1");

  /* An IPv4 address under two prefix lengths is two kernel addresses: one listed until both go. */
  memset(&s, 0, sizeof(s));
  add_msg(&nb, &a24, 0, 0);
  add_msg(&nb, &a16, 0, 0);
  assert_int_equal(apply(&s, &nb), 1);
  assert_int_equal(s.n, 2);
  USABLE(&s, "192.0.2.1");
  nb.len = 0;
  a24.type = RTM_DELADDR;
  add_msg(&nb, &a24, 0, 0);
  assert_int_equal(apply(&s, &nb), 1);
  USABLE(&s, "192.0.2.1");
  nb.len = 0;
  a16.type = RTM_DELADDR;
  add_msg(&nb, &a16, 0, 0);
  assert_int_equal(apply(&s, &nb), 1);
  NONE_USABLE(&s);
}

static void test_done_error(void **state) {
  struct hb_addrset s;
  struct nlbuf nb = {.len = 0};
  struct a a = {RTM_NEWADDR, "192.0.2.1", 24, RT_SCOPE_UNIVERSE, 0, 2};
  struct a b = {RTM_NEWADDR, "2001:db8::1", 64, RT_SCOPE_UNIVERSE, 0, 2};
  size_t at;

  (void)state;
  memset(&s, 0, sizeof(s));
  /* A dump's last datagram: addresses, then NLMSG_DONE carrying 0. */
  add_msg(&nb, &a, 0, 0);
  add_msg(&nb, &b, 0, 0);
  add_done(&nb, 1, 0);
  assert_int_equal(apply(&s, &nb), 1);
  assert_int_equal(s.done, 1);
  assert_int_equal(s.intr, 0);
  assert_int_equal(s.end_seq, 1);
  nb.len = 0;
  add_done(&nb, 0, 0); /* no payload: old kernels */
  assert_int_equal(apply(&s, &nb), 0);
  assert_int_equal(s.done, 2);
  nb.len = 0;
  add_done(&nb, 1, -EINTR); /* the dump failed */
  assert_int_equal(apply(&s, &nb), -EINTR);
  assert_int_equal(s.done, 3);

  /* An inconsistent dump is flagged on its messages. */
  nb.len = 0;
  at = msg_begin(&nb, NLMSG_DONE, NLM_F_MULTI | NLM_F_DUMP_INTR);
  put(&nb, &(int){0}, sizeof(int));
  msg_end(&nb, at);
  assert_int_equal(apply(&s, &nb), 0);
  assert_int_equal(s.intr, 1);

  /* NLMSG_ERROR: an error, or an acknowledgment; the other messages still apply. */
  nb.len = 0;
  add_error(&nb, -EPERM);
  assert_int_equal(apply(&s, &nb), -EPERM);
  nb.len = 0;
  add_error(&nb, 0);
  memcpy(nb.b + offsetof(struct nlmsghdr, nlmsg_seq), &(uint32_t){7}, sizeof(uint32_t));
  assert_int_equal(apply(&s, &nb), 0);
  assert_int_equal(s.end_seq, 7); /* which request the answer ended */
  nb.len = 0;
  a.text = "192.0.2.2";
  add_msg(&nb, &a, 0, 0);
  add_error(&nb, -EBUSY);
  add_error(&nb, -EPERM);
  assert_int_equal(apply(&s, &nb), -EBUSY); /* the first error */
  USABLE(&s, "192.0.2.1", "192.0.2.2", "2001:db8::1");

  /* Overrun, no-op and other rtnetlink messages. */
  nb.len = 0;
  at = msg_begin(&nb, NLMSG_OVERRUN, 0);
  msg_end(&nb, at);
  assert_int_equal(apply(&s, &nb), -ENOBUFS);
  nb.len = 0;
  at = msg_begin(&nb, NLMSG_NOOP, 0);
  msg_end(&nb, at);
  at = msg_begin(&nb, RTM_NEWLINK, 0);
  put(&nb, "\x01\x02\x03\x04\x05\x06\x07", 7);
  msg_end(&nb, at);
  at = msg_begin(&nb, RTM_NEWADDR, 0); /* AF_MCTP: 1-byte addresses, not ours */
  put_ifa(&nb, AF_MCTP, 0, 0, RT_SCOPE_UNIVERSE, 9);
  put_attr(&nb, IFA_LOCAL, "\x08", 1);
  msg_end(&nb, at);
  assert_int_equal(apply(&s, &nb), 0);
  assert_int_equal(s.n, 3);
  assert_int_equal(hb_addrset_apply(&s, NULL, 0), 0);
}

/* expect_proto checks that |nb| is refused and leaves |s| as it was. */
static void expect_proto(struct hb_addrset *s, const struct nlbuf *nb, const char *what) {
  struct hb_addrset before = *s;
  int rv = apply(s, nb);

  if (rv != WR_ERR_PROTO)
    fail_msg("%s: got %d, want WR_ERR_PROTO", what, rv);
  assert_memory_equal(&before, s, sizeof(before));
}

/* bad_addr builds one NEWADDR with the given family, prefix length and attributes. */
static void bad_addr(struct nlbuf *nb, uint8_t family, uint8_t prefixlen, uint16_t type,
                     size_t alen) {
  static const uint8_t bytes[32] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
  size_t at;

  nb->len = 0;
  at = msg_begin(nb, RTM_NEWADDR, 0);
  put_ifa(nb, family, prefixlen, 0, RT_SCOPE_UNIVERSE, 2);
  if (type != 0)
    put_attr(nb, type, bytes, alen);
  msg_end(nb, at);
}

static void test_malformed(void **state) {
  struct hb_addrset s;
  struct nlbuf nb = {.len = 0}, good = {.len = 0};
  struct a a = {RTM_NEWADDR, "192.0.2.1", 24, RT_SCOPE_UNIVERSE, 0, 2};
  struct a b = {RTM_NEWADDR, "192.0.2.2", 24, RT_SCOPE_UNIVERSE, 0, 2};
  uint8_t v4[4] = {192, 0, 2, 3};
  size_t at;

  (void)state;
  memset(&s, 0, sizeof(s));
  assert_int_equal(add(&s, "198.18.0.2"), 1);
  add_msg(&good, &a, 0, 0);

  /* Message framing. */
  nb = good;
  nb.len = 10;
  expect_proto(&s, &nb, "shorter than nlmsghdr");
  nb = good;
  set_len(&nb, 0, 8);
  expect_proto(&s, &nb, "nlmsg_len below the header");
  nb = good;
  set_len(&nb, 0, (uint32_t)nb.len + 4);
  expect_proto(&s, &nb, "nlmsg_len past the end");
  nb = good;
  set_len(&nb, 0, 0xffffffffu);
  expect_proto(&s, &nb, "nlmsg_len huge");
  nb = good;
  put(&nb, "\0\0\0\0\0\0\0\0", 8);
  expect_proto(&s, &nb, "trailing bytes");
  nb = good;
  add_msg(&nb, &b, 0, 0);
  add_error(&nb, -EPERM);
  set_len(&nb, nb.len - NLMSG_LENGTH(sizeof(struct nlmsgerr)), NLMSG_HDRLEN + 2);
  expect_proto(&s, &nb, "good messages, then a short NLMSG_ERROR: all or nothing");
  assert_int_equal(s.n, 1);

  /* ifaddrmsg and attributes. */
  nb.len = 0;
  at = msg_begin(&nb, RTM_NEWADDR, 0);
  put(&nb, "\x02\x18\x00\x00", 4);
  msg_end(&nb, at);
  expect_proto(&s, &nb, "short ifaddrmsg");
  nb.len = 0;
  at = msg_begin(&nb, RTM_DELADDR, 0);
  put_ifa(&nb, AF_INET, 24, 0, RT_SCOPE_UNIVERSE, 2);
  put_attr_len(&nb, IFA_LOCAL, v4, 4, 2);
  msg_end(&nb, at);
  expect_proto(&s, &nb, "rta_len below the attribute header");
  nb.len = 0;
  at = msg_begin(&nb, RTM_NEWADDR, 0);
  put_ifa(&nb, AF_INET, 24, 0, RT_SCOPE_UNIVERSE, 2);
  put_attr_len(&nb, IFA_LOCAL, v4, 4, 40);
  msg_end(&nb, at);
  add_msg(&nb, &b, 0, 0); /* bytes follow, but outside the first message */
  expect_proto(&s, &nb, "rta_len past the end of its message");
  nb.len = 0;
  at = msg_begin(&nb, RTM_NEWADDR, 0);
  put_ifa(&nb, AF_INET, 24, 0, RT_SCOPE_UNIVERSE, 2);
  put_attr(&nb, IFA_LOCAL, v4, 4);
  put(&nb, "\x08\x00", 2);
  set_len(&nb, at, (uint32_t)(nb.len - at));
  expect_proto(&s, &nb, "2 bytes after the attributes");
  bad_addr(&nb, AF_INET, 24, IFA_ADDRESS, 16);
  expect_proto(&s, &nb, "16-byte IPv4 address");
  bad_addr(&nb, AF_INET6, 64, IFA_LOCAL, 4);
  expect_proto(&s, &nb, "4-byte IPv6 address");
  bad_addr(&nb, AF_INET6, 64, IFA_ADDRESS, 0);
  expect_proto(&s, &nb, "empty IPv6 address");
  bad_addr(&nb, AF_INET, 24, IFA_LOCAL, 5);
  expect_proto(&s, &nb, "5-byte IPv4 address");
  bad_addr(&nb, AF_INET, 24, IFA_FLAGS, 2);
  expect_proto(&s, &nb, "2-byte IFA_FLAGS");
  bad_addr(&nb, AF_INET, 33, IFA_LOCAL, 4);
  expect_proto(&s, &nb, "IPv4 prefix 33");
  bad_addr(&nb, AF_INET6, 129, IFA_ADDRESS, 16);
  expect_proto(&s, &nb, "IPv6 prefix 129");
  bad_addr(&nb, AF_INET, 24, 0, 0);
  expect_proto(&s, &nb, "no address");
  bad_addr(&nb, AF_INET6, 64, IFA_CACHEINFO, 16);
  expect_proto(&s, &nb, "no address, another attribute");

  /* NLMSG_ERROR and NLMSG_DONE payloads. */
  nb.len = 0;
  add_error(&nb, 5);
  expect_proto(&s, &nb, "positive error");
  nb.len = 0;
  add_error(&nb, -5000);
  expect_proto(&s, &nb, "error out of the errno range");
  nb.len = 0;
  add_error(&nb, WR_ERR_PROTO);
  expect_proto(&s, &nb, "an error that would read as a WR_ERR_* code");
  nb.len = 0;
  add_done(&nb, 1, -1000);
  expect_proto(&s, &nb, "NLMSG_DONE error out of the errno range");
  nb.len = 0;
  at = msg_begin(&nb, NLMSG_ERROR, 0);
  msg_end(&nb, at);
  expect_proto(&s, &nb, "empty NLMSG_ERROR");
  nb.len = 0;
  at = msg_begin(&nb, NLMSG_DONE, 0);
  put(&nb, "\0\0", 2);
  msg_end(&nb, at);
  expect_proto(&s, &nb, "2-byte NLMSG_DONE payload");
  USABLE(&s, "198.18.0.2");
}

/* Every prefix of a valid datagram is either refused or, cut at a message boundary, applied;
 * nothing is read past the cut (ASan sees the heap copy's end). */
static void test_truncated(void **state) {
  struct nlbuf nb = {.len = 0}, cut;
  struct a a = {RTM_NEWADDR, "192.0.2.1", 24, RT_SCOPE_UNIVERSE, 0, 2};
  struct a b = {RTM_NEWADDR, "2001:db8::1", 64, RT_SCOPE_UNIVERSE, 0, 2};
  size_t bounds[4], nbounds = 0, len, i;

  (void)state;
  add_msg(&nb, &a, 1, 0);
  bounds[nbounds++] = nb.len;
  add_msg(&nb, &b, 1, IFA_F_PERMANENT);
  bounds[nbounds++] = nb.len;
  add_done(&nb, 1, 0);
  bounds[nbounds++] = nb.len;
  for (len = 0; len <= nb.len; len++) {
    struct hb_addrset s;
    int boundary = len == 0, rv;

    for (i = 0; i < nbounds; i++)
      boundary |= len == bounds[i];
    memset(&s, 0, sizeof(s));
    cut = nb;
    cut.len = len;
    rv = apply(&s, &cut);
    if (boundary)
      assert_true(rv >= 0);
    else if (rv != WR_ERR_PROTO)
      fail_msg("cut at %zu of %zu: got %d", len, nb.len, rv);
  }
}

static void test_cap(void **state) {
  struct hb_addrset s;
  struct nlbuf nb = {.len = 0};
  char text[HB_ADDRS_MAX + 8][32], out[HB_ADDRS_MAX][HB_ADDR_TEXT];
  size_t i;

  (void)state;
  memset(&s, 0, sizeof(s));
  /* One datagram of 40 addresses (a dump), plus link-local ones that take no room. */
  for (i = 0; i < HB_ADDRS_MAX + 8; i++) {
    struct a a = {RTM_NEWADDR, text[i], 24, RT_SCOPE_UNIVERSE, 0, 2};
    struct a ll = {RTM_NEWADDR, "fe80::1", 64, RT_SCOPE_LINK, 0, (uint32_t)(100 + i)};

    snprintf(text[i], sizeof(text[i]), "198.18.1.%zu", 100 + i);
    add_msg(&nb, &a, 0, 0);
    add_msg(&nb, &ll, 0, 0);
  }
  assert_int_equal(apply(&s, &nb), 1);
  assert_int_equal(s.n, HB_ADDRS_MAX);
  assert_int_equal(s.overflow, 8);
  assert_int_equal(hb_addrset_usable(&s, out, HB_ADDRS_MAX), HB_ADDRS_MAX);
  for (i = 0; i < HB_ADDRS_MAX; i++)
    assert_string_equal(out[i], text[i]); /* the first ones stay, in order */
  assert_int_equal(add(&s, text[HB_ADDRS_MAX]), 0);
  assert_int_equal(s.overflow, 9);
  /* Updates of kept addresses still apply when full. */
  assert_int_equal(apply_one(&s, RTM_NEWADDR, text[0], RT_SCOPE_UNIVERSE, IFA_F_DEPRECATED, 2), 1);
  assert_int_equal(hb_addrset_usable(&s, out, HB_ADDRS_MAX), HB_ADDRS_MAX - 1);
  /* A deletion makes room. */
  assert_int_equal(del(&s, text[5]), 1);
  assert_int_equal(add(&s, text[HB_ADDRS_MAX + 3]), 1);
  assert_int_equal(s.n, HB_ADDRS_MAX);
}

/* ---- the watcher on a real loop -------------------------------------------------------------- */

struct live {
  uv_loop_t loop;
  uv_timer_t guard;
  hb_addrwatch *w;
  int calls;
  size_t n;
  char addrs[HB_ADDRS_MAX][HB_ADDR_TEXT];
};

static void on_guard(uv_timer_t *t) {
  struct live *l = t->data;

  /* After the first report: nothing more while the host's addresses stay put. */
  hb_addrwatch_del(l->w);
  l->w = NULL;
  uv_close((uv_handle_t *)t, NULL);
}

static void on_change(void *ud, const char (*addrs)[HB_ADDR_TEXT], size_t n) {
  struct live *l = ud;

  l->calls++;
  if (l->calls > 1)
    return;
  memcpy(l->addrs, addrs, n * sizeof(addrs[0]));
  l->n = n;
  /* Wait past a debounce period to see that the dump gives one call. */
  uv_timer_start(&l->guard, on_guard, 3 * HB_DEBOUNCE_MS, 0);
}

static int cmp_text(const void *a, const void *b) {
  return strcmp(a, b);
}

/* host_usable lists getifaddrs() addresses filtered as hb_addrset_usable does, as far as
 * getifaddrs can tell (it has no scope or DAD flags; a test host rarely has such addresses). */
static size_t host_usable(char out[][HB_ADDR_TEXT], size_t max) {
  struct ifaddrs *ifs, *i;
  size_t n = 0, k, j;

  assert_int_equal(getifaddrs(&ifs), 0);
  for (i = ifs; i != NULL; i = i->ifa_next) {
    char text[HB_ADDR_TEXT];
    const uint8_t *b;

    /* By address, not by interface: a global address on lo (anycast) is published. */
    if (i->ifa_addr == NULL)
      continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      b = (const uint8_t *)&((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr;
      if (b[0] == 127 || (b[0] == 169 && b[1] == 254))
        continue;
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      b = (const uint8_t *)&((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr;
      if (IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)b) ||
          IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)b))
        continue;
    } else
      continue;
    assert_non_null(inet_ntop(i->ifa_addr->sa_family, b, text, sizeof(text)));
    for (j = 0; j < n && strcmp(out[j], text) != 0; j++)
      ;
    if (j == n && n < max)
      memcpy(out[n++], text, sizeof(text));
  }
  freeifaddrs(ifs);
  qsort(out, n, sizeof(out[0]), cmp_text);
  for (k = 0; k < n; k++)
    printf("host address: %s\n", out[k]);
  return n;
}

static void test_live(void **state) {
  struct live l;
  char want[HB_ADDRS_MAX][HB_ADDR_TEXT];
  size_t nwant, i;
  int rv;

  (void)state;
  memset(&l, 0, sizeof(l));
  assert_int_equal(uv_loop_init(&l.loop), 0);
  uv_timer_init(&l.loop, &l.guard);
  l.guard.data = &l;
  rv = hb_addrwatch_new(&l.w, &l.loop, on_change, &l);
  if (rv == -EAFNOSUPPORT || rv == -EPERM || rv == -EACCES) {
    uv_close((uv_handle_t *)&l.guard, NULL);
    uv_run(&l.loop, UV_RUN_DEFAULT);
    uv_loop_close(&l.loop);
    printf("no rtnetlink here (%d): skipped\n", rv);
    skip();
  }
  assert_int_equal(rv, 0);
  assert_non_null(l.w);
  uv_timer_start(&l.guard, on_guard, 5000, 0); /* in case no report comes */
  uv_run(&l.loop, UV_RUN_DEFAULT);             /* ends when the guard has deleted the watcher */
  assert_int_equal(uv_loop_close(&l.loop), 0);
  assert_int_equal(l.calls, 1);

  /* Ours is sorted by bytes, the host's list by text: compare as sets of text. */
  qsort(l.addrs, l.n, sizeof(l.addrs[0]), cmp_text);
  nwant = host_usable(want, HB_ADDRS_MAX);
  for (i = 0; i < l.n; i++)
    printf("addrwatch: %s\n", l.addrs[i]);
  assert_int_equal(l.n, nwant);
  for (i = 0; i < nwant; i++)
    assert_string_equal(l.addrs[i], want[i]);
}

/* Deleting the watcher before its first report is safe and calls nothing. */
static void test_live_del_early(void **state) {
  struct live l;
  int rv;

  (void)state;
  memset(&l, 0, sizeof(l));
  assert_int_equal(uv_loop_init(&l.loop), 0);
  rv = hb_addrwatch_new(&l.w, &l.loop, on_change, &l);
  if (rv != 0) {
    uv_loop_close(&l.loop);
    skip();
  }
  hb_addrwatch_del(l.w);
  uv_run(&l.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&l.loop), 0);
  assert_int_equal(l.calls, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_add_del),
      cmocka_unit_test(test_scopes),
      cmocka_unit_test(test_flags),
      cmocka_unit_test(test_local_vs_address),
      cmocka_unit_test(test_sort_dedup_max),
      cmocka_unit_test(test_done_error),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_cap),
      cmocka_unit_test(test_live),
      cmocka_unit_test(test_live_del_early),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
