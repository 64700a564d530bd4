/*
 * main.c - warren-gateway: parses the command line, loads the identity and
 * the routes, and starts the pool and the listeners. No logic lives here.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connect.h"
#include "discovery.h"
#include "edge.h"
#include "pool.h"
#include "warren/cli.h"
#include "warren/err.h"
#include "warren/identity.h"
#include "warren/log.h"
#include "warren/loop.h"
#include "warren/routes.h"

#define MAX_PEERS 256

/* Long options without a short form. */
enum { OPT_KUBECONFIG = 256, OPT_DISCOVER };

struct opts {
  struct wr_cli_common common;
  const char *connect_unix;
  const char *connect_tcp;
  const char *edge;
  const char *conn;
  const char *tls_cert;
  const char *tls_key;
  const char *routes;
  const char *bind;
  const char *peers[MAX_PEERS];
  size_t npeers;
  const char *kubeconfig;
  int discover;            /* --discover-connectors given */
  const char *discover_ns; /* its namespace; NULL: all */
};

struct gateway {
  uv_loop_t *loop;
  struct gw_pool *pool;
  struct gw_connect *connect;
  struct gw_edge *edge;
  struct gw_discovery *discovery;
  struct wr_routes routes;
};

static void usage(FILE *fp) {
  fprintf(fp,
          "usage: warren-gateway id [--identity PATH]\n"
          "       warren-gateway serve [--identity PATH] [--connect-unix PATH] [--connect-tcp "
          "IP:PORT]\n"
          "                            [--edge IP:PORT] [--edge-tls IP:PORT --tls-cert PEM "
          "--tls-key PEM]\n"
          "                            [--routes FILE] [--peer ID=IP:PORT ...] [--bind IP:PORT]\n"
          "                            [--discover-connectors[=NAMESPACE]] [--kubeconfig PATH]\n"
          "                            [--log-level error|warn|info|debug] [--trace LIST]\n"
          "\n"
          "  id      print this gateway's endpoint ID (hex, then z-base-32); creates the key\n"
          "  serve   accept tunnel requests and carry them over QUIC to the nodes\n"
          "\n"
          "  --connect-unix PATH   HTTP/2 CONNECT listener on a Unix socket (Envoy sidecar)\n"
          "  --connect-tcp ADDR    the same on TCP\n"
          "  --edge ADDR           standalone edge: HTTP/1.1 and h2c, routed by Host (--routes)\n"
          "  --edge-tls ADDR       standalone edge over TLS (h2 and http/1.1 by ALPN)\n"
          "  --routes FILE         HTTPProxy + Connector YAML (docs/internals/routes.md)\n"
          "  --peer ID=IP:PORT     where node ID listens (QUIC/UDP)\n"
          "  --bind IP:PORT        local UDP address for QUIC (default 0.0.0.0:0)\n"
          "  --discover-connectors[=NAMESPACE]\n"
          "                        learn node addresses from Connector status (read-only watch)\n"
          "                        in NAMESPACE, or in all namespaces without one\n"
          "  --kubeconfig PATH     Kubernetes client configuration for discovery (default:\n"
          "                        $KUBECONFIG, in-cluster, ~/.kube/config)\n");
}

