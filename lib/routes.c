/*
 * routes.c - the standalone gateway's routes file: Connector and HTTPProxy
 * objects in YAML, read through conf.h (docs/internals/routes.md).
 *
 * Loading runs in three steps over a wr_conf, and nothing reaches the caller
 * until all of them succeed: (1) every document's kind is checked and the
 * Connectors are parsed, so documents may come in any order; (2) the
 * HTTPProxies are parsed, each backend naming a Connector of the same file
 * (and namespace); (3) duplicate names and hostnames are found by sorting.
 *
 * Only what the standalone gateway routes by is interpreted: hostnames and,
 * per rule, a backend with a connector and an endpoint. The keys `matches`,
 * `filters`, `tls`, `instance` and a rule's `name` are accepted and ignored
 * for now, so the gateway routes on Host alone; rules without a connector
 * backend are skipped. Keys the CRDs do not define are refused where we
 * interpret the object, to catch typos.
 *
 * The table is sorted by hostname (file order among equal names, which only
 * several connector rules of one proxy produce), so wr_routes_match() is a
 * binary search for the name and then for each "*.suffix" from the longest.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warren/conf.h"
#include "warren/err.h"
#include "warren/identity.h"
#include "warren/routes.h"

#define API_HTTPPROXY "networking.datumapis.com/v1alpha"
#define API_CONNECTOR "networking.datumapis.com/v1alpha1"
#define LIST_MAX 16      /* hostnames, rules, addresses: the CRDs' maxItems */
#define NAME_MAX_LEN 253 /* hostnames and object names */
#define URL_MAX 2048     /* bytes of a backend endpoint URL */
#define HOSTPORT_MAX (NAME_MAX_LEN + 8)

struct connector {
  const char *ns; /* metadata.namespace, "" when absent; strings live in the wr_conf */
  const char *name;
  wr_conf_node where; /* metadata.name, for messages */
  size_t seq;         /* document order */
  wr_pubkey id;
  char node_addr[INET6_ADDRSTRLEN + 8];
};

struct proxy {
  const char *ns;
  const char *name;
  wr_conf_node where;
  size_t seq;
};

struct host {
  char *name; /* lowercase */
  const char *proxy;
  wr_conf_node where;
  size_t seq;
};

struct pending {
  struct wr_route r;
  size_t seq;
};

struct loader {
  wr_conf *conf;
  struct connector *conns;
  size_t nconns;
  struct proxy *proxies;
  size_t nproxies;
  struct host *hosts;
  size_t nhosts;
  struct pending *routes;
  size_t nroutes;
};

/* grow makes room for one more element in *v, which holds |n| of |size|. */
static int grow(void *v, size_t n, size_t size) {
  void **pv = v;
  void *nv;

  if (n % 16 != 0)
    return 0;
  nv = realloc(*pv, (n + 16) * size);
  if (nv == NULL)
    return WR_ERR_NOMEM;
  *pv = nv;
  return 0;
}

/* sort is qsort(3) without its undefined behaviour on an empty NULL array. */
static void sort(void *v, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
  if (n > 1)
    qsort(v, n, size, cmp);
}

static bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* wr_routes_dns_name matches [a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*,
 * the pattern of the CRDs' hostnames and of Kubernetes object names. */
bool wr_routes_dns_name(const char *s, size_t n) {
  size_t i, start = 0;

  if (n == 0)
    return false;
  for (i = 0; i <= n; i++) {
    if (i < n && s[i] != '.') {
      if (!is_alnum(s[i]) && s[i] != '-')
        return false;
      continue;
    }
    if (i == start || !is_alnum(s[start]) || !is_alnum(s[i - 1]))
      return false;
    start = i + 1;
  }
  return true;
}

/* lower_copy writes |s| lowercased (ASCII) into |buf|; false when it does not fit. */
static bool lower_copy(char *buf, size_t len, const char *s, size_t n) {
  size_t i;

  if (n >= len)
    return false;
  for (i = 0; i < n; i++) {
    buf[i] = s[i];
    if (s[i] >= 'A' && s[i] <= 'Z')
      buf[i] = (char)(s[i] + ('a' - 'A'));
  }
  buf[n] = '\0';
  return true;
}

/* parse_port reads 1..65535 from |s|..|end|; 0 when invalid. */
static unsigned parse_port(const char *s, const char *end) {
  unsigned v = 0;

  if (s == end || end - s > 5)
    return 0;
  for (; s < end; s++) {
    if (*s < '0' || *s > '9')
      return 0;
    v = v * 10 + (unsigned)(*s - '0');
  }
  return v <= 65535 ? v : 0;
}

/* parse_host checks the host of an endpoint URL: a DNS name or an IPv4
 * literal (a name whose last label is numeric must be one). */
static const char *parse_host(const char *s, size_t n, char *buf, size_t len) {
  const char *last;
  struct in_addr a4;

  if (n == 0)
    return "missing host";
  if (!lower_copy(buf, len, s, n) || n > NAME_MAX_LEN)
    return "host name longer than 253 characters";
  last = strrchr(buf, '.');
  last = last ? last + 1 : buf;
  if (strspn(last, "0123456789") == strlen(last) && *last != '\0') {
    if (inet_pton(AF_INET, buf, &a4) != 1)
      return "invalid IPv4 address";
    return NULL;
  }
  if (!wr_routes_dns_name(buf, n))
    return "invalid host name";
  return NULL;
}

const char *wr_routes_endpoint(const char *url, char *target, size_t len) {
  char host[NAME_MAX_LEN + 2], v6[INET6_ADDRSTRLEN];
  const char *p = url, *end, *hend, *port = NULL, *why;
  unsigned defport = 0, portnum;
  struct in6_addr a6;
  size_t i, n = strlen(url);

  if (n > URL_MAX)
    return "longer than 2048 bytes";
  for (i = 0; i < n; i++) {
    if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
      return "contains a space, a control or a non-ASCII character";
  }
  if (strncasecmp(p, "http://", 7) == 0) {
    defport = 80;
    p += 7;
  } else if (strncasecmp(p, "https://", 8) == 0) {
    defport = 443;
    p += 8;
  } else if (strstr(p, "://") != NULL) {
    return "the scheme must be http or https";
  }
  end = p + strcspn(p, "/?#"); /* a path, query or fragment is ignored */
  if (memchr(p, '@', (size_t)(end - p)) != NULL)
    return "user information (user@host) is not allowed";
  if (*p == '[') {
    hend = memchr(p, ']', (size_t)(end - p));
    if (hend == NULL)
      return "unterminated [IPv6 address]";
    if ((size_t)(hend - p - 1) >= sizeof(v6))
      return "invalid IPv6 address";
    memcpy(v6, p + 1, (size_t)(hend - p - 1));
    v6[hend - p - 1] = '\0';
    if (inet_pton(AF_INET6, v6, &a6) != 1)
      return "invalid IPv6 address";
    inet_ntop(AF_INET6, &a6, v6, sizeof(v6));
    if (hend + 1 != end && hend[1] != ':')
      return "unexpected characters after ]";
    port = hend + 1 != end ? hend + 2 : NULL;
  } else {
    hend = memchr(p, ':', (size_t)(end - p));
    if (hend != NULL && memchr(hend + 1, ':', (size_t)(end - hend - 1)) != NULL)
      return "an IPv6 address must be in brackets";
    port = hend ? hend + 1 : NULL;
    hend = hend ? hend : end;
    why = parse_host(p, (size_t)(hend - p), host, sizeof(host));
    if (why != NULL)
      return why;
    v6[0] = '\0';
  }
  if (port != NULL) {
    portnum = parse_port(port, end);
    if (portnum == 0)
      return "the port must be a number from 1 to 65535";
  } else if (defport == 0) {
    return "expected http://host:port, https://host:port or host:port";
  } else {
    portnum = defport;
  }
  if (v6[0] != '\0')
    snprintf(target, len, "[%s]:%u", v6, portnum);
  else
    snprintf(target, len, "%s:%u", host, portnum);
  return NULL;
}

/* check_api checks apiVersion against the one of |kind|. */
static int check_api(wr_conf_node root, const char *want, const char *kind) {
  const char *api;
  int rv = wr_conf_get_str(root, "apiVersion", WR_CONF_REQUIRED, &api);

  if (rv == 0 && strcmp(api, want) != 0)
    rv = wr_conf_errorf(wr_conf_map_get(root, "apiVersion"),
                        "expected %s for kind %s, found \"%.64s\"", want, kind, api);
  return rv;
}

/* load_meta reads metadata.name and metadata.namespace. */
static int load_meta(wr_conf_node root, const char **ns, const char **name, wr_conf_node *where) {
  wr_conf_node meta = {0};
  int rv;

  *ns = "";
  rv = wr_conf_get_map(root, "metadata", WR_CONF_REQUIRED, &meta);
  if (rv == 0)
    rv = wr_conf_get_str(meta, "name", WR_CONF_REQUIRED, name);
  if (rv == 0 && !wr_routes_dns_name(*name, strlen(*name)))
    rv = wr_conf_errorf(wr_conf_map_get(meta, "name"),
                        "expected a lowercase DNS name (a-z, 0-9, '-', '.'), found \"%.64s\"",
                        *name);
  if (rv == 0 && strlen(*name) > NAME_MAX_LEN)
    rv = wr_conf_errorf(wr_conf_map_get(meta, "name"), "longer than 253 characters");
  if (rv == 0)
    rv = wr_conf_get_str(meta, "namespace", WR_CONF_OPTIONAL, ns);
  if (rv == 0)
    *where = wr_conf_map_get(meta, "name");
  return rv;
}

/* load_address checks one status.connectionDetails.publicKey.addresses[] item
 * and formats it as "ip:port" or "[v6]:port" into |buf|. */
static int load_address(wr_conf_node item, char *buf, size_t len) {
  static const char *const keys[] = {"address", "port", NULL};
  char text[INET6_ADDRSTRLEN];
  struct in6_addr a6;
  struct in_addr a4;
  const char *addr;
  long long port;
  int rv;

  rv = wr_conf_check_keys(item, keys);
  if (rv == 0)
    rv = wr_conf_get_str(item, "address", WR_CONF_REQUIRED, &addr);
  if (rv == 0)
    rv = wr_conf_get_int(item, "port", WR_CONF_REQUIRED, 1, 65535, &port);
  if (rv != 0)
    return rv;
  if (inet_pton(AF_INET, addr, &a4) == 1) {
    inet_ntop(AF_INET, &a4, text, sizeof(text));
    snprintf(buf, len, "%s:%lld", text, port);
  } else if (inet_pton(AF_INET6, addr, &a6) == 1) {
    inet_ntop(AF_INET6, &a6, text, sizeof(text));
    snprintf(buf, len, "[%s]:%lld", text, port);
  } else {
    return wr_conf_errorf(wr_conf_map_get(item, "address"),
                          "expected an IPv4 or IPv6 address, found \"%.64s\"", addr);
  }
  return 0;
}

static int load_connector(struct loader *l, wr_conf_node root, size_t seq) {
  static const char *const top_keys[] = {"apiVersion", "kind", "metadata", "spec", "status", NULL};
  static const char *const details_keys[] = {"type", "publicKey", NULL};
  static const char *const pk_keys[] = {"id", "addresses", "homeRelay", "discoveryMode", NULL};
  wr_conf_node status = {0}, details = {0}, pk = {0}, addrs = {0};
  struct connector c;
  const char *type, *id, *mode = "DNS", *relay;
  size_t i;
  int rv;

  memset(&c, 0, sizeof(c));
  c.seq = seq;
  rv = wr_conf_check_keys(root, top_keys);
  if (rv == 0)
    rv = check_api(root, API_CONNECTOR, "Connector");
  if (rv == 0)
    rv = load_meta(root, &c.ns, &c.name, &c.where);
  if (rv == 0)
    rv = wr_conf_get_map(root, "status", WR_CONF_REQUIRED, &status);
  if (rv == 0)
    rv = wr_conf_get_map(status, "connectionDetails", WR_CONF_REQUIRED, &details);
  if (rv == 0)
    rv = wr_conf_check_keys(details, details_keys);
  if (rv == 0)
    rv = wr_conf_get_str(details, "type", WR_CONF_REQUIRED, &type);
  if (rv == 0 && strcmp(type, "PublicKey") != 0)
    rv = wr_conf_errorf(wr_conf_map_get(details, "type"), "expected PublicKey, found \"%.64s\"",
                        type);
  if (rv == 0)
    rv = wr_conf_get_map(details, "publicKey", WR_CONF_REQUIRED, &pk);
  if (rv == 0)
    rv = wr_conf_check_keys(pk, pk_keys);
  if (rv == 0)
    rv = wr_conf_get_str(pk, "id", WR_CONF_REQUIRED, &id);
  if (rv == 0 && wr_id_parse(c.id, id) != 0)
    rv = wr_conf_errorf(wr_conf_map_get(pk, "id"),
                        "expected an endpoint ID (64 hex or 52 z-base-32 characters)");
  if (rv == 0)
    rv = wr_conf_get_str(pk, "homeRelay", WR_CONF_OPTIONAL, &relay);
  if (rv == 0)
    rv = wr_conf_get_str(pk, "discoveryMode", WR_CONF_OPTIONAL, &mode);
  if (rv == 0 && strcmp(mode, "DNS") != 0)
    rv =
        wr_conf_errorf(wr_conf_map_get(pk, "discoveryMode"), "expected DNS, found \"%.64s\"", mode);
  if (rv == 0)
    rv = wr_conf_get_seq(pk, "addresses", WR_CONF_REQUIRED, 1, LIST_MAX, &addrs);
  for (i = 0; rv == 0 && i < wr_conf_seq_len(addrs); i++) {
    char buf[sizeof(c.node_addr)];

    rv = load_address(wr_conf_seq_at(addrs, i), buf, sizeof(buf));
    if (rv == 0 && i == 0)
      memcpy(c.node_addr, buf, sizeof(buf));
  }
  if (rv != 0)
    return rv;
  if (grow(&l->conns, l->nconns, sizeof(*l->conns)) != 0)
    return WR_ERR_NOMEM;
  l->conns[l->nconns++] = c;
  return 0;
}

/* key_cmp orders objects by namespace, name, then document order, so that
 * duplicates sit next to each other with the first definition first. */
static int key_cmp(const char *ans, const char *aname, size_t aseq, const char *bns,
                   const char *bname, size_t bseq) {
  int r = strcmp(ans, bns);

  if (r == 0)
    r = strcmp(aname, bname);
  if (r == 0)
    r = aseq < bseq ? -1 : (aseq > bseq);
  return r;
}

static int conn_cmp(const void *a, const void *b) {
  const struct connector *x = a, *y = b;

  return key_cmp(x->ns, x->name, x->seq, y->ns, y->name, y->seq);
}

/* find_connector looks |ns|/|name| up in the sorted connectors. */
static const struct connector *find_connector(const struct loader *l, const char *ns,
                                              const char *name) {
  size_t lo = 0, hi = l->nconns;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp(ns, l->conns[mid].ns);

    if (r == 0)
      r = strcmp(name, l->conns[mid].name);
    if (r == 0)
      return &l->conns[mid];
    if (r < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

/* load_hostname validates and lowercases spec.hostnames[i] into l->hosts. */
static int load_hostname(struct loader *l, wr_conf_node item, const char *proxy, size_t seq) {
  char buf[NAME_MAX_LEN + 1];
  const char *s, *name;
  size_t n;
  int rv = wr_conf_str(item, &s);

  if (rv != 0)
    return rv;
  n = strlen(s);
  if (n == 0 || !lower_copy(buf, sizeof(buf), s, n))
    return wr_conf_errorf(item, "expected a hostname of 1 to 253 characters");
  name = strncmp(buf, "*.", 2) == 0 ? buf + 2 : buf;
  if (!wr_routes_dns_name(name, strlen(name)))
    return wr_conf_errorf(item,
                          "expected a hostname (labels of a-z, 0-9 and '-', optionally after "
                          "\"*.\"), found \"%.64s\"",
                          s);
  if (grow(&l->hosts, l->nhosts, sizeof(*l->hosts)) != 0)
    return WR_ERR_NOMEM;
  l->hosts[l->nhosts].name = strdup(buf);
  if (l->hosts[l->nhosts].name == NULL)
    return WR_ERR_NOMEM;
  l->hosts[l->nhosts].proxy = proxy;
  l->hosts[l->nhosts].where = item;
  l->hosts[l->nhosts].seq = seq;
  l->nhosts++;
  return 0;
}

/* add_route appends one route; |host| is an index into l->hosts. */
static int add_route(struct loader *l, wr_conf_node rule, size_t host, const char *proxy,
                     const struct connector *c, const char *target) {
  struct pending *p;

  if (l->nroutes >= WR_ROUTES_MAX)
    return wr_conf_errorf(rule, "more than %d routes in one file", WR_ROUTES_MAX);
  if (grow(&l->routes, l->nroutes, sizeof(*l->routes)) != 0)
    return WR_ERR_NOMEM;
  p = &l->routes[l->nroutes];
  memset(p, 0, sizeof(*p));
  l->nroutes++;
  p->seq = l->nroutes;
  memcpy(p->r.endpoint_id, c->id, sizeof(p->r.endpoint_id));
  p->r.hostname = strdup(l->hosts[host].name);
  p->r.proxy = strdup(proxy);
  p->r.connector = strdup(c->name);
  p->r.node_addr = strdup(c->node_addr);
  p->r.target = strdup(target);
  if (!p->r.hostname || !p->r.proxy || !p->r.connector || !p->r.node_addr || !p->r.target)
    return WR_ERR_NOMEM;
  return 0;
}

/* load_rule reads spec.rules[i]: a backend with a connector gives one route
 * per hostname of the proxy (l->hosts from |host0| on). */
static int load_rule(struct loader *l, wr_conf_node rule, const struct proxy *px, size_t host0) {
  static const char *const rule_keys[] = {"name", "matches", "filters", "backends", NULL};
  static const char *const backend_keys[] = {"endpoint", "connector", "filters",
                                             "tls",      "instance",  NULL};
  static const char *const ref_keys[] = {"name", NULL};
  wr_conf_node backends = {0}, backend, ref = {0};
  const struct connector *c;
  const char *name, *endpoint, *why;
  char target[HOSTPORT_MAX];
  size_t h;
  int rv;

  rv = wr_conf_check_keys(rule, rule_keys);
  if (rv == 0)
    rv = wr_conf_get_seq(rule, "backends", WR_CONF_OPTIONAL, 0, 1, &backends);
  if (rv != 0 || wr_conf_seq_len(backends) == 0)
    return rv;
  backend = wr_conf_seq_at(backends, 0);
  rv = wr_conf_check_keys(backend, backend_keys);
  if (rv == 0)
    rv = wr_conf_get_map(backend, "connector", WR_CONF_OPTIONAL, &ref);
  if (rv != 0 || ref.conf == NULL)
    return rv; /* not through a tunnel: not ours to route */
  rv = wr_conf_check_keys(ref, ref_keys);
  if (rv == 0)
    rv = wr_conf_get_str(ref, "name", WR_CONF_REQUIRED, &name);
  if (rv != 0)
    return rv;
  c = find_connector(l, px->ns, name);
  if (c == NULL)
    return wr_conf_errorf(wr_conf_map_get(ref, "name"),
                          "no Connector named \"%.64s\" in this file%s%.64s", name,
                          px->ns[0] ? " and namespace " : "", px->ns);
  rv = wr_conf_get_str(backend, "endpoint", WR_CONF_REQUIRED, &endpoint);
  if (rv != 0)
    return rv;
  why = wr_routes_endpoint(endpoint, target, sizeof(target));
  if (why != NULL)
    return wr_conf_errorf(wr_conf_map_get(backend, "endpoint"), "invalid endpoint URL: %s", why);
  for (h = host0; h < l->nhosts; h++) {
    rv = add_route(l, rule, h, px->name, c, target);
    if (rv != 0)
      return rv;
  }
  return 0;
}

static int load_proxy(struct loader *l, wr_conf_node root, size_t seq) {
  static const char *const top_keys[] = {"apiVersion", "kind", "metadata", "spec", "status", NULL};
  static const char *const spec_keys[] = {"hostnames", "rules", NULL};
  wr_conf_node spec = {0}, hostnames = {0}, rules = {0};
  size_t i, host0 = l->nhosts;
  struct proxy px;
  int rv;

  memset(&px, 0, sizeof(px));
  px.seq = seq;
  rv = wr_conf_check_keys(root, top_keys);
  if (rv == 0)
    rv = check_api(root, API_HTTPPROXY, "HTTPProxy");
  if (rv == 0)
    rv = load_meta(root, &px.ns, &px.name, &px.where);
  if (rv == 0)
    rv = wr_conf_get_map(root, "spec", WR_CONF_REQUIRED, &spec);
  if (rv == 0)
    rv = wr_conf_check_keys(spec, spec_keys);
  if (rv == 0)
    rv = wr_conf_get_seq(spec, "hostnames", WR_CONF_REQUIRED, 1, LIST_MAX, &hostnames);
  for (i = 0; rv == 0 && i < wr_conf_seq_len(hostnames); i++)
    rv = load_hostname(l, wr_conf_seq_at(hostnames, i), px.name, l->nhosts);
  if (rv == 0)
    rv = wr_conf_get_seq(spec, "rules", WR_CONF_REQUIRED, 1, LIST_MAX, &rules);
  for (i = 0; rv == 0 && i < wr_conf_seq_len(rules); i++)
    rv = load_rule(l, wr_conf_seq_at(rules, i), &px, host0);
  if (rv != 0)
    return rv;
  if (grow(&l->proxies, l->nproxies, sizeof(*l->proxies)) != 0)
    return WR_ERR_NOMEM;
  l->proxies[l->nproxies++] = px;
  return 0;
}

static int proxy_cmp(const void *a, const void *b) {
  const struct proxy *x = a, *y = b;

  return key_cmp(x->ns, x->name, x->seq, y->ns, y->name, y->seq);
}

static int host_cmp(const void *a, const void *b) {
  const struct host *x = a, *y = b;
  int r = strcmp(x->name, y->name);

  if (r == 0)
    r = x->seq < y->seq ? -1 : (x->seq > y->seq);
  return r;
}

/* sort_connectors sorts the connectors for find_connector() and refuses a
 * name defined twice in one namespace. */
static int sort_connectors(struct loader *l) {
  size_t i;

  sort(l->conns, l->nconns, sizeof(*l->conns), conn_cmp);
  for (i = 1; i < l->nconns; i++) {
    if (strcmp(l->conns[i].ns, l->conns[i - 1].ns) == 0 &&
        strcmp(l->conns[i].name, l->conns[i - 1].name) == 0)
      return wr_conf_errorf(l->conns[i].where, "Connector \"%s\" is already defined at line %zu",
                            l->conns[i].name, wr_conf_line(l->conns[i - 1].where));
  }
  return 0;
}

/* check_unique refuses an HTTPProxy name defined twice in one namespace and
 * a hostname used twice, reporting the duplicate that comes first in the file. */
static int check_unique(struct loader *l) {
  const struct host *dup = NULL, *first = NULL;
  size_t i;

  sort(l->proxies, l->nproxies, sizeof(*l->proxies), proxy_cmp);
  for (i = 1; i < l->nproxies; i++) {
    if (strcmp(l->proxies[i].ns, l->proxies[i - 1].ns) == 0 &&
        strcmp(l->proxies[i].name, l->proxies[i - 1].name) == 0)
      return wr_conf_errorf(l->proxies[i].where, "HTTPProxy \"%s\" is already defined at line %zu",
                            l->proxies[i].name, wr_conf_line(l->proxies[i - 1].where));
  }
  sort(l->hosts, l->nhosts, sizeof(*l->hosts), host_cmp);
  for (i = 1; i < l->nhosts; i++) {
    if (strcmp(l->hosts[i].name, l->hosts[i - 1].name) == 0 &&
        (dup == NULL || l->hosts[i].seq < dup->seq)) {
      dup = &l->hosts[i];
      first = &l->hosts[i - 1];
    }
  }
  if (dup == NULL)
    return 0;
  if (dup->where.doc == first->where.doc)
    return wr_conf_errorf(dup->where, "hostname \"%s\" is listed twice (first at line %zu)",
                          dup->name, wr_conf_line(first->where));
  return wr_conf_errorf(dup->where,
                        "hostname \"%s\" of HTTPProxy \"%s\" is already used by HTTPProxy "
                        "\"%s\" at line %zu",
                        dup->name, dup->proxy, first->proxy, wr_conf_line(first->where));
}

static int pending_cmp(const void *a, const void *b) {
  const struct pending *x = a, *y = b;
  int r = strcmp(x->r.hostname, y->r.hostname);

  if (r == 0)
    r = x->seq < y->seq ? -1 : (x->seq > y->seq);
  return r;
}

static void route_free(struct wr_route *r) {
  free(r->hostname);
  free(r->proxy);
  free(r->connector);
  free(r->node_addr);
  free(r->target);
}

/* load_all runs the three steps; on failure the message is in the wr_conf. */
static int load_all(struct loader *l) {
  wr_conf_node root;
  const char *kind;
  size_t i, n = wr_conf_ndocs(l->conf);
  int rv = 0;

  for (i = 0; rv == 0 && i < n; i++) {
    root = wr_conf_root(l->conf, i);
    if (wr_conf_kind(root) == WR_CONF_NULL || wr_conf_kind(root) == WR_CONF_NONE)
      continue; /* an empty document */
    if (wr_conf_kind(root) != WR_CONF_MAP) {
      rv = wr_conf_errorf(root, "expected a Connector or HTTPProxy object, found %s",
                          wr_conf_kind_name(wr_conf_kind(root)));
      break;
    }
    rv = wr_conf_get_str(root, "kind", WR_CONF_REQUIRED, &kind);
    if (rv == 0 && strcmp(kind, "Connector") == 0)
      rv = load_connector(l, root, i);
    else if (rv == 0 && strcmp(kind, "HTTPProxy") != 0)
      rv = wr_conf_errorf(wr_conf_map_get(root, "kind"),
                          "unknown kind \"%.64s\" (expected Connector or HTTPProxy)", kind);
  }
  if (rv == 0)
    rv = sort_connectors(l);
  for (i = 0; rv == 0 && i < n; i++) {
    root = wr_conf_root(l->conf, i);
    kind = wr_conf_scalar(wr_conf_map_get(root, "kind"));
    if (kind != NULL && strcmp(kind, "HTTPProxy") == 0)
      rv = load_proxy(l, root, i);
  }
  if (rv == 0)
    rv = check_unique(l);
  return rv;
}

/* routes_build turns a loaded file into |out|; it always frees |conf|. */
static int routes_build(struct wr_routes *out, wr_conf *conf, char *err, size_t errlen) {
  struct wr_routes r = {NULL, 0};
  struct loader l;
  size_t i;
  int rv;

  memset(&l, 0, sizeof(l));
  l.conf = conf;
  rv = load_all(&l);
  if (rv == WR_ERR_CONFIG) {
    snprintf(err, errlen, "%s", wr_conf_errmsg(conf));
    goto out;
  }
  if (rv == 0 && l.nroutes > 0) {
    r.v = calloc(l.nroutes, sizeof(*r.v));
    if (r.v == NULL)
      rv = WR_ERR_NOMEM;
  }
  if (rv != 0) {
    snprintf(err, errlen, "%s: %s", wr_conf_name(conf), wr_strerror(rv));
    goto out;
  }
  sort(l.routes, l.nroutes, sizeof(*l.routes), pending_cmp);
  for (i = 0; i < l.nroutes; i++)
    r.v[i] = l.routes[i].r;
  r.n = l.nroutes;
  l.nroutes = 0; /* moved to r */
  *out = r;
out:
  for (i = 0; i < l.nroutes; i++)
    route_free(&l.routes[i].r);
  for (i = 0; i < l.nhosts; i++)
    free(l.hosts[i].name);
  free(l.routes);
  free(l.hosts);
  free(l.proxies);
  free(l.conns);
  wr_conf_del(conf);
  return rv;
}

int wr_routes_load_mem(struct wr_routes *out, const char *name, const char *data, size_t len,
                       char *err, size_t errlen) {
  wr_conf *conf;
  int rv = wr_conf_load_mem(&conf, name, data, len, WR_ROUTES_FILE_MAX, err, errlen);

  if (rv != 0)
    return rv;
  return routes_build(out, conf, err, errlen);
}

int wr_routes_load_file(struct wr_routes *out, const char *path, char *err, size_t errlen) {
  wr_conf *conf;
  int rv = wr_conf_load_file(&conf, path, WR_ROUTES_FILE_MAX, err, errlen);

  if (rv != 0)
    return rv;
  return routes_build(out, conf, err, errlen);
}

void wr_routes_free(struct wr_routes *r) {
  size_t i;

  for (i = 0; i < r->n; i++)
    route_free(&r->v[i]);
  free(r->v);
  r->v = NULL;
  r->n = 0;
}

/* host_name reduces a Host header value to a lowercase name without port or
 * final dot in |buf|; false when it cannot be a hostname of ours. */
static bool host_name(const char *host, char *buf, size_t len) {
  const char *colon = strrchr(host, ':');
  size_t n = strlen(host);

  if (host[0] == '[')
    return false; /* an IPv6 literal, with or without port: never a route */
  if (colon != NULL) {
    if (memchr(host, ':', (size_t)(colon - host)) != NULL)
      return false; /* a bare IPv6 literal */
    if (strspn(colon + 1, "0123456789") != strlen(colon + 1))
      return false;
    n = (size_t)(colon - host);
  }
  if (n > 0 && host[n - 1] == '.')
    n--;
  if (n > NAME_MAX_LEN || !lower_copy(buf, len, host, n))
    return false;
  return wr_routes_dns_name(buf, n);
}

/* find_route returns the first route named exactly |name| in the sorted table. */
static const struct wr_route *find_route(const struct wr_routes *r, const char *name) {
  size_t lo = 0, hi = r->n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;

    if (strcmp(r->v[mid].hostname, name) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < r->n && strcmp(r->v[lo].hostname, name) == 0)
    return &r->v[lo];
  return NULL;
}

const struct wr_route *wr_routes_match(const struct wr_routes *r, const char *host) {
  char name[NAME_MAX_LEN + 1], wild[NAME_MAX_LEN + 2];
  const struct wr_route *route;
  const char *dot;

  if (r == NULL || r->n == 0 || host == NULL || !host_name(host, name, sizeof(name)))
    return NULL;
  route = find_route(r, name);
  /* "*.suffix" stands for one or more labels: try the longest suffix first. */
  for (dot = strchr(name, '.'); route == NULL && dot != NULL; dot = strchr(dot + 1, '.')) {
    snprintf(wild, sizeof(wild), "*%s", dot);
    route = find_route(r, wild);
  }
  return route;
}
