/*
 * main.c - warren-heartbeat: the desktop agent. Parses the command line,
 * loads the identity and starts the modules on the loop; nothing else.
 * `serve` and `expose` run the same agent; `expose` adds its HTTPProxy
 * (expose.c) and prints the URL and one line per request on stdout.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrwatch.h"
#include "control.h"
#include "expose.h"
#include "reqlog.h"
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
  /* expose */
  const char *hostname, *domain;
  int exposing;
  uint16_t port;
  char target[32];
  char proxy_name[HB_EXPOSE_NAME_MAX + 1], proxy_host[HB_EXPOSE_NAME_MAX + 1];
};

struct agent {
  uv_loop_t *loop;
  struct hb_serve *serve;
  hb_control *control;
  hb_addrwatch *addrs;
  hb_expose *expose;
  int expose_started;
  char listen_ip[46];
  uint16_t port;
  int v6; /* the socket's family */
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
      "       warren-heartbeat expose PORT --connector NAME --trust GATEWAY_ID\n"
      "                              [--hostname NAME | --domain DOMAIN] [--identity PATH]\n"
      "                              [--listen IP:PORT] [--kubeconfig PATH] [--namespace NS]\n"
      "                              [--connector-class CLASS] [--home-relay URL] ...\n"
      "\n"
      "  id      print this node's endpoint ID (hex, then z-base-32); creates the key\n"
      "  serve   accept tunnels from the trusted gateways to the exposed targets\n"
      "  expose  serve 127.0.0.1:PORT as the Connector, publish it with an HTTPProxy\n"
      "          <connector>-<port>, print \"url: https://HOSTNAME/\" once it is programmed,\n"
      "          then one line per request; Ctrl-C deletes the HTTPProxy it created\n"
      "          (docs/internals/heartbeat-expose.md)\n"
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
      "  --hostname NAME   expose: the public hostname (default <connector>-<port>.DOMAIN)\n"
      "  --domain DOMAIN   expose: for the default hostname (default $WARREN_DOMAIN, "
      "else localhost)\n"
      "  --trace LIST      trace categories: quic,path,tunnel,kube,all\n");
}

static void finish(void *arg) {
  struct agent *a = arg;

  hb_expose_del(a->expose);
  a->expose = NULL;
  hb_serve_del(a->serve);
  a->serve = NULL;
  hb_addrwatch_del(a->addrs);
  a->addrs = NULL;
  hb_control_del(a->control);
  a->control = NULL;
  uv_stop(a->loop);
}

static void release(void *arg) {
  struct agent *a = arg;

  if (a->control != NULL)
    hb_control_stop(a->control, finish, a); /* release the Lease */
  else
    finish(a);
}

/* stop: the HTTPProxy first (expose), then the Lease, then the rest. */
static void stop(struct agent *a) {
  if (a->stopping++)
    return;
  if (a->expose != NULL)
    hb_expose_stop(a->expose, release, a);
  else
    release(a);
}

static void on_stop(void *arg) {
  stop(arg);
}

static void on_registered(void *ud, const char *ns, const char *name) {
  struct agent *a = ud;
  int rv;

  log_info("registered as Connector %s/%s", ns, name);
  if (a->expose != NULL && !a->expose_started && !a->stopping) {
    a->expose_started = 1;
    rv = hb_expose_start(a->expose, ns);
    if (rv < 0) {
      log_warnx("expose: %s", wr_strerror(rv));
      a->failed = 1;
      stop(a);
    }
  }
}

static void on_fatal(void *ud, const char *why) {
  struct agent *a = ud;

  log_warnx("%s", why);
  a->failed = 1;
  if (a->expose != NULL && !a->stopping)
    stop(a); /* delete a created HTTPProxy; the control plane has nothing to release */
  else if (!a->stopping++)
    finish(a);
}

static void on_expose_ready(void *ud, const char *url) {
  (void)ud;
  printf("url: %s\n", url);
  fflush(stdout);
}