static int parse(struct opts *o, int argc, char **argv) {
  static const struct option longopts[] = {
      {"connect-unix", required_argument, NULL, 'u'},
      {"connect-tcp", required_argument, NULL, 'c'},
      {"edge", required_argument, NULL, 'e'},
      {"edge-tls", required_argument, NULL, 's'},
      {"tls-cert", required_argument, NULL, 'C'},
      {"tls-key", required_argument, NULL, 'K'},
      {"routes", required_argument, NULL, 'r'},
      {"peer", required_argument, NULL, 'p'},
      {"bind", required_argument, NULL, 'b'},
      {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
      {"discover-connectors", optional_argument, NULL, OPT_DISCOVER},
      WR_CLI_COMMON_LONGOPTS,
      {NULL, 0, NULL, 0}};
  int ch;

  while ((ch = getopt_long(argc, argv, "u:c:e:s:C:K:r:p:b:" WR_CLI_COMMON_OPTSTRING, longopts,
                           NULL)) != -1) {
    switch (ch) {
    case 'u':
      o->connect_unix = optarg;
      break;
    case 'c':
      o->connect_tcp = optarg;
      break;
    case 'e':
      o->edge = optarg;
      break;
    case 's':
      o->conn = optarg;
      break;
    case 'C':
      o->tls_cert = optarg;
      break;
    case 'K':
      o->tls_key = optarg;
      break;
    case 'r':
      o->routes = optarg;
      break;
    case 'p':
      if (o->npeers == MAX_PEERS) {
        log_warnx("at most %d --peer", MAX_PEERS);
        return -1;
      }
      o->peers[o->npeers++] = optarg;
      break;
    case 'b':
      o->bind = optarg;
      break;
    case OPT_KUBECONFIG:
      o->kubeconfig = optarg;
      break;
    case OPT_DISCOVER:
      o->discover = 1;
      o->discover_ns = optarg != NULL && optarg[0] != '\0' ? optarg : NULL;
      break;
    case 'h':
      usage(stdout);
      exit(0);
    default:
      switch (wr_cli_common_opt(&o->common, ch, optarg)) {
      case 1:
        break;
      case 0:
        usage(stderr);
        return -1;
      default:
        return -1;
      }
    }
  }
  if (optind < argc) {
    /* e.g. "--discover-connectors NS": the namespace needs the '=' form */
    log_warnx("unexpected argument '%s'%s", argv[optind],
              o->discover ? " (a namespace is given as --discover-connectors=NAMESPACE)" : "");
    return -1;
  }
  if (o->kubeconfig != NULL && !o->discover) {
    log_warnx("--kubeconfig is only used with --discover-connectors");
    return -1;
  }
  return 0;
}

/* add_peer registers "ID=IP:PORT" in the pool's directory. */
static int add_peer(struct gw_pool *pool, const char *spec) {
  char id[128];
  const char *eq = strchr(spec, '=');
  wr_pubkey pk;

  if (eq == NULL || (size_t)(eq - spec) >= sizeof(id)) {
    log_warnx("--peer '%s': expected ID=IP:PORT", spec);
    return -1;
  }
  memcpy(id, spec, (size_t)(eq - spec));
  id[eq - spec] = '\0';
  if (wr_id_parse(pk, id) != 0) {
    log_warnx("--peer '%s': '%s' is not an endpoint ID", spec, id);
    return -1;
  }
  if (gw_pool_set_static_addr(pool, pk, eq + 1) != 0) {
    log_warnx("--peer '%s': '%s' is not an IP:PORT address", spec, eq + 1);
    return -1;
  }
  return 0;
}

static void on_stop(void *arg) {
  struct gateway *g = arg;

  gw_discovery_del(g->discovery);
  g->discovery = NULL;
  if (g->edge != NULL)
    gw_edge_del(g->edge);
  if (g->connect != NULL)
    gw_connect_del(g->connect);
  gw_pool_del(g->pool);
  g->edge = NULL;
  g->connect = NULL;
  g->pool = NULL;
  uv_stop(g->loop);
}

static int start(struct gateway *g, const struct opts *o, const wr_identity *id) {
  struct gw_pool_config pc;
  char err[512];
  size_t i;
  int rv;

  if (o->routes != NULL) {
    rv = wr_routes_load_file(&g->routes, o->routes, err, sizeof(err));
    if (rv != 0) {
      log_warnx("%s", err);
      return -1;
    }
    log_info("loaded %zu routes from %s", g->routes.n, o->routes);
  }
  memset(&pc, 0, sizeof(pc));
  pc.loop = g->loop;
  pc.id = id;
  pc.bind = o->bind;
  rv = gw_pool_new(&g->pool, &pc);
  if (rv != 0) {
    log_warnx("cannot start QUIC: %s", wr_strerror(rv));
    return -1;
  }
  for (i = 0; i < g->routes.n; i++)
    (void)gw_pool_set_static_addr(g->pool, g->routes.v[i].endpoint_id, g->routes.v[i].node_addr);
  for (i = 0; i < o->npeers; i++)
    if (add_peer(g->pool, o->peers[i]) != 0)
      return -1;
  if (o->discover &&
      gw_discovery_new(&g->discovery, g->loop, g->pool, o->kubeconfig, o->discover_ns) != 0)
    return -1;
  if (o->connect_unix != NULL || o->connect_tcp != NULL) {
    rv = gw_connect_new(&g->connect, g->loop, g->pool, o->connect_unix, o->connect_tcp);
    if (rv != 0)
      return -1;
  }
  if (o->edge != NULL || o->conn != NULL) {
    struct gw_edge_config ec;

    memset(&ec, 0, sizeof(ec));
    ec.addr = o->edge;
    ec.tls_addr = o->conn;
    ec.tls_cert = o->tls_cert;
    ec.tls_key = o->tls_key;
    rv = gw_edge_new(&g->edge, g->loop, g->pool, &g->routes, &ec);
    if (rv != 0)
      return -1;
  }
  return 0;
}

static int cmd_serve(const struct opts *o) {
  struct gateway g;
  wr_identity id;
  char hex[WR_ID_HEX_LEN + 1];
  uv_loop_t loop;
  int status = 0;

  if (o->connect_unix == NULL && o->connect_tcp == NULL && o->edge == NULL && o->conn == NULL) {
    log_warnx("serve: no listener: give --connect-unix, --connect-tcp, --edge or --edge-tls");
    return 2;
  }
  if (o->conn != NULL && (o->tls_cert == NULL || o->tls_key == NULL)) {
    log_warnx("serve: --edge-tls needs --tls-cert and --tls-key");
    return 2;
  }
  if (wr_cli_load_identity(&id, o->common.identity) != 0)
    return 1;
  uv_loop_init(&loop);
  memset(&g, 0, sizeof(g));
  g.loop = &loop;
  if (start(&g, o, &id) != 0) {
    status = 1;
    on_stop(&g);
  } else {
    wr_loop_signals(&loop, on_stop, &g);
    wr_id_to_hex(id.pk, hex);
    log_info("endpoint id %s", hex);
    log_info("ready");
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  if (g.pool != NULL)
    on_stop(&g);
  wr_loop_close_all(&loop);
  uv_loop_close(&loop);
  wr_routes_free(&g.routes);
  wr_identity_wipe(&id);
  return status;
}

int main(int argc, char **argv) {
  struct opts o;
  const char *cmd;

  log_init("warren-gateway", WR_LOG_INFO);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  cmd = argv[1];
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
    usage(stdout);
    return 0;
  }
  memset(&o, 0, sizeof(o));
  if (wr_cli_common_init(&o.common, "gateway") != 0)
    return 1;
  if (parse(&o, argc - 1, argv + 1) != 0)
    return 2;
  if (wr_cli_common_apply(&o.common) != 0)
    return 2;
  if (strcmp(cmd, "id") == 0)
    return wr_cli_print_id(o.common.identity);
  if (strcmp(cmd, "serve") == 0)
    return cmd_serve(&o);
  log_warnx("unknown command '%s'", cmd);
  usage(stderr);
  return 2;
}
