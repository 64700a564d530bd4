/*
 * main.c - warren-heartbeat: the desktop agent. Parses the command line,
 * loads the identity and starts the modules on the loop; nothing else.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrwatch.h"
#include "control.h"
#include "serve.h"
#include "warren/addr.h"
#include "warren/cli.h"
#include "warren/err.h"
#include "warren/identity.h"
#include "warren/log.h"
#include "warren/loop.h"

struct opts {
  struct wr_cli_common common;
  const char *listen;
  const char *expose[HB_MAX_EXPOSE];
  size_t nexpose;
  wr_pubkey trust[HB_MAX_TRUST];
  size_t ntrust;
  /* control plane (optional) */
  const char *kubeconfig, *connector, *ns, *connector_class, *home_relay;
};

struct agent {
  uv_loop_t *loop;
  struct hb_serve *serve;
  hb_control *control;
  hb_addrwatch *addrs;
  char listen_ip[46];
  uint16_t port;
  int failed, stopping;
};

static void usage(FILE *fp) {
  fprintf(
      fp,
      "usage: warren-heartbeat id [--identity PATH]\n"
      "       warren-heartbeat serve [--identity PATH] --listen IP:PORT --trust GATEWAY_ID\n"
      "                              --expose HOST:PORT|PORT [--expose ...]\n"
      "                              [--connector NAME [--kubeconfig PATH] [--namespace NS]\n"
      "                               [--connector-class CLASS] [--home-relay URL]]\n"
      "                              [--log-level error|warn|info|debug] [--trace LIST]\n"
      "\n"
      "  id      print this node's endpoint ID (hex, then z-base-32); creates the key\n"
      "  serve   accept tunnels from the trusted gateways to the exposed targets\n"
      "\n"
      "  --identity PATH   secret key file (0600), default $XDG_CONFIG_HOME/warren/heartbeat.key\n"
      "  --listen IP:PORT  UDP address for QUIC (default 0.0.0.0:4433)\n"
      "  --trust ID        a gateway endpoint ID (hex or z-base-32) allowed to connect\n"
      "  --expose TARGET   a local service gateways may reach, e.g. 127.0.0.1:3000 or 3000\n"
      "  --connector NAME  register as this Connector (created if absent), publish the\n"
      "                    connection details and renew its Lease "
      "(docs/internals/heartbeat-control.md)\n"
      "  --kubeconfig PATH API access (default: $KUBECONFIG, in-cluster, ~/.kube/config)\n"
      "  --namespace NS    the Connector's namespace (default: the kubeconfig's)\n"
      "  --connector-class CLASS  of a Connector it creates (default datum-connect)\n"
      "  --home-relay URL  published as the home relay (default none)\n"
      "  --trace LIST      trace categories: quic,path,tunnel,kube,all\n");
}

static void finish(void *arg) {
  struct agent *a = arg;

  hb_serve_del(a->serve);
  a->serve = NULL;
  hb_addrwatch_del(a->addrs);
  a->addrs = NULL;
  hb_control_del(a->control);
  a->control = NULL;
  uv_stop(a->loop);
}

static void on_stop(void *arg) {
  struct agent *a = arg;

  if (a->stopping++)
    return;
  if (a->control != NULL)
    hb_control_stop(a->control, finish, a); /* release the Lease first */
  else
    finish(a);
}

static void on_registered(void *ud, const char *ns, const char *name) {
  (void)ud;
  log_info("registered as Connector %s/%s", ns, name);
}

static void on_fatal(void *ud, const char *why) {
  struct agent *a = ud;

  log_warnx("%s", why);
  a->failed = 1;
  finish(a);
}

static void on_addrs(void *ud, const char (*addrs)[46], size_t n) {
  struct agent *a = ud;

  hb_control_set_addrs(a->control, addrs, n, a->port);
}

/* start_control registers the agent's Connector and publishes its
 * addresses: the one it listens on, or, on a wildcard address, every usable
 * address of the host, kept current by rtnetlink. */
static int start_control(struct agent *a, const struct opts *o, const char *id_hex,
                         const char *listen) {
  struct hb_control_opts co = {.kubeconfig = o->kubeconfig,
                               .ns = o->ns,
                               .name = o->connector,
                               .class_name = o->connector_class,
                               .endpoint_id = id_hex,
                               .home_relay = o->home_relay ? o->home_relay : ""};
  struct hb_control_cbs cbs = {on_registered, on_fatal};
  struct sockaddr_storage ss;
  socklen_t sslen;
  char ip[1][46];
  int rv, any;

  rv = wr_addr_parse(listen, &ss, &sslen);
  if (rv < 0)
    return rv;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    a->port = ntohs(s4->sin_port);
    any = s4->sin_addr.s_addr == htonl(INADDR_ANY);
    inet_ntop(AF_INET, &s4->sin_addr, ip[0], sizeof(ip[0]));
  } else {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    a->port = ntohs(s6->sin6_port);
    any = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
    inet_ntop(AF_INET6, &s6->sin6_addr, ip[0], sizeof(ip[0]));
  }
  rv = hb_control_new(&a->control, a->loop, &co, &cbs, a);
  if (rv == 0)
    rv = hb_control_start(a->control);
  if (rv < 0)
    return rv;
  if (!any) {
    hb_control_set_addrs(a->control, (const char(*)[46])ip, 1, a->port);
    return 0;
  }
  return hb_addrwatch_new(&a->addrs, a->loop, on_addrs, a);
}

