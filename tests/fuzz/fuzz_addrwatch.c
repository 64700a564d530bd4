/*
 * fuzz_addrwatch.c - libFuzzer target for the agent's rtnetlink address parser.
 *
 * The input is one datagram. It is applied to an empty set, then again to the
 * result, and each time the set's invariants are checked: at most
 * HB_ADDRS_MAX entries, each an IPv4/IPv6 global-scope address with a unique
 * key, unused slots zero; a refused datagram changes nothing; a return of 0
 * means no entry changed. The usable list must be valid text, sorted and
 * without duplicates. Without overflow, applying a datagram twice gives the
 * same set as once (the last message for each address decides). Any
 * difference aborts.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "addrwatch.h"
#include "warren/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rc(int rc) {
  if (rc == 0 || rc == 1 || rc == WR_ERR_PROTO)
    return;
  if (rc < 0 && rc >= -999) /* an errno from NLMSG_ERROR, NLMSG_DONE or NLMSG_OVERRUN */
    return;
  abort();
}

static int same_key(const struct hb_addr *a, const struct hb_addr *b) {
  return a->family == b->family && a->ifindex == b->ifindex && a->prefixlen == b->prefixlen &&
         memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static void check_set(const struct hb_addrset *s) {
  static const struct hb_addr zero;
  char out[HB_ADDRS_MAX][HB_ADDR_TEXT];
  uint8_t prev[16], cur[16];
  int prevfam = 0;
  size_t i, j, n;

  if (s->n > HB_ADDRS_MAX)
    abort();
  for (i = 0; i < HB_ADDRS_MAX; i++) {
    const struct hb_addr *a = &s->a[i];

    if (i >= s->n) {
      if (memcmp(a, &zero, sizeof(zero)) != 0)
        abort();
      continue;
    }
    if ((a->family != AF_INET && a->family != AF_INET6) || a->scope != 0 || a->pad != 0)
      abort();
    if (a->family == AF_INET && (a->prefixlen > 32 || memcmp(a->addr + 4, zero.addr, 12) != 0))
      abort();
    if (a->family == AF_INET6 && a->prefixlen != 0)
      abort();
    for (j = 0; j < i; j++)
      if (same_key(a, &s->a[j]))
        abort();
  }
  n = hb_addrset_usable(s, out, HB_ADDRS_MAX);
  if (n > s->n)
    abort();
  for (i = 0; i < n; i++) {
    int fam = strchr(out[i], ':') != NULL ? AF_INET6 : AF_INET;

    if (memchr(out[i], 0, HB_ADDR_TEXT) == NULL)
      abort();
    memset(cur, 0, sizeof(cur));
    if (inet_pton(fam, out[i], cur) != 1)
      abort();
    /* Strictly increasing: IPv4 first, then by bytes. */
    if (i > 0 && (fam < prevfam || (fam == prevfam && memcmp(prev, cur, 16) >= 0)))
      abort();
    memcpy(prev, cur, sizeof(prev));
    prevfam = fam;
  }
}

/* same_entries tells whether a and b hold the same entries, in any order. */
static int same_entries(const struct hb_addrset *a, const struct hb_addrset *b) {
  size_t i, j;

  if (a->n != b->n)
    return 0;
  for (i = 0; i < a->n; i++) {
    for (j = 0; j < b->n && memcmp(&a->a[i], &b->a[j], sizeof(a->a[i])) != 0; j++)
      ;
    if (j == b->n)
      return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const struct hb_addrset empty;
  struct hb_addrset s, t;
  uint8_t *copy;
  int rc, rc2;

  /* An exact-size heap copy, so ASan reports any read past the end. */
  copy = malloc(size ? size : 1);
  if (copy == NULL)
    return 0;
  memcpy(copy, data, size);

  memset(&s, 0, sizeof(s));
  rc = hb_addrset_apply(&s, copy, size);
  check_rc(rc);
  if (rc == WR_ERR_PROTO && memcmp(&s, &empty, sizeof(s)) != 0)
    abort();
  if (rc == 0 && s.n != 0)
    abort();
  check_set(&s);

  t = s;
  rc2 = hb_addrset_apply(&t, copy, size);
  check_rc(rc2);
  /* Validity does not depend on the set; errors are carried by the same messages. */
  if ((rc == WR_ERR_PROTO) != (rc2 == WR_ERR_PROTO) || (rc < 0 && rc != rc2))
    abort();
  if (rc2 == WR_ERR_PROTO && memcmp(&t, &s, sizeof(t)) != 0)
    abort();
  if (rc2 == 0 && (t.n != s.n || memcmp(t.a, s.a, sizeof(t.a)) != 0))
    abort();
  check_set(&t);
  if (rc != WR_ERR_PROTO && s.overflow == 0 && t.overflow == 0 && !same_entries(&s, &t))
    abort();
  free(copy);
  return 0;
}
