/*
 * discovery.c - node addresses from Connector status (see discovery.h and
 * docs/internals/gateway-discovery.md).
 *
 * One informer on connectors, trimmed to metadata and
 * status.connectionDetails, indexed by the endpoint ID each one publishes.
 * An event whose connection details did not change does nothing; otherwise
 * the addresses the Connector used to publish are withdrawn (when its ID
 * changed or it has none left: another Connector publishing the same ID
 * takes over, else the pool forgets them) and the new ones are given to the
 * pool, which keeps the node's current address if still published.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "discovery.h"
#include "pool.h"
#include "warren/addr.h"
#include "warren/err.h"
#include "warren/identity.h"
#include "warren/informer.h"
#include "warren/kclient.h"
#include "warren/kconfig.h"
#include "warren/log.h"

#define MAX_ADDRS 16 /* the CRD's maxItems */
#define KEY_MAX 512  /* "namespace/name" */
#define INDEX_ID "endpoint-id"
#define HEX_DIGITS "0123456789abcdefABCDEF"

static const struct wr_kres connectors = {"networking.datumapis.com", "v1alpha1", "connectors"};

struct gw_discovery {
  struct gw_pool *pool;
  struct wr_kconfig cfg;
  wr_kclient *kc;
  wr_informer *inf;
};

/* What one Connector publishes. */
enum pub_state {
  PUB_NONE,    /* no connectionDetails */
  PUB_INVALID, /* details the gateway cannot use (logged) */
  PUB_NO_ADDR, /* a valid ID without a usable address (relay only) */
  PUB_OK
};

struct published {
  enum pub_state state;
  wr_pubkey id;
  char hex[WR_ID_HEX_LEN + 1];
  size_t n;
  char addrs[MAX_ADDRS][WR_ADDRSTRLEN];
};

static json_t *details_of(json_t *obj) {
  return json_object_get(json_object_get(obj, "status"), "connectionDetails");
}

static void conn_key(json_t *obj, char *buf, size_t len) {
  json_t *m = json_object_get(obj, "metadata");
  const char *ns = json_string_value(json_object_get(m, "namespace"));
  const char *name = json_string_value(json_object_get(m, "name"));

  snprintf(buf, len, "%s/%s", ns ? ns : "", name ? name : "?");
}

/* format_address checks one addresses[] item and writes "ip:port" or
 * "[v6]:port" into |buf|; returns NULL or what is wrong. */
static const char *format_address(json_t *item, char *buf, size_t len) {
  const char *a = json_string_value(json_object_get(item, "address"));
  json_t *port = json_object_get(item, "port");
  char text[INET6_ADDRSTRLEN];
  unsigned char bin[sizeof(struct in6_addr)];
  json_int_t p;

  if (a == NULL)
    return "no address";
  if (!json_is_integer(port) || (p = json_integer_value(port)) < 1 || p > 65535)
    return "port is not an integer in 1-65535";
  if (inet_pton(AF_INET, a, bin) == 1) {
    inet_ntop(AF_INET, bin, text, sizeof(text));
    snprintf(buf, len, "%s:%d", text, (int)p);
  } else if (inet_pton(AF_INET6, a, bin) == 1) {
    inet_ntop(AF_INET6, bin, text, sizeof(text));
    snprintf(buf, len, "[%s]:%d", text, (int)p);
  } else {
    return "not an IPv4 or IPv6 address";
  }
  return NULL;
}