static int parse(struct opts *o, int argc, char **argv) {
  enum { KUBECONFIG = 256, CONNECTOR, NS, CLASS, RELAY };
  static const struct option longopts[] = {{"listen", required_argument, NULL, 'l'},
                                           {"expose", required_argument, NULL, 'e'},
                                           {"trust", required_argument, NULL, 't'},
                                           {"kubeconfig", required_argument, NULL, KUBECONFIG},
                                           {"connector", required_argument, NULL, CONNECTOR},
                                           {"namespace", required_argument, NULL, NS},
                                           {"connector-class", required_argument, NULL, CLASS},
                                           {"home-relay", required_argument, NULL, RELAY},
                                           WR_CLI_COMMON_LONGOPTS,
                                           {NULL, 0, NULL, 0}};
  int ch;

  while ((ch = getopt_long(argc, argv, "l:e:t:" WR_CLI_COMMON_OPTSTRING, longopts, NULL)) != -1) {
    switch (ch) {
    case 'l':
      o->listen = optarg;
      break;
    case KUBECONFIG:
      o->kubeconfig = optarg;
      break;
    case CONNECTOR:
      o->connector = optarg;
      break;
    case NS:
      o->ns = optarg;
      break;
    case CLASS:
      o->connector_class = optarg;
      break;
    case RELAY:
      o->home_relay = optarg;
      break;
    case 'e':
      if (o->nexpose == HB_MAX_EXPOSE) {
        log_warnx("at most %d --expose", HB_MAX_EXPOSE);
        return -1;
      }
      o->expose[o->nexpose++] = optarg;
      break;
    case 't':
      if (o->ntrust == HB_MAX_TRUST) {
        log_warnx("at most %d --trust", HB_MAX_TRUST);
        return -1;
      }
      if (wr_id_parse(o->trust[o->ntrust], optarg) != 0) {
        log_warnx("--trust '%s': not an endpoint ID (64 hex or 52 z-base-32 chars)", optarg);
        return -1;
      }
      o->ntrust++;
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
  return 0;
}

static int cmd_serve(struct opts *o) {
  struct hb_serve_config cfg;
  struct agent a;
  wr_identity id;
  char hex[WR_ID_HEX_LEN + 1];
  uv_loop_t loop;
  size_t i;
  int rv;

  if (o->nexpose == 0) {
    log_warnx("serve: nothing to expose: give --expose HOST:PORT");
    return 2;
  }
  if (o->ntrust == 0) {
    log_warnx("serve: no gateway would be accepted: give --trust GATEWAY_ID");
    return 2;
  }
  if (wr_cli_load_identity(&id, o->common.identity) != 0)
    return 1;
  uv_loop_init(&loop);
  memset(&cfg, 0, sizeof(cfg));
  cfg.loop = &loop;
  cfg.id = &id;
  cfg.listen = o->listen ? o->listen : "0.0.0.0:4433";
  cfg.trusted = o->trust;
  cfg.ntrusted = o->ntrust;
  cfg.expose = o->expose;
  cfg.nexpose = o->nexpose;
  memset(&a, 0, sizeof(a));
  a.loop = &loop;
  rv = hb_serve_new(&a.serve, &cfg);
  if (rv != 0) {
    log_warnx("serve: cannot listen on %s: %s", cfg.listen, wr_strerror(rv));
    wr_identity_wipe(&id);
    return 1;
  }
  wr_loop_signals(&loop, on_stop, &a);
  wr_id_to_hex(id.pk, hex);
  log_info("endpoint id %s", hex);
  for (i = 0; i < o->nexpose; i++)
    log_info("exposing %s", o->expose[i]);
  if (o->connector != NULL && (rv = start_control(&a, o, hex, cfg.listen)) != 0) {
    log_warnx("serve: connector %s: %s", o->connector, wr_strerror(rv));
    a.failed = 1;
    finish(&a);
  } else {
    log_info("ready: listening for gateways on %s (udp)", cfg.listen);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (a.serve != NULL)
    hb_serve_del(a.serve);
  wr_loop_close_all(&loop);
  uv_loop_close(&loop);
  wr_identity_wipe(&id);
  return a.failed ? 1 : 0;
}

int main(int argc, char **argv) {
  struct opts o;
  const char *cmd;

  log_init("warren-heartbeat", WR_LOG_INFO);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  cmd = argv[1];
  memset(&o, 0, sizeof(o));
  if (wr_cli_common_init(&o.common, "heartbeat") != 0)
    return 1;
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
    usage(stdout);
    return 0;
  }
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