static void on_expose_fatal(void *ud, const char *why) {
  struct agent *a = ud;

  log_warnx("%s", why);
  a->failed = 1;
  stop(a);
}

static void on_request(void *ud, const struct hb_reqlog_rec *r) {
  char line[HB_REQLOG_LINE_MAX];

  (void)ud;
  hb_reqlog_format(r, line, sizeof(line));
  printf("%s\n", line);
  fflush(stdout);
}

/* on_addrs publishes the host's addresses the socket receives on: its
 * family only (an IPv6 socket is IPV6_V6ONLY, lib/path_udp.c). */
static void on_addrs(void *ud, const char (*addrs)[46], size_t n) {
  struct agent *a = ud;
  char keep[HB_PUBLISH_MAX][46];
  size_t i, k = 0;

  for (i = 0; i < n && k < HB_PUBLISH_MAX; i++) {
    if ((strchr(addrs[i], ':') != NULL) == a->v6)
      memcpy(keep[k++], addrs[i], sizeof(keep[0]));
  }
  hb_control_set_addrs(a->control, (const char(*)[46])keep, k, a->port);
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
  a->v6 = ss.ss_family == AF_INET6;
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
  enum { KUBECONFIG = 256, CONNECTOR, NS, CLASS, RELAY, HOSTNAME, DOMAIN };
  static const struct option longopts[] = {{"listen", required_argument, NULL, 'l'},
                                           {"expose", required_argument, NULL, 'e'},
                                           {"trust", required_argument, NULL, 't'},
                                           {"kubeconfig", required_argument, NULL, KUBECONFIG},
                                           {"connector", required_argument, NULL, CONNECTOR},
                                           {"namespace", required_argument, NULL, NS},
                                           {"connector-class", required_argument, NULL, CLASS},
                                           {"home-relay", required_argument, NULL, RELAY},
                                           {"hostname", required_argument, NULL, HOSTNAME},
                                           {"domain", required_argument, NULL, DOMAIN},
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
    case HOSTNAME:
      o->hostname = optarg;
      break;
    case DOMAIN:
      o->domain = optarg;
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

/* run_agent is `serve`, and `expose` (o->exposing) on top of it. */
static int run_agent(struct opts *o, const char *cmd) {
  struct hb_serve_config cfg;
  struct agent a;
  wr_identity id;
  char hex[WR_ID_HEX_LEN + 1];
  uv_loop_t loop;
  size_t i;
  int rv;

  if (o->nexpose == 0) {
    log_warnx("%s: nothing to expose: give --expose HOST:PORT", cmd);
    return 2;
  }
  if (o->ntrust == 0) {
    log_warnx("%s: no gateway would be accepted: give --trust GATEWAY_ID", cmd);
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
  if (o->exposing) {
    cfg.on_request = on_request;
    cfg.request_ud = &a;
  }
  rv = hb_serve_new(&a.serve, &cfg);
  if (rv != 0) {
    log_warnx("%s: cannot listen on %s: %s", cmd, cfg.listen, wr_strerror(rv));
    wr_identity_wipe(&id);
    uv_loop_close(&loop);
    return 1;
  }
  wr_loop_signals(&loop, on_stop, &a);
  wr_id_to_hex(id.pk, hex);
  log_info("endpoint id %s", hex);
  for (i = 0; i < o->nexpose; i++)
    log_info("exposing %s", o->expose[i]);
  if (o->exposing) {
    struct hb_expose_opts eo = {.kubeconfig = o->kubeconfig,
                                .name = o->proxy_name,
                                .hostname = o->proxy_host,
                                .connector = o->connector,
                                .port = o->port};
    struct hb_expose_cbs ecb = {on_expose_ready, on_expose_fatal};

    rv = hb_expose_new(&a.expose, &loop, &eo, &ecb, &a);
    if (rv != 0) {
      log_warnx("expose: %s", wr_strerror(rv));
      a.failed = 1;
      a.stopping = 1;
      finish(&a);
    }
  }
  if (a.failed) {
    /* finish() ran */
  } else if (o->connector != NULL && (rv = start_control(&a, o, hex, cfg.listen)) != 0) {
    log_warnx("%s: connector %s: %s", cmd, o->connector, wr_strerror(rv));
    a.failed = 1;
    a.stopping = 1;
    finish(&a);
  } else {
    log_info("ready: listening for gateways on %s (udp)", cfg.listen);
    if (o->exposing)
      log_info("waiting for the Connector, then for the operator to program "
               "https://%s/ ...",
               o->proxy_host);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (a.expose != NULL)
    hb_expose_del(a.expose);
  if (a.serve != NULL)
    hb_serve_del(a.serve);
  wr_loop_close_all(&loop);
  uv_loop_close(&loop);
  wr_identity_wipe(&id);
  return a.failed ? 1 : 0;
}

static int cmd_serve(struct opts *o) {
  if (o->hostname != NULL || o->domain != NULL) {
    log_warnx("serve: --hostname and --domain belong to expose");
    return 2;
  }
  return run_agent(o, "serve");
}

/* cmd_expose: `serve --expose 127.0.0.1:PORT --connector ...` plus the
 * HTTPProxy <connector>-<port> for --hostname (default
 * <connector>-<port>.<--domain, $WARREN_DOMAIN or localhost>). */
static int cmd_expose(struct opts *o, const char *port) {
  const char *domain = o->domain;
  char err[512], *end;
  unsigned long p;

  p = strtoul(port, &end, 10);
  if (*port == '\0' || *end != '\0' || p == 0 || p > 65535) {
    log_warnx("expose: '%s' is not a port (1-65535)", port);
    return 2;
  }
  if (o->connector == NULL) {
    log_warnx("expose: give --connector NAME (the Connector this agent registers as)");
    return 2;
  }
  if (o->hostname != NULL && o->domain != NULL) {
    log_warnx("expose: --hostname and --domain exclude each other");
    return 2;
  }
  if (domain == NULL && (domain = getenv("WARREN_DOMAIN")) != NULL && *domain == '\0')
    domain = NULL;
  o->port = (uint16_t)p;
  if (hb_expose_names(o->connector, o->port, o->hostname, domain, o->proxy_name,
                      sizeof(o->proxy_name), o->proxy_host, sizeof(o->proxy_host), err,
                      sizeof(err)) != 0) {
    log_warnx("expose: %s", err);
    return 2;
  }
  if (o->nexpose == HB_MAX_EXPOSE) {
    log_warnx("at most %d --expose", HB_MAX_EXPOSE - 1);
    return 2;
  }
  snprintf(o->target, sizeof(o->target), "127.0.0.1:%lu", p);
  memmove(o->expose + 1, o->expose, o->nexpose * sizeof(o->expose[0]));
  o->expose[0] = o->target;
  o->nexpose++;
  o->exposing = 1;
  return run_agent(o, "expose");
}

int main(int argc, char **argv) {
  struct opts o;
  const char *cmd;
  char **args;
  int nargs;

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
  /* getopt_long moved the operands after the options */
  args = argv + 1 + optind;
  nargs = argc - 1 - optind;
  if (strcmp(cmd, "expose") == 0) {
    if (nargs != 1) {
      log_warnx("expose: give exactly one PORT");
      usage(stderr);
      return 2;
    }
    return cmd_expose(&o, args[0]);
  }
  if (nargs > 0 && (strcmp(cmd, "id") == 0 || strcmp(cmd, "serve") == 0)) {
    log_warnx("%s: unexpected argument '%s'", cmd, args[0]);
    return 2;
  }
  if (strcmp(cmd, "id") == 0)
    return wr_cli_print_id(o.common.identity);
  if (strcmp(cmd, "serve") == 0)
    return cmd_serve(&o);
  log_warnx("unknown command '%s'", cmd);
  usage(stderr);
  return 2;
}