/* parse reads what |obj| publishes; |warn_key| set: log what is ignored. */
static void parse(json_t *obj, struct published *p, const char *warn_key) {
  json_t *cd = details_of(obj), *pk, *addrs, *item;
  const char *type, *id;
  size_t i;

  memset(p, 0, sizeof(*p));
  if (!json_is_object(cd)) {
    p->state = PUB_NONE;
    return;
  }
  p->state = PUB_INVALID;
  type = json_string_value(json_object_get(cd, "type"));
  if (type == NULL || strcmp(type, "PublicKey") != 0) {
    if (warn_key != NULL)
      log_warnx("discovery: Connector %s: connectionDetails.type is \"%.32s\", not PublicKey: "
                "ignored",
                warn_key, type ? type : "");
    return;
  }
  pk = json_object_get(cd, "publicKey");
  id = json_string_value(json_object_get(pk, "id"));
  if (id == NULL || strlen(id) != WR_ID_HEX_LEN || strspn(id, HEX_DIGITS) != WR_ID_HEX_LEN ||
      wr_id_parse(p->id, id) != 0) {
    if (warn_key != NULL)
      log_warnx("discovery: Connector %s: connectionDetails.publicKey.id \"%.80s\" is not a "
                "64-hex endpoint ID: ignored",
                warn_key, id ? id : "");
    return;
  }
  if (crypto_core_ed25519_is_valid_point(p->id) != 1) {
    if (warn_key != NULL)
      log_warnx("discovery: Connector %s: connectionDetails.publicKey.id %.16s... is not an "
                "Ed25519 public key: ignored",
                warn_key, id);
    return;
  }
  wr_id_to_hex(p->id, p->hex);
  addrs = json_object_get(pk, "addresses");
  json_array_foreach(addrs, i, item) {
    const char *why;

    if (p->n == MAX_ADDRS) {
      if (warn_key != NULL)
        log_warnx("discovery: Connector %s: more than %d addresses: the rest ignored", warn_key,
                  MAX_ADDRS);
      break;
    }
    why = format_address(item, p->addrs[p->n], sizeof(p->addrs[p->n]));
    if (why == NULL)
      p->n++;
    else if (warn_key != NULL)
      log_warnx("discovery: Connector %s: addresses[%zu] ignored: %s", warn_key, i, why);
  }
  p->state = p->n > 0 ? PUB_OK : PUB_NO_ADDR;
  if (p->state == PUB_NO_ADDR && warn_key != NULL)
    log_info("discovery: Connector %s: %.8s publishes no direct address: not used", warn_key,
             p->hex);
}

/* transform keeps what discovery reads, with the ID in lowercase so that
 * the index finds it. */
static void transform(void *ud, json_t *obj) {
  static const char *const keep[] = {"name", "namespace", "uid", "resourceVersion", NULL};
  json_t *m = json_object_get(obj, "metadata"), *st = json_object_get(obj, "status"), *v, *id;
  const char *key;
  void *tmp;
  size_t i;

  (void)ud;
  json_object_del(obj, "spec");
  json_object_foreach_safe(m, tmp, key, v) {
    for (i = 0; keep[i] != NULL && strcmp(keep[i], key) != 0; i++)
      ;
    if (keep[i] == NULL)
      json_object_del(m, key);
  }
  json_object_foreach_safe(st, tmp, key, v) {
    if (strcmp(key, "connectionDetails") != 0)
      json_object_del(st, key);
  }
  id = json_object_get(json_object_get(details_of(obj), "publicKey"), "id");
  if (json_is_string(id) && json_string_length(id) == WR_ID_HEX_LEN) {
    char low[WR_ID_HEX_LEN + 1];

    memcpy(low, json_string_value(id), sizeof(low));
    for (i = 0; i < WR_ID_HEX_LEN; i++)
      if (low[i] >= 'A' && low[i] <= 'F')
        low[i] = (char)(low[i] - 'A' + 'a');
    json_string_set(id, low);
  }
}

/* index_id: the endpoint ID of a Connector that publishes addresses. */
static size_t index_id(void *ud, json_t *obj, const char **vals, size_t max) {
  struct published p;
  const char *id;

  (void)ud;
  if (max == 0)
    return 0;
  parse(obj, &p, NULL);
  id = json_string_value(json_object_get(json_object_get(details_of(obj), "publicKey"), "id"));
  if (p.state != PUB_OK || id == NULL || strcmp(id, p.hex) != 0)
    return 0;
  vals[0] = id;
  return 1;
}

static void publish(struct gw_discovery *d, const struct published *p, const char *key) {
  const char *addrs[MAX_ADDRS];
  char cur[WR_ADDRSTRLEN];
  size_t i;
  int rv;

  for (i = 0; i < p->n; i++)
    addrs[i] = p->addrs[i];
  rv = gw_pool_set_published(d->pool, p->id, addrs, p->n, cur, sizeof(cur));
  if (rv < 0)
    log_warnx("discovery: %s (Connector %s): %s", p->hex, key, wr_strerror(rv));
  else if (rv == 1)
    log_info("discovery: %s -> %s (Connector %s)", p->hex, cur, key);
  else
    log_debug("discovery: %s stays at %s (Connector %s)", p->hex, cur, key);
}

/* withdraw: |key| no longer publishes addresses for |p|'s ID. */
static void withdraw(struct gw_discovery *d, const struct published *p, const char *key) {
  json_t *set = wr_informer_index(d->inf, INDEX_ID, p->hex), *v;
  char cur[WR_ADDRSTRLEN];
  const char *k;
  int rv;

  json_object_foreach(set, k, v) {
    json_t *obj = wr_informer_get_key(d->inf, k);
    struct published other;

    parse(obj, &other, NULL);
    if (other.state == PUB_OK && memcmp(other.id, p->id, WR_PUBKEY_LEN) == 0) {
      publish(d, &other, k);
      return;
    }
  }
  rv = gw_pool_set_published(d->pool, p->id, NULL, 0, cur, sizeof(cur));
  if (rv < 0)
    log_warnx("discovery: %s (Connector %s): %s", p->hex, key, wr_strerror(rv));
  else
    log_info("discovery: %s -> %s (Connector %s withdrew its addresses)", p->hex,
             cur[0] ? cur : "none", key);
}

/* apply handles one Connector event: |old| NULL for an addition, |obj| NULL
 * for a deletion. */
static void apply(struct gw_discovery *d, json_t *old, json_t *obj) {
  struct published po, pn;
  char key[KEY_MAX];

  conn_key(obj != NULL ? obj : old, key, sizeof(key));
  if (old != NULL && obj != NULL && json_equal(details_of(old), details_of(obj)))
    return; /* conditions, leaseRef, ...: nothing discovery reads */
  po.state = pn.state = PUB_NONE;
  if (old != NULL)
    parse(old, &po, NULL);
  if (obj != NULL)
    parse(obj, &pn, key);
  if (po.state == PUB_OK && (pn.state != PUB_OK || memcmp(po.id, pn.id, WR_PUBKEY_LEN) != 0))
    withdraw(d, &po, key);
  if (pn.state == PUB_OK)
    publish(d, &pn, key);
}

static void on_add(void *ud, json_t *obj, int initial) {
  (void)initial;
  apply(ud, NULL, obj);
}

static void on_update(void *ud, json_t *old, json_t *obj) {
  apply(ud, old, obj);
}

static void on_delete(void *ud, json_t *obj, int final_state_unknown) {
  (void)final_state_unknown;
  apply(ud, obj, NULL);
}

static void on_synced(void *ud) {
  struct gw_discovery *d = ud;
  struct wr_informer_stats st;

  wr_informer_stats(d->inf, &st);
  log_info("discovery: synced, %zu Connectors", st.objects);
}

static const struct wr_informer_cbs discovery_cbs = {on_add, on_update, on_delete, on_synced};

int gw_discovery_new(struct gw_discovery **out, uv_loop_t *loop, struct gw_pool *pool,
                     const char *kubeconfig, const char *ns) {
  struct gw_discovery *d;
  struct wr_informer_opts io;
  char path[WR_KCLIENT_PATH_MAX], err[WR_KCONFIG_ERR_MAX];
  int rv;

  d = calloc(1, sizeof(*d));
  if (d == NULL)
    return WR_ERR_NOMEM;
  d->pool = pool;
  rv = wr_kconfig_load_default(&d->cfg, kubeconfig, err, sizeof(err));
  if (rv < 0) {
    log_warnx("discovery: kubernetes API: %s", err);
    free(d);
    return rv;
  }
  rv = wr_kpath(path, sizeof(path), &connectors, ns, NULL, NULL);
  if (rv >= 0)
    rv = wr_kclient_new_kconfig(&d->kc, loop, &d->cfg);
  if (rv >= 0) {
    memset(&io, 0, sizeof(io));
    io.path = path;
    io.transform = transform;
    io.idle_s = 120;
    rv = wr_informer_new(&d->inf, loop, d->kc, &io, &discovery_cbs, d);
  }
  if (rv >= 0)
    rv = wr_informer_add_index(d->inf, INDEX_ID, index_id, NULL);
  if (rv >= 0)
    rv = wr_informer_start(d->inf);
  if (rv < 0) {
    log_warnx("discovery: %s", wr_strerror(rv));
    gw_discovery_del(d);
    return rv;
  }
  log_info("discovery: watching Connectors in %s through %s (%s)", ns ? ns : "all namespaces",
           d->cfg.server, d->cfg.source);
  *out = d;
  return 0;
}

void gw_discovery_del(struct gw_discovery *d) {
  if (d == NULL)
    return;
  wr_informer_del(d->inf);
  if (d->kc != NULL)
    wr_kclient_del(d->kc);
  wr_kconfig_free(&d->cfg);
  free(d);
}
